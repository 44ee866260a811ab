"""Global multi-head self-attention with an optional relative position bias, and learned position embeddings.

- ``GridRelativePositionBias``: the Swin-style bias table ``B`` over a token grid (a window or a whole stage map),
  Swin paper Eq. (4), used by LIT-S/M/B over the whole stage-3/4 map (LIT official ``RelPosAttention``). When the
  grid differs from the one the table was trained for, the table is resized bicubically (as the official LIT dense
  code does). Everything that depends only on the grid size is cached: the per-axis pair offsets once per size
  and device for all modules, and, while the table is not being trained, the resized table per size and the
  gathered bias of grids up to ``CACHED_BIAS_ELEMENTS`` (windows and classification maps, not detection maps).
- ``RelPosMultiheadAttention``: ``softmax(q k^T / sqrt(d) + B) v`` over all N tokens with
  ``F.scaled_dot_product_attention`` (the bias is an additive mask); without a bias it is plain ViT MSA (LIT-Ti).
- ``GridPositionEmbedding``: learned embeddings for a token grid (plus extra tokens such as a cls token),
  resized to the actual grid (LIT-Ti, official dense code: bilinear), cached per size while frozen.

Caching rule for the parameter-dependent values: a resized table/embedding is reused only while autograd does not
need it (``torch.no_grad``/inference, or the parameter is frozen) and the parameter has not changed since (same
storage and version counter, so an optimizer step or ``load_state_dict`` invalidates it). During training the
resize runs every forward because the parameter changes every step; it is tiny next to the attention itself, and the
size-only part (the gather offsets) stays cached. While a graph is recorded (``torch.jit.trace``, ``torch.export`` /
ONNX export, ``torch.compile``; ``utils.is_tracing``) nothing is cached and every size-dependent value is computed in
the graph from the (symbolic) input size, so one traced or exported graph serves every input size.
"""
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...registry import register_model
from .onednn import Linear
from .utils import is_tracing

__all__ = ['GridRelativePositionBias', 'RelPosMultiheadAttention', 'GridPositionEmbedding',
           'relative_offsets', 'resize_relative_position_table', 'resize_position_embedding']

GridSize = Union[int, Sequence[int]]

# Gathered (heads, N, N) biases are cached up to this many elements (16 MB in fp32): a LightViT 7x7 window or a LIT
# stage at 224 is far below it, a stage of a detection map (50x76 tokens: 116 M elements) is gathered per call.
CACHED_BIAS_ELEMENTS = 1 << 22


def _pair(size: GridSize) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    if is_tracing():  # symbolic or recorded sizes stay as they are: int() would bake them into the graph
        return h, w
    return int(h), int(w)


def _same_size(src_hw: Tuple[int, int], dst_hw: Tuple[int, int]) -> bool:
    """``src_hw == dst_hw``; False for a size that is symbolic or recorded while tracing, so that the resize stays
    in the graph (an identity at equal sizes) instead of the traced size being baked in."""
    if is_tracing() and not all(isinstance(v, int) for v in (*src_hw, *dst_hw)):
        return False
    return tuple(src_hw) == tuple(dst_hw)


def relative_offsets(length: int, device: torch.device) -> torch.Tensor:
    """(L, L) table rows of every pair along one axis: ``[p, q] = p - q + L - 1`` (Swin's shifted offsets).

    Cached per (length, device) and shared by every module. Tensors made under ``torch.inference_mode`` cannot
    serve autograd later, so they are cached apart. Computed in the graph while tracing (``length`` may be symbolic).
    """
    if is_tracing():
        coords = torch.arange(length, device=device)
        return coords[:, None] - coords[None, :] + length - 1
    return _relative_offsets(int(length), torch.device(device), torch.is_inference_mode_enabled())


@lru_cache(maxsize=128)
def _relative_offsets(length: int, device: torch.device, inference: bool) -> torch.Tensor:
    coords = torch.arange(length, device=device)
    return coords[:, None] - coords[None, :] + length - 1


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tables are resized in fp32 (bicubic has no CPU half kernel); fp32 and fp64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def resize_relative_position_table(table: torch.Tensor, src_hw: Tuple[int, int],
                                   dst_hw: Tuple[int, int], mode: str = 'bicubic') -> torch.Tensor:
    """Resize a bias table for an ``src_hw`` grid to a ``dst_hw`` grid.

    table: ((2h-1)(2w-1), heads) -> ((2H-1)(2W-1), heads), interpolated as a (heads, 2h-1, 2w-1) image with
    ``F.interpolate(mode, align_corners=False)`` (the official LIT call). The same size returns ``table`` itself.
    """
    src_hw, dst_hw = _pair(src_hw), _pair(dst_hw)
    if _same_size(src_hw, dst_hw):
        return table
    heads = table.shape[1]
    src = (2 * src_hw[0] - 1, 2 * src_hw[1] - 1)
    dst = (2 * dst_hw[0] - 1, 2 * dst_hw[1] - 1)
    if table.shape[0] != src[0] * src[1]:
        raise ValueError(f'relative position table has {table.shape[0]} rows; a {src_hw} grid needs {src[0] * src[1]}')
    image = table.transpose(0, 1).reshape(1, heads, *src)
    resized = F.interpolate(_at_least_fp32(image), size=dst, mode=mode, align_corners=False).to(table.dtype)
    return resized.reshape(heads, dst[0] * dst[1]).transpose(0, 1)


def resize_position_embedding(pos_embed: torch.Tensor, src_hw: Tuple[int, int], dst_hw: Tuple[int, int],
                              num_extra_tokens: int = 0, mode: str = 'bilinear') -> torch.Tensor:
    """Resize learned embeddings of an ``src_hw`` token grid to ``dst_hw``; the leading extra tokens are kept.

    pos_embed: (1, E + h*w, C) -> (1, E + H*W, C), grid part interpolated with ``align_corners=False``.
    """
    src_hw, dst_hw = _pair(src_hw), _pair(dst_hw)
    if _same_size(src_hw, dst_hw):
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    if grid.shape[1] != src_hw[0] * src_hw[1]:
        raise ValueError(f'position embedding has {grid.shape[1]} grid tokens; a {src_hw} grid needs '
                         f'{src_hw[0] * src_hw[1]}')
    channels = grid.shape[2]
    image = grid.reshape(1, *src_hw, channels).permute(0, 3, 1, 2)
    resized = F.interpolate(_at_least_fp32(image), size=dst_hw, mode=mode, align_corners=False)
    resized = resized.to(pos_embed.dtype)
    return torch.cat([extra, resized.flatten(2).transpose(1, 2)], dim=1)


class _SizeCache:
    """Per-size cache of values derived from one parameter; valid while that parameter is unchanged and no
    gradient has to flow through the value (see the module docstring). Holds the last ``maxsize`` sizes."""

    def __init__(self, maxsize: int = 4):
        self.maxsize = maxsize
        self.entries = {}
        self.param_state = None

    def get(self, param: torch.Tensor, key, compute):
        if param.requires_grad and torch.is_grad_enabled() or is_tracing():
            return compute()
        state = (param.device, param.dtype, param.data_ptr(), param._version, torch.is_inference_mode_enabled())
        if state != self.param_state:  # the parameter changed (or moved): every entry is stale
            self.entries.clear()
            self.param_state = state
        value = self.entries.get(key)
        if value is None:
            with torch.no_grad():
                value = compute()
            if len(self.entries) >= self.maxsize:
                self.entries.pop(next(iter(self.entries)))
            self.entries[key] = value
        return value


@register_model
class GridRelativePositionBias(nn.Module):
    """Learned relative position bias over an H x W token grid (Swin Eq. 4; LIT-S/M/B over the whole stage map).

    Args:
        num_heads: one bias per head.
        grid_size: (h, w) grid the table is stored for: table ((2h-1)(2w-1), heads), named
            ``relative_position_bias_table`` as in Swin/LIT (so the usual no-decay ``custom_keys`` match).
        interp_mode: how the table is resized for another grid (``'bicubic'``, the official LIT choice).

    ``forward(hw)`` -> bias (heads, N, N) with N = H*W, for the grid ``hw`` (default: ``grid_size``).
    """

    def __init__(self, num_heads: int, grid_size: GridSize, interp_mode: str = 'bicubic'):
        super().__init__()
        self.num_heads = num_heads
        self.grid_size = _pair(grid_size)
        self.interp_mode = interp_mode
        h, w = self.grid_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * h - 1) * (2 * w - 1), num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=.02)
        self._tables = _SizeCache()
        self._biases = _SizeCache()

    def resized_table(self, hw: Tuple[int, int]) -> torch.Tensor:
        """The table for grid ``hw`` as (heads, (2H-1)(2W-1)); cached per size while the table is frozen."""
        table = self.relative_position_bias_table

        def resize():
            return resize_relative_position_table(table, self.grid_size, hw, self.interp_mode).t().contiguous()

        return self._tables.get(table, hw, resize)

    def forward(self, hw: Optional[GridSize] = None) -> torch.Tensor:
        h, w = self.grid_size if hw is None else _pair(hw)
        if is_tracing() or self.num_heads * (h * w) ** 2 > CACHED_BIAS_ELEMENTS:
            return self.gather((h, w))
        return self._biases.get(self.relative_position_bias_table, (h, w), lambda: self.gather((h, w)))

    def gather(self, hw: Tuple[int, int]) -> torch.Tensor:
        """The bias (heads, N, N) of grid ``hw``, gathered from the (resized) table."""
        h, w = hw
        table = self.resized_table((h, w))  # (heads, (2h-1)(2w-1))
        if is_tracing():
            # One gather per axis, then the (i_p, j_p, i_q, j_q) order: twice the eager cost of the flat gather
            # below, but inductor's kernel for the flat one divides every element's index by the symbolic width
            # (about 150x slower than this under torch.compile with dynamic shapes at a 25x38 map).
            rows = table.view(self.num_heads, 2 * h - 1, 2 * w - 1)[:, relative_offsets(h, table.device)]
            pairs = rows[..., relative_offsets(w, table.device)]  # (heads, i_p, i_q, j_p, j_q)
            return pairs.permute(0, 1, 3, 2, 4).reshape(self.num_heads, h * w, h * w)
        # Swin's flat index of every pair, (i_p - i_q + h - 1) * (2w - 1) + j_p - j_q + w - 1, from the cached
        # per-axis offsets; one broadcast add, so no (N*N,) index is kept alive (141 MB for a 50x84 detection map).
        index = (relative_offsets(h, table.device)[:, None, :, None] * (2 * w - 1)
                 + relative_offsets(w, table.device)[None, :, None, :])
        return table.index_select(1, index.view(-1)).view(self.num_heads, h * w, h * w)

    def extra_repr(self) -> str:
        return f'num_heads={self.num_heads}, grid_size={self.grid_size}, interp_mode={self.interp_mode}'



@register_model
class RelPosMultiheadAttention(nn.Module):
    """Global multi-head self-attention over all N tokens, optionally with a relative position bias.

    ``Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + B) V`` (ViT; Swin Eq. 4 for B), computed with
    ``F.scaled_dot_product_attention``. Module names follow the official LIT release (``qkv``, ``proj``); the
    bias table lives in ``rel_pos`` (a ``GridRelativePositionBias``).

    Args:
        embed_dims, num_heads: C and heads (head dim C / heads).
        qkv_bias: bias of the joint q/k/v projection (True in LIT).
        rel_pos_grid: (h, w) grid of the stored bias table; ``None`` for no bias (plain MSA, LIT-Ti).
        rel_pos_interp: resize mode of the table for other grids.
        attn_drop, proj_drop: dropout on the attention weights and the output.

    ``forward(x, hw)``: x (B, N, C) with N = H*W when a bias is used -> (B, N, C).
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 rel_pos_grid: Optional[GridSize] = None, rel_pos_interp: str = 'bicubic',
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.qkv = Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rel_pos = (GridRelativePositionBias(num_heads, rel_pos_grid, rel_pos_interp)
                        if rel_pos_grid is not None else None)

    def forward(self, x: torch.Tensor, hw: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = None
        if self.rel_pos is not None:
            if hw is None or hw[0] * hw[1] != n:
                raise ValueError(f'a relative position bias needs the grid size of the {n} tokens, got hw={hw}')
            bias = self.rel_pos(hw).to(q.dtype).unsqueeze(0)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                           dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


@register_model
class GridPositionEmbedding(nn.Module):
    """Learned position embeddings of an h x w token grid plus ``num_extra_tokens`` leading tokens (e.g. cls).

    The parameter ``weight`` (1, E + h*w, C) has the official ViT/PVT layout. For another grid the grid part is
    resized (``interp_mode``; LIT-Ti's official dense code uses bilinear) and cached per size while frozen.

    ``forward(x, hw)``: x (B, E + H*W, C) -> x + embeddings.
    """

    def __init__(self, grid_size: GridSize, embed_dims: int, num_extra_tokens: int = 0,
                 interp_mode: str = 'bilinear'):
        super().__init__()
        self.grid_size = _pair(grid_size)
        self.num_extra_tokens = num_extra_tokens
        self.interp_mode = interp_mode
        self.weight = nn.Parameter(torch.zeros(1, num_extra_tokens + self.grid_size[0] * self.grid_size[1],
                                               embed_dims))
        nn.init.trunc_normal_(self.weight, std=.02)
        self._resized = _SizeCache()

    def resized(self, hw: Tuple[int, int]) -> torch.Tensor:
        """Embeddings for grid ``hw``: (1, E + H*W, C)."""
        return self._resized.get(self.weight, hw, lambda: resize_position_embedding(
            self.weight, self.grid_size, hw, self.num_extra_tokens, self.interp_mode))

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        return x + self.resized(_pair(hw)).to(x.dtype)

    def extra_repr(self) -> str:
        return (f'grid_size={self.grid_size}, num_extra_tokens={self.num_extra_tokens}, '
                f'interp_mode={self.interp_mode}')
