"""The official LVT classification head (``lvt_cls``): VOLO-style class attention + auxiliary token head.

After stage 4, the tokens get a learnable class token prepended and pass 2 class-attention layers (CaiT / VOLO
"ClassBlock": only the class token is updated, attending to all tokens), a LayerNorm, then
``logits = fc(cls) + 0.5 * max_over_tokens(aux_fc(tokens))`` (VOLO's inference output). The official training also
used MixToken and token-labelling targets on the auxiliary head; that recipe is out of scope here, so training uses
the combined logits with the configured loss (paper settings otherwise).

The plain head (LN, mean, Linear) needs no class of its own: ``LVT(out_indices=(3,), out_norm=True)`` +
mmpretrain ``GlobalAveragePooling`` + ``LinearClsHead`` (see ``lvt_classifier_cfg``).
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead

from ...checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from ...checkpoint.lvt import convert_lvt_cls_head
from ..base_backbone import trunc_normal_init_linear
from ..layers import Linear, LinearFFN

__all__ = ['LVTClassAttentionHead']


class ClassAttention(nn.Module):
    """Class attention: the query is the class token only, keys/values are all tokens (incl. the class token).

    x: (B, 1 + N, C) -> (B, 1, C).
    """

    def __init__(self, dims: int, num_heads: int, qkv_bias: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.kv = Linear(dims, 2 * dims, bias=qkv_bias)
        self.q = Linear(dims, dims, bias=qkv_bias)
        self.proj = Linear(dims, dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        hd = c // self.num_heads
        k, v = self.kv(x).view(b, n, 2, self.num_heads, hd).permute(2, 0, 3, 1, 4)
        q = self.q(x[:, :1]).view(b, 1, self.num_heads, hd).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, 1, hd), scale hd^-0.5
        return self.proj(out.transpose(1, 2).reshape(b, 1, c))


class ClassAttentionBlock(nn.Module):
    """Updates the class token only: ``cls += CA(LN(x))``; ``cls += MLP(LN(cls))``. x: (B, 1+N, C) -> same."""

    def __init__(self, dims: int, num_heads: int, mlp_ratio: float = 4.):
        super().__init__()
        self.norm1 = nn.LayerNorm(dims)
        self.attn = ClassAttention(dims, num_heads)
        self.norm2 = nn.LayerNorm(dims)
        self.mlp = LinearFFN(dims, int(dims * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls_token = x[:, :1] + self.attn(self.norm1(x))
        cls_token = cls_token + self.mlp(self.norm2(cls_token))
        return torch.cat([cls_token, x[:, 1:]], dim=1)


class LVTClassAttentionHead(ClsHead):
    """``lvt_cls`` head for mmpretrain's ``ImageClassifier`` (LVT backbone with ``out_indices=(3,)``, no neck).

    Args:
        num_classes: classes.
        in_channels: channels of the last backbone stage (256 for LVT mobile).
        num_heads, num_layers, mlp_ratio: class-attention layers (8, 2, 4 officially).
        aux_weight: weight of the max-pooled auxiliary token logits (0.5, VOLO).
        init_cfg: ``dict(type='Pretrained', checkpoint='lvt_imagenet.pth.tar')`` loads the official head (or the
            head of our converted classifier); other init_cfg types go to mmengine.

    Shapes: feats tuple whose last item is (B, C, H, W) -> logits (B, num_classes).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 256,
                 num_heads: int = 8,
                 num_layers: int = 2,
                 mlp_ratio: float = 4.,
                 aux_weight: float = 0.5,
                 init_cfg=None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg, **kwargs)
        self.num_classes = num_classes
        self.aux_weight = aux_weight
        self.cls_token = nn.Parameter(torch.zeros(1, 1, in_channels))
        self.post_layers = nn.ModuleList(
            [ClassAttentionBlock(in_channels, num_heads, mlp_ratio) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(in_channels)
        self.fc = Linear(in_channels, num_classes)
        self.aux_fc = Linear(in_channels, num_classes)
        self._init_official()

    def _init_official(self):
        nn.init.trunc_normal_(self.cls_token, std=.02)
        self.apply(trunc_normal_init_linear)

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            filename = cfg['checkpoint']
            state = extract_state_dict(read_checkpoint(filename), prefix=None)
            state = {k: v for k, v in state.items() if not k.startswith('backbone.')}
            load_converted(self, convert_lvt_cls_head(state), source=str(filename))
            self._is_init = True
        elif cfg is None:
            self._init_official()
        else:
            super().init_weights()

    def pre_logits(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Last feature map (B, C, H, W) -> normalised tokens (B, 1 + H*W, C), class token first."""
        x = feats[-1].flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        for layer in self.post_layers:
            x = layer(x)
        return self.norm(x)

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        tokens = self.pre_logits(feats)
        aux = self.aux_fc(tokens[:, 1:]).max(dim=1)[0]
        return self.fc(tokens[:, 0]) + self.aux_weight * aux
