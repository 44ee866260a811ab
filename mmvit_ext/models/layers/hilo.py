"""HiLo attention (LITv2, "Fast Vision Transformers with HiLo Attention", Sec. 3.2).

The heads are split in two groups:
- Hi-Fi (high frequency): ``num_heads - floor(num_heads * alpha)`` heads attend inside non-overlapping ws x ws
  windows (local detail);
- Lo-Fi (low frequency): ``floor(num_heads * alpha)`` heads; queries at every position attend to keys/values computed
  from the ws x ws average-pooled map (global context at 1/ws^2 of the cost).
Each group has its own output projection and the outputs are concatenated, Hi-Fi channels first (official layout).
``window_size=1`` is plain global multi-head self-attention (all heads in the Lo-Fi projections, no pooling).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register_model
from .onednn import Linear, concat_linears
from .utils import attention, pad_to_multiple

__all__ = ['HiLoAttention']


@register_model
class HiLoAttention(nn.Module):
    """HiLo attention with the official parameter names (``h_qkv``, ``h_proj``, ``l_q``, ``l_kv``, ``l_proj``).

    Any map size: the (layer-normalised) map is zero-padded on the bottom/right to a multiple of ``window_size``,
    as in the official dense backbones; padded positions act as Hi-Fi keys and enter the Lo-Fi average pool
    (no masking), and the output is cropped back. Each branch is one attention call (``utils.attention``: fused
    ``scaled_dot_product_attention``, or explicit for short softmax rows); windows are reshapes.

    Args:
        embed_dims: C, divisible by ``num_heads``.
        num_heads: total heads, head dim C / num_heads.
        window_size: ws, the Hi-Fi window and the Lo-Fi pooling size; 1 means global MSA.
        alpha: fraction of Lo-Fi heads, ``l_heads = int(num_heads * alpha)`` (0 and 1 allowed).
        qkv_bias: bias in the q/k/v projections.
        qk_scale: attention scale, default head_dim ** -0.5.
    Shapes: x (B, H*W, C), hw = (H, W) -> (B, H*W, C).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int = 8,
                 window_size: int = 2,
                 alpha: float = 0.9,
                 qkv_bias: bool = True,
                 qk_scale: Optional[float] = None):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'HiLoAttention: embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        if not 0 <= alpha <= 1:
            raise ValueError(f'HiLoAttention: alpha must lie in [0, 1], got {alpha}')
        if window_size < 1:
            raise ValueError(f'HiLoAttention: window_size must be >= 1, got {window_size}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.head_dim = embed_dims // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.l_heads = num_heads if window_size == 1 else int(num_heads * alpha)
        self.h_heads = num_heads - self.l_heads
        self.l_dim = self.l_heads * self.head_dim
        self.h_dim = self.h_heads * self.head_dim
        if self.l_heads:
            self.l_q = Linear(embed_dims, self.l_dim, bias=qkv_bias)
            self.l_kv = Linear(embed_dims, 2 * self.l_dim, bias=qkv_bias)
            self.l_proj = Linear(self.l_dim, self.l_dim)
        if self.h_heads:
            self.h_qkv = Linear(embed_dims, 3 * self.h_dim, bias=qkv_bias)
            self.h_proj = Linear(self.h_dim, self.h_dim)
        self.reset_parameters()

    def reset_parameters(self):
        """Official init: every Linear N(0, .02) (trunc-normal cut at 100 std), zero bias."""
        for module in self.children():
            nn.init.normal_(module.weight, std=.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, window_size={self.window_size}, '
                f'hifi_heads={self.h_heads}, lofi_heads={self.l_heads}')

    def hifi(self, x: torch.Tensor) -> torch.Tensor:
        """Window self-attention. x: (B, Hp, Wp, C), Hp and Wp multiples of ws -> (B, Hp, Wp, h_dim)."""
        b, hp, wp, _ = x.shape
        ws, heads, hd = self.window_size, self.h_heads, self.head_dim
        hg, wg = hp // ws, wp // ws
        qkv = self.h_qkv(x).view(b, hg, ws, wg, ws, 3, heads, hd)
        # -> (3, B * windows, heads, ws*ws, hd): windows in raster order, tokens in raster order inside a window.
        q, k, v = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, b * hg * wg, heads, ws * ws, hd).unbind(0)
        out = attention(q, k, v, scale=self.scale)
        return out.view(b, hg, wg, heads, ws, ws, hd).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, hp, wp, self.h_dim)

    def lofi(self, x: torch.Tensor, x_padded: torch.Tensor) -> torch.Tensor:
        """Queries from x: (B, H, W, C); keys/values from the ws x ws average pool of x_padded: (B, Hp, Wp, C).

        Returns (B, H, W, l_dim) (before ``l_proj``).
        """
        b, h, w, c = x.shape
        heads, hd, ws = self.l_heads, self.head_dim, self.window_size
        q = self.l_q(x).view(b, h * w, heads, hd).transpose(1, 2)
        pooled = F.avg_pool2d(x_padded.permute(0, 3, 1, 2), ws, ws).permute(0, 2, 3, 1) if ws > 1 else x_padded
        k, v = self.l_kv(pooled).reshape(b, -1, 2, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        out = attention(q, k, v, scale=self.scale)
        return out.transpose(1, 2).reshape(b, h, w, self.l_dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = hw
        if n != h * w:
            raise ValueError(f'HiLoAttention: {n} tokens do not form a {h}x{w} map')
        x = x.reshape(b, h, w, c)
        x_padded = pad_to_multiple(x, self.window_size)[0]
        # The projection is per token, so cropping the Hi-Fi windows before it equals the official crop after it;
        # padded Lo-Fi queries would only produce outputs that are cropped away: only real positions query.
        hifi = self.hifi(x_padded)[:, :h, :w] if self.h_heads else None
        lofi = self.lofi(x, x_padded) if self.l_heads else None
        if hifi is None or lofi is None:
            return (self.h_proj(hifi) if lofi is None else self.l_proj(lofi)).reshape(b, n, c)
        return concat_linears([hifi, lofi], [self.h_proj, self.l_proj]).reshape(b, n, c)
