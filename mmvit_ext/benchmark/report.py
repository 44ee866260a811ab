"""``docs/benchmark.md``: every suite with the report's plan, the targets with verdicts, why the missed ones are
missed (op-group profiles of both sides), the official-code comparison, tables and plots.

``run_report`` measures and writes; ``render_report`` only formats rows (tests feed it small rows).
Deployment runtimes (``torch.compile``, ``torch.jit.trace``, onnxruntime) come from
``mmvit_ext.deploy.benchmark_deployment``.
"""
import concurrent.futures
import datetime
import fnmatch
import glob
import json
import multiprocessing
import os
import os.path as osp
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..analysis import config_complexity, format_count
from .official import compare_official, detect_family, official_variants, repo_commit
from .models import select_models
from .plots import plot_attention_vs_resolution, plot_throughput_vs_flops, plot_title
from .profiling import OP_GROUPS, explain_attention_target, explain_target, profile_attention, profile_backbones
from .references import PAPER_ATTENTION, PAPER_CLASSIFICATION, PAPER_DENSE
from .suites import QUICK_SETTINGS, SETTINGS, bench_attention, bench_backbones, bench_configs
from .tables import cell, fmt, table, write_outputs
from .targets import (OFFICIAL_NEED, OFFICIAL_NOTES, TARGET_NOTES, attention_targets, backbone_targets, config_targets,
                      efficiency_targets, official_targets, training_targets)
from .timing import ProgressBar, RunOptions, cpu_features, gemm_peak
from .training import DEMO_TRAINING_CONFIG, bench_demo_training

__all__ = ['REPO_ROOT', 'REPORT_CONFIGS', 'resolve_config', 'classification_rows', 'dense_rows',
           'explanation_lines', 'render_report', 'run_report']

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

# Whole-model configs measured by the report (config mode), at the papers' input sizes; ``pkg::path`` names a
# config shipped with an installed OpenMMLab package.
REPORT_CONFIGS = [
    ('configs/litv2/retinanet_litv2-s_fpn_1x_coco.py', (800, 1333)),
    ('configs/lit/retinanet_lit-s_fpn_1x_coco.py', (800, 1333)),
    ('configs/lvt/segformer_lvt*ade20k*.py', (512, 512)),
    ('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py', (512, 512)),
]


def resolve_config(pattern: str) -> List[str]:
    """Config files of a glob relative to the project, or of ``pkg::path`` inside an installed package."""
    if '::' in pattern:
        package, path = pattern.split('::', 1)
        try:
            module = __import__(package)
        except ImportError:
            return []
        pattern = osp.join(osp.dirname(module.__file__), '.mim', 'configs', path)
        return sorted(glob.glob(pattern))
    return sorted(glob.glob(osp.join(REPO_ROOT, pattern)))


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
    if t['need'] is None:
        return 'reported'
    return '-' if t['met'] is None else ('met' if t['met'] else '**missed**')


def _group_table(name_a: str, ga: Dict[str, float], name_b: str, gb: Dict[str, float]) -> List[str]:
    lines = [f'| op group | {name_a} ms | {name_b} ms | difference ms |', '|---|---|---|---|']
    lines += [f'| {g} | {ga[g]:.1f} | {gb[g]:.1f} | {ga[g] - gb[g]:+.1f} |' for g in OP_GROUPS if ga[g] or gb[g]]
    total_a, total_b = sum(ga.values()), sum(gb.values())
    lines += [f'| total | {total_a:.1f} | {total_b:.1f} | {total_a - total_b:+.1f} |', '']
    deltas = sorted((ga[g] - gb[g], g) for g in OP_GROUPS)
    costs = [f'{g} ({d:+.1f} ms)' for d, g in reversed(deltas) if d > 0][:2]
    savings = [f'{g} ({d:+.1f} ms)' for d, g in deltas if d < 0][:2]
    lines.append(f'{name_a} spends more than {name_b} on {" and ".join(costs) or "nothing"}; it saves on '
                 f'{" and ".join(savings) or "nothing"}.')
    return lines


def explanation_lines(explanations: Sequence[dict], attention: Sequence[dict]) -> List[str]:
    """The report section that names each missed target with the op-group profiles of both sides."""
    lines = ['## Missed targets: where the time goes', '',
             'For each missed target: the self time of one fp32 forward of both sides at the target\'s input and '
             'batch (`torch.profiler`, after a warm-up), summed per op group. An op running inside a deformable conv '
             'or a fused attention call counts for that group. The last column is the time the first model spends '
             'beyond the second (negative: time it saves).', '']
    first = min((x['resolution'] for x in attention), default=None)
    flops = {r['layer']: r.get('flops') for r in attention if r['precision'] == 'fp32' and r['resolution'] == first}
    for e in explanations:
        lines += [f'### {e["target"]} ({e.get("input", "-")})', '']
        if 'error' in e:
            lines += [f'Not profiled: {e["error"]}', '']
            continue
        (a, ga), (b, gb) = e['groups'].items()
        lines += _group_table(a, ga, b, gb)
        if e['target'].startswith('HiLo') and flops.get(b) and flops.get('HiLo'):
            lines[-1] += f' {b} has {flops[b] / flops["HiLo"]:.2f}x the FLOPs of HiLo.'
        note = next((text for key, text in TARGET_NOTES.items() if e['target'].startswith(key)), None)
        lines += ([note] if note else []) + ['']
    return lines


def _target_lines(targets: Sequence[dict]) -> List[str]:
    lines = ['| target | paper | paper ratio | measured ratio | needed | verdict |', '|---|---|---|---|---|---|']
    for t in targets:
        need = '-' if t['need'] is None else f'>= {t["need"]}'
        lines.append(f'| {t["target"]} | {t["paper_text"]} | {fmt(t["paper"], 2)} | '
                     f'{fmt(t["measured"], 2)} ({t["detail"]}) | {need} | {_verdict(t)} |')
    return lines + ['']


def _official_lines(official: Sequence[dict], repos: Dict[str, dict]) -> List[str]:
    lines = ['## Against the official code', '',
             'Each official model is imported from a clone of its repository (`benchmark.py official --repo PATH`), '
             'its CUDA-only deformable conv replaced by `torchvision.ops.deform_conv2d` with the official parameter '
             'layout; its weights (moved off their init at random, so that the deformable offsets sample between '
             'pixels) are copied into ours with our checkpoint converters, the outputs compared, and both timed in '
             'alternation in one process (fp32, `torch.no_grad()`). Classification: the whole classifier (logits) '
             'at 224x224; dense: the detection / segmentation backbone with its official dense settings. '
             f'Needed: ours / official >= {OFFICIAL_NEED["cls"]} at 224 (batch 1 and 8) and '
             f'>= {OFFICIAL_NEED["dense"]} at the dense input.', '',
             '| repository | commit | family |', '|---|---|---|']
    lines += [f'| `{r["path"]}` | {r.get("commit") or "-"} | {r["family"]} |' for r in repos.values()]
    lines += ['', table(official, 'official', markdown=True), '']
    for r in official:
        groups = r.get('op_groups')
        if groups:
            lines += [f'### {r["model"]} vs official, {r["input"]} b{r["batch"]}: where the time goes', '']
            lines += _group_table('mmvit_ext', groups['mmvit_ext'], 'official', groups['official'])
            note = OFFICIAL_NOTES.get((r['family'], r['setting']))
            lines += ([note] if note else []) + ['']
    return lines


def _efficiency_lines(backbone: Sequence[dict], gemm: Dict[str, dict]) -> List[str]:
    features = cpu_features()
    flags = ', '.join(f'{k} {"yes" if v else "no"}' for k, v in features.items()) or 'unknown'
    lines = ['## Efficiency: achieved GFLOP/s against the GEMM peak', '',
             'GEMM peak: one product of two square matrices in this run, the faster of `torch.mm` and oneDNN\'s '
             'matmul (the one our linear layers run on in fp32 CPU inference); FLOPs as multiply-adds, like the '
             'models\' counts, and twice that in the 2-FLOP convention. CPU extensions: ' + flags + '.', '',
             '| GEMM | size | library | ms | GFLOP/s (multiply-adds) | GFLOP/s (2-FLOP convention) |',
             '|---|---|---|---|---|---|']
    for r in gemm.values():
        lines.append(f'| {r["dtype"]} | {r["size"]} | {r.get("backend", "torch.mm")} | {r["latency_ms"]:.1f} | '
                     f'{r["gmacs"]:.1f} | {r["gflops_2x"]:.1f} |')
    cls_batch = max((r['batch'] for r in backbone if r['setting'] == 'cls'), default=1)
    peak = gemm.get('fp32', {}).get('gmacs')
    lines += ['', f'Backbones at 224x224, batch {cls_batch}: fp32 GFLOP/s and its share of the fp32 GEMM peak; '
              'bf16 autocast speed-up over fp32.', '',
              '| model | FLOPs/img | fp32 img/s | fp32 GFLOP/s | share of fp32 peak | amp img/s | amp / fp32 |',
              '|---|---|---|---|---|---|---|']
    for r in backbone:
        if r['setting'] != 'cls' or r['batch'] != cls_batch or r['precision'] != 'fp32' or 'throughput' not in r:
            continue
        amp = next((a for a in backbone if a['model'] == r['model'] and a['setting'] == 'cls'
                    and a['batch'] == cls_batch and a['precision'] == 'amp' and 'throughput' in a), None)
        share = f'{100 * r["gflops_per_s"] / peak:.0f}%' if peak else '-'
        lines.append(f'| {r["model"]} | {format_count(r["flops"])} | {r["throughput"]:.1f} | '
                     f'{r["gflops_per_s"]:.1f} | {share} | {fmt(amp and amp["throughput"])} | '
                     f'{fmt(amp and amp["throughput"] / r["throughput"], 2)} |')
    return lines + ['']


def _training_lines(rows: Sequence[dict]) -> List[str]:
    return ['## Training: the deformable conv of DTM', '',
            f'One training iteration of the demo RetinaNet (`{DEMO_TRAINING_CONFIG}`: `model.train_step`, i.e. data '
            'preprocessing, forward, losses, backward and the AdamW step) on a random batch with ground-truth boxes, '
            'its DTM layers on our deformable-conv op (`torch.ops.mmvit_ext.deform_conv2d`, "op") or on '
            '`mmcv.ops.deform_conv2d` (mmcv\'s kernels, what DTM ran on before, "mmcv"), both sides from the same '
            'weights and timed in alternation. Deformable-conv share: its forward and backward in the profiled self '
            'time of one iteration. Max loss diff: the largest difference of any loss between the two sides over '
            'their first two iterations. The demo (`make demo`) trains 1,800 such iterations.', '',
            table(rows, 'training', markdown=True), '']


def _deployment_lines(rows: Sequence[dict]) -> List[str]:
    runtimes = [(k[:-3], name) for k, name in (('compile_ms', 'torch.compile'), ('jit_ms', 'jit.trace'),
                                               ('onnx_ms', 'onnxruntime')) if any(k in r for r in rows)]
    lines = ['## Deployment runtimes', '',
             'The same backbone and batch in eager PyTorch and each deployment runtime, timed in alternation '
             '(`mmvit_ext.deploy.compare_runtimes`): median latency in ms and the speed-up over eager; `torch.compile` '
             'is inductor with default settings (its first call, the compile, is timed apart), the ONNX file is '
             'exported with dynamic shapes (opset 19) and run by onnxruntime on the CPU with torch\'s thread count. '
             'Max diff: the largest absolute difference of any runtime\'s outputs to eager.', '',
             '| model | input | eager ms | ' + ' | '.join(f'{name} ms (speed-up)' for _, name in runtimes)
             + ' | max diff | compile s | export s |', '|---|---|---|' + '---|' * len(runtimes) + '---|---|---|']
    for r in rows:
        cells = [r['model'], r['input'], fmt(r['eager_ms'])]
        cells += [f'{fmt(r.get(k + "_ms"))} ({fmt(r.get(k + "_speedup"), 2)}x)' if k + '_ms' in r else '-'
                  for k, _ in runtimes]
        cells += [f'{r["max_diff"]:.1e}', fmt(r.get('compile_s'), 0), fmt(r.get('export_s'), 0)]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return lines + ['']


def render_report(meta: dict, targets: List[dict], explanations: List[dict], backbone: List[dict],
                  attention: List[dict], attention_profiles: List[dict], profiles: List[dict], configs: List[dict],
                  classification: List[dict], dense: List[dict], plots: Dict[str, str],
                  official: Sequence[dict] = (), gemm: Optional[Dict[str, dict]] = None,
                  deployment: Sequence[dict] = (), training: Sequence[dict] = ()) -> str:
    """docs/benchmark.md: machine, targets and why the missed ones are missed, the official comparison,
    efficiency, training, deployment, backbone tables, attention, classification and dense models vs the papers,
    profiles."""
    machine = meta['machine']
    lines = ['# mmvit_ext benchmark', '',
             f'Generated by `{meta["command"]}` on {machine["date"]}.', '',
             f'**Machine**: {machine["cpu"]}, {machine["cpu_count"]} CPU cores, torch '
             f'{machine["torch"]} with {machine["torch_threads"]} threads, device '
             f'`{machine["device"]}`{" (" + machine["gpu"] + ")" if "gpu" in machine else ""}'
             f'{", 1-minute load " + str(machine["load_1min"]) + " at the start" if "load_1min" in machine else ""}.',
             '']
    if machine['device'] == 'cpu':
        lines += [f'All numbers below were measured on this {machine["cpu_count"]}-core CPU; no GPU was '
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
        lines += ['## Speed targets', ''] + _target_lines(targets)
    if explanations:
        lines += explanation_lines(explanations, attention)
    if official:
        lines += _official_lines(official, meta.get('official_repos', {}))
    if gemm and backbone:
        lines += _efficiency_lines(backbone, gemm)
    if training:
        lines += _training_lines(training)
    if deployment:
        lines += _deployment_lines(deployment)
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
        lines += _attention_lines(attention, attention_profiles, plots)
    if configs:
        lines += ['## Whole models (config mode)', '',
                  'Inference of the whole model (`mode="predict"`: preprocessed random input -> results, including '
                  'post-processing such as NMS).', '', table(configs, 'config', markdown=True), '']
    if profiles:
        lines += ['## Profiler: top ops per backbone', '',
                  f'One forward at {profiles[0]["input"]}, batch 1, fp32, after a warm-up (`torch.profiler`, self '
                  'CPU time of `aten::` ops). "compute-op calls" counts the op calls of the forward, views '
                  'excluded; "calls" those of the most-called compute op. A Python loop over windows or heads would '
                  'show as hundreds to thousands of calls of matmul/softmax ops; attention runs as one fused '
                  '`scaled_dot_product_attention` call per layer branch instead (one batched matmul / softmax / '
                  'matmul triple where the softmax rows are short, see `layers.utils.attention`).', '',
                  table(profiles, 'profile', markdown=True), '']
    lines += ['## Reproduce', '', f'`{meta["command"]}` (about {meta["minutes"]:.0f} minutes on this machine); '
              'the raw rows are in `benchmark.json`. Single modes: `python tools/analysis_tools/benchmark.py '
              '{backbone,config,attention,profile,official,training} --help`.', '']
    return '\n'.join(lines)


def _attention_lines(attention: Sequence[dict], attention_profiles: Sequence[dict], plots: Dict[str, str]):
    first = min(r['resolution'] for r in attention)
    lines = ['## Attention layers', '',
             f'One layer, dim {attention[0]["dim"]}, {attention[0]["heads"]} heads'
             f'{" (the ViT-B setting)" if (attention[0]["dim"], attention[0]["heads"]) == (768, 12) else ""}; '
             f'tokens at stride 16 ({first}x{first} input = {first // 16}x{first // 16} tokens). The batch is '
             f'{attention[0]["batch"]} images at {first} and the same number of tokens per run at larger sizes. '
             '`MSA` runs one fused attention call, `MSA explicit` materialises softmax(QK^T) as the paper\'s '
             'baseline. Paper: HiLo paper Table IV (CPU img/s).', '',
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
            f'{fmt(r.get("throughput"))} | {cell(r, "ratio_to_msa")} | {fmt(paper_cpu)} | '
            f'{fmt(paper_cpu and paper_cpu / PAPER_ATTENTION["MSA"][2], 2)} | '
            f'{fmt(amp and amp["throughput"])} |')
    lines.append('')
    sweep = [r for r in attention if r['precision'] == 'fp32']
    if len({r['resolution'] for r in sweep}) > 1:
        lines += ['Across resolutions (fp32):', '', table(sweep, 'attention', markdown=True), '']
    if 'attention' in plots:
        lines += [f'![attention throughput vs resolution]({plots["attention"]})', '']
    if attention_profiles:
        lines += [f'Where the time goes at {first}x{first} (one fp32 run, `torch.profiler`, self CPU time of '
                  '`aten::` ops):', '', table(attention_profiles, 'profile', markdown=True), '']
    return lines


def _plot_rows(rows: Sequence[dict]) -> List[dict]:
    cls_batch = max((r['batch'] for r in rows if r['setting'] == 'cls'), default=1)
    return [r for r in rows if r['setting'] == 'cls' and r['batch'] == cls_batch and r['precision'] == 'fp32']


def _exit_with_parent(parent: int):
    """Initializer of ``fresh_process_pool``'s worker: a daemon thread ends the worker once its parent is gone.
    A stopped or killed benchmark would otherwise leave the worker measuring (minutes at 800x1216) and spoil
    every timing taken on the machine after it."""
    def watch():
        while os.getppid() == parent:
            time.sleep(.5)
        os._exit(1)

    threading.Thread(target=watch, name='exit-with-parent', daemon=True).start()


def fresh_process_pool() -> concurrent.futures.ProcessPoolExecutor:
    """One new (``spawn``) worker process that does not outlive this one."""
    return concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context('spawn'),
                                                  initializer=_exit_with_parent, initargs=(os.getpid(), ))


def _compare_in_this_process(root: str, family: str, names: Sequence[str], settings, opts: RunOptions,
                             sizes, profile_below, progress: bool, threads: int,
                             rows_file: Optional[str]) -> List[dict]:
    """``compare_official`` of the variants ``names`` of one clone; the body of each fresh process of
    ``run_official`` (its arguments pickle: variants are looked up again by name). Each row is appended to
    ``rows_file`` (JSON lines) as soon as it is measured."""
    torch.set_num_threads(threads)

    def keep(row):
        if rows_file:
            with open(rows_file, 'a') as f:
                f.write(json.dumps(row) + '\n')

    chosen = [v for v in official_variants(root, family) if v.name in names]
    return compare_official(root, chosen, settings, opts, quick_sizes=sizes, progress=progress,
                            profile_below=profile_below, on_row=keep)


def run_official(repos: Sequence[str], opts: RunOptions, quick: bool, progress: bool,
                 variants: Optional[Sequence[str]] = None, batch_sizes: Sequence[int] = (1, 8),
                 profile_misses: bool = True, dense_variants: Optional[Sequence[str]] = None,
                 rows_file: Optional[str] = None,
                 fresh_process: bool = True) -> Tuple[List[dict], Dict[str, dict]]:
    """The official comparison of every variant of every clone in ``repos`` (or those named in ``variants``,
    fnmatch patterns; the dense backbones: those in ``dense_variants``, default ``variants``): rows and
    ``{path: {path, family, commit}}``.

    With ``fresh_process`` each (clone, task) pair runs in a new process (``spawn``): memory that an 800x1216
    comparison leaves in the allocator slowed the 224x224 rows of both sides after it. Each row is appended to
    ``rows_file`` (JSON lines, read back by ``--official-from``) as soon as it is measured, so a run that is
    stopped keeps what it finished.
    """
    settings = [('cls', b) for b in batch_sizes] + [('dense', 1)]
    sizes = {'cls': QUICK_SETTINGS['cls'], 'dense': QUICK_SETTINGS['det']} if quick else None
    patterns = {'cls': variants, 'dense': variants if dense_variants is None else dense_variants}
    profile_below = OFFICIAL_NEED if profile_misses else None
    rows, info = [], {}
    if rows_file:
        open(rows_file, 'w').close()
    for root in repos:
        family = detect_family(root)
        info[root] = dict(path=root, family=family, commit=repo_commit(root))
        if rows_file:
            with open(rows_file, 'a') as f:
                f.write(json.dumps(dict(mode='official_repo', **info[root])) + '\n')
        for task in ('cls', 'dense'):
            names = [v.name for v in official_variants(root, family)
                     if v.task == task and (not patterns[task] or any(fnmatch.fnmatch(v.name.lower(), p.lower())
                                                                     for p in patterns[task]))]
            if not names:
                continue
            args = (root, family, names, [s for s in settings if s[0] == task], opts, sizes, profile_below,
                    progress, torch.get_num_threads(), rows_file)
            if not fresh_process:
                rows += _compare_in_this_process(*args)
                continue
            with fresh_process_pool() as pool:
                rows += pool.submit(_compare_in_this_process, *args).result()
    return rows, info


def read_official_rows(path: str) -> Tuple[List[dict], Dict[str, dict]]:
    """The official-comparison rows (and clones, where recorded) of a JSON written by the official mode or a
    report, or of the JSON-lines file that ``run_official`` appends to while it runs."""
    with open(path) as f:
        if path.endswith('.jsonl'):
            lines = [json.loads(line) for line in f if line.strip()]
            return ([r for r in lines if r['mode'] == 'official'],
                    {r['path']: {k: v for k, v in r.items() if k != 'mode'} for r in lines
                     if r['mode'] == 'official_repo'})
        saved = json.load(f)
    return [r for r in saved['rows'] if r['mode'] == 'official'], saved['meta'].get('official_repos', {})


def run_report(args, opts: RunOptions, meta: dict) -> List[dict]:
    """Every mode with the report's plan, then ``benchmark.md``, ``benchmark.json`` and the plots in --out-dir.

    Plan: the GEMM peak (fp32, bf16); backbones at 224 (batch 1 and 8 on CPU / 64 on GPU, fp32 and amp) and at
    800x1333 / 512x512 (batch 1, fp32); attention at the ViT-B setting (fp32 and amp) and at 224-1024 (fp32);
    profiles at 224; params and FLOPs of the ImageNet configs and of the dense configs the papers list; the
    REPORT_CONFIGS that exist; the official comparison of every ``--repo`` (or rows reused with
    ``--official-from``); the deployment runtimes of ``--deploy-models``."""
    start = datetime.datetime.now()
    os.makedirs(args.out_dir, exist_ok=True)
    progress = not args.no_progress
    skip = set(args.skip)
    specs = select_models(args.models, not args.no_baselines)
    backbone, attention, attention_profiles, profiles, configs, classification, dense = [], [], [], [], [], [], []
    official, deployment, training, gemm = [], [], [], {}
    if 'backbone' not in skip:
        size = 256 if args.quick else 2048
        gemm = {'fp32': gemm_peak(opts.device, size), 'bf16': gemm_peak(opts.device, size, dtype=torch.bfloat16)}
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
        attention_profiles = profile_attention(['MSA', 'MSA explicit', 'HiLo'], dim, heads, batch, res[0],
                                               opts.device)
    if 'profile' not in skip:
        profiles = profile_backbones(specs, QUICK_SETTINGS['cls'] if args.quick else SETTINGS['cls'], opts.device,
                                     progress=progress)
        print(table(profiles, 'profile'))
    if 'config' not in skip:
        for shape in dict.fromkeys(shape for _, shape in REPORT_CONFIGS):  # the configs of one size interleaved
            chosen = [config for pattern, size in REPORT_CONFIGS if size == shape
                      for config in resolve_config(pattern)[:1]]
            if chosen:
                configs += bench_configs(chosen, (64, 96) if args.quick else shape, 1, ['fp32'], opts, progress)
        if configs:
            print(table(configs, 'config'))
    if args.official_from:
        official, meta['official_repos'] = read_official_rows(args.official_from)
    elif args.repo and 'official' not in skip:
        official, meta['official_repos'] = run_official(args.repo, opts, args.quick, progress, args.variants,
                                                        dense_variants=args.dense_variants,
                                                        rows_file=osp.join(args.out_dir, 'official_rows.jsonl'))
        print(table(official, 'official'))
    if 'training' not in skip:
        try:
            training = bench_demo_training(opts, REPO_ROOT, quick=args.quick)
        except Exception as err:  # reported in place of the rows, as the other suites do
            training = [dict(mode='training', error=f'{type(err).__name__}: {err}')]
        print(table(training, 'training'))
    if 'deployment' not in skip:
        from ..deploy import benchmark_deployment
        deployment = benchmark_deployment(select_models(args.deploy_models, with_baselines=False), opts, args.quick)
        print(table(deployment, 'deployment'))

    targets = (attention_targets(attention) if attention else []) + (backbone_targets(backbone) if backbone else [])
    targets += config_targets(configs) if configs else []
    targets += efficiency_targets(backbone, gemm) if backbone else []
    targets += official_targets(official)
    targets += training_targets(training) if 'training' not in skip else []
    explanations = []
    if 'profile' not in skip:
        for target in (t for t in targets if t['met'] is False):
            if 'models' in target:
                explanations.append(explain_target(target, specs, opts.device, args.quick))
            elif 'layers' in target:
                explanations.append(explain_attention_target(target, dim, heads, batch, res[0], opts.device,
                                                             target['layers']))
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
    plots = {}
    if backbone:
        plots['flops'] = 'benchmark_throughput_vs_flops.png'
        plot_throughput_vs_flops(_plot_rows(backbone), osp.join(args.out_dir, plots['flops']),
                                 plot_title(meta, backbone, _plot_rows(backbone)))
    if attention:
        plots['attention'] = 'benchmark_attention_resolution.png'
        plot_attention_vs_resolution([r for r in attention if r['precision'] == 'fp32'],
                                     osp.join(args.out_dir, plots['attention']), plot_title(meta, attention))
    meta['minutes'] = (datetime.datetime.now() - start).total_seconds() / 60
    meta['gemm'] = gemm
    rows = backbone + attention + attention_profiles + profiles + configs + classification + dense + official
    rows += training + deployment
    with open(osp.join(args.out_dir, 'benchmark.md'), 'w') as f:
        f.write(render_report(meta, targets, explanations, backbone, attention, attention_profiles, profiles,
                              configs, classification, dense, plots, official, gemm, deployment, training))
    write_outputs(rows, osp.join(args.out_dir, 'benchmark.json'), None, meta)
    print(f'wrote {osp.join(args.out_dir, "benchmark.md")}')
    return rows
