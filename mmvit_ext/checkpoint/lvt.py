"""Official LVT checkpoints (Chenglin-Yang/LVT) -> mmvit_ext.

Official files and their keys (reference doc §4.5):
- ``lvt_imagenet.pth.tar`` (``lvt_cls``, weights under ``'model'`` or ``'state_dict'``): the backbone under
  ``backbone.{stage}.0`` (patch embedding) / ``backbone.{stage}.1.{block}``, plus the class-attention head
  ``cls_token``, ``post_network.{0,1}``, ``norm``, ``head``, ``aux_head``;
- the plain-head classifier ``lvt(with_cls_head=True)`` (timm checkpoint, weights under ``'state_dict'``): the same
  backbone, ``norm`` (LN over the stage-4 map) and ``head`` (Linear on the mean over positions);
- ``lvt_imagenet_pretrained.pth.tar``: a raw dict of the 148 ``backbone.*`` tensors (what the seg/det code loads);
- official dense checkpoints: the same under one more ``backbone.`` prefix.

Layout changes (``convert_lvt``):
- ``backbone.i.0.*`` -> ``stages.i.patch_embed.*``, ``backbone.i.1.j.*`` -> ``stages.i.blocks.j.*``;
- CSA: ``attn.attn`` -> ``attn.attn_weights``; ``attn.weight.weight`` (9C, C, 1, 1), the 9 per-tap C x C
  projections of the grouped 1x1 conv -> ``attn.tap_proj`` (9, C, C) (same memory order, tap-major);
- RASA: ``attn.ds.weight`` -> ``attn.atrous_kernel``; ``q``, ``kv``, ``proj``, ``sr``, ``norm`` unchanged;
- stage-1 Linear MLP ``mlp.fc1`` / ``mlp.fc2`` -> mmcv FFN ``mlp.layers.0.0`` / ``mlp.layers.1``;
- conv-MLP: 1x1 convs ``mlp.fc1`` / ``mlp.fc2`` (O, I, 1, 1) -> ConvFFN Linears (O, I); ``mlp.depconv`` ->
  ``mlp.dwconv.dwconv``;
- plain-classifier output norms ``downstream_norms.i`` (and the final ``norm`` of ``lvt(with_cls_head=True)``) ->
  ``norm{i}`` when the backbone has them (``out_norm=True``).
Keys already in our layout pass unchanged, so the conversion is idempotent. Everything else (the ``lvt_cls`` head,
decode heads, necks) is reported as skipped with the reason; keys of another family end up missing and the strict
loader raises.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch
import torch.nn as nn

from .common import ConvertedState

__all__ = ['classifier_head_type', 'convert_lvt', 'convert_lvt_cls_head', 'convert_lvt_classifier']

_OFFICIAL_BLOCK = re.compile(r'^(\d+)\.1\.(\d+)\.(.+)$')
_OFFICIAL_EMBED = re.compile(r'^(\d+)\.0\.(.+)$')
_DOWNSTREAM_NORM = re.compile(r'^downstream_norms\.(\d+)\.(.+)$')
_OWN = re.compile(r'^(stages\.|norm\d\.)')
_CLS_HEAD = ('cls_token', 'post_network.', 'head.', 'aux_head.')

# official block sub-key -> ours (applied to the part after ``backbone.i.1.j.``)
_BLOCK_RENAMES = (
    ('attn.attn.', 'attn.attn_weights.'),
    ('attn.weight.weight', 'attn.tap_proj'),
    ('attn.ds.weight', 'attn.atrous_kernel'),
    ('mlp.depconv.', 'mlp.dwconv.dwconv.'),
)


def _strip_backbone(key: str) -> str:
    while key.startswith('backbone.'):
        key = key[len('backbone.'):]
    return key


def _convert_block_key(rest: str, value: torch.Tensor):
    """Official key inside a block (after ``backbone.i.1.j.``) of a CSA or RASA/conv-MLP block -> ours."""
    for old, new in _BLOCK_RENAMES:
        if rest.startswith(old):
            rest = new + rest[len(old):]
            break
    if rest == 'attn.tap_proj' and value.dim() == 4:
        channels = value.shape[1]
        value = value.reshape(-1, channels, channels)  # (taps * C_out, C_in, 1, 1) -> (taps, C_out, C_in)
    elif rest.startswith(('mlp.fc1.', 'mlp.fc2.')) and value.dim() == 4:
        value = value.flatten(1)  # conv-MLP 1x1 conv (O, I, 1, 1) -> ConvFFN Linear (O, I)
    return rest, value


def convert_lvt(state_dict: Dict[str, torch.Tensor], model: Optional[nn.Module] = None) -> ConvertedState:
    """Official (classification, backbone-only or dense) or own LVT backbone weights -> ``model``'s keys.

    ``model`` (an ``LVT``) decides whether output norms are kept; without it they are kept.
    """
    own = model.state_dict() if model is not None else None
    state = OrderedDict((_strip_backbone(k), v) for k, v in state_dict.items())
    # The stage-1 MLP is a Linear MLP (2-D fc weights), later ones conv-MLPs (4-D): decide biases per block.
    linear_mlp_blocks = {k[:-len('.mlp.fc1.weight')] for k, v in state.items()
                         if k.endswith('.mlp.fc1.weight') and v.dim() == 2 and _OFFICIAL_BLOCK.match(k)}
    # ``norm`` is the plain classifier's LN before pooling, unless the file is an lvt_cls (norm after the head).
    has_cls_head = any(k.startswith(('cls_token', 'post_network.')) for k in state)
    converted, skipped = OrderedDict(), OrderedDict()

    def keep_norm(index: str, rest: str, source: str, value: torch.Tensor):
        key = f'norm{index}.{rest}'
        if own is None or key in own:
            converted[key] = value
        else:
            skipped[source] = 'output norm of a stage this backbone does not normalise (out_norm / out_indices)'

    for key, value in state.items():
        block, embed, downstream = _OFFICIAL_BLOCK.match(key), _OFFICIAL_EMBED.match(key), _DOWNSTREAM_NORM.match(key)
        if _OWN.match(key):
            converted[key] = value
        elif block:
            stage, index, rest = block.groups()
            linear_mlp = f'{stage}.1.{index}' in linear_mlp_blocks
            if linear_mlp and rest.startswith(('mlp.fc1.', 'mlp.fc2.')):
                rest = rest.replace('mlp.fc1.', 'mlp.layers.0.0.').replace('mlp.fc2.', 'mlp.layers.1.')
            else:
                rest, value = _convert_block_key(rest, value)
            converted[f'stages.{stage}.blocks.{index}.{rest}'] = value
        elif embed:
            stage, rest = embed.groups()
            converted[f'stages.{stage}.patch_embed.{rest}'] = value
        elif downstream:
            keep_norm(downstream.group(1), downstream.group(2), key, value)
        elif key.startswith('norm.') and not has_cls_head:
            keep_norm('3', key[len('norm.'):], key, value)
        elif key.startswith(_CLS_HEAD) or key.startswith('norm.'):
            skipped[key] = 'classification head (the classifier loads it, see convert_lvt_classifier)'
        else:
            skipped[key] = 'not part of the LVT backbone'
    return ConvertedState(converted, dict(skipped))


def convert_lvt_cls_head(state_dict: Dict[str, torch.Tensor]) -> ConvertedState:
    """The class-attention head of an official ``lvt_cls`` file (or ours) -> ``LVTClassAttentionHead`` keys.

    ``cls_token`` / ``norm`` unchanged; ``post_network.k`` -> ``post_layers.k`` (with the Linear MLP ``fc1`` /
    ``fc2`` -> mmcv FFN ``layers.0.0`` / ``layers.1``); ``head`` -> ``fc``; ``aux_head`` -> ``aux_fc``.
    Keys of our classifier layout (``head.<our key>``) pass unchanged.
    """
    converted, skipped = OrderedDict(), OrderedDict()
    for key, value in state_dict.items():
        if key in ('head.weight', 'head.bias'):
            key = 'fc.' + key[len('head.'):]
        elif key.startswith('head.'):
            key = key[len('head.'):]
        elif key.startswith('aux_head.'):
            key = 'aux_fc.' + key[len('aux_head.'):]
        elif key.startswith('post_network.'):
            key = 'post_layers.' + key[len('post_network.'):]
            key = key.replace('.mlp.fc1.', '.mlp.layers.0.0.').replace('.mlp.fc2.', '.mlp.layers.1.')
        if key == 'cls_token' or key.startswith(('norm.', 'post_layers.', 'fc.', 'aux_fc.')):
            converted[key] = value
        else:
            skipped[key] = 'not part of the class-attention head'
    return ConvertedState(converted, dict(skipped))


def classifier_head_type(state_dict: Dict[str, torch.Tensor]) -> Optional[str]:
    """The classifier a state dict (official or ours) holds, read from its keys; ``None`` for a backbone file.

    ``'class_attention'``: ``lvt_cls`` (``cls_token`` / ``post_network``; ours ``head.cls_token``),
    ``lvt_classifier_cfg(head='class_attention')``. ``'linear'``: ``lvt(with_cls_head=True)`` (``norm`` + ``head``;
    ours ``backbone.norm3`` + ``head.fc``), ``lvt_classifier_cfg(head='linear')``.
    """
    if any(k.startswith(('cls_token', 'post_network.', 'head.cls_token', 'head.post_layers.')) for k in state_dict):
        return 'class_attention'
    if any(k.startswith('head.') for k in state_dict):
        return 'linear'
    return None


def convert_lvt_classifier(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A whole official classifier file -> mmpretrain ``ImageClassifier`` keys (``backbone.*``, ``head.*``).

    ``lvt_cls`` -> ``LVT`` + ``LVTClassAttentionHead``; the plain-head ``lvt(with_cls_head=True)`` -> ``LVT`` with
    ``norm3`` (<- ``norm``) + ``LinearClsHead`` (``head.fc`` <- ``head``). Idempotent: a converted classifier maps
    onto itself. Raises ``KeyError`` naming keys that belong to neither.
    """
    head_type = classifier_head_type(state_dict)
    if head_type is None:
        raise KeyError('convert_lvt_classifier: no classifier head (head.* / cls_token) in the state dict')
    if head_type == 'class_attention':
        backbone_part = {k: v for k, v in state_dict.items() if k.startswith('backbone.')}
        head = convert_lvt_cls_head({k: v for k, v in state_dict.items() if not k.startswith('backbone.')})
        unknown, head_state = sorted(head.skipped), head.state_dict
    else:
        backbone_part = {k: v for k, v in state_dict.items() if k.startswith(('backbone.', 'norm.'))}
        head_state = OrderedDict(('fc.' + k[len('head.'):] if k in ('head.weight', 'head.bias') else k[len('head.'):],
                                  v) for k, v in state_dict.items() if k.startswith('head.'))
        unknown = sorted(k for k in state_dict if not k.startswith(('backbone.', 'norm.', 'head.')))
    if unknown:
        raise KeyError(f'convert_lvt_classifier: unknown keys for a {head_type} classifier: {unknown}')
    backbone = convert_lvt(backbone_part)
    if backbone.skipped:
        raise KeyError(f'convert_lvt_classifier: unknown backbone keys {sorted(backbone.skipped)}')
    converted = OrderedDict(('backbone.' + k, v) for k, v in backbone.state_dict.items())
    converted.update(('head.' + k, v) for k, v in head_state.items())
    return converted
