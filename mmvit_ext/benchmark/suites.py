"""The measurement suites of the benchmark modes: backbones at classification and dense sizes, whole configs,
single attention layers. Each returns one row (a dict) per measurement; a failure becomes a row with ``error``."""
import fnmatch
import functools
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..analysis import DEFAULT_INPUT_SHAPES, build_config_model, config_forward, config_inputs, count_complexity
from .baselines import (ExplicitMultiheadAttention, SpatialReductionAttention, TokensToMap, WindowAttention,
                        WithGlobalTokens)
from .models import ModelSpec
from .timing import ProgressBar, RunOptions, autocast_context, measure_interleaved

__all__ = ['SETTINGS', 'QUICK_SETTINGS', 'bench_backbones', 'bench_configs', 'attention_layers', 'bench_attention',
           'WithSize', 'add_ratio']

# Input settings of backbone mode: (H, W). Dense settings are measured with --dense-batch images.
SETTINGS = {'cls': (224, 224), 'det': (800, 1333), 'seg': (512, 512)}
QUICK_SETTINGS = {'cls': (64, 64), 'det': (96, 160), 'seg': (96, 96)}


def _measure_together(forwards: Dict[str, Callable[[], object]], opts: RunOptions, precision: str,
                      batch: int) -> Dict[str, object]:
    """``measure_interleaved`` of the named forwards: name -> row, or the error of a forward that fails. When the
    interleaved run fails, each forward runs once to find the failing ones, and the others are timed together."""
    def timed(chosen):
        rows = measure_interleaved(list(chosen.values()), opts, precision, [batch] * len(chosen))
        return dict(zip(chosen, rows))

    try:
        return timed(forwards)
    except Exception:
        pass
    errors = {}
    for name, forward in forwards.items():
        try:
            with torch.no_grad(), autocast_context(opts.device, precision):
                forward()
        except Exception as exc:
            errors[name] = f'{type(exc).__name__}: {exc}'
    working = {name: f for name, f in forwards.items() if name not in errors}
    try:
        return {**errors, **(timed(working) if working else {})}
    except Exception as exc:
        return {**errors, **{name: f'{type(exc).__name__}: {exc}' for name in working}}


def bench_backbones(specs: Sequence[ModelSpec], settings: Sequence[str], batch_sizes: Sequence[int],
                    dense_batch: int, precisions: Sequence[str], opts: RunOptions, quick: bool = False,
                    progress: bool = True, dense_precisions: Optional[Sequence[str]] = None) -> List[dict]:
    """Backbone mode: one row per (model, setting, batch, precision); ``batch_sizes`` at 224x224, ``dense_batch``
    (and ``dense_precisions``, default ``precisions``) at the dense sizes. The models are timed interleaved per
    (setting, batch, precision) (``measure_interleaved``), so their ratios come from one run. A model that fails to
    build or run gets rows with an ``error`` and the run goes on. ``gflops_per_s``: FLOPs per image x throughput."""
    sizes = QUICK_SETTINGS if quick else SETTINGS
    plan = [(s, b, p) for s in settings for b in (batch_sizes if s == 'cls' else [dense_batch])
            for p in (precisions if s == 'cls' else (dense_precisions or precisions))]
    models, params, flops = {}, {}, {}  # model or build error; FLOPs per image (or error) per (model, setting)
    for spec in specs:
        try:
            models[spec.name] = spec.build().to(opts.device)
            models[spec.name].eval()  # not chained: some upstream train() overrides return None
            params[spec.name] = sum(p.numel() for p in models[spec.name].parameters())
        except Exception as exc:  # a family under construction must not stop the run
            models[spec.name] = f'{type(exc).__name__}: {exc}'
    for spec in specs:
        for setting in settings:
            model = models[spec.name]
            try:
                flops[spec.name, setting] = model if isinstance(model, str) else count_complexity(
                    model, (torch.randn(1, 3, *sizes[setting], device=opts.device), ))['flops']
            except Exception as exc:
                flops[spec.name, setting] = f'{type(exc).__name__}: {exc}'
    bar = ProgressBar(len(plan), progress)
    rows = {}
    for setting, batch, precision in plan:
        shape = sizes[setting]
        x = torch.randn(batch, 3, *shape, device=opts.device)
        measured = _measure_together({spec.name: functools.partial(models[spec.name], x) for spec in specs
                                      if not isinstance(flops[spec.name, setting], str)}, opts, precision, batch)
        for spec in specs:
            row = dict(mode='backbone', model=spec.name, family=spec.family, source=spec.source, setting=setting,
                       input=f'{shape[0]}x{shape[1]}', batch=batch, precision=precision)
            result = measured.get(spec.name, flops[spec.name, setting])
            if isinstance(result, str):
                row['error'] = result
            else:
                row.update(params=params[spec.name], flops=flops[spec.name, setting], **result)
                row['gflops_per_s'] = row['flops'] * row['throughput'] / 1e9
            rows[spec.name, setting, batch, precision] = row
        bar.step(f'{setting} b{batch} {precision}')
    return [rows[spec.name, s, b, p] for spec in specs for s, b, p in plan]


def bench_configs(configs: Sequence[str], shape: Optional[Tuple[int, int]], batch: int, precisions: Sequence[str],
                  opts: RunOptions, progress: bool = True) -> List[dict]:
    """Config mode: inference FPS of the whole model (``mode='predict'``: preprocessed input -> results with
    post-processing, e.g. NMS), like mmdet's ``benchmark.py`` but on a random input. The configs are timed
    interleaved per precision (``measure_interleaved``), so their FPS ratios come from one run."""
    from mmengine.config import Config
    bar = ProgressBar(len(precisions), progress)
    rows, forwards = [], []
    for config in configs:
        cfg = Config.fromfile(config)
        scope = cfg.get('default_scope')
        model = build_config_model(cfg, opts.device)
        size = tuple(shape) if shape else DEFAULT_INPUT_SHAPES.get(scope, (224, 224))
        inputs, samples = config_inputs(model, scope, size, batch=batch)
        inputs = inputs.to(opts.device)
        rows.append(dict(mode='config', model=osp.splitext(osp.basename(config))[0], config=config, scope=scope,
                         input=f'{size[0]}x{size[1]}', padded=f'{inputs.shape[-2]}x{inputs.shape[-1]}', batch=batch,
                         params=sum(p.numel() for p in model.parameters()),
                         flops=count_complexity(config_forward(model, samples), (inputs, ))['flops'] / batch))
        forwards.append(functools.partial(model, inputs, samples, mode='predict'))
    out = []
    for precision in precisions:
        for base, measured in zip(rows, measure_interleaved(forwards, opts, precision, [batch] * len(rows))):
            out.append(dict(base, precision=precision, **measured, fps=measured['throughput']))
        bar.step(f'configs {precision}')
    return out


def attention_layers(dim: int, heads: int) -> Dict[str, Callable[[], nn.Module]]:
    """Builders of the compared layers, each a module with ``forward(x: (B, N, C), hw) -> (B, N, C)``.

    Settings per layer are each method's default for stride-16 maps, as the HiLo paper (App. E) does: HiLo ws 2,
    alpha 0.9; window attention ws 7 (Swin) and 2 (HiLo's Hi-Fi window); SRA sr 2 (PVT stage 3); LightViT ws 7
    with 8 global tokens; RASA sr 1 (LVT stage 4), CSA with its 3x3 kernel. ``MSA`` runs one fused attention call;
    ``MSA explicit`` materialises softmax(Q K^T) as the paper's baseline does.
    """
    from mmvit_ext.models import layers
    return {
        'MSA': lambda: layers.RelPosMultiheadAttention(dim, heads),
        'MSA explicit': lambda: ExplicitMultiheadAttention(dim, heads),
        'HiLo': lambda: layers.HiLoAttention(dim, heads, window_size=2, alpha=.9),
        'Window ws7': lambda: WindowAttention(dim, heads, 7),
        'Window ws2': lambda: WindowAttention(dim, heads, 2),
        'SRA sr2': lambda: SpatialReductionAttention(dim, heads, 2),
        'LightViT local-global': lambda: WithGlobalTokens(layers.LocalGlobalAttention(dim, heads, window_size=7),
                                                          dim, 8),
        'RASA sr1': lambda: TokensToMap(layers.RecursiveAtrousSelfAttention(dim, heads, sr_ratio=1)),
        'CSA': lambda: TokensToMap(layers.ConvolutionalSelfAttention(dim, heads)),
    }


class WithSize(nn.Module):
    """Binds the map size so jit tracing sees a module of one tensor."""

    def __init__(self, module: nn.Module, hw: Tuple[int, int]):
        super().__init__()
        self.module, self.hw = module, hw

    def forward(self, x):
        return self.module(x, self.hw)


def bench_attention(resolutions: Sequence[int], dim: int, heads: int, batch: int, layers: Optional[Sequence[str]],
                    precisions: Sequence[str], opts: RunOptions, stride: int = 16,
                    progress: bool = True) -> List[dict]:
    """Attention mode: one row per (layer, resolution, precision); ``batch`` images at the first resolution and
    the same number of tokens per run at the others (``batch * N0 / N``, at least 1). The layers are timed
    interleaved at each resolution and precision (``measure_interleaved``), so their ratios come from one run."""
    builders = attention_layers(dim, heads)
    names = [n for n in builders if not layers or any(fnmatch.fnmatch(n.lower(), p.lower()) for p in layers)]
    if not names:
        raise SystemExit(f'no attention layer matches {list(layers)}; available: {", ".join(builders)}')
    modules = {}
    for name in names:
        try:
            modules[name] = builders[name]().to(opts.device).eval()
        except Exception as exc:
            modules[name] = f'{type(exc).__name__}: {exc}'
    bar = ProgressBar(len(resolutions) * len(precisions), progress)
    base_tokens = (resolutions[0] // stride) ** 2
    rows = {}
    for res in resolutions:
        hw = (res // stride, res // stride)
        n = hw[0] * hw[1]
        b = max(1, round(batch * base_tokens / n))
        x = torch.randn(b, n, dim, device=opts.device)
        counted = {}  # params and FLOPs, or the error of building or running the layer
        for name, module in modules.items():
            try:
                counted[name] = module if isinstance(module, str) else count_complexity(WithSize(module, hw),
                                                                                        (x[:1], ))
            except Exception as exc:
                counted[name] = f'{type(exc).__name__}: {exc}'
        for precision in precisions:
            measured = _measure_together({name: functools.partial(modules[name], x, hw) for name in names
                                          if not isinstance(counted[name], str)}, opts, precision, b)
            for name in names:
                row = dict(mode='attention', layer=name, resolution=res, tokens=f'{hw[0]}x{hw[1]}', dim=dim,
                           heads=heads, batch=b, precision=precision)
                result = measured.get(name, counted[name])
                if isinstance(result, str):
                    row['error'] = result
                else:
                    row.update(params=counted[name]['params'], flops=counted[name]['flops'], **result)
                rows[name, res, precision] = row
            bar.step(f'{res} {precision}')
    rows = [rows[name, res, precision] for name in names for res in resolutions for precision in precisions]
    add_ratio(rows, 'MSA', key=('resolution', 'precision'))
    return rows


def add_ratio(rows: List[dict], reference: str, key: Sequence[str], name_key: str = 'layer'):
    """``ratio_to_<reference>``: each row's throughput over the reference row's with the same ``key`` fields."""
    ref = {tuple(r[k] for k in key): r['throughput'] for r in rows if r[name_key] == reference and 'throughput' in r}
    for r in rows:
        base = ref.get(tuple(r[k] for k in key))
        r[f'ratio_to_{reference.lower()}'] = r['throughput'] / base if base and 'throughput' in r else None
