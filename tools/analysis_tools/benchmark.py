"""Speed, memory, params and FLOPs of the mmvit_ext backbones, whole models and attention layers, and the
comparison with the official code. The logic lives in ``mmvit_ext.benchmark``; this is its command line.

Modes (``python tools/analysis_tools/benchmark.py MODE --help`` for every option):

    backbone   every registered mmvit_ext backbone and arch (discovered from each class's ``arch_zoo``) plus the
               baselines mmdet Swin-T / PVTv2-B0 / PVTv2-B2, mmseg MiT-B0, mmpretrain ResNet-50, at 224x224
               (batch 1 and N), 800x1333 (detection) and 512x512 (segmentation), fp32 and autocast
               (bf16 on CPU, fp16 on CUDA):
                   benchmark.py backbone [--models 'LITv2-*' 'Swin-T'] [--settings cls det seg] [--batch-sizes 1 8]
    config     inference FPS of a whole detector / segmentor / classifier config (random input, no dataset):
                   benchmark.py config CONFIG [CONFIG ...] [--shape 800 1333]
    attention  one attention layer at the HiLo paper's ViT-B setting (14x14 tokens, dim 768, 12 heads) and across
               input resolutions 224-1024 (tokens at stride 16): HiLo, global MSA (fused and with the attention
               matrix materialised), window attention (ws 2, 7), spatial-reduction attention, LightViT
               local-global, LVT RASA and CSA; throughput ratio to MSA:
                   benchmark.py attention [--resolutions 224 512 1024]
    profile    the top torch.profiler ops of one forward per backbone (per-window / per-head Python loops would
               show as op call counts that grow with the input):
                   benchmark.py profile [--models ...]
    official   ours against the official code, imported from your clone of the official repository (never
               copied): same variant, identical weights, outputs compared (max abs diff <= 1e-4), both timed
               interleaved, classifiers at 224x224 (batch 1 and 8) and dense backbones at 800x1216 (batch 1).
               The official code imports timm, which the pinned stack lacks: --install-timm pip-installs it into
               this environment (outside the pinned stack):
                   benchmark.py official --repo ~/LITv2 [~/LIT ~/LightViT ~/LVT] [--variants 'LITv2-small']
    training   one training iteration of the demo RetinaNet (LITv2-demo, batch 4, 256 px) with DTM's deformable
               conv on our op and on mmcv's op, timed interleaved, losses compared, deformable-conv share profiled:
                   benchmark.py training
    report     all of the above, then ``docs/benchmark.md`` with the tables and the plots (PNG):
                   benchmark.py report [--out-dir docs] [--repo ~/LITv2 ...]

Every mode prints a table, shows a progress bar (stderr) and can write ``--json`` / ``--csv``. Latency is the
median of repeated runs after warm-up with the inter-quartile range as spread; throughput = batch / median.
Peak memory: CUDA max-allocated growth on GPU, sampled process-RSS growth on CPU. ``--quick`` shrinks every size
and repeat count (for tests and smoke runs).
"""
import argparse
import os.path as osp
import sys

import torch

from mmvit_ext.benchmark.models import select_models
from mmvit_ext.benchmark.official import ensure_timm
from mmvit_ext.benchmark.plots import plot_attention_vs_resolution, plot_throughput_vs_flops, plot_title
from mmvit_ext.benchmark.profiling import profile_backbones
from mmvit_ext.benchmark.report import REPO_ROOT, run_official, run_report
from mmvit_ext.benchmark.suites import SETTINGS, bench_attention, bench_backbones, bench_configs
from mmvit_ext.benchmark.tables import machine_info, table, write_outputs
from mmvit_ext.benchmark.timing import RunOptions
from mmvit_ext.benchmark.training import bench_demo_training
from mmvit_ext.deploy import BENCHMARK_MODELS


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

    official = argparse.ArgumentParser(add_help=False)
    official.add_argument('--repo', nargs='+', default=None, metavar='PATH',
                          help='clones of the official repositories (ziplab/LITv2, ziplab/LIT, hunto/LightViT or '
                               'hunto/image_classification_sota, Chenglin-Yang/LVT); their model files are imported '
                               'from there')
    official.add_argument('--variants', nargs='+', default=None,
                          help='official comparison: variant names or fnmatch patterns (e.g. "LITv2-small" '
                               '"LIT-*"); default: every variant the clones hold')
    official.add_argument('--dense-variants', nargs='+', default=None,
                          help='official comparison: the variants compared as dense backbones at 800x1216 '
                               '(default: --variants); the M / B dense models take minutes each on a CPU')
    official.add_argument('--install-timm', action='store_true',
                          help='the official model code imports timm, which is not in the pinned stack: '
                               'pip-install it into this environment if it is missing')

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

    p = sub.add_parser('official', parents=[common, official],
                       help='ours vs the official code (needs timm: see --install-timm)',
                       description='Ours against the official code imported from clones of the official '
                                   'repositories: identical weights, outputs compared, both timed interleaved '
                                   '(fp32). The official model files import timm, which is not part of the '
                                   'pinned stack: --install-timm pip-installs it into this environment.')
    p.add_argument('--batch-sizes', nargs='+', type=_positive, default=[1, 8], help='batch sizes at 224x224')
    p.add_argument('--no-profile', action='store_true', help='do not profile the comparisons below the targets')
    p.add_argument('--rows-file', default=None,
                   help='append each row to this JSON-lines file as soon as it is measured (kept if the run is '
                        'stopped; --official-from of the report reads it)')
    p.set_defaults(warmup=1, repeat=10, max_seconds=4.)

    p = sub.add_parser('training', parents=[common],
                       help="a demo RetinaNet training iteration, DTM on our deformable-conv op vs mmcv's")
    p.set_defaults(warmup=1, repeat=10, max_seconds=3.)

    p = sub.add_parser('report', parents=[common, models, official],
                       help='everything, then docs/benchmark.md and plots')
    p.add_argument('--out-dir', default=osp.join(REPO_ROOT, 'docs'), help='where benchmark.md, .json, .png go')
    p.add_argument('--cls-configs', default='configs/*/*in1k*.py',
                   help='glob of the ImageNet configs whose params / FLOPs are compared with the papers')
    p.add_argument('--counts-from', default=None,
                   help='reuse the classification / dense params and FLOPs rows of an earlier benchmark.json '
                        '(they do not depend on the machine; counting them all takes minutes)')
    p.add_argument('--official-from', default=None,
                   help='reuse the official-comparison rows of a JSON written by the official mode (or a report), '
                        'or of the JSON-lines file that a comparison appends each row to (official_rows.jsonl in '
                        '--out-dir, kept when a report is stopped)')
    p.add_argument('--deploy-models', nargs='+', default=list(BENCHMARK_MODELS), metavar='MODEL',
                   help='backbones timed in eager PyTorch, torch.compile, jit.trace and onnxruntime at 224 batch 8 '
                        f'and 800x1216 (default: {" ".join(BENCHMARK_MODELS)}; --quick: the first at 64x96)')
    p.add_argument('--skip', nargs='*', default=[],
                   choices=['backbone', 'attention', 'profile', 'config', 'classification', 'dense', 'official',
                            'training', 'deployment'],
                   help='parts to leave out')
    # The report measures ~20 models at 3 sizes: fewer, shorter repeats keep it near 15 minutes on 2 CPU cores.
    p.set_defaults(warmup=1, repeat=10, max_seconds=1.5)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)


def _run(args, argv):
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
    progress = not args.no_progress

    if getattr(args, 'list', False):
        for spec in select_models(None, not args.no_baselines):
            print(f'{spec.name:<24s} {spec.source}')
        return []
    if getattr(args, 'install_timm', False):
        ensure_timm(install=True)
    if args.mode == 'backbone':
        specs = select_models(args.models, not args.no_baselines)
        rows = bench_backbones(specs, args.settings, args.batch_sizes, args.dense_batch, args.precisions, opts,
                               quick=args.quick, progress=progress, dense_precisions=args.dense_precisions)
        if args.plot:
            cls_batch = max((r['batch'] for r in rows if r['setting'] == 'cls'), default=1)
            plotted = [r for r in rows if r['setting'] == 'cls' and r['batch'] == cls_batch
                       and r['precision'] == 'fp32']
            plot_throughput_vs_flops(plotted, args.plot, plot_title(meta, rows, plotted))
    elif args.mode == 'config':
        for config in args.configs:
            if not osp.isfile(config):
                raise SystemExit(f'config file not found: {config}')
        shape = (64, 96) if args.quick and args.shape is None else args.shape
        rows = bench_configs(args.configs, shape, args.batch_size, args.precisions, opts, progress)
    elif args.mode == 'attention':
        dim, heads, batch, res = ((64, 4, 2, [64, 128]) if args.quick else
                                  (args.dim, args.heads, args.batch, args.resolutions))
        if dim % heads:
            raise SystemExit(f'--dim {dim} is not divisible by --heads {heads}')
        rows = bench_attention(res, dim, heads, batch, args.layers, args.precisions, opts, progress=progress)
        if args.plot:
            plot_attention_vs_resolution([r for r in rows if r['precision'] == 'fp32'], args.plot,
                                         plot_title(meta, rows))
    elif args.mode == 'profile':
        shape = (64, 64) if args.quick else tuple(args.shape)
        rows = profile_backbones(select_models(args.models, not args.no_baselines), shape, device, args.top,
                                 progress)
    elif args.mode == 'official':
        if not args.repo:
            raise SystemExit('official mode needs --repo PATH (a clone of an official repository)')
        rows, meta['official_repos'] = run_official(args.repo, opts, args.quick, progress, args.variants,
                                                    args.batch_sizes, not args.no_profile, args.dense_variants,
                                                    rows_file=args.rows_file)
    elif args.mode == 'training':
        rows = bench_demo_training(opts, REPO_ROOT, quick=args.quick)
    else:
        rows = run_report(args, opts, meta)
    if args.mode != 'report':
        print(table(rows, args.mode))
    write_outputs(rows, args.json, args.csv, meta)
    return rows


if __name__ == '__main__':
    main()
