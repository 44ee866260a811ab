"""Official LITv2 checkpoints (ziplab/LITv2) -> mmvit_ext.

Our module names are the official ones, so the conversion only decides what to keep:
- classification files (``litv2_s.pth`` ...: ``patch_embed``, ``layers.i.blocks``, ``layers.i.downsample.dconv``,
  final ``norm``, ``head``): the backbone takes everything but ``norm`` and ``head`` (skipped with the reason; the
  official dense backbones also start their output norms fresh). ``convert_litv2_classifier`` maps the whole file
  onto the mmpretrain classifier (``backbone.*``, ``backbone.norm3`` <- ``norm``, ``head.fc`` <- ``head``).
- dense files (``backbone.`` prefix already removed): output norms ``norm1..norm3`` (detection) or ``norm0..norm3``
  (segmentation); a stage norm this backbone does not have (e.g. ``norm0`` with ``stage0_out_norm=False``) is
  skipped with the reason.
- our own files: unchanged (the conversion is idempotent).
Anything else (other families, other variants) reaches the strict loader and fails with the offending keys.
"""
import re
from collections import OrderedDict
from typing import Dict

import torch
import torch.nn as nn

from .common import ConvertedState

__all__ = ['convert_litv2', 'convert_litv2_classifier']

_OUTPUT_NORM = re.compile(r'norm\d\.')


def convert_litv2(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> ConvertedState:
    """Official (classification or dense) or own LITv2 backbone weights -> ``model``'s keys."""
    own = model.state_dict()
    converted, skipped = OrderedDict(), OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('head.'):
            skipped[key] = 'classifier head'
        elif key.startswith('norm.'):
            skipped[key] = ('final norm of the classifier; the backbone output norms start fresh as in the official '
                            'dense models (a classifier loads it through convert_litv2_classifier)')
        elif _OUTPUT_NORM.match(key) and key not in own:
            skipped[key] = 'output norm of a stage this backbone does not normalise (out_indices / stage0_out_norm)'
        else:
            converted[key] = value
    return ConvertedState(converted, dict(skipped))


def convert_litv2_classifier(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official classification weights -> mmpretrain ``ImageClassifier`` keys (see ``litv2_classifier_cfg``).

    Keys already in the classifier layout (``backbone.*``, ``head.fc.*``) are kept, so the mapping is idempotent.
    """
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(('backbone.', 'head.fc.')):
            converted[key] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        elif key.startswith('norm.'):
            converted['backbone.norm3.' + key[len('norm.'):]] = value
        else:
            converted['backbone.' + key] = value
    return converted
