"""LightViT ops (Huang et al., arXiv 2207.05557): local-global attention, bi-dimensional attention FFN,
residual patch merging and the convolutional stem.

Token layout used by every op: ``x: (B, T + H*W, C)`` with the ``T`` global tokens **in front** of the image tokens
(raster order), as in the official code. Module and parameter names follow the official release where that costs no
clarity, so ``mmvit_ext.checkpoint.lightvit`` only renames a few modules.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register_model
from .attention import GridRelativePositionBias
from .onednn import Linear, conv2d, linear, mlp
from .utils import attention, batch_norm_train, is_tracing, no_autograd, pad_to_multiple, window_blocks

__all__ = ['LocalGlobalAttention', 'BiDimensionalAttentionFFN', 'ResidualPatchMerging', 'LightViTStem']


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """x: (B, N, C) -> (B, heads, N, C / heads)."""
    b, n, c = x.shape
    return x.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """x: (B, heads, N, d) -> (B, N, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


@register_model
class LocalGlobalAttention(nn.Module):
    """LightViT aggregated self-attention with local-global broadcast (paper Sec. 3.1, Eq. 1-4, Fig. 6).

    With ``X`` the image tokens and ``G`` the global tokens (official data flow, ``hunto/LightViT``):
        1. ``q, k, v = qkv(X)``; of the global tokens only the query ``q_G`` is used (their keys/values never are).
        2. Local: ``X_local = softmax(q k^T / sqrt(d) + B_rel) v`` inside non-overlapping ``ws x ws`` windows, with a
           Swin relative position bias ``B_rel`` over the window (shared ``GridRelativePositionBias``, table
           ((2ws-1)^2, heads), cached index; no shift, no mask).
        3. Global aggregation (Eq. 2): ``G' = softmax(q_G k^T / sqrt(d)) v`` over all image tokens.
        4. Global broadcast (Eq. 3): ``k_G', v_G' = kv_global(G')``; ``X_global = softmax(q k_G'^T / sqrt(d)) v_G'``.
        5. ``out = proj([G' ; X_local + X_global])``: one output projection shared by both token types (Eq. 4).

    Any H, W: the official dense code zero-pads the (normalised) image map on the bottom/right to multiples of ``ws``
    before ``qkv``, so padded positions act as keys with the ``qkv`` bias. Here ``qkv`` runs on the real (and global)
    tokens only and the windows are padded with that bias (the same numbers, without projecting the padding); the
    global paths see only real tokens.

    Args:
        dim: channels C. num_heads: heads (head dim C / heads). window_size: ws (7 in LightViT).
        qkv_bias: bias of ``qkv`` and ``kv_global``.
    Shapes: ``forward(x, hw)`` with x: (B, T + H*W, C), hw = (H, W) -> (B, T + H*W, C); T may be 0.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'LocalGlobalAttention: dim {dim} is not divisible by num_heads {num_heads}')
        self.dim = dim
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = Linear(dim, dim * 3, bias=qkv_bias)
        self.kv_global = Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = Linear(dim, dim)
        self.relative_position_bias = GridRelativePositionBias(num_heads, window_size)

    def local_attention(self, qkv: torch.Tensor, out: torch.Tensor):
        """Window attention, written into ``out``. qkv: (B, H, W, 3C) of the real tokens; out: (B, H, W, C) (a
        view of the caller's token buffer).

        The map is padded to multiples of ws with tokens whose q/k/v are the ``qkv`` bias (the projection of the
        official zero padding). In eager mode the windows are gathered straight from the unpadded map into their
        window-major buffer and the result is scattered straight into ``out`` (``window_blocks``), one copy each
        way; a recorded graph pads with concatenations and partitions with reshapes, valid for every size.
        """
        b, h, w, _ = qkv.shape
        ws, heads = self.window_size, self.num_heads
        hd = self.dim // heads
        nh, nw = (h + ws - 1) // ws, (w + ws - 1) // ws
        pad = qkv.new_zeros(3 * self.dim) if self.qkv.bias is None else self.qkv.bias.to(qkv.dtype)
        tracing = is_tracing()
        if tracing:
            padded = torch.cat([qkv, pad.expand(b, h, nw * ws - w, -1)], dim=2)
            padded = torch.cat([padded, pad.expand(b, nh * ws - h, nw * ws, -1)], dim=1)
            windows = padded.view(b, nh, ws, nw, ws, 3, heads, hd).permute(5, 0, 1, 3, 6, 2, 4, 7)
            windows = windows.reshape(3, b * nh * nw, heads, ws * ws, hd)
        else:
            windows = qkv.new_empty(3, b, nh, nw, heads, ws, ws, hd)
            grid = windows.permute(1, 2, 5, 3, 6, 0, 4, 7)  # (B, nh, ws, nw, ws, 3, heads, hd)
            for part, grid_part in window_blocks(qkv.view(b, h, w, 3, heads, hd), grid, ws):
                grid_part.copy_(part)
            pad = pad.view(3, heads, hd)
            if h % ws:  # the padded rows and columns of the last windows
                grid[:, -1, h % ws:] = pad
            if w % ws:
                grid[:, :, :, -1, w % ws:] = pad
            windows = windows.view(3, b * nh * nw, heads, ws * ws, hd)
        # A 4-D bias (1, heads, N, N): with a 3-D mask torch's CPU SDPA falls back to its ~8x slower math kernel.
        result = attention(*windows.unbind(0), bias=self.relative_position_bias().unsqueeze(0).to(qkv.dtype))
        grid = result.unflatten(0, (b, nh, nw)).unflatten(4, (ws, ws)).permute(0, 1, 4, 2, 5, 3, 6)
        if tracing:
            out.copy_(grid.reshape(b, nh * ws, nw * ws, self.dim)[:, :h, :w])
        else:
            for part, grid_part in window_blocks(out.view(b, h, w, heads, hd), grid, ws):
                part.copy_(grid_part)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = hw
        num_tokens = n - h * w
        if num_tokens < 0:
            raise ValueError(f'LocalGlobalAttention: {n} tokens cannot hold a {h}x{w} map')
        # One projection of all tokens, as in the official code: the global tokens' keys/values (T of T + H*W rows)
        # are never used, but a separate call for their queries costs more at batch 1 than computing them.
        qkv_all = self.qkv(x)
        qkv = qkv_all[:, num_tokens:].view(b, h, w, 3 * c)  # real tokens only; padding is added per window
        # [G' ; X_local + X_global] is assembled in one buffer: each result is written into its slice.
        out = qkv.new_empty(b, n, c)
        out_img = out[:, num_tokens:]
        self.local_attention(qkv, out_img.view(b, h, w, c))
        if num_tokens:
            q, k, v = qkv.view(b, h * w, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
            x_glb = _merge_heads(attention(_heads(qkv_all[:, :num_tokens, :c], self.num_heads), k, v))
            out[:, :num_tokens] = x_glb
            k_glb, v_glb = self.kv_global(x_glb).view(b, num_tokens, 2, self.num_heads, -1).permute(2, 0, 3, 1, 4)
            out_img.view(b, h * w, self.num_heads, -1).add_(attention(q, k_glb, v_glb).transpose(1, 2))
        return self.proj(out)


class BiDimensionalAttention(nn.Module):
    """Channel and spatial gates of the bi-dimensional attention (paper Sec. 3.2, Fig. 2b / Fig. 7).

    ``x' = LN(x)``; ``g = GELU(global_reduce(mean_N x'))`` (mean over all tokens, global ones included);
    ``l = GELU(local_reduce(x'))``; ``c = sigmoid(channel_select(g))`` (B, 1, C);
    ``s = sigmoid(spatial_select([l ; g]))`` (B, N, 1); the caller gates the un-normalised x: ``x * c * s``.

    Shapes: x (B, N, C) -> (c (B, 1, C), s (B, N, 1)). Reduced width ``int(C * act_ratio)`` (r = 4).
    """

    def __init__(self, dim: int, act_ratio: float = 0.25):
        super().__init__()
        reduced = int(dim * act_ratio)
        self.norm = nn.LayerNorm(dim)
        self.global_reduce = Linear(dim, reduced, activation='gelu')
        self.local_reduce = Linear(dim, reduced, activation='gelu')
        self.channel_select = Linear(reduced, dim)
        self.spatial_select = Linear(reduced * 2, 1)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        normed = self.norm(x)
        x_global = self.global_reduce(normed.mean(1, keepdim=True))
        x_local = self.local_reduce(normed)
        channel_gate = self.channel_select(x_global).sigmoid()
        # spatial_select([l ; g]) = l W_l^T + (g W_g^T + b): the per-image term of g is added, not concatenated.
        weight, reduced = self.spatial_select.weight, x_local.shape[-1]
        spatial_gate = (linear(x_local, weight[:, :reduced])
                        + linear(x_global, weight[:, reduced:], self.spatial_select.bias)).sigmoid()
        return channel_gate, spatial_gate


@register_model
class BiDimensionalAttentionFFN(nn.Module):
    """FFN with bi-dimensional attention: ``gate(fc2(drop(GELU(fc1(x)))))`` then dropout (official ``BiAttnMlp``).

    Args:
        dim: channels C. hidden_dim: FFN width (C * mlp_ratio). drop: dropout after GELU and after the gate.
    Shapes: x (B, N, C) -> (B, N, C).
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim, activation='gelu')
        self.fc2 = Linear(hidden_dim, dim)
        self.gate = BiDimensionalAttention(dim)
        self.drop = nn.Dropout(drop) if drop > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = mlp(x, self.fc1, self.fc2, self.drop)
        channel_gate, spatial_gate = self.gate(x)
        if no_autograd(x) and not is_tracing():  # x is fc2's fresh output: gated in place
            return self.drop(x.mul_(channel_gate).mul_(spatial_gate))
        return self.drop(x * channel_gate * spatial_gate)


@register_model
class ResidualPatchMerging(nn.Module):
    """Swin 2x2 patch merging plus a cheap max-pool residual branch (paper Sec. 4.1, Fig. 5c).

    Image map X (B, H, W, C), zero-padded to even H, W:
        ``X' = reduction(LN([X00 ; X10 ; X01 ; X11])) + res_proj(maxpool_2x2(X))``
    (Xij = X[i::2, j::2], the official concatenation order). Global tokens: ``G' = proj(norm2(G))``.

    Shapes: ``forward(x, hw)``: x (B, T + H*W, C) -> ((B, T + H'*W', C_out), (H', W')), H' = ceil(H/2),
    W' = ceil(W/2). No biases (official).
    """

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = Linear(4 * dim, out_dim, bias=False)
        self.norm2 = nn.LayerNorm(dim)
        self.proj = Linear(dim, out_dim, bias=False)
        self.res_proj = Linear(dim, out_dim, bias=False)

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        b, n, c = x.shape
        h, w = hw
        num_tokens = n - h * w
        x_glb, x_img = x[:, :num_tokens], x[:, num_tokens:]
        x_img, _ = pad_to_multiple(x_img.reshape(b, h, w, c), 2)
        x00, x10 = x_img[:, 0::2, 0::2], x_img[:, 1::2, 0::2]
        x01, x11 = x_img[:, 0::2, 1::2], x_img[:, 1::2, 1::2]
        pooled = torch.maximum(torch.maximum(x00, x10), torch.maximum(x01, x11))
        merged = self.reduction(self.norm(torch.cat([x00, x10, x01, x11], dim=-1))) + self.res_proj(pooled)
        out_hw = (merged.shape[1], merged.shape[2])  # ceil(H / 2), ceil(W / 2), symbolic while tracing
        merged = merged.reshape(b, out_hw[0] * out_hw[1], -1)
        return torch.cat([self.proj(self.norm2(x_glb)), merged], dim=1), out_hw


@register_model
class LightViTStem(nn.Module):
    """Overlapping conv stem with output stride 8 (official ``ConvStem``; paper Fig. 3 "OPE stem").

    ``stem``: Conv3x3/s2 (3 -> C/2, no bias) -> BN -> GELU, then three depthwise Conv3x3 (strides 1, 1, 2, no bias),
    each -> BN -> GELU (Sequential indices: convs 0/3/6/9, BNs 1/4/7/10); ``proj``: Conv3x3/s2 (C/2 -> C) -> ``norm``
    LN(C) on tokens. No residuals.

    Args:
        in_channels: image channels. embed_dims: C. norm_eval: keep the stem BNs in eval mode while training
            (the official dense configs' ``stem_norm_eval=True``).
    Shapes: x (B, 3, H, W) -> ((B, H'*W', C), (H', W')), H' = ceil(H / 8), W' = ceil(W / 8).
    """

    def __init__(self, in_channels: int = 3, embed_dims: int = 64, norm_eval: bool = False):
        super().__init__()
        self.norm_eval = norm_eval
        half = embed_dims // 2
        layers = [nn.Conv2d(in_channels, half, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(half), nn.GELU()]
        for stride in (1, 1, 2):
            layers += [nn.Conv2d(half, half, 3, stride=stride, padding=1, groups=half, bias=False),
                       nn.BatchNorm2d(half), nn.GELU()]
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(half, embed_dims, 3, stride=2, padding=1)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        # Channels-last: the depthwise convs run ~1.7x faster on CPU (oneDNN), and the output map flattens to
        # contiguous (B, H*W, C) tokens without a copy.
        x = x.contiguous(memory_format=torch.channels_last)
        for i in range(0, len(self.stem), 3):  # (conv, BN, GELU) triples; the GELU modules keep the official indices
            conv, norm, _ = self.stem[i:i + 3]
            x = self.conv_norm_gelu(conv, norm, x)
        x = self.proj(x)
        hw = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose(1, 2)), hw

    @staticmethod
    def conv_norm_gelu(conv: nn.Conv2d, norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        """GELU(BN(conv(x))). A BN in eval mode is an affine map per channel, folded into the conv's weight and bias
        (``W * s``, ``beta - mean * s`` with ``s = gamma / sqrt(var + eps)``; the stem's convs have no bias), so the
        three run as one conv with the GELU fused (``layers.onednn.conv2d``); a training BN runs on its own."""
        if norm.training:
            return F.gelu(batch_norm_train(norm, conv(x), 'LightViTStem'))
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        bias = norm.bias - norm.running_mean * scale
        return conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), bias, conv.padding, conv.dilation, conv.groups,
                      activation='gelu', stride=conv.stride)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.stem.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self
