"""Convert an official LVT checkpoint (``Chenglin-Yang/LVT``) to mmvit_ext keys, offline.

    python tools/model_converters/lvt_to_mmvit.py lvt_imagenet.pth.tar lvt-cls_in1k_mmvit.pth
    python tools/model_converters/lvt_to_mmvit.py lvt_plain_head.pth.tar lvt_in1k_mmvit.pth
    python tools/model_converters/lvt_to_mmvit.py lvt_imagenet_pretrained.pth.tar lvt_backbone_mmvit.pth

The kind of file is read from its keys:
- ``lvt_imagenet.pth.tar`` (the ``lvt_cls`` classifier: backbone + class-attention head, ``cls_token`` /
  ``post_network``) becomes an mmpretrain ``ImageClassifier`` checkpoint (``backbone.*`` of ``LVT``, ``head.*`` of
  ``LVTClassAttentionHead``) for ``configs/lvt/lvt-cls_8xb128_in1k.py``: ``python tools/test.py
  configs/lvt/lvt-cls_8xb128_in1k.py lvt-cls_in1k_mmvit.pth``.
- a plain-head classifier ``lvt(with_cls_head=True)`` (``backbone.*``, ``norm.*``, ``head.*``) becomes the
  ``ImageClassifier`` of ``configs/lvt/lvt_8xb128_in1k.py``: ``norm`` -> ``backbone.norm3``, ``head`` -> ``head.fc``.
- ``lvt_imagenet_pretrained.pth.tar`` (the raw backbone dict that the official seg/det code loads), an official
  dense checkpoint or one of ours becomes ``backbone.*`` keys of ``LVT``; a dense checkpoint keeps its neck and heads.
The result is validated by loading it strictly into the model it is meant for (``load_converted``: a missing,
unexpected or wrongly shaped key raises ``CheckpointMismatchError`` naming it). Converting a converted file again
changes nothing. The online path needs no conversion for the backbone:
``init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet.pth.tar')``.
"""
import argparse
from collections import OrderedDict

import torch

from mmvit_ext.checkpoint import trust_checkpoints
from mmvit_ext.checkpoint.common import ConvertedState, extract_state_dict, load_converted, read_checkpoint
from mmvit_ext.checkpoint.lvt import classifier_head_type, convert_lvt, convert_lvt_classifier
from mmvit_ext.engine import add_trust_argument, checkpoint_errors_as_messages
from mmvit_ext.models.backbones.lvt import LVT, lvt_classifier_cfg


def convert_file(src: str, dst: str) -> str:
    """Convert ``src`` to ``dst``; returns what was written: ``'class_attention'`` or ``'linear'`` (the classifier's
    head, as ``lvt_classifier_cfg(head=...)`` names it) or ``'backbone'``."""
    state = extract_state_dict(read_checkpoint(src), prefix=None)
    head_type = classifier_head_type(state)
    if head_type is not None:
        from mmpretrain.registry import MODELS
        out = convert_lvt_classifier(state)
        num_classes = out['head.fc.weight'].shape[0]
        classifier = MODELS.build(lvt_classifier_cfg(num_classes=num_classes, head=head_type))
        load_converted(classifier, ConvertedState(out), source=src)
        kind = head_type
    else:
        backbone_state = OrderedDict((k, v) for k, v in state.items() if k.startswith('backbone.'))
        if not backbone_state:
            backbone_state = state  # our backbone-only layout (``stages.*``)
        backbone = LVT()
        load_converted(backbone, convert_lvt(backbone_state, backbone), allow_missing=backbone.new_keys_on_pretrained,
                       source=src)
        out = OrderedDict(('backbone.' + k, v) for k, v in backbone.state_dict().items())
        # a dense model: keep its neck and heads (official ones nest the backbone one level deeper)
        if backbone_state is not state:
            out.update((k, v) for k, v in state.items() if not k.startswith('backbone.'))
        kind = 'backbone'
    torch.save(dict(state_dict=out, meta=dict(converted_from=src, content=kind)), dst)
    return kind


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert an official LVT checkpoint to mmvit_ext keys')
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output file')
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    trust_checkpoints(args.trust_checkpoint)
    with checkpoint_errors_as_messages():
        kind = convert_file(args.src, args.dst)
    print(f'saved {args.dst} ({kind if kind == "backbone" else kind + " classifier"}), validated by a strict load')


if __name__ == '__main__':
    main()
