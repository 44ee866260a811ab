"""Where the time goes: the top ``torch.profiler`` ops of a forward, and self time summed per op group.

The op groups (``OP_GROUPS``) are what the report's explanation of a missed target compares between its two sides:
an op running inside a deformable conv or a fused attention call counts for that group, whatever its own name."""
import functools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .models import ModelSpec
from .suites import QUICK_SETTINGS, SETTINGS, attention_layers
from .timing import ProgressBar

__all__ = ['VIEW_OPS', 'OP_GROUPS', 'profile_backbones', 'profile_attention', 'time_by_op_group',
           'op_group_sides', 'explain_target', 'explain_attention_target']

_OP_NAMESPACES = ('aten::', 'mkldnn::')  # profiler events that are ops (not module scopes or Python calls)
# Ops that only reshape, view or allocate: excluded when looking for the most-called compute op.
VIEW_OPS = {'aten::as_strided', 'aten::view', 'aten::reshape', 'aten::_reshape_alias', 'aten::transpose',
            'aten::permute', 'aten::select', 'aten::slice', 'aten::expand', 'aten::unsqueeze', 'aten::squeeze',
            'aten::flatten', 'aten::t', 'aten::empty', 'aten::empty_strided', 'aten::empty_like', 'aten::unbind',
            'aten::split', 'aten::chunk', 'aten::narrow', 'aten::contiguous', 'aten::detach', 'aten::alias',
            'aten::resolve_conj', 'aten::resolve_neg', 'aten::lift_fresh', 'aten::unflatten', 'aten::unfold',
            'aten::view_as', 'aten::expand_as', 'aten::result_type', 'aten::to', 'aten::_to_copy',
            'aten::_unsafe_view', 'aten::split_with_sizes', 'aten::set_', 'aten::resize_', 'aten::zeros'}


def _activities(device: torch.device) -> list:
    from torch.profiler import ProfilerActivity
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])


def _op_calls(forward: Callable[[], object], activities) -> list:
    """Op events (``aten::``, ``mkldnn::``) of one ``forward()`` (after a warm-up call that fills per-size caches)."""
    from torch.profiler import profile
    with torch.no_grad():
        forward()
        with profile(activities=activities) as prof:
            forward()
    return [e for e in prof.key_averages() if e.key.startswith(_OP_NAMESPACES)]


def _top_ops(events: list, top: int) -> List[dict]:
    total = sum(e.self_cpu_time_total for e in events) or 1
    ranked = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return [dict(op=e.key, calls=e.count, self_ms=e.self_cpu_time_total / 1e3, share=e.self_cpu_time_total / total)
            for e in ranked]


def profile_attention(names: Sequence[str], dim: int, heads: int, batch: int, resolution: int,
                      device: torch.device, top: int = 6) -> List[dict]:
    """Top ops of one run of each attention layer (where the time of the attention benchmark goes)."""
    builders = attention_layers(dim, heads)
    hw = (resolution // 16, resolution // 16)
    x = torch.randn(batch, hw[0] * hw[1], dim, device=device)
    rows = []
    for name in names:
        row = dict(mode='profile', model=name, input=f'{batch}x{hw[0]}x{hw[1]} tokens')
        try:
            module = builders[name]().to(device)
            module.eval()
            events = _op_calls(functools.partial(module, x, hw), _activities(device))
            busiest = max((e for e in events if e.key not in VIEW_OPS), key=lambda e: e.count)
            row.update(aten_calls=sum(e.count for e in events), max_calls=busiest.count, max_calls_op=busiest.key,
                       top_ops=_top_ops(events, top))
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
    return rows


def _compute_calls(events) -> int:
    return sum(e.count for e in events if e.key not in VIEW_OPS)


def profile_backbones(specs: Sequence[ModelSpec], shape: Tuple[int, int], device: torch.device, top: int = 6,
                      progress: bool = True) -> List[dict]:
    """Top ops by self time of one forward at ``shape``, with calls per forward, and the op calls at twice the
    size (4x the tokens and windows).

    A Python loop over windows or heads would show as compute ops called hundreds of times, a count that grows
    with the input: ``aten_calls`` vs ``aten_calls_2x`` (calls of compute ops, views excluded: indexing takes
    fewer views where a slice spans a whole dimension) and the most-called compute op tell."""
    activities = _activities(device)
    bar = ProgressBar(len(specs), progress)
    rows = []
    for spec in specs:
        row = dict(mode='profile', model=spec.name, input=f'{shape[0]}x{shape[1]}')
        try:
            model = spec.build().to(device)
            model.eval()
            x = torch.randn(1, 3, *shape, device=device)
            events = _op_calls(functools.partial(model, x), activities)
            x = torch.randn(1, 3, 2 * shape[0], 2 * shape[1], device=device)
            larger = _op_calls(functools.partial(model, x), activities)
            busiest = max((e for e in events if e.key not in VIEW_OPS), key=lambda e: e.count)
            row.update(aten_calls=_compute_calls(events), aten_calls_2x=_compute_calls(larger),
                       max_calls=busiest.count, max_calls_op=busiest.key, top_ops=_top_ops(events, top))
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
        bar.step(spec.name)
    return rows


OP_GROUPS = ('matmul (linear layers, explicit attention)', 'fused attention (SDPA)', 'deformable conv (DTM)',
             'depthwise conv', 'dense conv', 'copies and layout', 'norm, activation, elementwise')
# ``mkldnn::``: the fused oneDNN linear layers and convs of ``mmvit_ext.models.layers.onednn``.
_MATMUL_OPS = {'aten::addmm', 'aten::addmm_', 'aten::mm', 'aten::bmm', 'aten::baddbmm', 'aten::matmul',
               'mkldnn::_linear_pointwise'}
_CONV_OPS = {'aten::mkldnn_convolution', 'aten::_slow_conv2d_forward', 'aten::thnn_conv2d', 'aten::convolution',
             'aten::_convolution', 'aten::conv2d', 'aten::cudnn_convolution', 'aten::_conv_depthwise2d',
             'mkldnn::_convolution_pointwise'}
_LAYOUT_OPS = {'aten::copy_', 'aten::cat', 'aten::clone', 'aten::contiguous', 'aten::constant_pad_nd',
               'aten::index_select', 'aten::im2col', 'aten::col2im', 'aten::fill_', 'aten::zero_'}
# Names of the deformable-conv implementations whose inner ops count for the DTM group (mmcv's autograd
# function, torchvision's op, and any ``deform_conv`` op or module of ours).
_DEFORM_MARKERS = ('DeformConv2d', 'deform_conv2d', 'DeformConv')


def _op_group(event) -> Optional[str]:
    """The OP_GROUPS entry of one profiler event (None for non-op events such as module scopes)."""
    node = event
    while node is not None:
        if any(marker in node.name for marker in _DEFORM_MARKERS):
            return 'deformable conv (DTM)'
        if 'scaled_dot_product' in node.name:
            return 'fused attention (SDPA)'
        node = node.cpu_parent
    name = event.name
    if not name.startswith(_OP_NAMESPACES):
        return None
    if name in _MATMUL_OPS:
        return 'matmul (linear layers, explicit attention)'
    if name in _CONV_OPS:
        weight = event.input_shapes[1] if len(event.input_shapes) > 1 else []
        return 'depthwise conv' if len(weight) == 4 and weight[1] == 1 else 'dense conv'
    if name in _LAYOUT_OPS:
        return 'copies and layout'
    return 'norm, activation, elementwise'


def time_by_op_group(forward: Callable[[], object], device: torch.device, grad: bool = False) -> Dict[str, float]:
    """Self CPU time in ms of one ``forward()`` (after a warm-up) summed per OP_GROUPS entry; ``grad``: with
    autograd on (a training iteration, its backward included)."""
    from torch.profiler import profile
    with torch.set_grad_enabled(grad):
        forward()
        with profile(activities=_activities(device), record_shapes=True) as prof:
            forward()
    groups = dict.fromkeys(OP_GROUPS, 0.)
    for event in prof.events():
        group = _op_group(event)
        if group is not None:
            groups[group] += event.self_cpu_time_total / 1e3
    return groups


def op_group_sides(target: str, input_text: str, sides: Dict[str, Callable[[], object]],
                   device: torch.device) -> dict:
    """The explanation record of a target: ``time_by_op_group`` of each named side's forward."""
    return dict(target=target, input=input_text,
                groups={name: time_by_op_group(forward, device) for name, forward in sides.items()})


def explain_target(target: dict, specs: Sequence[ModelSpec], device: torch.device, quick: bool = False) -> dict:
    """The op-group breakdown of both sides of a backbone speed target at its setting and batch: where the
    numerator spends more time than the denominator."""
    (num, den), setting, batch = target['models'], target['setting'], target['batch']
    shape = (QUICK_SETTINGS if quick else SETTINGS)[setting]
    sides = {}
    for names in (num, den):
        spec = next((s for s in specs if s.name.lower() in names), None)
        if spec is None:
            return dict(target=target['target'], error=f'no model among {names}')
        model = spec.build().to(device)
        model.eval()
        sides[spec.name] = functools.partial(model, torch.randn(batch, 3, *shape, device=device))
    return op_group_sides(target['target'], f'{batch}x{shape[0]}x{shape[1]}', sides, device)


def explain_attention_target(target: dict, dim: int, heads: int, batch: int, resolution: int,
                             device: torch.device, layers: Sequence[str] = ('HiLo', 'MSA')) -> dict:
    """The op-group breakdown of two attention layers (HiLo and the MSA of the target) at the ViT-B setting."""
    builders = attention_layers(dim, heads)
    hw = (resolution // 16, resolution // 16)
    x = torch.randn(batch, hw[0] * hw[1], dim, device=device)
    sides = {}
    for name in layers:
        module = builders[name]().to(device)
        module.eval()
        sides[name] = functools.partial(module, x, hw)
    return op_group_sides(target['target'], f'{batch}x{hw[0]}x{hw[1]} tokens', sides, device)
