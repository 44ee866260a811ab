"""Convert an official LITv2 checkpoint (``ziplab/LITv2``) to mmvit_ext, offline, and validate it.

    python tools/model_converters/litv2_to_mmvit.py litv2_s.pth litv2-s_mmvit.pth
    python tools/model_converters/litv2_to_mmvit.py litv2_s.pth litv2-s_in1k_mmvit.pth --classifier
    python tools/model_converters/litv2_to_mmvit.py retinanet_litv2_s_fpn_1x_coco_ws_4.pth out.pth --local-ws 0 0 4 1

- Classification files (``litv2_s.pth`` ...): the backbone weights (for ``init_cfg=dict(type='Pretrained', ...)``
  of a dense config), or with ``--classifier`` the whole mmpretrain ``ImageClassifier`` (``backbone.*``,
  ``head.fc.*``) for ``configs/litv2/litv2-*_8xb128_in1k.py`` and ``tools/test.py``.
- Dense files (``backbone.`` prefix): the backbone keys are converted; neck and head keys are kept unchanged, so
  the file serves both as ``load_from`` and as a backbone ``init_cfg``.
The variant is inferred from the weights unless ``--arch`` is given. The result is loaded strictly into the built
model; a mismatch raises ``CheckpointMismatchError`` naming every offending key.
"""
import argparse
import re
from collections import OrderedDict

import torch

from mmvit_ext.checkpoint import trust_checkpoints
from mmvit_ext.checkpoint.common import ConvertedState, extract_state_dict, load_converted, read_checkpoint
from mmvit_ext.checkpoint.litv2 import convert_litv2, convert_litv2_classifier
from mmvit_ext.engine import add_trust_argument, checkpoint_errors_as_messages
from mmvit_ext.models.backbones.litv2 import LITv2, litv2_classifier_cfg


def infer_arch(state: dict) -> str:
    """'small' / 'medium' / 'base' from the stem width and the number of stage-3 blocks."""
    stem = state.get('patch_embed.proj.weight')
    if stem is None:
        raise ValueError('not a LITv2 checkpoint: it has no patch_embed.proj.weight')
    stage3_blocks = {m[1] for k in state for m in [re.match(r'layers\.2\.blocks\.(\d+)\.', k)] if m}
    arch = {(96, 6): 'small', (96, 18): 'medium', (128, 18): 'base'}.get((stem.shape[0], len(stage3_blocks)))
    if arch is None:
        raise ValueError(f'no LITv2 variant has a {stem.shape[0]}-channel stem and {len(stage3_blocks)} '
                         'stage-3 blocks; pass --arch with a custom model in Python instead')
    return arch


def convert_file(src: str, dst: str, arch=None, local_ws=(0, 0, 2, 1), alpha=0.9, classifier=False) -> dict:
    """Convert ``src`` to ``dst``; returns ``dict(arch=..., tensors=..., skipped={key: reason})``."""
    checkpoint = read_checkpoint(src)
    if classifier:
        from mmpretrain.registry import MODELS
        state = extract_state_dict(checkpoint, prefix=None)
        arch = arch or infer_arch(state)
        head = state.get('head.weight', state.get('head.fc.weight'))
        num_classes = head.shape[0] if head is not None else 1000
        model = MODELS.build(litv2_classifier_cfg(arch, num_classes, local_ws=local_ws, alpha=alpha))
        converted = ConvertedState(convert_litv2_classifier(state))
        load_converted(model, converted, source=src)
        output = converted.state_dict
    else:
        full = extract_state_dict(checkpoint, prefix=None)
        state = extract_state_dict(checkpoint, prefix='backbone.')
        arch = arch or infer_arch(state)
        model = LITv2(arch, local_ws=local_ws, alpha=alpha, stage0_out_norm='norm0.weight' in state)
        converted = convert_litv2(state, model)
        load_converted(model, converted, allow_missing=LITv2.new_keys_on_pretrained, source=src)
        if len(full) == len(state):  # classification file: backbone only
            output = converted.state_dict
        else:  # dense file: converted backbone + the neck / heads as they are
            output = OrderedDict(('backbone.' + k, v) for k, v in converted.state_dict.items())
            output.update((k, v) for k, v in full.items() if not k.startswith('backbone.'))
    meta = dict(source=str(src), arch=arch, local_ws=list(local_ws), alpha=alpha, classifier=classifier)
    torch.save({'state_dict': output, 'meta': meta}, dst)
    return dict(arch=arch, tensors=len(output), skipped=converted.skipped)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official LITv2 checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--arch', choices=sorted(LITv2.arch_zoo), help='variant (default: inferred)')
    parser.add_argument('--local-ws', type=int, nargs=4, default=[0, 0, 2, 1],
                        help='HiLo window size per stage; 0 0 4 1 for the "*" detection models')
    parser.add_argument('--alpha', type=float, default=0.9, help='Lo-Fi head ratio (the alpha_*.pth study files)')
    parser.add_argument('--classifier', action='store_true',
                        help='write the mmpretrain ImageClassifier (backbone + final norm + head)')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    with checkpoint_errors_as_messages():
        report = convert_file(args.src, args.dst, args.arch, tuple(args.local_ws), args.alpha, args.classifier)
    print(f'{args.src} -> {args.dst}: LITv2-{report["arch"]}, {report["tensors"]} tensors, validated by a strict '
          'load')
    for key, reason in report['skipped'].items():
        print(f'  skipped {key}: {reason}')


if __name__ == '__main__':
    main()
