"""Convert an official LIT checkpoint (``ziplab/LIT``) to mmvit_ext keys, offline.

    python tools/model_converters/lit_to_mmvit.py lit_s.pth lit-s_mmvit.pth
    python tools/model_converters/lit_to_mmvit.py lit_s.pth lit-s_800_mmvit.pth --pretrain-img-size 800
    python tools/model_converters/lit_to_mmvit.py retina_lit_s.pth retinanet_lit-s_mmvit.pth

The variant (Ti/S/M/B), the stored position-table size and the output norms are read from the checkpoint;
``--pretrain-img-size`` resizes the position tables / embeddings to another size (224 ImageNet, 800 detection,
512 segmentation). The result is validated by loading it strictly into the matching ``LIT`` backbone.

- Classification files (``lit_ti.pth`` ... ``lit_b.pth``) become an mmpretrain ``ImageClassifier`` checkpoint
  (``backbone.*`` + ``head.fc.*``, the final ``norm`` as ``backbone.norm3``) usable with
  ``configs/lit/lit-*_8xb128_in1k.py`` (``tools/test.py``), and also as ``init_cfg=dict(type='Pretrained',
  checkpoint=...)`` of a dense backbone (prefix ``backbone.``), which, like the official dense models, starts its
  output norms (``norm3`` too) fresh.
- Dense files (``retina_lit_ti.pth``, ``mask_rcnn_lit_s.pth``, ``sem_fpn_lit_s.pth``, ...) keep their neck/head keys
  unchanged (mmdet 2.11 / mmseg 0.13 names) and get the backbone keys converted.
"""
import argparse
import math
import re
from collections import OrderedDict

import torch

from mmvit_ext.checkpoint import trust_checkpoints
from mmvit_ext.checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from mmvit_ext.checkpoint.lit import convert_lit
from mmvit_ext.engine import add_trust_argument, checkpoint_errors_as_messages
from mmvit_ext.models.backbones.lit import LIT


def infer_backbone_args(state: dict) -> dict:
    """LIT constructor arguments that fit an official (or our own) backbone state dict."""
    stem = state.get('patch_embed1.proj.weight', state.get('patch_embed.proj.weight'))
    if stem is None:
        raise ValueError('not a LIT checkpoint: no patch_embed1.proj.weight / patch_embed.proj.weight')
    dims = stem.shape[0]
    tiny = 'pos_embed1' in state or 'stages.0.pos_embed.weight' in state
    if tiny:
        arch = 'tiny'
    else:
        stage3 = {m[1] for k in state for m in [re.match(r'(?:layers|stages)\.2\.blocks\.(\d+)\.', k)] if m}
        arch = {96: 'small' if len(stage3) <= 6 else 'medium', 128: 'base'}.get(dims)
        if arch is None:
            raise ValueError(f'no LIT variant has a {dims}-channel stem')
    classification = any(k.startswith('head.') for k in state)
    norms = sorted({int(m[1]) for k in state for m in [re.match(r'norm(\d)\.', k)] if m})
    if 'norm.weight' in state:
        norms = [3]
    args = dict(arch=arch, out_norm_indices=tuple(norms))
    if classification:
        args.update(out_indices=(3, ), out_type='cls_token' if tiny and 'cls_token' in state else 'featmap')
    table = next((v for k, v in state.items() if k.endswith('relative_position_bias_table') and '.2.' in k), None)
    if table is not None:
        args['pretrain_img_size'] = 16 * (math.isqrt(table.shape[0]) + 1) // 2
    return args


def convert_file(src: str, dst: str, pretrain_img_size: int = None) -> dict:
    checkpoint = read_checkpoint(src)
    state = extract_state_dict(checkpoint, prefix=None)
    is_dense = any(k.startswith('backbone.') for k in state)
    backbone_state = extract_state_dict(state, prefix='backbone.')
    args = infer_backbone_args(backbone_state)
    if pretrain_img_size:
        args['pretrain_img_size'] = pretrain_img_size
    model = LIT(**args)
    converted = convert_lit(backbone_state, model)
    load_converted(model, converted, source=src)
    out = OrderedDict(('backbone.' + k, v) for k, v in converted.state_dict.items())
    if is_dense:
        out.update((k, v) for k, v in state.items() if not k.startswith('backbone.'))
    else:
        out.update((k.replace('head.', 'head.fc.', 1), v) for k, v in state.items() if k.startswith('head.'))
    torch.save(dict(state_dict=out, meta=dict(converted_from=src, backbone=args)), dst)
    return args


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert an official LIT checkpoint to mmvit_ext keys')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--pretrain-img-size', type=int, default=None,
                        help='resize position tables/embeddings to this image size (default: keep the stored size)')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    with checkpoint_errors_as_messages():
        backbone = convert_file(args.src, args.dst, args.pretrain_img_size)
    print(f'saved {args.dst} (backbone: LIT({", ".join(f"{k}={v!r}" for k, v in backbone.items())}))')


if __name__ == '__main__':
    main()
