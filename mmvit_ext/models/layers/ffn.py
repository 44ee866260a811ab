"""Convolutional feed-forward network (LITv2 Sec. 4 "ConvFFN"; also used by LVT).

fc1 -> 3x3 depthwise conv -> GELU -> fc2. The depthwise conv between the two linear layers gives the tokens a
3x3 neighbourhood; in LITv2 it is the only source of position information (no positional embedding).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ...registry import register_model

__all__ = ['DepthwiseConv3x3', 'ConvFFN']


class DepthwiseConv3x3(nn.Module):
    """3x3 depthwise conv (stride 1, zero padding 1, bias) applied to a token sequence.

    The conv lives in ``self.dwconv`` so the parameter names are the official ``mlp.dwconv.dwconv.*``.
    Tokens are viewed as a channels-last map, so no copy is made around the conv.

    Shapes: x (B, H*W, C), hw = (H, W) -> (B, H*W, C).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=True)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        x = x.reshape(b, hw[0], hw[1], c).permute(0, 3, 1, 2)
        return self.dwconv(x).permute(0, 2, 3, 1).reshape(b, n, c)


@register_model
class ConvFFN(nn.Module):
    """fc1 (C -> hidden) -> 3x3 depthwise conv -> GELU -> dropout -> fc2 (hidden -> C) -> dropout.

    Official names: ``fc1``, ``dwconv.dwconv``, ``fc2``. Official init: Linear N(0, .02), zero bias;
    conv N(0, sqrt(2 / fan_out)) with fan_out = 3*3*hidden/groups = 9, zero bias.

    Args:
        embed_dims: C.
        hidden_dims: hidden width (default 4*C, the papers' MLP ratio).
        drop: dropout after the activation and after fc2.
    Shapes: x (B, H*W, C), hw = (H, W) -> (B, H*W, C).
    """

    def __init__(self, embed_dims: int, hidden_dims: Optional[int] = None, drop: float = 0.):
        super().__init__()
        hidden_dims = hidden_dims or 4 * embed_dims
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.dwconv = DepthwiseConv3x3(hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)
        self.reset_parameters()

    def reset_parameters(self):
        # Official: trunc_normal_(std=.02) with the default cut at +-2, i.e. 100 std, never reached: a plain normal
        # draw has the same distribution and is several times faster.
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=.02)
            nn.init.zeros_(fc.bias)
        conv = self.dwconv.dwconv
        fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
        nn.init.normal_(conv.weight, 0, math.sqrt(2.0 / fan_out))
        nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = self.drop(self.act(self.dwconv(self.fc1(x), hw)))
        return self.drop(self.fc2(x))
