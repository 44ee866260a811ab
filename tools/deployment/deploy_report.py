"""Deployment table of every backbone variant and of whole models: ONNX (dynamic shapes, onnxruntime),
``torch.jit.trace`` and ``torch.compile`` against eager PyTorch.

    python tools/deployment/deploy_report.py --all [--out work_dirs/deploy/report.md]
    python tools/deployment/deploy_report.py --models 'LITv2-*' --checks onnx jit
    python tools/deployment/deploy_report.py --configs configs/lvt/retinanet_lvt_fpn_1x_coco.py --config-shape 800 1216
    python tools/deployment/deploy_report.py --from-json work_dirs/deploy/*.jsonl   # tables of saved results

Per backbone variant (random weights; ``mmvit_ext.deploy.check_backbone``): one ONNX file exported with dynamic
batch, height and width from a 2x3x160x192 batch, run in onnxruntime at 1x3x224x224, 1x3x97x130 and 2x3x320x480;
a trace at 2x3x160x192 and ``torch.compile`` (inductor, dynamic shapes: one compile), both checked at the same three
sizes; the graph breaks; the latencies of all four runtimes at 224x224 (medians of interleaved runs). Per config
(``check_config``): the whole network (backbone, neck, head) exported once with dynamic shapes and checked at each
``--config-shape``.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import traceback
from dataclasses import asdict

import torch

# One RetinaNet per family, two segmentors (SegFormer, Semantic FPN with DTM) and a classifier, from the paper
# configs, with their default check sizes.
DEFAULT_CONFIGS = [
    'configs/lit/retinanet_lit-s_fpn_1x_coco.py',
    'configs/litv2/retinanet_litv2-s_fpn_1x_coco.py',
    'configs/lightvit/retinanet_lightvit-t_fpn_1x_coco.py',
    'configs/lvt/retinanet_lvt_fpn_1x_coco.py',
    'configs/lvt/segformer_lvt_8xb2-160k_ade20k-512x512.py',
    'configs/litv2/fpn_litv2-s_8xb2-80k_ade20k-512x512.py',
    'configs/litv2/litv2-s_8xb128_in1k.py',
]


def default_shapes(config: str):
    if '_ade20k' in config:
        return [(512, 512), (384, 640)]
    if '_in1k' in config:
        return [(224, 224), (256, 320)]
    return [(800, 1216), (512, 640)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Deployment checks of every backbone variant and whole models')
    parser.add_argument('--all', action='store_true', help='every backbone variant and the default configs')
    parser.add_argument('--models', nargs='+', default=None, metavar='PATTERN',
                        help='backbone variants to check (fnmatch patterns, e.g. "LIT-*" "LITv2-small-ws4")')
    parser.add_argument('--checks', nargs='+', default=['onnx', 'jit', 'compile'], choices=['onnx', 'jit', 'compile'],
                        help='backbone checks (default: all three)')
    parser.add_argument('--configs', nargs='+', default=None, help='whole models to check (config files)')
    parser.add_argument('--config-shape', type=int, nargs=2, action='append', metavar=('H', 'W'), default=None,
                        help='input sizes of the whole-model checks; repeatable (default 800x1216 and 512x640 for '
                        'detectors, 512x512 and 384x640 for segmentors, 224x224 and 256x320 for classifiers)')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs per runtime (default 5)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads of every runtime (default: torch\'s)')
    parser.add_argument('--onnx-dir', default=None, help='where the .onnx files go (default: a temporary folder)')
    parser.add_argument('--out', default=None, help='also write the Markdown report to this file')
    parser.add_argument('--json', default=None, help='also write the raw results (JSON lines, one per row)')
    parser.add_argument('--from-json', nargs='+', default=None, metavar='FILE',
                        help='only render the tables of results saved with --json (later rows of a name win)')
    args = parser.parse_args(argv)
    if not (args.all or args.models or args.configs or args.from_json):
        parser.error('nothing to check: give --all, --models, --configs or --from-json')
    return args


def _record(path, kind, report):
    if path:
        with open(path, 'a') as f:
            f.write(json.dumps(dict(kind=kind, **asdict(report))) + '\n')


def render(files) -> str:
    """The Markdown tables of saved JSON lines; a later row of the same variant or config replaces an earlier one."""
    from mmvit_ext import deploy
    rows = {}
    for path in files:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                rows[(row['kind'], row.get('name') or row.get('config'))] = row
    backbones, models = [], []
    for (kind, _), row in rows.items():
        row.pop('kind')
        if kind == 'backbone':
            for key in ('onnx', 'jit', 'compile'):
                row[key] = [deploy.SizeCheck(**c) for c in row[key]]
            backbones.append(deploy.BackboneReport(**row))
        else:
            row['checks'] = [deploy.SizeCheck(**c) for c in row['checks']]
            models.append(deploy.ModelReport(**row))
    sections = []
    if backbones:
        sections.append('## Backbones\n\n' + deploy.backbone_table(backbones))
    if models:
        sections.append('## Whole models\n\n' + deploy.model_table(models))
    return '\n\n'.join(sections) + '\n'


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.from_json:
        print(render(args.from_json))
        return 0
    from mmvit_ext import deploy
    if args.threads:
        torch.set_num_threads(args.threads)
    onnx_dir = args.onnx_dir or tempfile.mkdtemp(prefix='mmvit_deploy_')
    os.makedirs(onnx_dir, exist_ok=True)
    sections = [f'Measured with torch {torch.__version__}, onnxruntime {_ort_version()}, {torch.get_num_threads()} '
                f'CPU threads per runtime; latencies are medians of up to {args.repeat} interleaved runs.']
    failed = False

    if args.all or args.models:
        import fnmatch
        variants = deploy.backbone_variants()
        names = [n for n in variants if args.all and not args.models
                 or any(fnmatch.fnmatch(n.lower(), p.lower()) for p in args.models or ())]
        if not names:
            raise SystemExit(f'no variant matches {args.models}; available: {", ".join(variants)}')
        reports = []
        for name in names:
            print(f'[{name}] checking {", ".join(args.checks)} ...', flush=True)
            try:
                torch.manual_seed(0)
                report = deploy.check_backbone(name, variants[name](), onnx_dir, checks=args.checks,
                                               timing_repeat=args.repeat)
            except Exception as err:  # one failing variant must not hide the others' results
                traceback.print_exc()
                report = deploy.BackboneReport(name, error=f'{type(err).__name__}: {str(err).splitlines()[0][:200]}')
            checks = report.onnx + report.jit + report.compile
            failed |= report.error is not None or any(c.max_diff > 1e-4 for c in checks)
            reports.append(report)
            _record(args.json, 'backbone', report)
            print(deploy.backbone_table([report]).splitlines()[-1], flush=True)
            for line in report.graph_breaks:
                print(f'  graph break: {line}')
        sections.append('## Backbones\n\n' + deploy.backbone_table(reports))

    configs = args.configs or (DEFAULT_CONFIGS if args.all else [])
    if configs:
        reports = []
        for config in configs:
            shapes = args.config_shape or default_shapes(config)
            print(f'[{config}] exporting and checking at {shapes} ...', flush=True)
            report = deploy.check_config(config, onnx_dir, shapes, repeat=args.repeat)
            failed |= any(c.max_diff > 1e-4 for c in report.checks)
            reports.append(report)
            _record(args.json, 'config', report)
            print('\n'.join(deploy.model_table([report]).splitlines()[2:]), flush=True)
        sections.append('## Whole models\n\n' + deploy.model_table(reports))

    text = '\n\n'.join(sections) + '\n'
    print('\n' + text)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
    return 1 if failed else 0


def _ort_version() -> str:
    import onnxruntime
    return onnxruntime.__version__


if __name__ == '__main__':
    sys.exit(main())
