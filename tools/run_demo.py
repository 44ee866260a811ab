"""The embedded demo (what ``make demo`` runs after set-up): a LITv2 detector trained and evaluated on CPU in minutes.

1. generate the demo scenes in ``data/demo`` unless they are already there
   (``tools/dataset_converters/generate_demo_data.py --if-absent``),
2. train the demo detector with ``python tools/train.py CONFIG --work-dir WORK_DIR``,
3. evaluate the last checkpoint with the COCO metric and draw its predictions on the val images with
   ``python tools/test.py CONFIG CKPT --work-dir WORK_DIR --show-dir vis``,
4. print where the log, the checkpoint and the pictures are, and the final metrics.

    python tools/run_demo.py                                        # the RetinaNet + LITv2 demo
    python tools/run_demo.py --config configs/demo/mask-rcnn_litv2-demo_fpn_12e_demo-scenes.py
    python tools/run_demo.py --cfg-options train_cfg.max_epochs=2 train_cfg.val_interval=2   # a 1-minute check
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = 'configs/demo/retinanet_litv2-demo_fpn_12e_demo-scenes.py'


def parse_args():
    parser = argparse.ArgumentParser(description='Train, evaluate and visualise a demo detector on CPU')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help=f'demo config (default: {DEFAULT_CONFIG})')
    parser.add_argument('--work-dir', help='output folder (default: work_dirs/demo/<config name>)')
    parser.add_argument('--skip-train', action='store_true', help='only test the last checkpoint in --work-dir')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='passed to train.py and test.py, e.g. train_cfg.max_epochs=5 (a shorter demo)')
    return parser.parse_args()


def run(step, cmd):
    print(f'\n[demo] {step}\n[demo] $ {" ".join(cmd)}', flush=True)
    start = time.time()
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f'[demo] FAILED: {step} (exit code {result.returncode})')
    return time.time() - start


def latest(pattern, what):
    paths = sorted(glob.glob(pattern), key=osp.getmtime)
    if not paths:
        sys.exit(f'[demo] FAILED: no {what} ({pattern})')
    return paths[-1]


def main():
    args = parse_args()
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'demo', name)
    python = sys.executable
    options = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
    timings = {}
    timings['data'] = run('generate the demo scenes (skipped when present)',
                          [python, 'tools/dataset_converters/generate_demo_data.py', '--if-absent'])
    if not args.skip_train:
        timings['train'] = run('train on CPU', [python, 'tools/train.py', args.config, '--work-dir', work_dir,
                                                *options])
    checkpoint = latest(osp.join(ROOT, work_dir, '*.pth'), 'checkpoint')
    timings['test'] = run('evaluate the last checkpoint and draw its predictions',
                          [python, 'tools/test.py', args.config, checkpoint, '--work-dir', work_dir,
                           '--show-dir', 'vis', *options])

    run_dir = latest(osp.join(ROOT, work_dir, '[0-9]*_[0-9]*'), 'test run folder')
    metrics = json.load(open(latest(osp.join(run_dir, '*.json'), 'metrics file')))
    pictures = sorted(glob.glob(osp.join(run_dir, 'vis', '**', '*.*'), recursive=True))
    print('\n[demo] done in ' + ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()))
    print(f'[demo] training log and checkpoint: {osp.relpath(osp.join(ROOT, work_dir))} '
          f'(checkpoint {osp.basename(checkpoint)})')
    print(f'[demo] test log and metrics:        {osp.relpath(run_dir)}')
    print(f'[demo] {len(pictures)} images with drawn predictions: {osp.relpath(osp.join(run_dir, "vis"))}')
    print('[demo] final val metrics:')
    for key, value in metrics.items():
        if isinstance(value, float) and key not in ('time', 'data_time'):
            print(f'[demo]   {key:28s} {value:.3f}')


if __name__ == '__main__':
    main()
