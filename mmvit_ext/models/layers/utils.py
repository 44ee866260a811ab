"""Small helpers shared by the attention ops: token/map layout, padding to a multiple, windows, the attention
product."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

try:  # the flags that torch.onnx.is_in_onnx_export() reads; it imports their modules on every call (1.2 us, three
    # times the rest of is_tracing, which runs in every layer)
    from torch.onnx._internal.exporter import _flags as _onnx_flags
    from torch.onnx._internal.torchscript_exporter._globals import GLOBALS as _ONNX_GLOBALS

    def _in_onnx_export() -> bool:
        return _ONNX_GLOBALS.in_onnx_export or _onnx_flags._is_onnx_exporting
except ImportError:  # another PyTorch layout: the public function
    _in_onnx_export = torch.onnx.is_in_onnx_export


def is_tracing() -> bool:
    """Whether the forward is being recorded as a graph: ``torch.jit.trace``, ``torch.export`` /
    ``torch.onnx.export`` or ``torch.compile``.

    Sizes may then be symbolic (or recorded), so per-size Python caches are bypassed and branches on a size take
    their general form (e.g. padding that may be zero), which keeps the recorded graph valid for every input size.
    """
    return (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
            or _in_onnx_export())


def no_autograd(*tensors: torch.Tensor) -> bool:
    """Whether autograd records nothing on these tensors: gradients are off, or none of them requires one."""
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def add_residual(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """``x + branch`` for a residual connection, ``branch`` being a fresh tensor (the output of the block's branch).

    Written into ``branch`` where autograd and a recorded graph need neither operand and the sum keeps branch's
    shape and dtype (not for a broadcast, nor an autocast branch in a lower precision than x): a new buffer per
    block is a cache-cold write at every residual, about 0.5 ms of LightViT-T's 23 at batch 1.
    """
    if not is_tracing() and branch.shape == x.shape and branch.dtype == x.dtype and no_autograd(x, branch):
        return branch.add_(x)
    return x + branch


def nlc_to_nchw(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """x: (B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


def nchw_to_nlc(x: torch.Tensor) -> torch.Tensor:
    """x: (B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Zero-pad a channels-last map x: (B, H, W, C) on the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded map and the padding ``(pad_b, pad_r)``; crop with ``x[:, :H, :W]``. While tracing (see
    ``is_tracing``) the pad is always applied, so that the graph holds for sizes that do need padding.
    """
    h, w = x.shape[1:3]
    # ceil(h / m) * m - h rather than (-h) % m: the same number, but a far simpler symbolic size under torch.export.
    pad_b = (h + multiple - 1) // multiple * multiple - h
    pad_r = (w + multiple - 1) // multiple * multiple - w
    if is_tracing() or pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x, (pad_b, pad_r)


# CPU inference computes softmax(q k^T + bias) v explicitly for at most this many keys, if the queries are at most
# EXPLICIT_QUERIES_PER_KEY times as many (see ``attention``).
EXPLICIT_MAX_KEYS = 64
EXPLICIT_QUERIES_PER_KEY = 4


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: Optional[float] = None,
              bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v``: q (..., L, E), k (..., S, E), v (..., S, Ev), bias broadcastable to
    (..., L, S) or None -> (..., L, Ev); scale E^-0.5 by default.

    ``F.scaled_dot_product_attention`` (the bias as its additive mask), except in CPU inference with short softmax
    rows, ``S <= EXPLICIT_MAX_KEYS`` and ``L <= EXPLICIT_QUERIES_PER_KEY * S``: two batched matmuls around an
    in-place softmax, with the bias added by the first (``baddbmm``), or else the scale applied in the pass that lays
    q out for it (HiLo's Lo-Fi queries are a strided view). On a 2-core Zen 4 that ran 3.4x the fused kernel on
    HiLo's 2x2 windows, 1.2x on its Lo-Fi branch (49 pooled keys), 1.2-1.9x on LightViT's 7x7 windows with their
    position bias, while the fused kernel stayed faster for long rows (0.5x at 950 keys) and for many queries on few
    keys (0.65-0.8x for 784 queries on 8 global tokens), whose skinny products BLAS runs slowly.
    A recorded graph (``is_tracing``) and training keep the fused op.
    """
    num_q, num_k = q.shape[-2], k.shape[-2]
    if (q.device.type != 'cpu' or num_k > EXPLICIT_MAX_KEYS or num_q > EXPLICIT_QUERIES_PER_KEY * num_k
            or torch.is_grad_enabled() or is_tracing()):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if bias is None:  # into a contiguous buffer: a strided q is copied once, not scaled and then copied by matmul
        logits = torch.matmul(torch.mul(q, scale, out=q.new_empty(q.shape)), k.transpose(-2, -1))
    else:  # q, k, v of one batch shape
        logits = q.new_empty((*q.shape[:-2], num_q, num_k)).copy_(bias)
        logits.view(-1, num_q, num_k).baddbmm_(q.reshape(-1, num_q, q.shape[-1]),
                                               k.reshape(-1, num_k, k.shape[-1]).transpose(1, 2), alpha=scale)
    return torch.softmax(logits, -1, out=logits).matmul(v)


def window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """x: (B, H, W, C) with H, W multiples of ws -> (B, H/ws * W/ws, ws*ws, C), windows in raster order."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    return x.reshape(b, (h // ws) * (w // ws), ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, hw: Tuple[int, int]) -> torch.Tensor:
    """windows: (B, nW, ws*ws, C) -> (B, H, W, C); inverse of ``window_partition``."""
    b, _, _, c = windows.shape
    h, w = hw
    x = windows.view(b, h // ws, w // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(b, h, w, c)


def window_blocks(x: torch.Tensor, grid: torch.Tensor, ws: int):
    """Matching views of a map and of its windows, covering the map's real H x W region without padding it.

    x: (B, H, W, *rest); grid: (B, nH, ws, nW, ws, *rest), the map padded to multiples of ws and split into
    windows (nH = ceil(H / ws), any strides, e.g. a permuted view of a window-major buffer). Yields up to four
    ``(x_part, grid_part)`` pairs of equal shape: the full windows, the partial last window row and column, and
    their corner (one pair where H and W are multiples of ws); ``grid_part.copy_(x_part)`` over all pairs fills
    the windows, ``x_part.copy_(grid_part)`` reads them back. Sizes are branched on: eager use only
    (``is_tracing`` is False).
    """
    h, w = x.shape[1:3]
    full_h, rest_h = divmod(h, ws)
    full_w, rest_w = divmod(w, ws)
    # (first window, windows, rows in each), empty parts left out
    rows = [part for part in ((0, full_h, ws), (full_h, 1, rest_h)) if part[1] * part[2]]
    cols = [part for part in ((0, full_w, ws), (full_w, 1, rest_w)) if part[1] * part[2]]
    for i, rows_n, rows_k in rows:
        for j, cols_n, cols_k in cols:
            part = x[:, i * ws:i * ws + rows_n * rows_k, j * ws:j * ws + cols_n * cols_k]
            yield (part.unflatten(1, (rows_n, rows_k)).unflatten(3, (cols_n, cols_k)),
                   grid[:, i:i + rows_n, :rows_k, j:j + cols_n, :cols_k])


def run_blocks(blocks, x: torch.Tensor, *args, with_cp: bool = False) -> torch.Tensor:
    """Apply ``blocks`` in order (``block(x, *args)``); with ``with_cp`` each block's activations are recomputed in
    the backward pass (activation checkpointing) whenever gradients flow."""
    for block in blocks:
        if with_cp and x.requires_grad:
            x = checkpoint(block, x, *args, use_reentrant=False)
        else:
            x = block(x, *args)
    return x


def batch_norm_train(norm: nn.Module, x: torch.Tensor, where: str) -> torch.Tensor:
    """``norm(x)`` for x: (B, C, H, W), with a clear error where training BatchNorm would see one value per
    channel (one image whose map is 1x1 at this point), instead of torch's bare "Expected more than 1 value"."""
    if norm.training and isinstance(norm, _BatchNorm) and not is_tracing() \
            and x.shape[0] * x.shape[2] * x.shape[3] == 1:
        raise ValueError(f'{where}: training BatchNorm needs more than one value per channel, but the map is 1x1 '
                         'for a batch of 1 image; train with batch size >= 2 or with larger images')
    return norm(x)
