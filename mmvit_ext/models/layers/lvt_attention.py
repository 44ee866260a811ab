"""LVT's two attention ops and its overlapping patch embedding (Yang et al., "Lite Vision Transformer", CVPR 2022).

- ``ConvolutionalSelfAttention`` (CSA, paper Sec. 3.1, Eq. 4): in every k x k window, y_i = sum_j a_{i->j} W_{i->j} x_j
  with one C x C value projection per kernel tap and attention weights a predicted by a Linear layer
  (outlook-attention style, Eq. 3) from the 2x2 average-pooled map.
- ``AtrousSelfAttention`` (ASA, Eq. 5-6) / ``RecursiveAtrousSelfAttention`` (RASA, Eq. 8): global attention whose
  query passes one depthwise 3x3 kernel shared across dilations 1, 3, 5 (each branch through SiLU, then summed);
  RASA applies ASA recursively with shared weights.
- ``LVTOverlapPatchEmbed``: Conv2d(k, stride, padding k // 2) -> LayerNorm.

All ops take and return channels-last maps ``(B, H, W, C)`` (the official layout) unless stated.
"""
from functools import lru_cache
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register_model
from .onednn import Linear, conv2d, linear
from .utils import is_tracing

__all__ = ['ConvolutionalSelfAttention', 'AtrousSelfAttention', 'RecursiveAtrousSelfAttention',
           'LVTOverlapPatchEmbed']


@lru_cache(maxsize=256)
def _overlap_add_slices(num_windows: int, size: int, offset: int, stride: int) -> Tuple[slice, slice]:
    """Windows ``p`` whose tap at ``offset`` lands inside the map (``0 <= stride * p + offset < size``), as a slice
    over windows and the matching strided slice over map positions. Empty slices when none does."""
    first = max(0, -(offset // stride))
    last = min(num_windows - 1, (size - 1 - offset) // stride)
    if last < first:
        return slice(0, 0), slice(0, 0)
    return slice(first, last + 1), slice(stride * first + offset, stride * last + offset + 1, stride)


@register_model
class ConvolutionalSelfAttention(nn.Module):
    """Convolutional Self-Attention (CSA), paper Eq. (4), official data flow (reference doc §4.3).

    Windows are k x k (padding k // 2) with centres every ``stride`` pixels, so there are
    ``h x w = ceil(H / s) x ceil(W / s)`` windows. For window p, target tap t and source tap s (taps in raster
    order ky * k + kx), per head: ``out[p, t] = sum_s softmax_s(A[p, t, s] * hd^-0.5) * (W_s x[p, s])``, where
    ``A = attn_weights(AvgPool_s(x))`` (output index head * k^4 + t * k^2 + s, official) and ``W_s`` is the C x C
    value projection of tap s. The k x k outputs of every window are added back onto the H x W map (overlaps
    summed, no normalisation, positions outside the map dropped), then ``proj``.

    Fast form, equal to the official unfold -> grouped 1x1 conv -> fold (tested):
    - the taps are strided views of the padded map (``Tensor.unfold``), gathered tap-major in one copy whose rows
      are whole C-vectors, and the nine value projections run as one batched matmul over taps (the official FLOPs,
      9 C^2 per window);
    - the softmax runs over the source-tap axis placed outside the (head, target) axes, by reordering the rows of
      the attention Linear (with the scale folded in), as one ``softmax`` call: over an innermost axis of 9 it is
      slow on CPU, and CSA has no q.k product, so scaled_dot_product_attention does not apply;
    - the overlap-add is k*k strided in-place adds on the channels-last map instead of ``F.fold``, which would need
      a channel-major copy of the window outputs and another copy back for ``proj``.

    Args:
        dims: channels C (input = output).
        num_heads: attention heads; head dim C / num_heads.
        kernel_size: window size k (odd).
        stride: window stride s (also the pooling size of the attention-weight branch).

    Shapes: x (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, dims: int, num_heads: int, kernel_size: int = 3, stride: int = 2, attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'CSA: dims {dims} not divisible by num_heads {num_heads}')
        if kernel_size % 2 == 0:
            raise ValueError(f'CSA: kernel_size must be odd, got {kernel_size}')
        self.dims, self.num_heads = dims, num_heads
        self.kernel_size, self.stride = kernel_size, stride
        self.scale = (dims // num_heads) ** -0.5
        taps = kernel_size ** 2
        self.pool = nn.AvgPool2d(stride, stride, ceil_mode=True)
        self.attn_weights = Linear(dims, taps * taps * num_heads)
        # tap_proj[t] is the (out, in) value projection W_t of kernel tap t.
        self.tap_proj = nn.Parameter(torch.empty(taps, dims, dims))
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_tap_proj()

    def reset_tap_proj(self):
        """Official init: N(0, sqrt(2 / fan_out)) with fan_out = k^2 * C."""
        nn.init.normal_(self.tap_proj, std=(2. / (self.kernel_size ** 2 * self.dims)) ** 0.5)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> attention weights (B, h, w, heads, target tap, source tap), softmax over source."""
        b, c = x.shape[0], self.dims
        taps, heads = self.kernel_size ** 2, self.num_heads
        pooled = self.pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        # Linear rows reordered from (head, target, source) to (source, head, target), scaled.
        weight = self.attn_weights.weight.view(heads, taps, taps, c).permute(2, 0, 1, 3).reshape(-1, c)
        bias = self.attn_weights.bias.view(heads, taps, taps).permute(2, 0, 1).reshape(-1)
        logits = linear(pooled, weight * self.scale, bias * self.scale)
        attn = logits.view(b, *pooled.shape[1:3], taps, heads, taps).softmax(dim=3)
        return self.attn_drop(attn.permute(0, 1, 2, 4, 5, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, height, width, c = x.shape
        k, s, pad = self.kernel_size, self.stride, self.kernel_size // 2
        taps, heads, hd = k * k, self.num_heads, c // self.num_heads
        attn = self.attention(x)
        h, w = attn.shape[1:3]

        # Values: the k*k taps of every window (strided views, gathered tap-major), one C x C projection per tap.
        padded = F.pad(x, (0, 0, pad, pad, pad, pad))
        windows = padded.unfold(1, k, s).unfold(2, k, s)  # (B, h, w, C, ky, kx) view
        windows = windows.permute(4, 5, 0, 1, 2, 3).reshape(taps, b * h * w, c)
        values = torch.bmm(windows, self.tap_proj.transpose(1, 2)).view(taps, b, h, w, heads, hd)

        out = attn @ values.permute(1, 2, 3, 4, 0, 5)  # (B, h, w, heads, target tap, hd)
        if is_tracing():
            return self.proj_drop(self.proj(self.overlap_add_padded(out, height, width)))

        # Overlap-add: target tap (ty, tx) of window (py, px) lands on (s * py + ty - pad, s * px + tx - pad).
        y = out.new_zeros(b, height, width, c)
        for tap in range(taps):
            ty, tx = divmod(tap, k)
            win_rows, map_rows = _overlap_add_slices(h, height, ty - pad, s)
            win_cols, map_cols = _overlap_add_slices(w, width, tx - pad, s)
            y[:, map_rows, map_cols].unflatten(-1, (heads, hd)).add_(out[:, win_rows, win_cols, :, tap])
        return self.proj_drop(self.proj(y))

    def overlap_add_padded(self, out: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The overlap-add of ``forward`` with slices that do not depend on the map size (used while tracing).

        Every tap is added onto a map padded by k // 2 on each side, where all windows fit, at a slice that starts
        at the tap offset; the crop back to H x W drops what fell outside. Same sums in the same order as the
        per-size slices of ``forward`` (which avoid the crop's copy in eager mode).
        out: (B, h, w, heads, taps, hd) -> (B, H, W, C).
        """
        b, h, w, heads, _, hd = out.shape
        k, s, pad = self.kernel_size, self.stride, self.kernel_size // 2
        y = out.new_zeros(b, height + 2 * pad, width + 2 * pad, heads, hd)
        for tap in range(k * k):
            ty, tx = divmod(tap, k)
            y[:, ty:ty + s * (h - 1) + 1:s, tx:tx + s * (w - 1) + 1:s] += out[..., tap, :]
        return y[:, pad:pad + height, pad:pad + width].reshape(b, height, width, heads * hd)


@register_model
class AtrousSelfAttention(nn.Module):
    """Atrous Self-Attention (ASA), paper Eq. (5)-(6), official ``Attention`` with ``rasa_cfg``.

    ``Q = sum_{r in dilations} SiLU(DWConv_r(q(x)))`` with one depthwise 3x3 kernel (no bias) shared by all
    dilations; keys and values from ``kv(x)``, after a stride-``sr_ratio`` conv + LN when ``sr_ratio > 1``;
    ``softmax(Q K^T / sqrt(hd)) V`` via scaled_dot_product_attention, then ``proj``.

    Size rule: the spatial reduction floors (H // sr, as the official conv does); a map smaller than sr in a
    dimension is zero-padded (bottom/right) to sr there, where the official code would fail.

    Shapes: x (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, dims: int, num_heads: int, sr_ratio: int = 1, dilations: Sequence[int] = (1, 3, 5),
                 qkv_bias: bool = False, attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'ASA: dims {dims} not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.dilations = tuple(dilations)
        self.q = Linear(dims, dims, bias=qkv_bias)
        self.kv = Linear(dims, 2 * dims, bias=qkv_bias)
        self.atrous_kernel = nn.Parameter(torch.empty(dims, 1, 3, 3))
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dims, dims, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(dims)
        self.attn_drop = attn_drop
        self.proj = Linear(dims, dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_atrous_kernel()

    def reset_atrous_kernel(self):
        """Official init ('kaiming'): kaiming_uniform_ on the shared depthwise kernel."""
        nn.init.kaiming_uniform_(self.atrous_kernel)

    def atrous_query(self, q: torch.Tensor) -> torch.Tensor:
        """q: (B, H, W, C) -> sum over dilations of SiLU(depthwise 3x3 conv at that dilation), (B, H, W, C).

        Each branch's SiLU is fused into its conv (``layers.onednn.conv2d``) and the sum runs in place on the
        fresh branch outputs."""
        q = q.permute(0, 3, 1, 2)  # NCHW view in channels-last memory: no copy around the convs
        out = None
        for d in self.dilations:
            branch = conv2d(q, self.atrous_kernel, None, (d, d), (d, d), q.shape[1], activation='silu')
            out = branch if out is None else out.add_(branch)
        return out.permute(0, 2, 3, 1)

    def keys_values(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> kv tokens (B, N', 2C), N' = H * W or (H // sr) * (W // sr)."""
        if self.sr_ratio > 1:
            sr = self.sr_ratio
            pad_b, pad_r = max(sr - x.shape[1], 0), max(sr - x.shape[2], 0)
            if pad_b or pad_r:
                x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
            x = self.norm(self.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.kv(x.flatten(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        heads = self.num_heads
        q = self.atrous_query(self.q(x)).reshape(b, h * w, heads, c // heads).transpose(1, 2)
        k, v = self.keys_values(x).view(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        out = out.transpose(1, 2).reshape(b, h, w, c)
        return self.proj_drop(self.proj(out))


@register_model
class RecursiveAtrousSelfAttention(AtrousSelfAttention):
    """Recursive Atrous Self-Attention (RASA), paper Eq. (8) with W_F = U_F = 1, weights shared across steps.

    Official recursion: ``y = A(x)``; if ``num_recursions > 1``: ``y = SiLU(y)`` and then ``num_recursions - 1``
    times ``h = y + h; y = SiLU(A(h))`` with ``h`` starting at x (for r = 2: y2 = SiLU(A(SiLU(A(x)) + x))).
    ``num_recursions = 1`` is exactly one ASA.

    Shapes: x (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self, dims: int, num_heads: int, num_recursions: int = 2, **kwargs):
        super().__init__(dims, num_heads, **kwargs)
        if num_recursions < 1:
            raise ValueError(f'RASA: num_recursions must be >= 1, got {num_recursions}')
        self.num_recursions = num_recursions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.num_recursions == 1:
            return y
        # In place on the fresh attention outputs; ``hidden`` starts as a new tensor, x stays untouched.
        y, hidden = F.silu(y, inplace=True), x
        for _ in range(self.num_recursions - 1):
            hidden = y + hidden
            y = F.silu(super().forward(hidden), inplace=True)
        return y


@register_model
class LVTOverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding (SegFormer / LVT): Conv2d(k, stride, padding k // 2) -> LayerNorm.

    Output size: ``floor((H - 1) / stride) + 1`` (= ceil(H / stride) for k >= stride - 1), any H, W.

    Shapes: x (B, C_in, H, W) (any memory layout) -> (B, H', W', C_out) channels-last tokens.
    """

    def __init__(self, in_channels: int, embed_dims: int, patch_size: int = 7, stride: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.proj.in_channels:
            raise ValueError(f'LVTOverlapPatchEmbed: expected {self.proj.in_channels} input channels, '
                             f'got {x.shape[1]} (input shape {tuple(x.shape)})')
        if torch.compiler.is_compiling():
            # torch 2.13's inductor fails to lower a conv of a channels-last map with dynamic sizes
            # (ValueRangeError); a contiguous input avoids it (the copy fuses into the kernel that makes x).
            x = x.contiguous()
        return self.norm(self.proj(x).permute(0, 2, 3, 1))
