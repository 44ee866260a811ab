"""Official LIT checkpoints (``ziplab/LIT``) -> ``mmvit_ext`` ``LIT`` keys and layouts.

Accepted layouts (prefix ``backbone.``/``module.`` already removed by ``extract_state_dict``):
- LIT-Ti (``code_for_lit_ti``, dense ``LIT_Ti``): ``patch_embed1..4``, ``pos_embed1..4``, ``cls_token``,
  ``block1..4.{j}``, ``norm``, ``head``.
- LIT-S/M/B (``code_for_lit_s_m_b``, dense ``LIT``): ``patch_embed``, ``layers.{i}.blocks.{j}``,
  ``layers.{i}.downsample`` (DTM stored at the end of the previous stage), ``attn.relative_position_bias_table``,
  ``attn.relative_position_index`` (buffer), ``norm`` (classification) or ``norm0..3`` (dense), ``head``.
- our own layout (``patch_embed``, ``stages.{i}``, ``norm{i}``): converting it again changes nothing but sizes.

The classifier's final ``norm`` (LN over the stage-4 tokens) becomes ``norm3`` only in the classification form of the
backbone (``LIT.is_classification_form``: ``out_indices=(3,)`` with ``norm3``). A dense form starts ``norm3`` at its
init (weight 1, bias 0), like the official dense backbones, whose non-strict ``load_checkpoint`` finds no ``norm3``
in a classification file; the same holds for our converted classifier files (``norm3`` + ``head.fc``).

Layouts: bias tables are bicubically resized to the model's stored grid (the official ``mmcv_custom`` loader does
the same), absolute embeddings bilinearly (as the official dense LIT-Ti does at run time), the stage-4 cls slot is
dropped when the model has no cls token; regenerated buffers, classifier heads and norms the model lacks are
skipped with the reason.
"""
import math
import re
from collections import OrderedDict
from typing import Optional

import torch

from ..models.layers.attention import resize_position_embedding, resize_relative_position_table
from .common import CheckpointMismatchError, ConvertedState

__all__ = ['convert_lit', 'official_lit_to_ours']


def _grid_of_table(rows: int):
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        return None
    return ((side + 1) // 2, ) * 2


# Official LIT key pattern -> our key from the match and the stage count, or the reason a backbone drops the key.
# First match wins.
_KEY_RULES = [
    # LIT-Ti
    (r'patch_embed1\.(.*)', lambda m, n: f'patch_embed.{m[1]}'),
    (r'patch_embed(\d)\.(.*)', lambda m, n: f'stages.{int(m[1]) - 1}.downsample.{m[2]}'),
    (r'pos_embed(\d)', lambda m, n: f'stages.{int(m[1]) - 1}.pos_embed.weight'),
    (r'block(\d)\.(\d+)\.(.*)', lambda m, n: f'stages.{int(m[1]) - 1}.blocks.{m[2]}.{m[3]}'),
    # LIT-S/M/B
    (r'layers\.\d\.blocks\.\d+\.attn\.relative_position_index', 'relative position index; regenerated per input size'),
    (r'layers\.(\d)\.blocks\.(\d+)\.attn\.relative_position_bias_table',
     lambda m, n: f'stages.{m[1]}.blocks.{m[2]}.attn.rel_pos.relative_position_bias_table'),
    (r'layers\.(\d)\.blocks\.(.*)', lambda m, n: f'stages.{m[1]}.blocks.{m[2]}'),
    (r'layers\.(\d)\.downsample\.(.*)', lambda m, n: f'stages.{int(m[1]) + 1}.downsample.{m[2]}'),
    # both
    (r'norm\.(.*)', lambda m, n: f'norm{n - 1}.{m[1]}'),
    (r'head\..*', 'classifier head; not part of the backbone'),
    (r'(patch_embed\.|cls_token).*|norm\d\..*', lambda m, n: m[0]),
]


def official_lit_to_ours(key: str, num_stages: int = 4):
    """Our name for an official LIT key, or ``(None, reason)`` for keys a backbone does not hold.

    Returns ``(new_key, None)``, ``(None, reason)``, or ``(None, None)`` for a key no rule knows.
    """
    for pattern, rule in _KEY_RULES:
        m = re.fullmatch(pattern, key)
        if m:
            return (None, rule) if isinstance(rule, str) else (rule(m, num_stages), None)
    return None, None


def _is_own_layout(state_dict) -> bool:
    return any(k.startswith('stages.') for k in state_dict)


def _is_official_layout(state_dict) -> bool:
    return any(re.match(r'(patch_embed1\.|block\d\.|layers\.\d\.)', k) for k in state_dict)


def convert_lit(state_dict, model, from_classifier: Optional[bool] = None) -> ConvertedState:
    """Map an official (or our own) LIT state dict onto ``model`` (a ``LIT``); see the module docstring.

    ``from_classifier``: whether the weights come from a classification checkpoint; ``None`` reads it from the keys
    (an official ``norm`` / ``head``). Then only a classification-form ``model`` takes the final norm as ``norm3``.
    """
    if not (_is_own_layout(state_dict) or _is_official_layout(state_dict)):
        sample = ', '.join(list(state_dict)[:5])
        raise CheckpointMismatchError(f'not a LIT checkpoint: no LIT-Ti (patch_embed1/block1), LIT-S/M/B '
                                      f'(layers.i) or mmvit_ext (stages.i) keys; first keys: {sample}')
    own = model.state_dict()
    modules = dict(model.named_modules())
    out, skipped = OrderedDict(), OrderedDict()
    own_layout = _is_own_layout(state_dict)
    if from_classifier is None:
        from_classifier = any(k.startswith(('norm.', 'head.')) for k in state_dict)
    final_norm = f'norm{model.num_stages - 1}.'
    skip_final_norm = from_classifier and not getattr(model, 'is_classification_form', True)
    for key, value in state_dict.items():
        if own_layout:
            new_key, reason = key, None
        else:
            new_key, reason = official_lit_to_ours(key, model.num_stages)
            if new_key is None and reason is None:
                new_key = key  # unknown: left for load_converted to report
        if new_key is None:
            skipped[key] = reason
            continue
        if skip_final_norm and new_key.startswith(final_norm):
            skipped[key] = ('final norm of the classifier; a dense backbone starts its output norms fresh, as the '
                            'official dense loaders do (the classification form, out_indices=(3,), loads it)')
            continue
        if new_key not in own:
            if new_key == 'cls_token':
                skipped[key] = 'cls token; the model classifies no cls token (out_type="featmap")'
                continue
            if re.fullmatch(r'norm\d\.(weight|bias)', new_key):
                skipped[key] = 'output norm of a stage the model does not norm (out_norm_indices)'
                continue
        if new_key.endswith('relative_position_bias_table') and new_key in own:
            value = _resize_table(value, modules[new_key.rsplit('.', 1)[0]])
        elif new_key.endswith('pos_embed.weight') and new_key in own:
            value = _resize_embedding(value, modules[new_key.rsplit('.', 1)[0]])
        out[new_key] = value
    return ConvertedState(out, dict(skipped))


def _resize_table(table: torch.Tensor, bias_module) -> torch.Tensor:
    """Resize a (rows, heads) table to the module's stored grid (bicubic); unknown grids pass unchanged."""
    target = bias_module.relative_position_bias_table
    if table.shape == target.shape or table.ndim != 2 or table.shape[1] != target.shape[1]:
        return table
    src = _grid_of_table(table.shape[0])
    if src is None:
        return table
    return resize_relative_position_table(table, src, bias_module.grid_size, bias_module.interp_mode)


def _resize_embedding(pos_embed: torch.Tensor, embed_module) -> torch.Tensor:
    """Fit (1, E + h*w, C) embeddings to the module: drop the cls slot if the module has none, resize the grid."""
    target = embed_module.weight
    if pos_embed.ndim != 3 or pos_embed.shape[2] != target.shape[2]:
        return pos_embed
    tokens = pos_embed.shape[1]
    extra = embed_module.num_extra_tokens
    if math.isqrt(tokens - 1)**2 == tokens - 1 and math.isqrt(tokens)**2 != tokens:
        src_extra = 1
    else:
        src_extra = 0
    if src_extra < extra:
        raise CheckpointMismatchError(f'the model needs a cls slot in its stage-4 position embeddings, but the '
                                      f'checkpoint has none ({tuple(pos_embed.shape)}); load a classification '
                                      'checkpoint or build the model with out_type="featmap"')
    pos_embed = pos_embed[:, src_extra - extra:]
    side = math.isqrt(tokens - src_extra)
    return resize_position_embedding(pos_embed, (side, side), embed_module.grid_size, extra,
                                     embed_module.interp_mode)
