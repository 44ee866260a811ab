"""Non-overlapping patch embedding (LIT, LITv2): a k x k stride-k conv, then LayerNorm."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import is_tracing


class PatchEmbed(nn.Module):
    """Conv2d(in, dim, k=patch, s=patch) -> LN, official module names ``proj`` and ``norm``.

    Sides that are not multiples of ``patch_size`` (p):

    - ``pad=True`` (the official dense LIT-S/M/B and LITv2): H and W are zero-padded on the bottom/right to multiples
      of p, so the map is ``ceil(H / p) x ceil(W / p)``;
    - ``pad=False`` (the official dense LIT-Ti): the conv drops the last ``H % p`` rows and ``W % p`` columns, so the
      map is ``floor(H / p) x floor(W / p)``.

    Shapes: x (B, C_in, H, W) -> (B, dim, H', W'), normalised over channels.
    """

    def __init__(self, in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4, pad: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.pad = pad
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            p, (h, w) = self.patch_size, x.shape[2:]
            pad_b, pad_r = (h + p - 1) // p * p - h, (w + p - 1) // p * p - w
            if is_tracing() or pad_b or pad_r:  # always while tracing: one graph for every input size
                x = F.pad(x, (0, pad_r, 0, pad_b))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f'patch_size={self.patch_size}, pad={self.pad}'
