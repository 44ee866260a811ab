"""The speed targets the report checks, each as a ratio between two measurements of the same run.

Every target is a dict: ``target`` (description), ``paper`` / ``paper_text`` (the papers' ratio and its source),
``need`` (the ratio that counts as met; ``None``: reported only), ``measured``, ``detail`` and ``met``. Backbone
targets also carry ``models`` / ``setting`` / ``batch``, which the report uses to profile both sides of a miss."""
from typing import Dict, List, Optional, Sequence

from .timing import cpu_features

__all__ = ['BACKBONE_TARGETS', 'TARGET_NOTES', 'backbone_targets', 'attention_targets', 'efficiency_targets',
           'config_targets', 'official_targets', 'training_targets', 'OFFICIAL_NEED', 'OFFICIAL_NOTES', 'TRAINING_NEED']

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
    ('LVT vs MiT-B0 backbone, 512x512', (('lvt-mobile', 'lvt'), ('mit-b0', )), 'seg',
     45.5 / 50.5, 'SegFormer 45.5 vs 50.5 FPS (V100, whole model)', 0.8),
    ('LITv2-S vs Swin-T, 224x224', (('litv2-small', 'litv2-s'), ('swin-t', )), 'cls',
     1471 / 961, '1,471 vs 961 img/s (RTX 3090, b64)', 1.0),
    ('LITv2-S vs ResNet-50, 224x224', (('litv2-small', 'litv2-s'), ('resnet-50', )), 'cls',
     1471 / 1279, '1,471 vs 1,279 img/s (RTX 3090, b64)', 1.0),
]

# What the code does that a missed target's breakdown points at; true whatever the numbers of a run.
TARGET_NOTES = {
    'HiLo vs fused MSA': (
        'MSA runs its attention product as one fused `scaled_dot_product_attention` call, so the N x N '
        'attention matrix that the paper\'s MSA materialises (and that HiLo avoids) is never written here; what '
        'remains is mostly the q/k/v and output projections, which HiLo keeps. HiLo\'s FLOP count bounds its '
        'speed-up when both layers run their ops at the same rate. Lo-Fi attends from every query to only '
        '(H/2)(W/2) pooled keys (49 at 14x14) and Hi-Fi inside 2x2 windows: short softmax rows, on which torch\'s '
        'CPU flash-attention kernel runs far below its rate on MSA\'s N x N product, so both run as explicit '
        'batched matmuls (`layers.utils.attention`: 1.2x and 3.4x the fused kernel on those shapes, Zen 4).'),
    'LITv2-S vs LIT-S, 224x224': (
        'LITv2-S trades LIT-S\'s plain MLP blocks (stages 1-2) for ConvFFN, whose 3x3 depthwise conv runs on the '
        '4x-wide hidden map and is memory-bound on a CPU (it already runs channels-last, oneDNN\'s fastest layout '
        'for it), and LIT-S\'s global MSA (stages 3-4) for HiLo. At 224x224 that MSA sees 14x14 and 7x7 tokens '
        'through one fused attention call per layer, a small share of LIT-S\'s time, so HiLo has little to save. '
        'The official LIT builds the attention matrix explicitly, which is where LITv2-S gained on the paper\'s '
        'GPU; at 800x1333 the attention dominates and LITv2-S wins by far (detection-input table).'),
    'LVT vs MiT-B0': (
        'At 512x512 LVT-mobile has 1.66x the FLOPs of MiT-B0 (5.35 vs 3.23 G, backbone-only table): its stage 1 is '
        'twice as wide (64 vs 32 channels at stride 4), every block of stages 2-4 runs its attention twice '
        '(RASA\'s recursion with shared weights), each time with three dilated depthwise convs on the queries, and '
        'stage 1\'s CSA computes nine C x C value projections per 3x3 window (the official FLOPs) and adds the '
        'window outputs back onto the map; MiT-B0 runs one spatially reduced attention per block. The whole '
        'SegFormer models share the decode head, which narrows the gap (whole-model target).'),
}

# Speed-up of a demo training iteration with DTM on our deformable-conv op over mmcv's op that counts as met.
TRAINING_NEED = 1.25

# Ours / official throughput that counts as met: at 224x224 (batch 1 and 8) and at the dense input.
OFFICIAL_NEED = {'cls': 1.05, 'dense': 1.5}

# What the code of both sides does, shown under a missed official comparison of that family and setting.
OFFICIAL_NOTES = {
    ('LightViT', 'dense'): (
        'Both sides run GEMMs of the same shapes (q/k/v, projections, the MLPs: the largest group on both sides); '
        'ours runs them as oneDNN matmuls with the bias and GELU fused (`layers/onednn.py`), the official code as '
        'addmm plus a GELU pass, so the ratio follows the two GEMM libraries on this CPU. Ours also saves on '
        'attention (fused calls, no softmax(QK^T) written) and runs the stem\'s depthwise convs channels-last.'),
    ('LIT', 'cls'): (
        'LIT-Ti classifies 224x224 with MLP-only stages 1-2: nearly all of its time is the MLP matmuls and GELU, '
        'which ours runs as oneDNN matmuls with the bias and GELU fused and the official code as addmm plus a GELU '
        'pass; the deformable token merging and the attention of stages 3-4 decide the rest.'),
}


def _find(rows: Sequence[dict], names: Sequence[str], **fields) -> Optional[dict]:
    for r in rows:
        if r.get('model', '').lower() in names and 'throughput' in r and all(r.get(k) == v
                                                                             for k, v in fields.items()):
            return r
    return None


def _target(desc: str, need: Optional[float], measured: Optional[float], detail: str, paper: Optional[float] = None,
            paper_text: str = '-', **extra) -> dict:
    met = None if measured is None or need is None else measured >= need
    return dict(target=desc, paper=paper, paper_text=paper_text, need=need, measured=measured, detail=detail,
                met=met, **extra)


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
        detail = (f'{a["throughput"]:.1f} vs {b["throughput"]:.1f} img/s (b{batch})' if ratio else
                  'not measured (model missing or failed)')
        out.append(_target(desc, need, ratio, detail, paper, paper_text, models=(num, den), setting=setting,
                           batch=batch))
    return out


def attention_targets(rows: Sequence[dict]) -> List[dict]:
    """HiLo at the ViT-B setting (the first resolution), fp32: >= 2.0x the MSA that materialises softmax(QK^T)
    (paper 1,029 vs 505 img/s on CPU), and within 5% of its FLOP bound against the fused-attention MSA."""
    first = min((r['resolution'] for r in rows), default=224)
    at = {r['layer']: r for r in rows if r['resolution'] == first and r['precision'] == 'fp32' and 'throughput' in r}
    hilo, fused, explicit = at.get('HiLo'), at.get('MSA'), at.get('MSA explicit')
    out = []
    ratio = hilo['throughput'] / explicit['throughput'] if hilo and explicit else None
    out.append(_target('HiLo vs MSA explicit (softmax(QK^T) materialised), one layer, ViT-B setting, CPU fp32', 2.0,
                       ratio, f'{hilo["throughput"]:.0f} vs {explicit["throughput"]:.0f} img/s (b{hilo["batch"]})'
                       if ratio else 'not measured', 1029 / 505, '1,029 vs 505 img/s (CPU)',
                       layers=('HiLo', 'MSA explicit')))
    if hilo and fused and hilo.get('flops') and fused.get('flops'):
        speedup, bound = hilo['throughput'] / fused['throughput'], fused['flops'] / hilo['flops']
        out.append(_target('HiLo vs fused MSA: speed-up over FLOP ratio (within 5% of the bound)', .95,
                           speedup / bound, f'{speedup:.2f}x MSA, FLOP ratio {bound:.2f}', layers=('HiLo', 'MSA')))
    else:
        out.append(_target('HiLo vs fused MSA: speed-up over FLOP ratio (within 5% of the bound)', .95, None,
                           'not measured', layers=('HiLo', 'MSA')))
    return out


def efficiency_targets(rows: Sequence[dict], gemm: Optional[Dict[str, dict]]) -> List[dict]:
    """LITv2-S at 224, largest batch: fp32 GFLOP/s >= 60% of the fp32 GEMM peak; bf16 autocast >= 1.3x fp32 where
    the CPU has bf16 instructions (avx512_bf16 or AMX), reported only elsewhere."""
    names = ('litv2-small', 'litv2-s')
    cls_batch = max((r['batch'] for r in rows if r['setting'] == 'cls'), default=1)
    fp32 = _find(rows, names, setting='cls', batch=cls_batch, precision='fp32')
    amp = _find(rows, names, setting='cls', batch=cls_batch, precision='amp')
    peak = (gemm or {}).get('fp32')
    out = []
    share = fp32['gflops_per_s'] / peak['gmacs'] if fp32 and peak and fp32.get('gflops_per_s') else None
    out.append(_target(f'LITv2-S fp32 GFLOP/s / fp32 GEMM peak, 224x224 b{cls_batch}', .6, share,
                       f'{fp32["gflops_per_s"]:.1f} of {peak["gmacs"]:.1f} GFLOP/s (multiply-adds)' if share else
                       'not measured'))
    features = cpu_features()
    has_bf16 = features.get('avx512_bf16') or features.get('amx_bf16')
    speedup = amp['throughput'] / fp32['throughput'] if amp and fp32 else None
    cpu = ', '.join(k for k, v in features.items() if v and ('bf16' in k or 'amx' in k)) or 'no bf16 instructions'
    out.append(_target(f'LITv2-S bf16 autocast vs fp32, 224x224 b{cls_batch} (CPU: {cpu})',
                       1.3 if has_bf16 or not features else None, speedup,
                       f'{amp["throughput"]:.1f} vs {fp32["throughput"]:.1f} img/s' if speedup else 'not measured'))
    return out


# (description, whole-model config stems (numerator, denominator), paper ratio, source, need)
CONFIG_TARGETS = [
    ('SegFormer-LVT vs SegFormer-MiT-B0, whole model, 512x512', ('segformer_lvt', 'segformer_mit-b0'),
     45.5 / 50.5, 'SegFormer 45.5 vs 50.5 FPS (V100)', 0.9),
]


def config_targets(rows: Sequence[dict]) -> List[dict]:
    """Whole-model targets from config-mode rows (fp32): each stem matches the first config that starts with it."""
    out = []
    for desc, (num, den), paper, paper_text, need in CONFIG_TARGETS:
        a, b = (next((r for r in rows if r['model'].startswith(stem) and r['precision'] == 'fp32'
                      and 'fps' in r), None) for stem in (num, den))
        ratio = a['fps'] / b['fps'] if a and b else None
        out.append(_target(desc, need, ratio, f'{a["fps"]:.2f} vs {b["fps"]:.2f} FPS' if ratio else
                           'not measured (config missing or failed)', paper, paper_text))
    return out


def official_targets(rows: Sequence[dict]) -> List[dict]:
    """One target per official-comparison row: ours / official throughput >= OFFICIAL_NEED of its setting."""
    out = []
    for r in rows:
        desc = f'{r["model"]} vs official, {r["input"]} b{r["batch"]}'
        if 'speedup' not in r:
            out.append(_target(desc, OFFICIAL_NEED[r['setting']], None, f'not measured: {r.get("error", "-")}'))
            continue
        diff = f'{r["max_abs_diff"]:.1e}'
        if r.get('max_abs_diff_fp64') is not None:
            diff += f', fp64 {r["max_abs_diff_fp64"]:.1e}'
        out.append(_target(desc, OFFICIAL_NEED[r['setting']], r['speedup'],
                           f'{r["ours_ms"]:.1f} vs {r["official_ms"]:.1f} ms, max abs diff {diff}', official=r))
    return out


def training_targets(rows: Sequence[dict]) -> List[dict]:
    """The demo RetinaNet's training iteration with DTM on our op against mmcv's op (``training.py``)."""
    desc = 'Demo RetinaNet training iteration (LITv2-demo, batch 4, 256 px): DTM on our op vs mmcv\'s op'
    op = next((r for r in rows if r.get('dtm') == 'op' and 'speedup' in r), None)
    mmcv = next((r for r in rows if r.get('dtm') == 'mmcv' and 'latency_ms' in r), None)
    if op is None or mmcv is None:
        error = next((r['error'] for r in rows if 'error' in r), 'not run')
        return [_target(desc, TRAINING_NEED, None, f'not measured: {error}')]
    return [_target(desc, TRAINING_NEED, op['speedup'],
                    f'{op["latency_ms"]:.0f} vs {mmcv["latency_ms"]:.0f} ms; deformable conv {op["dtm_share"]:.0%} '
                    f'vs {mmcv["dtm_share"]:.0%} of the iteration')]
