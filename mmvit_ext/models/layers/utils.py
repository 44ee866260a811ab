"""Small shape helpers shared by the attention ops: token/map layout, padding to a multiple, windows."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def nlc_to_nchw(x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
    """x: (B, H*W, C) -> (B, C, H, W)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *hw)


def nchw_to_nlc(x: torch.Tensor) -> torch.Tensor:
    """x: (B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Zero-pad a channels-last map x: (B, H, W, C) on the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded map and the padding ``(pad_b, pad_r)``; crop with ``x[:, :H, :W]``.
    """
    h, w = x.shape[1:3]
    pad_b, pad_r = (-h) % multiple, (-w) % multiple
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x, (pad_b, pad_r)


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


def run_blocks(blocks, x: torch.Tensor, *args, with_cp: bool = False) -> torch.Tensor:
    """Apply ``blocks`` in order (``block(x, *args)``); with ``with_cp`` each block's activations are recomputed in
    the backward pass (activation checkpointing) whenever gradients flow."""
    for block in blocks:
        if with_cp and x.requires_grad:
            x = checkpoint(block, x, *args, use_reentrant=False)
        else:
            x = block(x, *args)
    return x
