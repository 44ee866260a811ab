"""Convert an official LightViT checkpoint (``hunto/LightViT``) to mmvit_ext keys, offline.

    python tools/model_converters/lightvit_to_mmvit.py lightvit_tiny_78.7.ckpt lightvit-t_mmvit.pth
    python tools/model_converters/lightvit_to_mmvit.py mask_rcnn_lightvit_tiny_fpn_1x.pth mask-rcnn_lightvit-t_mmvit.pth

The variant and the global-token count are read from the checkpoint (weights under ``'state_dict'``, ``'model'`` or
a raw dict); the result is validated by loading it strictly into the matching model.

- Classification files (``lightvit_{tiny,small,base}_*.ckpt``) become an mmpretrain ``ImageClassifier`` checkpoint
  (``backbone.*`` of ``LightViT(out_type='tokens')``, ``neck.*`` of ``LightViTClsNeck``, ``head.fc.*``) for
  ``configs/lightvit/lightvit-*_8xb128_in1k.py``; the same file also serves as ``init_cfg=dict(type='Pretrained',
  checkpoint=...)`` of a dense backbone (the head is skipped with a warning).
- Dense files (official Mask R-CNN, ``backbone.`` prefix) get their backbone keys converted; neck and heads keep
  their names (``LightViTFPN`` uses the official neck names). The official LightViT-T detector has 512 global
  tokens: build it with ``num_global_tokens=512``.
"""
import argparse
from collections import OrderedDict

import torch

from mmvit_ext.checkpoint import trust_checkpoints
from mmvit_ext.checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from mmvit_ext.checkpoint.lightvit import convert_lightvit, convert_lightvit_classifier
from mmvit_ext.engine import add_trust_argument, checkpoint_errors_as_messages
from mmvit_ext.models.backbones.lightvit import LightViT
from mmvit_ext.models.heads.lightvit_head import LightViTClsNeck

_ARCH_BY_STEM_WIDTH = {64: 'tiny', 96: 'small', 128: 'base'}


def infer_backbone_args(state: dict, classification: bool) -> dict:
    """LightViT constructor arguments that fit an official (or our own) backbone state dict."""
    proj = state.get('patch_embed.proj.weight')
    if proj is None or 'global_token' not in state:
        raise ValueError('not a LightViT checkpoint: no patch_embed.proj.weight / global_token')
    arch = _ARCH_BY_STEM_WIDTH.get(proj.shape[0])
    if arch is None:
        raise ValueError(f'no LightViT variant has a {proj.shape[0]}-channel stem')
    args = dict(arch=arch, num_global_tokens=state['global_token'].shape[1])
    if classification:
        args.update(out_type='tokens', out_indices=(2, ))
    return args


def convert_file(src: str, dst: str) -> dict:
    state = extract_state_dict(read_checkpoint(src), prefix=None)
    backbone_state = extract_state_dict(state, prefix='backbone.')
    args = infer_backbone_args(backbone_state, classification='head.weight' in state or 'head.fc.weight' in state)
    backbone = LightViT(**args)
    converted = convert_lightvit(backbone_state, backbone)
    load_converted(backbone, converted, allow_missing=backbone.new_keys_on_pretrained, source=src)
    if args.get('out_type') != 'tokens':
        out = OrderedDict(('backbone.' + k, v) for k, v in converted.state_dict.items())
        if any(k.startswith('backbone.') for k in state):  # a detector: keep its neck and heads
            out.update((k, v) for k, v in state.items() if not k.startswith('backbone.'))
    else:
        out = convert_lightvit_classifier(state)
        neck = LightViTClsNeck(backbone.embed_dims[-1], out['neck.expand.0.weight'].shape[0])
        neck.load_state_dict({k[len('neck.'):]: v for k, v in out.items() if k.startswith('neck.')}, strict=True)
    torch.save(dict(state_dict=out, meta=dict(converted_from=src, backbone=args)), dst)
    return args


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert an official LightViT checkpoint to mmvit_ext keys')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    with checkpoint_errors_as_messages():
        backbone = convert_file(args.src, args.dst)
    print(f'saved {args.dst} (backbone: LightViT({", ".join(f"{k}={v!r}" for k, v in backbone.items())}))')


if __name__ == '__main__':
    main()
