"""Speed, memory, params and FLOPs of the mmvit_ext backbones, whole models and attention layers.

Modes (``python tools/analysis_tools/benchmark.py MODE --help`` for every option):

    backbone   every registered mmvit_ext backbone and arch (discovered from each class's ``arch_zoo``) plus the
               baselines mmdet Swin-T / PVTv2-B0 / PVTv2-B2, mmseg MiT-B0, mmpretrain ResNet-50, at 224x224
               (batch 1 and N), 800x1333 (detection) and 512x512 (segmentation), fp32 and autocast
               (bf16 on CPU, fp16 on CUDA):
                   benchmark.py backbone [--models 'LITv2-*' 'Swin-T'] [--settings cls det seg] [--batch-sizes 1 8]
    config     inference FPS of a whole detector / segmentor / classifier config (random input, no dataset):
                   benchmark.py config CONFIG [CONFIG ...] [--shape 800 1333]
    attention  one attention layer at the HiLo paper's ViT-B setting (14x14 tokens, dim 768, 12 heads) and across
               input resolutions 224-1024 (tokens at stride 16): HiLo, global MSA, window attention (ws 2, 7),
               spatial-reduction attention, LightViT local-global, LVT RASA and CSA; throughput ratio to MSA:
                   benchmark.py attention [--resolutions 224 512 1024]
    profile    the top torch.profiler ops of one forward per backbone (per-window / per-head Python loops would
               show as op call counts that grow with the input):
                   benchmark.py profile [--models ...]
    report     all of the above, then ``docs/benchmark.md`` with the tables and the plots (PNG):
                   benchmark.py report [--out-dir docs]

Every mode prints a table, shows a progress bar (stderr) and can write ``--json`` / ``--csv``. Latency is the
median of repeated runs after warm-up with the inter-quartile range as spread; throughput = batch / median.
Peak memory: CUDA max-allocated growth on GPU, sampled process-RSS growth on CPU. ``--quick`` shrinks every size
and repeat count (for tests and smoke runs).
"""
import argparse
import csv
import datetime
import fnmatch
import functools
import glob
import json
import os
import os.path as osp
import platform
import re
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmvit_ext.analysis import (DEFAULT_INPUT_SHAPES, PeakMemory, autocast_context, build_config_model,
                                config_complexity, config_forward, config_inputs, count_complexity, format_count,
                                time_forward)

REPO_ROOT = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

# Input settings of backbone mode: (H, W). Dense settings are measured with --dense-batch images.
SETTINGS = {'cls': (224, 224), 'det': (800, 1333), 'seg': (512, 512)}
QUICK_SETTINGS = {'cls': (64, 64), 'det': (96, 160), 'seg': (96, 96)}


# ---------------------------------------------------------------------------------------------------------------
# Models: our backbones (discovered) and the baselines
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class ModelSpec:
    """A backbone to measure: ``build()`` returns a module whose forward maps (B, 3, H, W) to feature maps."""
    name: str
    family: str
    source: str
    build: Callable[[], nn.Module]


def unique_archs(arch_zoo: Dict[str, dict]) -> List[str]:
    """The distinct variants of an ``arch_zoo``: aliases (keys with equal settings) collapse to the longest name,
    in order of first appearance."""
    groups: Dict[str, List[str]] = {}
    for name, settings in arch_zoo.items():
        groups.setdefault(repr(sorted(settings.items())), []).append(name)
    return [max(names, key=len) for names in groups.values()]


def mmvit_backbones() -> List[ModelSpec]:
    """Every backbone class exported by ``mmvit_ext.models.backbones`` that has an ``arch_zoo``, one spec per arch.

    Families that have not landed yet (no class with an ``arch_zoo``) are simply absent."""
    from mmvit_ext.models import backbones
    specs = []
    for attr in sorted(getattr(backbones, '__all__', dir(backbones))):
        cls = getattr(backbones, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module) and isinstance(getattr(cls, 'arch_zoo', None),
                                                                                    dict)):
            continue
        for arch in unique_archs(cls.arch_zoo):
            specs.append(ModelSpec(f'{cls.__name__}-{arch}', cls.__name__, 'mmvit_ext',
                                   functools.partial(cls, arch=arch)))
        specs.extend(_extra_variants(cls))
    return specs


def _extra_variants(cls) -> List[ModelSpec]:
    """Variants that are settings of an arch rather than zoo entries: the LITv2 paper's ``*`` detection models
    (stage-3 HiLo window 4 instead of 2, same weights)."""
    if cls.__name__ != 'LITv2':
        return []
    return [ModelSpec(f'LITv2-{arch}-ws4', 'LITv2', 'mmvit_ext', functools.partial(cls, arch=arch,
                                                                                  local_ws=(0, 0, 4, 1)))
            for arch in unique_archs(cls.arch_zoo)]


def _build_registered(scope: str, cfg: dict) -> nn.Module:
    from mmengine.registry import init_default_scope
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    init_default_scope(scope)
    return MODELS.build(cfg)


BASELINES = [
    ('Swin-T', 'mmdet', dict(type='SwinTransformer', embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                             window_size=7)),
    ('PVTv2-B0', 'mmdet', dict(type='PyramidVisionTransformerV2', embed_dims=32, num_layers=[2, 2, 2, 2])),
    ('PVTv2-B2', 'mmdet', dict(type='PyramidVisionTransformerV2', embed_dims=64, num_layers=[3, 4, 6, 3])),
    ('MiT-B0', 'mmseg', dict(type='MixVisionTransformer', embed_dims=32, num_heads=[1, 2, 5, 8],
                             num_layers=[2, 2, 2, 2])),
    ('ResNet-50', 'mmpretrain', dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3))),
]


def baseline_backbones() -> List[ModelSpec]:
    """Upstream backbones measured in the same run, as the yardstick of every ratio in the report."""
    return [ModelSpec(name, 'baseline', scope, functools.partial(_build_registered, scope, cfg))
            for name, scope, cfg in BASELINES]


def select_models(patterns: Optional[Sequence[str]], with_baselines: bool = True) -> List[ModelSpec]:
    """Specs whose name matches any of the (case-insensitive, fnmatch) ``patterns``; all when none given."""
    specs = mmvit_backbones() + (baseline_backbones() if with_baselines else [])
    if not patterns:
        return specs
    chosen = [s for s in specs if any(fnmatch.fnmatch(s.name.lower(), p.lower()) for p in patterns)]
    if not chosen:
        raise SystemExit(f'no model matches {list(patterns)}; available: {", ".join(s.name for s in specs)}')
    return chosen


# ---------------------------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class RunOptions:
    device: torch.device
    warmup: int = 2
    repeat: int = 20
    max_seconds: float = 3.


def measure(forward: Callable[[], object], opts: RunOptions, precision: str, batch: int) -> dict:
    """Latency / throughput (``time_forward``) and peak memory of one extra run, under ``precision``."""
    def run():
        with torch.no_grad(), autocast_context(opts.device, precision):
            return forward()

    timing = time_forward(run, opts.device, warmup=opts.warmup, repeat=opts.repeat, max_seconds=opts.max_seconds)
    with PeakMemory(opts.device) as memory:
        run()
    row = timing.summary(batch)
    row['peak_mem_mb'] = None if memory.peak is None else memory.peak / 2 ** 20
    return row


class ProgressBar:
    """A one-line progress bar on stderr (keeps stdout for the tables)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = max(total, 1), 0, enabled

    def step(self, label: str):
        self.done += 1
        if self.enabled:
            filled = int(30 * self.done / self.total)
            sys.stderr.write(f'\r[{"#" * filled}{"." * (30 - filled)}] {self.done}/{self.total} {label[:60]:<60}')
            if self.done == self.total:
                sys.stderr.write('\n')
            sys.stderr.flush()


def bench_backbones(specs: Sequence[ModelSpec], settings: Sequence[str], batch_sizes: Sequence[int],
                    dense_batch: int, precisions: Sequence[str], opts: RunOptions, quick: bool = False,
                    progress: bool = True, dense_precisions: Optional[Sequence[str]] = None) -> List[dict]:
    """Backbone mode: one row per (model, setting, batch, precision); ``batch_sizes`` at 224x224, ``dense_batch``
    (and ``dense_precisions``, default ``precisions``) at the dense sizes. A model that fails to build or run gets
    rows with an ``error`` and the run goes on."""
    sizes = QUICK_SETTINGS if quick else SETTINGS
    plan = [(s, b, precisions if s == 'cls' else (dense_precisions or precisions))
            for s in settings for b in (batch_sizes if s == 'cls' else [dense_batch])]
    bar = ProgressBar(len(specs) * sum(len(p) for *_, p in plan), progress)
    rows = []
    for spec in specs:
        try:
            model = spec.build().to(opts.device)
            model.eval()  # not chained: some upstream train() overrides return None
            params = sum(p.numel() for p in model.parameters())
        except Exception as exc:  # a family under construction must not stop the run
            model, error = None, f'{type(exc).__name__}: {exc}'
        flops = {}  # per setting, per image
        for setting, batch, setting_precisions in plan:
            shape = sizes[setting]
            base = dict(mode='backbone', model=spec.name, family=spec.family, source=spec.source, setting=setting,
                        input=f'{shape[0]}x{shape[1]}', batch=batch)
            if model is not None and setting not in flops:
                try:
                    x = torch.randn(1, 3, *shape, device=opts.device)
                    flops[setting] = count_complexity(model, (x, ))['flops']
                except Exception as exc:
                    error = f'{type(exc).__name__}: {exc}'
                    model = None
            for precision in setting_precisions:
                row = dict(base, precision=precision)
                if model is None:
                    row['error'] = error
                else:
                    x = torch.randn(batch, 3, *shape, device=opts.device)
                    try:
                        row.update(params=params, flops=flops[setting], **measure(functools.partial(model, x), opts,
                                                                        precision, batch))
                    except Exception as exc:
                        row['error'] = f'{type(exc).__name__}: {exc}'
                rows.append(row)
                bar.step(f'{spec.name} {setting} b{batch} {precision}')
        del model
    return rows


def bench_configs(configs: Sequence[str], shape: Optional[Tuple[int, int]], batch: int, precisions: Sequence[str],
                  opts: RunOptions, progress: bool = True) -> List[dict]:
    """Config mode: inference FPS of the whole model (``mode='predict'``: preprocessed input -> results with
    post-processing, e.g. NMS), like mmdet's ``benchmark.py`` but on a random input."""
    from mmengine.config import Config
    bar = ProgressBar(len(configs) * len(precisions), progress)
    rows = []
    for config in configs:
        cfg = Config.fromfile(config)
        scope = cfg.get('default_scope')
        model = build_config_model(cfg, opts.device)
        size = tuple(shape) if shape else DEFAULT_INPUT_SHAPES.get(scope, (224, 224))
        inputs, samples = config_inputs(model, scope, size, batch=batch)
        inputs = inputs.to(opts.device)
        flops = count_complexity(config_forward(model, samples), (inputs, ))['flops'] / batch
        for precision in precisions:
            row = dict(mode='config', model=osp.splitext(osp.basename(config))[0], config=config, scope=scope,
                       input=f'{size[0]}x{size[1]}', padded=f'{inputs.shape[-2]}x{inputs.shape[-1]}', batch=batch,
                       precision=precision, params=sum(p.numel() for p in model.parameters()),
                       flops=flops)
            row.update(measure(lambda: model(inputs, samples, mode='predict'), opts, precision, batch))
            row['fps'] = row['throughput']
            rows.append(row)
            bar.step(f'{row["model"]} {precision}')
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Attention layers
# ---------------------------------------------------------------------------------------------------------------

class WindowAttention(nn.Module):
    """Baseline: plain (non-shifted) local window attention, Swin's W-MSA without bias.

    Tokens attend within non-overlapping ws x ws windows (zero-padded map). x: (B, H*W, C), hw -> (B, H*W, C).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int):
        super().__init__()
        self.num_heads, self.window_size = num_heads, window_size
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        (h, w), ws, heads = hw, self.window_size, self.num_heads
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        hp, wp = x.shape[1:3]
        qkv = self.qkv(x).view(b, hp // ws, ws, wp // ws, ws, 3, heads, c // heads)
        q, k, v = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, -1, heads, ws * ws, c // heads).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.view(b, hp // ws, wp // ws, heads, ws, ws, c // heads).permute(0, 1, 4, 2, 5, 3, 6)
        return self.proj(out.reshape(b, hp, wp, c)[:, :h, :w].reshape(b, n, c))


class SpatialReductionAttention(nn.Module):
    """Baseline: PVT's spatial-reduction attention (SRA), keys/values from a sr x sr stride-sr conv + LN.

    x: (B, H*W, C), hw -> (B, H*W, C). sr = 2 at the ViT-B setting gives the paper's 4.72 M params.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        heads = self.num_heads
        q = self.q(x).view(b, n, heads, c // heads).transpose(1, 2)
        reduced = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, *hw)).flatten(2).transpose(1, 2))
        k, v = self.kv(reduced).view(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class TokensToMap(nn.Module):
    """Adapter: runs a channels-last map module (B, H, W, C) -> (B, H, W, C) on tokens x: (B, H*W, C), hw."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        return self.module(x.view(b, *hw, c)).reshape(b, n, c)


class WithGlobalTokens(nn.Module):
    """Adapter: LightViT attention with ``num_tokens`` learnable global tokens prepended to the image tokens."""

    def __init__(self, module: nn.Module, dim: int, num_tokens: int):
        super().__init__()
        self.module = module
        self.global_tokens = nn.Parameter(torch.randn(1, num_tokens, dim) * .02)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        tokens = self.global_tokens.expand(x.shape[0], -1, -1)
        return self.module(torch.cat([tokens, x], dim=1), hw)[:, tokens.shape[1]:]


def attention_layers(dim: int, heads: int) -> Dict[str, Callable[[], nn.Module]]:
    """Builders of the compared layers, each a module with ``forward(x: (B, N, C), hw) -> (B, N, C)``.

    Settings per layer are each method's default for stride-16 maps, as the HiLo paper (App. E) does: HiLo ws 2,
    alpha 0.9; window attention ws 7 (Swin) and 2 (HiLo's Hi-Fi window); SRA sr 2 (PVT stage 3); LightViT ws 7
    with 8 global tokens; RASA sr 1 (LVT stage 4), CSA with its 3x3 kernel.
    """
    from mmvit_ext.models import layers
    return {
        'MSA': lambda: layers.RelPosMultiheadAttention(dim, heads),
        'HiLo': lambda: layers.HiLoAttention(dim, heads, window_size=2, alpha=.9),
        'Window ws7': lambda: WindowAttention(dim, heads, 7),
        'Window ws2': lambda: WindowAttention(dim, heads, 2),
        'SRA sr2': lambda: SpatialReductionAttention(dim, heads, 2),
        'LightViT local-global': lambda: WithGlobalTokens(layers.LocalGlobalAttention(dim, heads, window_size=7),
                                                          dim, 8),
        'RASA sr1': lambda: TokensToMap(layers.RecursiveAtrousSelfAttention(dim, heads, sr_ratio=1)),
        'CSA': lambda: TokensToMap(layers.ConvolutionalSelfAttention(dim, heads)),
    }


def bench_attention(resolutions: Sequence[int], dim: int, heads: int, batch: int, layers: Optional[Sequence[str]],
                    precisions: Sequence[str], opts: RunOptions, stride: int = 16,
                    progress: bool = True) -> List[dict]:
    """Attention mode: one row per (layer, resolution, precision); ``batch`` images at the first resolution and
    the same number of tokens per run at the others (``batch * N0 / N``, at least 1)."""
    builders = attention_layers(dim, heads)
    names = [n for n in builders if not layers or any(fnmatch.fnmatch(n.lower(), p.lower()) for p in layers)]
    if not names:
        raise SystemExit(f'no attention layer matches {list(layers)}; available: {", ".join(builders)}')
    bar = ProgressBar(len(names) * len(resolutions) * len(precisions), progress)
    base_tokens = (resolutions[0] // stride) ** 2
    rows = []
    for name in names:
        try:
            module = builders[name]().to(opts.device)
            module.eval()
            build_error = None
        except Exception as exc:
            module, build_error = None, f'{type(exc).__name__}: {exc}'
        for res in resolutions:
            hw = (res // stride, res // stride)
            n = hw[0] * hw[1]
            b = max(1, round(batch * base_tokens / n))
            for precision in precisions:
                row = dict(mode='attention', layer=name, resolution=res, tokens=f'{hw[0]}x{hw[1]}', dim=dim,
                           heads=heads, batch=b, precision=precision)
                if module is None:
                    row['error'] = build_error
                else:
                    try:
                        x = torch.randn(b, n, dim, device=opts.device)
                        counted = count_complexity(_WithSize(module, hw), (x[:1], ))
                        row.update(params=counted['params'], flops=counted['flops'],
                                   **measure(functools.partial(module, x, hw), opts, precision, b))
                    except Exception as exc:
                        row['error'] = f'{type(exc).__name__}: {exc}'
                rows.append(row)
                bar.step(f'{name} {res} {precision}')
    add_ratio(rows, 'MSA', key=('resolution', 'precision'))
    return rows


class _WithSize(nn.Module):
    """Binds the map size so jit tracing sees a module of one tensor."""

    def __init__(self, module: nn.Module, hw: Tuple[int, int]):
        super().__init__()
        self.module, self.hw = module, hw

    def forward(self, x):
        return self.module(x, self.hw)


def add_ratio(rows: List[dict], reference: str, key: Sequence[str], name_key: str = 'layer'):
    """``ratio_to_<reference>``: each row's throughput over the reference row's with the same ``key`` fields."""
    ref = {tuple(r[k] for k in key): r['throughput'] for r in rows if r[name_key] == reference and 'throughput' in r}
    for r in rows:
        base = ref.get(tuple(r[k] for k in key))
        r[f'ratio_to_{reference.lower()}'] = r['throughput'] / base if base and 'throughput' in r else None


# ---------------------------------------------------------------------------------------------------------------
# Profiler
# ---------------------------------------------------------------------------------------------------------------

# Ops that only reshape, view or allocate: excluded when looking for the most-called compute op.
VIEW_OPS = {'aten::as_strided', 'aten::view', 'aten::reshape', 'aten::_reshape_alias', 'aten::transpose',
            'aten::permute', 'aten::select', 'aten::slice', 'aten::expand', 'aten::unsqueeze', 'aten::squeeze',
            'aten::flatten', 'aten::t', 'aten::empty', 'aten::empty_strided', 'aten::empty_like', 'aten::unbind',
            'aten::split', 'aten::chunk', 'aten::narrow', 'aten::contiguous', 'aten::detach', 'aten::alias',
            'aten::resolve_conj', 'aten::resolve_neg', 'aten::lift_fresh', 'aten::unflatten', 'aten::unfold',
            'aten::view_as', 'aten::expand_as', 'aten::result_type', 'aten::to', 'aten::_to_copy',
            'aten::_unsafe_view', 'aten::split_with_sizes', 'aten::set_', 'aten::resize_', 'aten::zeros'}


def _op_calls(forward: Callable[[], object], activities) -> list:
    """``aten::`` events of one ``forward()`` (after a warm-up call that fills per-size caches)."""
    from torch.profiler import profile
    with torch.no_grad():
        forward()
        with profile(activities=activities) as prof:
            forward()
    return [e for e in prof.key_averages() if e.key.startswith('aten::')]


def _top_ops(events: list, top: int) -> List[dict]:
    total = sum(e.self_cpu_time_total for e in events) or 1
    ranked = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return [dict(op=e.key, calls=e.count, self_ms=e.self_cpu_time_total / 1e3, share=e.self_cpu_time_total / total)
            for e in ranked]


def _activities(device: torch.device) -> list:
    from torch.profiler import ProfilerActivity
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])


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


def profile_backbones(specs: Sequence[ModelSpec], shape: Tuple[int, int], device: torch.device, top: int = 6,
                      progress: bool = True) -> List[dict]:
    """Top ops by self time of one forward at ``shape``, with calls per forward, and the op calls at twice the
    size (4x the tokens and windows).

    A Python loop over windows or heads would show as compute ops called hundreds of times, a count that grows
    with the input: ``aten_calls`` vs ``aten_calls_2x`` and the most-called compute op (views excluded) tell."""
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
            row.update(aten_calls=sum(e.count for e in events), aten_calls_2x=sum(e.count for e in larger),
                       max_calls=busiest.count, max_calls_op=busiest.key, top_ops=_top_ops(events, top))
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
        bar.step(spec.name)
    return rows


# Op groups of the time breakdowns that explain a missed speed target, in table order. An op inside a deformable
# conv or a fused attention call counts for that group whatever its own name.
OP_GROUPS = ('matmul (linear layers, explicit attention)', 'fused attention (SDPA)', 'deformable conv (DTM)',
             'depthwise conv', 'dense conv', 'copies and layout', 'norm, activation, elementwise')
_MATMUL_OPS = {'aten::addmm', 'aten::addmm_', 'aten::mm', 'aten::bmm', 'aten::baddbmm', 'aten::matmul'}
_CONV_OPS = {'aten::mkldnn_convolution', 'aten::_slow_conv2d_forward', 'aten::thnn_conv2d', 'aten::convolution',
             'aten::_convolution', 'aten::conv2d', 'aten::cudnn_convolution', 'aten::_conv_depthwise2d'}
_LAYOUT_OPS = {'aten::copy_', 'aten::cat', 'aten::clone', 'aten::contiguous', 'aten::constant_pad_nd',
               'aten::index_select', 'aten::im2col', 'aten::col2im', 'aten::fill_', 'aten::zero_'}


def _op_group(event) -> Optional[str]:
    """The OP_GROUPS entry of one profiler event (None for non-op events such as module scopes)."""
    node = event
    while node is not None:
        if 'DeformConv2d' in node.name:
            return 'deformable conv (DTM)'
        if 'scaled_dot_product' in node.name:
            return 'fused attention (SDPA)'
        node = node.cpu_parent
    name = event.name
    if not name.startswith('aten::'):
        return None
    if name in _MATMUL_OPS:
        return 'matmul (linear layers, explicit attention)'
    if name in _CONV_OPS:
        weight = event.input_shapes[1] if len(event.input_shapes) > 1 else []
        return 'depthwise conv' if len(weight) == 4 and weight[1] == 1 else 'dense conv'
    if name in _LAYOUT_OPS:
        return 'copies and layout'
    return 'norm, activation, elementwise'


def time_by_op_group(forward: Callable[[], object], device: torch.device) -> Dict[str, float]:
    """Self CPU time in ms of one ``forward()`` (after a warm-up) summed per OP_GROUPS entry."""
    from torch.profiler import profile
    with torch.no_grad():
        forward()
        with profile(activities=_activities(device), record_shapes=True) as prof:
            forward()
    groups = dict.fromkeys(OP_GROUPS, 0.)
    for event in prof.events():
        group = _op_group(event)
        if group is not None:
            groups[group] += event.self_cpu_time_total / 1e3
    return groups


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
        x = torch.randn(batch, 3, *shape, device=device)
        sides[spec.name] = time_by_op_group(functools.partial(model, x), device)
    return dict(target=target['target'], input=f'{batch}x{shape[0]}x{shape[1]}', groups=sides)


def explain_attention_target(target: dict, dim: int, heads: int, batch: int, resolution: int,
                             device: torch.device) -> dict:
    """The op-group breakdown of HiLo and MSA at the attention target's setting."""
    builders = attention_layers(dim, heads)
    hw = (resolution // 16, resolution // 16)
    x = torch.randn(batch, hw[0] * hw[1], dim, device=device)
    sides = {}
    for name in ('HiLo', 'MSA'):
        module = builders[name]().to(device)
        module.eval()
        sides[name] = time_by_op_group(functools.partial(module, x, hw), device)
    return dict(target=target['target'], input=f'{batch}x{hw[0]}x{hw[1]} tokens', groups=sides)


# ---------------------------------------------------------------------------------------------------------------
# Output: tables, files, plots
# ---------------------------------------------------------------------------------------------------------------

def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def latency_text(row: dict) -> str:
    """'12.3 [11.9-12.8]': median latency in ms with the inter-quartile range."""
    if 'latency_ms' not in row:
        return '-'
    return f'{row["latency_ms"]:.1f} [{row["latency_p25_ms"]:.1f}-{row["latency_p75_ms"]:.1f}]'


COLUMNS = {
    'backbone': [('model', 'model'), ('setting', 'setting'), ('input', 'input'), ('batch', 'batch'),
                 ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
                 ('throughput', 'img/s'), ('peak_mem_mb', 'mem MB')],
    'config': [('model', 'config'), ('input', 'input'), ('padded', 'padded'), ('batch', 'batch'),
               ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
               ('fps', 'FPS'), ('peak_mem_mb', 'mem MB')],
    'attention': [('layer', 'layer'), ('resolution', 'res'), ('tokens', 'tokens'), ('batch', 'batch'),
                  ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
                  ('throughput', 'img/s'), ('ratio_to_msa', 'x MSA'), ('peak_mem_mb', 'mem MB')],
    'profile': [('model', 'model'), ('input', 'input'), ('aten_calls', 'aten calls'),
                ('aten_calls_2x', 'at 2x size'), ('max_calls_op', 'most-called compute op'), ('max_calls', 'calls'),
                ('top', 'top ops by self time: share, calls')],
}


def cell(row: dict, key: str) -> str:
    if 'error' in row and key not in row and key not in ('latency', 'top'):
        return '-'
    if key in ('params', 'flops'):
        return format_count(row.get(key))
    if key == 'latency':
        return latency_text(row) if 'error' not in row else 'ERROR: ' + row['error'][:60]
    if key == 'ratio_to_msa':
        return '-' if row.get(key) is None else f'{row[key]:.2f}'
    if key == 'top':
        if 'error' in row:
            return 'ERROR: ' + row['error'][:60]
        return ', '.join(f'{t["op"].replace("aten::", "")} {100 * t["share"]:.0f}% x{t["calls"]}'
                         for t in row['top_ops'])
    return _fmt(row.get(key))


def table(rows: Sequence[dict], mode: str, markdown: bool = False) -> str:
    """Rows of one mode as an aligned text table or a Markdown table."""
    cols = COLUMNS[mode]
    body = [[cell(r, k) for k, _ in cols] for r in rows]
    head = [title for _, title in cols]
    if markdown:
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        return '\n'.join(lines + ['| ' + ' | '.join(line) + ' |' for line in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    return '\n'.join([fmt.format(*head), fmt.format(*('-' * w for w in widths))] + [fmt.format(*r) for r in body])


def write_outputs(rows: List[dict], json_path: Optional[str], csv_path: Optional[str], meta: dict):
    if json_path:
        os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
        with open(json_path, 'w') as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
    if csv_path:
        os.makedirs(osp.dirname(osp.abspath(csv_path)), exist_ok=True)
        keys = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        with open(csv_path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})


def machine_info(device: torch.device) -> dict:
    """Where the numbers come from: CPU model, cores, threads, GPU, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = re.findall(r'model name\s*:\s*(.+)', f.read())
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    info = dict(cpu=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), device=str(device),
                date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def plot_throughput_vs_flops(rows: Sequence[dict], path: str, title: str):
    """Scatter of throughput against FLOPs per image, one point per model (LITv2 Fig. 1 style)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    families = sorted({r['family'] for r in rows})
    markers = dict(zip(families, 'osD^vP*X'))
    for fam in families:
        pts = [r for r in rows if r['family'] == fam and r.get('flops') and r.get('throughput')]
        if not pts:
            continue
        ax.scatter([r['flops'] / 1e9 for r in pts], [r['throughput'] for r in pts], label=fam,
                   marker=markers[fam], s=40)
        for r in pts:
            ax.annotate(r['model'].replace(f'{fam}-', ''), (r['flops'] / 1e9, r['throughput']), fontsize=7,
                        xytext=(3, 3), textcoords='offset points')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('GFLOPs per image')
    ax.set_ylabel('throughput (images/s)')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_attention_vs_resolution(rows: Sequence[dict], path: str, title: str):
    """Throughput of each attention layer against the input resolution (LITv2 Fig. 3 / 6 style)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for layer in dict.fromkeys(r['layer'] for r in rows):
        pts = sorted((r['resolution'], r['throughput']) for r in rows if r['layer'] == layer and 'throughput' in r)
        if pts:
            ax.plot(*zip(*pts), marker='o', label=layer, linewidth=2.5 if layer == 'HiLo' else 1.2)
    ax.set_yscale('log')
    ax.set_xlabel('input resolution (tokens at stride 16)')
    ax.set_ylabel('throughput (images/s)')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# Report: the papers' numbers and the targets of the issues
# ---------------------------------------------------------------------------------------------------------------

# Classification models (1000 classes, 224x224), keyed by the config name's first field: params (M), GFLOPs and
# the paper's throughput with its device (reference doc §1.7, §2.2, §2.7, §3.2, §3.7, §4.7).
PAPER_CLASSIFICATION = {
    'lit-ti': (19.89, 3.6, '1,294 img/s, RTX 3090 b64'),
    'lit-s': (27.97, 4.1, '1,298 img/s, RTX 3090 b64'),
    'lit-m': (49.37, 8.6, '638 img/s, RTX 3090 b64'),
    'lit-b': (87.29, 15.0, '444 img/s, RTX 3090 b64'),
    'litv2-s': (27.84, 3.7, '1,471 img/s, RTX 3090 b64'),
    'litv2-m': (48.83, 7.5, '812 img/s, RTX 3090 b64'),
    'litv2-b': (86.52, 13.2, '602 img/s, RTX 3090 b64'),
    'lightvit-t': (9.38, 0.73, '2,578 img/s, V100'),
    'lightvit-s': (19.20, 1.7, '-'),
    'lightvit-b': (35.20, 3.9, '-'),
    'lvt': (None, 0.9, '1,545 img/s, V100 (LightViT Table 3); 3.4 M backbone params'),
    'lvt-cls': (5.52, 0.9, 'official lvt_cls with class-attention layers'),
}

# (description, (numerator, denominator) model-name candidates, setting, paper ratio and where it comes from,
#  the ratio that counts as met)
BACKBONE_TARGETS = [
    ('LITv2-S vs LIT-S, 224x224', (('litv2-small', 'litv2-s'), ('lit-small', 'lit-s')), 'cls',
     1471 / 1298, '1,471 vs 1,298 img/s (RTX 3090, b64)', 1.0),
    ('LITv2-S vs LIT-S, 800x1333', (('litv2-small', 'litv2-s'), ('lit-small', 'lit-s')), 'det',
     18.7 / 3.3, 'RetinaNet 18.7 vs 3.3 FPS (whole detector)', 1.0),
    ('LITv2-S ws4 (*) vs LITv2-S ws2, 800x1333', (('litv2-small-ws4', 'litv2-s-ws4'), ('litv2-small', 'litv2-s')),
     'det', 20.4 / 18.7, 'RetinaNet 20.4 vs 18.7 FPS', 1.0),
    ('LightViT-T vs PVTv2-B0, 224x224', (('lightvit-tiny', 'lightvit-t'), ('pvtv2-b0', )), 'cls',
     2578 / 2324, '2,578 vs 2,324 img/s (V100)', 1.0),
    ('LightViT-T vs LITv2-S, 224x224 ("clearly faster": 1.5x)', (('lightvit-tiny', 'lightvit-t'),
                                                                  ('litv2-small', 'litv2-s')), 'cls',
     None, '0.7 vs 3.7 GFLOPs', 1.5),
    ('LVT vs MiT-B0, 512x512', (('lvt-mobile', 'lvt'), ('mit-b0', )), 'seg',
     45.5 / 50.5, 'SegFormer 45.5 vs 50.5 FPS (V100, whole model)', 0.9),
    ('LITv2-S vs Swin-T, 224x224', (('litv2-small', 'litv2-s'), ('swin-t', )), 'cls',
     1471 / 961, '1,471 vs 961 img/s (RTX 3090, b64)', 1.0),
    ('LITv2-S vs ResNet-50, 224x224', (('litv2-small', 'litv2-s'), ('resnet-50', )), 'cls',
     1471 / 1279, '1,471 vs 1,279 img/s (RTX 3090, b64)', 1.0),
]

# Dense models, keyed by config file stem: (params M, GFLOPs, input (H, W) of the paper's count, source).
_COCO = (1280, 800)  # mmdet v2 get_flops default, used by the LITv2 / LightViT READMEs
PAPER_DENSE = {
    'retinanet_litv2-s_fpn_1x_coco': (38, 242, _COCO, 'LITv2 Table 2 (get_flops 242.39 G, 38.01 M)'),
    'retinanet_litv2-s-ws4_fpn_1x_coco': (38, 230, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-m_fpn_1x_coco': (59, 348, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-m-ws4_fpn_1x_coco': (59, 312, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-b_fpn_1x_coco': (97, 481, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-b-ws4_fpn_1x_coco': (97, 430, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-s_fpn_1x_coco': (47, 261, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-s-ws4_fpn_1x_coco': (47, 249, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-m_fpn_1x_coco': (68, 367, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-m-ws4_fpn_1x_coco': (68, 315, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-b_fpn_1x_coco': (106, 500, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-b-ws4_fpn_1x_coco': (106, 449, _COCO, 'LITv2 Table 2'),
    'fpn_litv2-s_8xb2-80k_ade20k-512x512': (31, 41, (512, 512), 'LITv2 Table 3 (get_flops 41.29 G, 31.45 M)'),
    'fpn_litv2-m_8xb2-80k_ade20k-512x512': (52, 63, (512, 512), 'LITv2 Table 3'),
    'fpn_litv2-b_8xb2-80k_ade20k-512x512': (90, 93, (512, 512), 'LITv2 Table 3'),
    'retinanet_lit-ti_fpn_1x_coco': (30, None, _COCO, 'LIT README'),
    'retinanet_lit-s_fpn_1x_coco': (39, 305, _COCO, 'LITv2 Table 2 (LITv1-S)'),
    'mask-rcnn_lit-ti_fpn_1x_coco': (40, None, _COCO, 'LIT README'),
    'mask-rcnn_lit-s_fpn_1x_coco': (48, 324, _COCO, 'LITv2 Table 2 (LITv1-S)'),
    'fpn_lit-ti_8xb2-80k_ade20k-512x512': (24, None, (512, 512), 'LIT README'),
    'fpn_lit-s_8xb2-80k_ade20k-512x512': (32, 46, (512, 512), 'LITv2 Table 3 (LITv1-S)'),
    'mask-rcnn_lightvit-t_fpn_1x_coco': (28, 187, _COCO, 'LightViT README'),
    'mask-rcnn_lightvit-s_fpn_1x_coco': (38, 204, _COCO, 'LightViT README'),
    'mask-rcnn_lightvit-b_fpn_1x_coco': (54, 240, _COCO, 'LightViT README'),
    'segformer_lvt_8xb2-160k_ade20k-512x512': (3.9, 10.6, (512, 512), 'LVT Table 4'),
    'panoptic-fpn_lvt_fpn_1x_coco': (5.4, 56.4, (800, 1333), 'LVT Table 5'),
}

# HiLo paper Table IV (one layer, ViT-B setting, CPU and GPU throughput in img/s): name -> (params M, MFLOPs, CPU)
PAPER_ATTENTION = {
    'MSA': (2.36, 521.4, 505), 'HiLo': (2.20, 298.3, 1029), 'Window ws7': (2.36, 477.2, 631),
    'SRA sr2': (4.72, 419.6, 710),
}


def _find(rows: Sequence[dict], names: Sequence[str], **fields) -> Optional[dict]:
    for r in rows:
        if r['model'].lower() in names and 'throughput' in r and all(r.get(k) == v for k, v in fields.items()):
            return r
    return None


def backbone_targets(rows: Sequence[dict]) -> List[dict]:
    """Each target of BACKBONE_TARGETS with the measured ratio (fp32, the largest batch measured at 224)."""
    cls_batch = max((r['batch'] for r in rows if r['setting'] == 'cls'), default=1)
    out = []
    for desc, (num, den), setting, paper, paper_text, need in BACKBONE_TARGETS:
        batch = cls_batch if setting == 'cls' else min((r['batch'] for r in rows if r['setting'] == setting),
                                                       default=1)
        a = _find(rows, num, setting=setting, batch=batch, precision='fp32')
        b = _find(rows, den, setting=setting, batch=batch, precision='fp32')
        ratio = a['throughput'] / b['throughput'] if a and b else None
        out.append(dict(target=desc, models=(num, den), setting=setting, batch=batch, paper=paper,
                        paper_text=paper_text, need=need, measured=ratio,
                        detail=(f'{a["throughput"]:.1f} vs {b["throughput"]:.1f} img/s (b{batch})' if ratio else
                                'not measured (model missing or failed)'),
                        met=None if ratio is None else ratio >= need))
    return out


def attention_target(rows: Sequence[dict]) -> dict:
    """HiLo vs MSA at the ViT-B setting (the first resolution), fp32: paper 1,029 vs 505 img/s on CPU (2.04x)."""
    first = min((r['resolution'] for r in rows), default=224)
    hilo = next((r for r in rows if r['layer'] == 'HiLo' and r['resolution'] == first and r['precision'] == 'fp32'
                 and 'throughput' in r), None)
    ratio = hilo.get('ratio_to_msa') if hilo else None
    return dict(target='HiLo vs MSA, one layer, ViT-B setting, CPU fp32', paper=1029 / 505,
                paper_text='1,029 vs 505 img/s (CPU)', need=2.0, measured=ratio,
                detail=(f'{hilo["throughput"]:.0f} img/s, {ratio:.2f}x MSA (b{hilo["batch"]})' if ratio else
                        'not measured'),
                met=None if ratio is None else ratio >= 2.0)


def classification_rows(configs: Sequence[str], progress: bool = True) -> List[dict]:
    """Params and FLOPs at 224x224 of each ImageNet config's whole model, next to the paper's numbers."""
    bar = ProgressBar(len(configs), progress)
    rows = []
    for config in configs:
        name = osp.basename(config).split('_')[0].lower()
        paper = PAPER_CLASSIFICATION.get(name, (None, None, '-'))
        row = dict(mode='classification', config=osp.relpath(config, REPO_ROOT), paper_params_m=paper[0],
                   paper_gflops=paper[1], paper_speed=paper[2])
        try:
            counted = config_complexity(config, (224, 224))
            row.update(params=counted['params'], flops=counted['flops'])
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
        bar.step(name)
    return rows


def dense_rows(configs: Sequence[str], progress: bool = True, shape: Optional[Tuple[int, int]] = None) -> List[dict]:
    """Params and FLOPs of the dense configs the papers list (PAPER_DENSE), at the papers' input sizes (or
    ``shape``)."""
    bar = ProgressBar(len(configs), progress)
    rows = []
    for config in configs:
        stem = osp.splitext(osp.basename(config))[0]
        params_m, gflops, paper_shape, source = PAPER_DENSE[stem]
        size = shape or paper_shape
        row = dict(mode='dense', config=osp.relpath(config, REPO_ROOT), input=f'{size[0]}x{size[1]}',
                   paper_params_m=params_m, paper_gflops=gflops, paper_source=source)
        try:
            counted = config_complexity(config, size)
            row.update(params=counted['params'], flops=counted['flops'])
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
        bar.step(stem)
    return rows


def _pct(measured: Optional[float], paper: Optional[float]) -> str:
    if measured is None or paper is None:
        return '-'
    return f'{100 * (measured / paper - 1):+.1f}%'


def _verdict(t: dict) -> str:
    return '-' if t['met'] is None else ('met' if t['met'] else '**missed**')


# What the code does that a missed target's breakdown points at; true whatever the numbers of a run.
TARGET_NOTES = {
    'HiLo vs MSA': (
        'Both layers run their attention products as one fused `scaled_dot_product_attention` call, so the N x N '
        'attention matrix that the paper\'s MSA materialises (and that HiLo avoids) is never written here; what '
        'remains is mostly the q/k/v and output projections, which HiLo keeps. HiLo\'s FLOP count bounds its '
        'speed-up when both layers run their ops at the same rate.'),
    'LITv2-S vs LIT-S, 224x224': (
        'LITv2-S trades LIT-S\'s plain MLP blocks (stages 1-2) for ConvFFN, whose 3x3 depthwise conv runs on the '
        '4x-wide hidden map and is memory-bound on a CPU (it already runs channels-last, oneDNN\'s fastest layout '
        'for it), and LIT-S\'s global MSA (stages 3-4) for HiLo. At 224x224 that MSA sees 14x14 and 7x7 tokens '
        'through one fused attention call per layer, a small share of LIT-S\'s time, so HiLo has little to save. '
        'The official LIT builds the attention matrix explicitly, which is where LITv2-S gained on the paper\'s '
        'GPU; at 800x1333 the attention dominates and LITv2-S wins by far (detection-input table).'),
    'LVT vs MiT-B0, 512x512': (
        'Every LVT block of stages 2-4 runs its attention twice (RASA\'s recursion with shared weights), each time '
        'with three dilated depthwise convs on the queries, and stage 1\'s CSA computes nine C x C value projections '
        'per 3x3 window (the official FLOPs) and adds the window outputs back onto the map; MiT-B0 runs one '
        'spatially reduced attention per block. The paper compares whole SegFormer models on a V100, where the '
        'decode head (the same for both) takes a share of the time that this backbone-only ratio leaves out.'),
}


def explanation_lines(explanations: Sequence[dict], attention: Sequence[dict]) -> List[str]:
    """The report section that names each missed target with the op-group profiles of both sides."""
    lines = ['## Missed targets: where the time goes', '',
             'For each missed target: the self time of one fp32 forward of both sides at the target\'s input and '
             'batch (`torch.profiler`, after a warm-up), summed per op group. An op running inside a deformable conv '
             'or a fused attention call counts for that group. The last column is the time the first model spends '
             'beyond the second (negative: time it saves).', '']
    for e in explanations:
        lines += [f'### {e["target"]} ({e.get("input", "-")})', '']
        if 'error' in e:
            lines += [f'Not profiled: {e["error"]}', '']
            continue
        (a, ga), (b, gb) = e['groups'].items()
        lines += [f'| op group | {a} ms | {b} ms | difference ms |', '|---|---|---|---|']
        lines += [f'| {g} | {ga[g]:.1f} | {gb[g]:.1f} | {ga[g] - gb[g]:+.1f} |' for g in OP_GROUPS if ga[g] or gb[g]]
        total_a, total_b = sum(ga.values()), sum(gb.values())
        lines += [f'| total | {total_a:.1f} | {total_b:.1f} | {total_a - total_b:+.1f} |', '']
        deltas = sorted((ga[g] - gb[g], g) for g in OP_GROUPS)
        costs = [f'{g} ({d:+.1f} ms)' for d, g in reversed(deltas) if d > 0][:2]
        savings = [f'{g} ({d:+.1f} ms)' for d, g in deltas if d < 0][:2]
        lines.append(f'{a} spends more than {b} on {" and ".join(costs) or "nothing"}; it saves on '
                     f'{" and ".join(savings) or "nothing"}.')
        flops = {r['layer']: r.get('flops') for r in attention if r['precision'] == 'fp32'
                 and r['resolution'] == min(x['resolution'] for x in attention)}
        if e['target'].startswith('HiLo') and flops.get('MSA') and flops.get('HiLo'):
            lines[-1] += f' MSA has {flops["MSA"] / flops["HiLo"]:.2f}x the FLOPs of HiLo.'
        note = next((text for key, text in TARGET_NOTES.items() if e['target'].startswith(key)), None)
        lines += ([note] if note else []) + ['']
    return lines


def render_report(meta: dict, targets: List[dict], explanations: List[dict], backbone: List[dict],
                  attention: List[dict], attention_profiles: List[dict], profiles: List[dict], configs: List[dict],
                  classification: List[dict], dense: List[dict], plots: Dict[str, str]) -> str:
    """docs/benchmark.md: machine, targets and why the missed ones are missed, backbone tables, attention,
    classification and dense models vs the papers, profiles."""
    lines = ['# mmvit_ext benchmark', '',
             f'Generated by `{meta["command"]}` on {meta["machine"]["date"]}.', '',
             f'**Machine**: {meta["machine"]["cpu"]}, {meta["machine"]["cpu_count"]} CPU cores, torch '
             f'{meta["machine"]["torch"]} with {meta["machine"]["torch_threads"]} threads, device '
             f'`{meta["machine"]["device"]}`{" (" + meta["machine"]["gpu"] + ")" if "gpu" in meta["machine"] else ""}.',
             '']
    if meta['machine']['device'] == 'cpu':
        lines += [f'All numbers below were measured on this {meta["machine"]["cpu_count"]}-core CPU; no GPU was '
                  'available in this session, so the papers\' GPU throughputs (batch 64 on an RTX 3090 / V100) are '
                  'compared as *ratios* between models measured here in the same run, never as absolute numbers. '
                  'Expect a few percent of noise between runs (more on a machine shared with other jobs); the '
                  'spread (inter-quartile range of the repeated runs) is given next to every median.', '']
    lines += ['Method: random weights and inputs, `torch.no_grad()`, eval mode; median latency over repeated runs '
              f'after {meta["warmup"]} warm-up runs (at most {meta["repeat"]} runs or {meta["max_seconds"]} s per '
              'measurement), throughput = batch / median latency. `amp` = `torch.autocast` in bf16 on CPU (fp16 on '
              'CUDA). Memory: growth of the process RSS during one forward on CPU (includes allocator caches), '
              'CUDA max-allocated on GPU. FLOPs: `mmengine.analysis` (one multiply-add = one FLOP, like the papers) '
              'with fused attention and the deformable conv counted (`mmvit_ext/analysis.py`).', '']

    if targets:
        lines += ['## Speed targets', '', '| target | paper | paper ratio | measured ratio | needed | verdict |',
                  '|---|---|---|---|---|---|']
        for t in targets:
            lines.append(f'| {t["target"]} | {t["paper_text"]} | {_fmt(t["paper"], 2)} | '
                         f'{_fmt(t["measured"], 2)} ({t["detail"]}) | >= {t["need"]} | {_verdict(t)} |')
        lines.append('')
    if explanations:
        lines += explanation_lines(explanations, attention)

    if backbone:
        lines += ['## Backbones', '',
                  'Backbone only (feature maps of every stage, no neck or head). Baselines: mmdet `SwinTransformer` '
                  '(Swin-T) and `PyramidVisionTransformerV2` (B0, B2), mmseg `MixVisionTransformer` (MiT-B0), '
                  'mmpretrain `ResNet` (ResNet-50). Latency in ms as median [p25-p75].', '']
        for setting, title in (('cls', 'Classification input'), ('det', 'Detection input'),
                               ('seg', 'Segmentation input')):
            sub = [r for r in backbone if r['setting'] == setting]
            if sub:
                lines += [f'### {title}, {sub[0]["input"]}', '', table(sub, 'backbone', markdown=True), '']
        if 'flops' in plots:
            lines += [f'![throughput vs FLOPs]({plots["flops"]})', '']
    if classification:
        lines += ['## Classification models vs the papers (params, FLOPs at 224x224)', '',
                  '| config | params | paper params | diff | FLOPs | paper FLOPs | diff | paper speed |',
                  '|---|---|---|---|---|---|---|---|']
        for r in classification:
            params, flops = r.get('params'), r.get('flops')
            pp = r['paper_params_m'] * 1e6 if r['paper_params_m'] else None
            pf = r['paper_gflops'] * 1e9 if r['paper_gflops'] else None
            lines.append(f'| `{r["config"]}` | {format_count(params)} | {format_count(pp)} | {_pct(params, pp)} | '
                         f'{format_count(flops)} | {format_count(pf)} | {_pct(flops, pf)} | {r["paper_speed"]} |'
                         if 'error' not in r else f'| `{r["config"]}` | ERROR: {r["error"][:80]} |||||||')
        lines.append('')
    if dense:
        lines += ['## Dense models vs the papers (params, FLOPs)', '',
                  'Whole detector / segmentor, raw network forward (`mode="tensor"`: backbone, neck, heads; for '
                  'two-stage detectors 1000 proposals through the box head and 100 through the mask head, as mmdet '
                  'counts), random input through the model\'s data preprocessor. The papers quote params rounded '
                  'to 1 M (0.1 M for LVT).', '',
                  '| config | input | params | paper params | diff | FLOPs | paper FLOPs | diff | source |',
                  '|---|---|---|---|---|---|---|---|---|']
        for r in dense:
            if 'error' in r:
                lines.append(f'| `{r["config"]}` | {r["input"]} | ERROR: {r["error"][:80]} ||||||')
                continue
            pp = r['paper_params_m'] * 1e6 if r['paper_params_m'] else None
            pf = r['paper_gflops'] * 1e9 if r['paper_gflops'] else None
            lines.append(f'| `{r["config"]}` | {r["input"]} | {format_count(r["params"])} | {format_count(pp)} | '
                         f'{_pct(r["params"], pp)} | {format_count(r["flops"])} | {format_count(pf)} | '
                         f'{_pct(r["flops"], pf)} | {r["paper_source"]} |')
        lines.append('')
    if attention:
        first = min(r['resolution'] for r in attention)
        lines += ['## Attention layers', '',
                  f'One layer, dim {attention[0]["dim"]}, {attention[0]["heads"]} heads'
                  f'{" (the ViT-B setting)" if (attention[0]["dim"], attention[0]["heads"]) == (768, 12) else ""}; '
                  'tokens at stride 16 '
                  f'({first}x{first} input = {first // 16}x{first // 16} tokens). The batch is '
                  f'{attention[0]["batch"]} images at {first} and the same number of tokens per run at larger sizes. '
                  'Paper: HiLo paper Table IV (CPU img/s).', '',
                  '| layer | params | paper params | FLOPs/img | paper FLOPs | img/s (fp32) | x MSA | paper CPU '
                  'img/s | paper x MSA | img/s (amp) |', '|---|---|---|---|---|---|---|---|---|---|']
        for r in [r for r in attention if r['resolution'] == first and r['precision'] == 'fp32']:
            paper = PAPER_ATTENTION.get(r['layer'])
            amp = next((a for a in attention if a['layer'] == r['layer'] and a['resolution'] == first
                        and a['precision'] == 'amp' and 'throughput' in a), None)
            if 'error' in r:
                lines.append(f'| {r["layer"]} | ERROR: {r["error"][:80]} |||||||||')
                continue
            paper_params, paper_flops, paper_cpu = paper or (None, None, None)
            lines.append(
                f'| {r["layer"]} | {format_count(r.get("params"))} | '
                f'{format_count(paper_params and paper_params * 1e6)} | {format_count(r.get("flops"))} | '
                f'{format_count(paper_flops and paper_flops * 1e6)} | '
                f'{_fmt(r.get("throughput"))} | {cell(r, "ratio_to_msa")} | {_fmt(paper_cpu)} | '
                f'{_fmt(paper_cpu and paper_cpu / PAPER_ATTENTION["MSA"][2], 2)} | '
                f'{_fmt(amp and amp["throughput"])} |')
        lines.append('')
        sweep = [r for r in attention if r['precision'] == 'fp32']
        if len({r['resolution'] for r in sweep}) > 1:
            lines += ['Across resolutions (fp32):', '', table(sweep, 'attention', markdown=True), '']
        if 'attention' in plots:
            lines += [f'![attention throughput vs resolution]({plots["attention"]})', '']
        if attention_profiles:
            lines += [f'Where the time goes at {first}x{first} (one fp32 run, `torch.profiler`, self CPU time of '
                      '`aten::` ops):', '', table(attention_profiles, 'profile', markdown=True), '']
    if configs:
        lines += ['## Whole models (config mode)', '',
                  'Inference of the whole model (`mode="predict"`: preprocessed random input -> results, including '
                  'post-processing such as NMS).', '', table(configs, 'config', markdown=True), '']
    if profiles:
        lines += ['## Profiler: top ops per backbone', '',
                  f'One forward at {profiles[0]["input"]}, batch 1, fp32, after a warm-up (`torch.profiler`, self '
                  'CPU time of `aten::` ops). "aten calls" counts every op call of the forward; "max calls" is the '
                  'most-called op. A Python loop over windows or heads would show as hundreds to thousands of '
                  'calls of matmul/softmax ops; attention runs as one fused '
                  '`scaled_dot_product_attention` call per layer branch instead.', '',
                  table(profiles, 'profile', markdown=True), '']
    lines += ['## Reproduce', '', f'`{meta["command"]}` (about {meta["minutes"]:.0f} minutes on this machine); '
              'the raw rows are in `benchmark.json`. Single modes: `python tools/analysis_tools/benchmark.py '
              '{backbone,config,attention,profile} --help`.', '']
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

# Whole-model configs measured by the report when they exist (config mode), at the papers' input sizes.
REPORT_CONFIGS = [
    ('configs/litv2/retinanet_litv2-s_fpn_1x_coco.py', (800, 1333)),
    ('configs/lit/retinanet_lit-s_fpn_1x_coco.py', (800, 1333)),
    ('configs/lvt/segformer_lvt*ade20k*.py', (512, 512)),
]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {value}')
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cpu or cuda[:N] (default: cuda when available)')
    common.add_argument('--precisions', nargs='+', choices=['fp32', 'amp'], default=['fp32', 'amp'],
                        help='fp32 and/or autocast (bf16 on CPU, fp16 on CUDA)')
    common.add_argument('--warmup', type=int, default=2, help='untimed runs before timing')
    common.add_argument('--repeat', type=_positive, default=20, help='timed runs at most')
    common.add_argument('--max-seconds', type=float, default=3., help='stop timing after this many seconds '
                        '(at least 3 runs)')
    common.add_argument('--threads', type=_positive, default=None, help='torch CPU threads (default: torch\'s)')
    common.add_argument('--json', default=None, help='write the rows (and the machine) to this JSON file')
    common.add_argument('--csv', default=None, help='write the rows to this CSV file')
    common.add_argument('--quick', action='store_true', help='tiny sizes and few runs (tests, smoke runs)')
    common.add_argument('--no-progress', action='store_true', help='no progress bar')

    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest='mode', required=True)

    models = argparse.ArgumentParser(add_help=False)
    models.add_argument('--models', nargs='+', default=None,
                        help='model names or fnmatch patterns, case-insensitive (e.g. "LITv2-*" "Swin-T"); '
                             'default: all backbones and baselines')
    models.add_argument('--no-baselines', action='store_true', help='only mmvit_ext backbones')
    models.add_argument('--list', action='store_true', help='list the available models and exit')

    p = sub.add_parser('backbone', parents=[common, models], help='backbones at classification and dense sizes')
    p.add_argument('--settings', nargs='+', choices=list(SETTINGS), default=list(SETTINGS),
                   help='cls 224x224, det 800x1333, seg 512x512')
    p.add_argument('--batch-sizes', nargs='+', type=_positive, default=[1, 8], help='batch sizes at 224x224')
    p.add_argument('--dense-batch', type=_positive, default=1, help='batch size at the dense sizes')
    p.add_argument('--dense-precisions', nargs='+', choices=['fp32', 'amp'], default=None,
                   help='precisions at the dense sizes (default: --precisions)')
    p.add_argument('--plot', default=None, help='PNG of throughput vs FLOPs (224x224, largest batch, fp32)')

    p = sub.add_parser('config', parents=[common], help='whole detector / segmentor / classifier inference FPS')
    p.add_argument('configs', nargs='+', help='config files')
    p.add_argument('--shape', type=_positive, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default: 1280x800 mmdet, 512x512 mmseg, 224x224 mmpretrain)')
    p.add_argument('--batch-size', type=_positive, default=1)

    p = sub.add_parser('attention', parents=[common], help='single attention layers')
    p.add_argument('--layers', nargs='+', default=None, help='layer names or fnmatch patterns (default: all)')
    p.add_argument('--resolutions', nargs='+', type=_positive, default=[224, 384, 512, 768, 1024],
                   help='input resolutions; tokens at stride 16; the first is the reference batch')
    p.add_argument('--dim', type=_positive, default=768)
    p.add_argument('--heads', type=_positive, default=12)
    p.add_argument('--batch', type=_positive, default=64, help='images per run at the first resolution')
    p.add_argument('--plot', default=None, help='PNG of throughput vs resolution')

    p = sub.add_parser('profile', parents=[common, models], help='top profiler ops per backbone')
    p.add_argument('--shape', type=_positive, nargs=2, default=[224, 224], metavar=('H', 'W'))
    p.add_argument('--top', type=_positive, default=6, help='ops listed per backbone')

    p = sub.add_parser('report', parents=[common, models], help='everything, then docs/benchmark.md and plots')
    p.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'docs'), help='where benchmark.md, .json, .png go')
    p.add_argument('--cls-configs', default='configs/*/*in1k*.py',
                   help='glob of the ImageNet configs whose params / FLOPs are compared with the papers')
    p.add_argument('--counts-from', default=None,
                   help='reuse the classification / dense params and FLOPs rows of an earlier benchmark.json '
                        '(they do not depend on the machine; counting them all takes minutes)')
    p.add_argument('--skip', nargs='*', default=[],
                   choices=['backbone', 'attention', 'profile', 'config', 'classification', 'dense'],
                   help='parts to leave out')
    # The report measures ~20 models at 3 sizes: fewer, shorter repeats keep it near 15 minutes on 2 CPU cores.
    p.set_defaults(warmup=1, repeat=10, max_seconds=1.5)
    return parser


def _progress(args) -> bool:
    return not args.no_progress


def main(argv=None):
    args = build_parser().parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)


def _run(args, argv) -> List[dict]:
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda given but CUDA is not available')
    torch.manual_seed(0)
    if args.quick:
        args.warmup, args.repeat, args.max_seconds = min(args.warmup, 1), min(args.repeat, 2), .5
    opts = RunOptions(device, args.warmup, args.repeat, args.max_seconds)
    meta = dict(machine=machine_info(device), command='python tools/analysis_tools/benchmark.py ' +
                ' '.join(sys.argv[1:] if argv is None else argv), warmup=opts.warmup, repeat=opts.repeat,
                max_seconds=opts.max_seconds, quick=args.quick)

    if getattr(args, 'list', False):
        for spec in select_models(None, not args.no_baselines):
            print(f'{spec.name:<24s} {spec.source}')
        return []
    if args.mode == 'backbone':
        specs = select_models(args.models, not args.no_baselines)
        rows = bench_backbones(specs, args.settings, args.batch_sizes, args.dense_batch, args.precisions, opts,
                               quick=args.quick, progress=_progress(args), dense_precisions=args.dense_precisions)
        if args.plot:
            plot_throughput_vs_flops(_plot_rows(rows), args.plot, _plot_title(meta, rows))
    elif args.mode == 'config':
        for config in args.configs:
            if not osp.isfile(config):
                raise SystemExit(f'config file not found: {config}')
        shape = (64, 96) if args.quick and args.shape is None else args.shape
        rows = bench_configs(args.configs, shape, args.batch_size, args.precisions, opts, _progress(args))
    elif args.mode == 'attention':
        dim, heads, batch, res = ((64, 4, 2, [64, 128]) if args.quick else
                                  (args.dim, args.heads, args.batch, args.resolutions))
        if dim % heads:
            raise SystemExit(f'--dim {dim} is not divisible by --heads {heads}')
        rows = bench_attention(res, dim, heads, batch, args.layers, args.precisions, opts,
                               progress=_progress(args))
        if args.plot:
            plot_attention_vs_resolution([r for r in rows if r['precision'] == 'fp32'], args.plot,
                                         _plot_title(meta, rows))
    elif args.mode == 'profile':
        shape = (64, 64) if args.quick else tuple(args.shape)
        rows = profile_backbones(select_models(args.models, not args.no_baselines), shape, device, args.top,
                                 _progress(args))
    else:
        rows = run_report(args, opts, meta)
    if args.mode != 'report':
        print(table(rows, args.mode))
    write_outputs(rows, args.json, args.csv, meta)
    return rows


def _plot_rows(rows: Sequence[dict]) -> List[dict]:
    cls_batch = max((r['batch'] for r in rows if r['setting'] == 'cls'), default=1)
    return [r for r in rows if r['setting'] == 'cls' and r['batch'] == cls_batch and r['precision'] == 'fp32']


def _plot_title(meta: dict, rows: Sequence[dict]) -> str:
    m = meta['machine']
    where = m.get('gpu') or f'{m["cpu"]}, {m["torch_threads"]} threads'
    if rows and rows[0]['mode'] == 'backbone':
        r = _plot_rows(rows)
        return f'backbones at {r[0]["input"] if r else "224x224"}, batch {r[0]["batch"] if r else "-"}, fp32 - {where}'
    return f'one attention layer (dim {rows[0]["dim"]}, {rows[0]["heads"]} heads), fp32 - {where}' if rows else where


def run_report(args, opts: RunOptions, meta: dict) -> List[dict]:
    """Every mode with the report's plan, then ``benchmark.md``, ``benchmark.json`` and the plots in --out-dir.

    Plan: backbones at 224 (batch 1 and 8 on CPU / 64 on GPU, fp32 and amp) and at 800x1333 / 512x512 (batch 1,
    fp32); attention at the ViT-B setting (fp32 and amp) and at 224-1024 (fp32); profiles at 224; params and
    FLOPs of the ImageNet configs and of the dense configs the papers list; the REPORT_CONFIGS that exist."""
    start = datetime.datetime.now()
    os.makedirs(args.out_dir, exist_ok=True)
    progress = _progress(args)
    skip = set(args.skip)
    specs = select_models(args.models, not args.no_baselines)
    backbone = attention = attention_profiles = profiles = configs = classification = dense = []
    if 'backbone' not in skip:
        # Batch N: 8 on CPU; on a GPU the papers' batch 64.
        batches = [1, 64] if opts.device.type == 'cuda' else [1, 8]
        backbone = bench_backbones(specs, list(SETTINGS), batches, 1, args.precisions, opts, quick=args.quick,
                                   progress=progress, dense_precisions=['fp32'])
        print(table(backbone, 'backbone'))
    dim, heads, batch, res = (64, 4, 2, [64, 128]) if args.quick else (768, 12, 64, [224, 384, 512, 768, 1024])
    if 'attention' not in skip:
        attention = bench_attention(res[:1], dim, heads, batch, None, args.precisions, opts, progress=progress)
        sweep = bench_attention(res, dim, heads, batch, None, ['fp32'], opts, progress=progress)
        attention = attention + [r for r in sweep if r['resolution'] != res[0]]
        print(table(attention, 'attention'))
        attention_profiles = profile_attention(['MSA', 'HiLo'], dim, heads, batch, res[0], opts.device)
    if 'profile' not in skip:
        profiles = profile_backbones(specs, QUICK_SETTINGS['cls'] if args.quick else SETTINGS['cls'], opts.device,
                                     progress=progress)
        print(table(profiles, 'profile'))
    targets = ([attention_target(attention)] if attention else []) + (backbone_targets(backbone) if backbone else [])
    explanations = []
    if 'profile' not in skip:
        for target in (t for t in targets if t['met'] is False):
            explanations.append(explain_target(target, specs, opts.device, args.quick) if 'models' in target else
                                explain_attention_target(target, dim, heads, batch, res[0], opts.device))
    if args.counts_from:
        with open(args.counts_from) as f:
            reused = json.load(f)['rows']
        classification = [r for r in reused if r['mode'] == 'classification']
        dense = [r for r in reused if r['mode'] == 'dense']
        skip |= {'classification', 'dense'}
    if 'classification' not in skip:
        cls_configs = sorted(glob.glob(osp.join(REPO_ROOT, args.cls_configs)))
        classification = classification_rows(cls_configs[:1] if args.quick else cls_configs, progress)
    if 'dense' not in skip:
        dense_configs = [c for stem in PAPER_DENSE for c in glob.glob(osp.join(REPO_ROOT, 'configs', '*',
                                                                                f'{stem}.py'))]
        if args.quick:
            dense = dense_rows([c for c in dense_configs if 'segformer_lvt' in c][:1], progress, (64, 64))
        else:
            dense = dense_rows(dense_configs, progress)
    if 'config' not in skip:
        configs = []
        for pattern, shape in REPORT_CONFIGS:
            for config in sorted(glob.glob(osp.join(REPO_ROOT, pattern)))[:1]:
                configs += bench_configs([config], (64, 96) if args.quick else shape, 1, ['fp32'], opts, progress)
        if configs:
            print(table(configs, 'config'))
    plots = {}
    if backbone:
        plots['flops'] = 'benchmark_throughput_vs_flops.png'
        plot_throughput_vs_flops(_plot_rows(backbone), osp.join(args.out_dir, plots['flops']),
                                 _plot_title(meta, backbone))
    if attention:
        plots['attention'] = 'benchmark_attention_resolution.png'
        plot_attention_vs_resolution([r for r in attention if r['precision'] == 'fp32'],
                                     osp.join(args.out_dir, plots['attention']), _plot_title(meta, attention))
    meta['minutes'] = (datetime.datetime.now() - start).total_seconds() / 60
    rows = backbone + attention + attention_profiles + profiles + configs + classification + dense
    with open(osp.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(render_report(meta, targets, explanations, backbone, attention, attention_profiles, profiles,
                              configs, classification, dense, plots))
    write_outputs(rows, osp.join(args.out_dir, 'benchmark.json'), None, meta)
    print(f'wrote {osp.join(args.out_dir, "benchmark.md")}')
    return rows


if __name__ == '__main__':
    main()
