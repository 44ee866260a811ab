"""Export an mmdet / mmseg / mmpretrain model (or any config's model) to ONNX and check it in onnxruntime.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] --shape H W [--dynamic] [--verify]

What is exported is the network up to its raw outputs (``mmvit_ext.deploy.NetworkForward``): a detector's head
outputs before box decoding and NMS, a segmentor's decode-head logits, a classifier's logits. ``--verify`` runs the
file in onnxruntime and the model in PyTorch on the same input (a random image, or ``--image``) through the model's
own data preprocessor, prints the max absolute difference and both runtimes' median latencies (and, for a detector,
compares mmdet's post-processing of both outputs: the part that stays in PyTorch), and exits with status 1 when the
difference exceeds ``--atol`` or the detections differ.
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export a config\'s model to ONNX and verify it in onnxruntime')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (default: random weights)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), required=True,
                        help='input image size (after the data preprocessor\'s padding)')
    parser.add_argument('--batch', type=int, default=1, help='images per batch of the check (default 1)')
    parser.add_argument('--dynamic', action='store_true',
                        help='symbolic batch, height and width: one file for every input size')
    parser.add_argument('--verify', action='store_true',
                        help='run onnxruntime and PyTorch on the same input and compare outputs and latencies')
    parser.add_argument('--verify-shape', type=int, nargs=2, action='append', metavar=('H', 'W'), default=[],
                        help='further sizes to verify (with --dynamic); repeatable')
    parser.add_argument('--image', help='an image file to verify on (resized to --shape) instead of random pixels')
    parser.add_argument('--out', help='output file (default: work_dirs/deploy/<config name>.onnx)')
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset (default 19)')
    parser.add_argument('--atol', type=float, default=1e-4, help='largest accepted difference (default 1e-4)')
    parser.add_argument('--repeat', type=int, default=10, help='timed runs per runtime (default 10)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads of both runtimes (default: torch\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config settings, as in tools/train.py')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle the checkpoint fully (only for files from a source you trust)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmvit_ext import deploy
    from mmvit_ext.engine import explain_errors
    shapes = [tuple(args.shape)] + [tuple(s) for s in args.verify_shape]
    if len(shapes) > 1 and not args.dynamic:
        raise SystemExit('error: --verify-shape needs --dynamic (a static file accepts only the --shape input)')
    if args.verify_shape and not args.verify:
        raise SystemExit('error: --verify-shape needs --verify')
    if args.image and not osp.isfile(args.image):
        raise SystemExit(f'error: image file not found: {args.image}')
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or osp.join('work_dirs', 'deploy', osp.splitext(osp.basename(args.config))[0] + '.onnx')
    with explain_errors(args.config):  # unknown types, missing files, refused checkpoints: one clear message
        result = deploy.export_config(
            args.config, out, shape=tuple(args.shape), checkpoint=args.checkpoint, dynamic=args.dynamic,
            opset=args.opset or deploy.OPSET, batch=args.batch, cfg_options=args.cfg_options,
            trust_checkpoint=args.trust_checkpoint)
    print(f'exported {result.scope} model of {args.config} to {out} in {result.export_s:.1f} s '
          f'(opset {args.opset or deploy.OPSET}, input {"dynamic" if args.dynamic else "static"} '
          f'{tuple(result.example_shape)}, outputs: {", ".join(result.output_names)})')
    if not args.verify:
        return 0
    worst, same_detections = 0., True
    checks = deploy.verify_config(result, out, shapes, batch=args.batch, image=args.image, repeat=args.repeat)
    for (height, width), (check, detections) in zip(shapes, checks):
        worst = max(worst, check.max_diff)
        print(f'image {height}x{width} -> input {check.shape}: max |onnxruntime - pytorch| = {check.max_diff:.3g}; '
              f'latency pytorch {check.pytorch_ms:.1f} ms, onnxruntime {check.other_ms:.1f} ms (medians of up to '
              f'{args.repeat} interleaved runs, {torch.get_num_threads()} threads)')
        if detections is not None:
            same_detections &= detections.same_labels
            same = (f'same labels, max box difference {detections.max_box_diff:.3g} px, max score difference '
                    f'{detections.max_score_diff:.3g}' if detections.same_labels and detections.num_onnx else
                    'same labels' if detections.same_labels else 'DIFFERENT labels')
            print(f'  mmdet post-processing (kept in PyTorch) of both outputs: {detections.num_onnx} detections from '
                  f'onnxruntime\'s, {detections.num_pytorch} from PyTorch\'s; {same}')
    if worst > args.atol or not same_detections:
        print(f'FAILED: the difference {worst:.3g} exceeds --atol {args.atol:g}' if worst > args.atol else
              'FAILED: the post-processed detections differ')
        return 1
    print(f'OK: outputs equal within {args.atol:g}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
