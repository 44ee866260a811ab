"""Upstream models measured in the same run as the yardstick of every ratio: mmdet Swin-T / PVTv2, mmseg MiT-B0,
mmpretrain ResNet-50, and the baseline attention layers of the HiLo paper's comparison (written here, on the same
``layers.Linear`` as our layers, so that a layer comparison measures the attention, not the GEMM library)."""
import functools
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers import Linear
from .models import ModelSpec

__all__ = ['BASELINES', 'baseline_backbones', 'build_registered', 'ExplicitMultiheadAttention', 'WindowAttention',
           'SpatialReductionAttention', 'TokensToMap', 'WithGlobalTokens']


def build_registered(scope: str, cfg: dict) -> nn.Module:
    """``cfg`` built by the ``MODELS`` registry of ``scope`` (mmdet, mmseg or mmpretrain)."""
    from mmengine.registry import init_default_scope
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    elif scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    init_default_scope(scope)
    return MODELS.build(cfg)


BASELINES = [
    ('Swin-T', 'mmdet', dict(type='SwinTransformer', embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                             window_size=7)),
    ('PVTv2-B0', 'mmdet', dict(type='PyramidVisionTransformerV2', embed_dims=32, num_layers=[2, 2, 2, 2])),
    ('PVTv2-B2', 'mmdet', dict(type='PyramidVisionTransformerV2', embed_dims=64, num_layers=[3, 4, 6, 3])),
    ('MiT-B0', 'mmseg', dict(type='MixVisionTransformer', embed_dims=32, num_heads=[1, 2, 5, 8],
                             num_layers=[2, 2, 2, 2])),
    ('ResNet-50', 'mmpretrain', dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3))),
]


def baseline_backbones() -> List[ModelSpec]:
    """Upstream backbones measured in the same run, as the yardstick of every ratio in the report."""
    return [ModelSpec(name, 'baseline', scope, functools.partial(build_registered, scope, cfg))
            for name, scope, cfg in BASELINES]


class ExplicitMultiheadAttention(nn.Module):
    """Baseline: plain global MSA that materialises ``softmax(Q K^T / sqrt(d))`` (the HiLo paper's MSA on CPU).

    x: (B, H*W, C), hw -> (B, H*W, C); same parameters (and FLOPs) as a fused-attention MSA layer.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class WindowAttention(nn.Module):
    """Baseline: plain (non-shifted) local window attention, Swin's W-MSA without bias.

    Tokens attend within non-overlapping ws x ws windows (zero-padded map). x: (B, H*W, C), hw -> (B, H*W, C).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int):
        super().__init__()
        self.num_heads, self.window_size = num_heads, window_size
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        (h, w), ws, heads = hw, self.window_size, self.num_heads
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, (-w) % ws, 0, (-h) % ws))
        hp, wp = x.shape[1:3]
        qkv = self.qkv(x).view(b, hp // ws, ws, wp // ws, ws, 3, heads, c // heads)
        q, k, v = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, -1, heads, ws * ws, c // heads).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.view(b, hp // ws, wp // ws, heads, ws, ws, c // heads).permute(0, 1, 4, 2, 5, 3, 6)
        return self.proj(out.reshape(b, hp, wp, c)[:, :h, :w].reshape(b, n, c))


class SpatialReductionAttention(nn.Module):
    """Baseline: PVT's spatial-reduction attention (SRA), keys/values from a sr x sr stride-sr conv + LN.

    x: (B, H*W, C), hw -> (B, H*W, C). sr = 2 at the ViT-B setting gives the paper's 4.72 M params.
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = Linear(dim, dim)
        self.kv = Linear(dim, 2 * dim)
        self.sr = nn.Conv2d(dim, dim, sr_ratio, sr_ratio)
        self.norm = nn.LayerNorm(dim)
        self.proj = Linear(dim, dim)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        heads = self.num_heads
        q = self.q(x).view(b, n, heads, c // heads).transpose(1, 2)
        reduced = self.norm(self.sr(x.transpose(1, 2).reshape(b, c, *hw)).flatten(2).transpose(1, 2))
        k, v = self.kv(reduced).view(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c))


class TokensToMap(nn.Module):
    """Adapter: runs a channels-last map module (B, H, W, C) -> (B, H, W, C) on tokens x: (B, H*W, C), hw."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        return self.module(x.view(b, *hw, c)).reshape(b, n, c)


class WithGlobalTokens(nn.Module):
    """Adapter: LightViT attention with ``num_tokens`` learnable global tokens prepended to the image tokens."""

    def __init__(self, module: nn.Module, dim: int, num_tokens: int):
        super().__init__()
        self.module = module
        self.global_tokens = nn.Parameter(torch.randn(1, num_tokens, dim) * .02)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        tokens = self.global_tokens.expand(x.shape[0], -1, -1)
        return self.module(torch.cat([tokens, x], dim=1), hw)[:, tokens.shape[1]:]
