"""Params and FLOPs of any mmdet / mmseg / mmpretrain config's model, on a random input (no dataset needed).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W | --shape S] [--batch-size 1]
        [--cfg-options KEY=VALUE ...] [--by-operator] [--json OUT.json]

The model is built in the config's ``default_scope`` without pretrained weights (SyncBN reverted to BN); a random
uint8 image of the given shape goes through the model's own data preprocessor (normalisation, padding to the
size divisor), then the raw network forward (``mode='tensor'``: backbone, neck, heads, no post-processing) is traced
with ``mmengine.analysis`` (one multiply-add = one FLOP, as in the papers). Fused attention and mmcv's deformable
conv are counted too (see ``mmvit_ext.analysis``). Defaults: 1280x800 for mmdet (mmdet's convention; pass
``--shape 800 1333`` for the papers' COCO setting), 512x512 for mmseg, 224x224 for mmpretrain.
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction

from mmvit_ext.analysis import config_complexity, format_count


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config\'s model (random input).')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input size: H W, or one S for S x S (default: by codebase, see module doc)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward (FLOPs scale with it)')
    parser.add_argument('--by-operator', action='store_true', help='also print FLOPs per operator type')
    parser.add_argument('--json', default=None, help='also write the numbers to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (lists as key="[a,b]")')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f'--shape takes H W or a single S, got {len(args.shape)} values')
    if args.shape is not None and min(args.shape) < 1:
        parser.error(f'--shape must be positive, got {args.shape}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be positive, got {args.batch_size}')
    if not osp.isfile(args.config):
        parser.error(f'config file not found: {args.config}')
    return args


def main(argv=None):
    args = parse_args(argv)
    result = config_complexity(args.config, args.shape, args.batch_size, args.cfg_options, args.by_operator)
    split = '=' * 40
    print(f'{split}\nConfig: {result["config"]} ({result["scope"]})\n'
          f'Input shape: {tuple(result["input_shape"])} (padded to {tuple(result["padded_shape"])}), '
          f'batch {result["batch_size"]}\n'
          f'Flops: {format_count(result["flops"])}\nParams: {format_count(result["params"])}\n{split}')
    if args.by_operator:
        for op, flops in sorted(result['flops_by_operator'].items(), key=lambda kv: -kv[1]):
            print(f'  {op:<40s} {format_count(flops)}')
        if result['unsupported_ops']:
            print('Not counted (no FLOP handle): ' + ', '.join(
                f'{op} x{n}' for op, n in sorted(result['unsupported_ops'].items())))
    print('!!!Please be cautious if you use the results in papers. FLOPs depend on the input shape and count one '
          'multiply-add as one FLOP; element-wise ops are not counted.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == '__main__':
    main()
