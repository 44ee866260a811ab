"""Feed-forward networks: the convolutional FFN (LITv2 Sec. 4 "ConvFFN"; also used by LVT) and LVT's plain MLP.

ConvFFN: fc1 -> 3x3 depthwise conv -> GELU -> fc2. The depthwise conv between the two linear layers gives the
tokens a 3x3 neighbourhood; in LITv2 it is the only source of position information (no positional embedding).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ...registry import register_model
from .onednn import Linear, check_activation, chunk_rows, conv2d, cpu_fp32_inference, linear_into, mlp

__all__ = ['DepthwiseConv3x3', 'ConvFFN', 'LinearFFN']

# ConvFFN's (hidden bytes past which it runs in chunks, bytes per chunk) (``layers.onednn.chunk_rows``): from
# 16 MiB on, as its conv then reads fc1's output from cache.
_CHUNKING = (16 << 20, 8 << 20)


class DepthwiseConv3x3(nn.Module):
    """3x3 depthwise conv (stride 1, zero padding 1, bias) applied to a token sequence, optionally followed by an
    activation fused into the conv (``layers.onednn.conv2d``).

    The conv lives in ``self.dwconv`` so the parameter names are the official ``mlp.dwconv.dwconv.*``.
    Tokens are viewed as a channels-last map, so no copy is made around the conv.

    Shapes: x (B, H*W, C), hw = (H, W) -> (B, H*W, C).
    """

    def __init__(self, channels: int, activation: Optional[str] = None):
        super().__init__()
        check_activation(activation, 'DepthwiseConv3x3')
        self.dwconv = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=True)
        self.activation = activation

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        x = x.reshape(b, hw[0], hw[1], c).permute(0, 3, 1, 2)
        x = conv2d(x, self.dwconv.weight, self.dwconv.bias, (1, 1), groups=c, activation=self.activation)
        return x.permute(0, 2, 3, 1).reshape(b, n, c)


@register_model
class ConvFFN(nn.Module):
    """fc1 (C -> hidden) -> 3x3 depthwise conv -> GELU (fused into the conv) -> dropout -> fc2 (hidden -> C)
    -> dropout.

    In CPU fp32 inference a hidden map past ``_CHUNKING[0]`` bytes runs in chunks of whole images or bands of rows
    (``_forward_in_chunks``). Official names: ``fc1``, ``dwconv.dwconv``, ``fc2``. Official init: Linear N(0, .02),
    zero bias; conv N(0, sqrt(2 / fan_out)) with fan_out = 3*3*hidden/groups = 9, zero bias.

    Args:
        embed_dims: C.
        hidden_dims: hidden width (default 4*C, the papers' MLP ratio).
        drop: dropout after the activation and after fc2.
    Shapes: x (B, H*W, C), hw = (H, W) -> (B, H*W, C).
    """

    def __init__(self, embed_dims: int, hidden_dims: Optional[int] = None, drop: float = 0.):
        super().__init__()
        hidden_dims = hidden_dims or 4 * embed_dims
        self.fc1 = Linear(embed_dims, hidden_dims)
        self.dwconv = DepthwiseConv3x3(hidden_dims, activation='gelu')
        self.fc2 = Linear(hidden_dims, embed_dims)
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
        rows = chunk_rows(x.shape[0] * hw[0], hw[1] * self.fc1.out_features * x.element_size(), _CHUNKING)
        if rows and cpu_fp32_inference(x, *self.parameters()):
            return self.drop(self._forward_in_chunks(x, hw, rows))
        x = self.drop(self.dwconv(self.fc1(x), hw))
        return self.drop(self.fc2(x))

    def _forward_in_chunks(self, x: torch.Tensor, hw: Tuple[int, int], rows: int) -> torch.Tensor:
        """The same FFN, ``rows`` map rows of hidden activations at a time (``layers.onednn.chunk_rows``): whole
        images while one fits, else bands of rows of one image, fc1 recomputed on the band's 1-row halo.

        The conv pads only at the image border; a band's first and last rows come from its halo. fc2 writes each
        chunk into its rows of the output. Shapes as ``forward``.
        """
        b, n, c = x.shape
        h, w = hw
        hidden, conv = self.fc1.out_features, self.dwconv.dwconv
        out = x.new_empty(b, n, self.fc2.out_features)

        def ffn(tokens, band, pad_rows, keep):  # tokens (images, band * w, C) -> out rows keep of each image
            y = self.fc1(tokens).view(-1, band, w, hidden).permute(0, 3, 1, 2)
            y = conv2d(y, conv.weight, conv.bias, (pad_rows, 1), groups=hidden, activation=self.dwconv.activation)
            y = self.drop(y.permute(0, 2, 3, 1)[:, keep])
            return y.reshape(-1, hidden)

        if rows >= h:  # whole images, rows // h at a time
            for i in range(0, b, rows // h):
                j = min(b, i + rows // h)
                linear_into(ffn(x[i:j], h, 1, slice(None)), self.fc2, out[i:j].view(-1, out.shape[-1]))
            return out
        for i in range(b):
            for top in range(0, h, rows):
                bottom = min(h, top + rows)
                first, last = max(0, top - 1), min(h, bottom + 1)
                pad = 1 if top == 0 or bottom == h else 0
                start = top - first - 1 + pad  # the conv output row centred on row `top`
                y = ffn(x[i:i + 1, first * w:last * w], last - first, pad, slice(start, start + bottom - top))
                linear_into(y, self.fc2, out[i, top * w:bottom * w])
        return out


class LinearFFN(nn.Module):
    """fc1 -> GELU (fused into fc1) -> dropout -> fc2 -> dropout, with the parameter names of mmcv's ``FFN``
    (``layers.0.0``, ``layers.1``) that LVT's stage-1 blocks and class-attention head have always used, so their
    checkpoints load unchanged.

    Shapes: x (..., C) -> (..., C).
    """

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(Linear(embed_dims, hidden_dims, activation='gelu'), nn.Dropout(drop)),
            Linear(hidden_dims, embed_dims), nn.Dropout(drop))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (fc1, drop), fc2, drop_out = self.layers
        return drop_out(mlp(x, fc1, fc2, drop))
