"""Non-overlapping patch embedding (LIT, LITv2): a k x k stride-k conv, then LayerNorm."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    """Conv2d(in, dim, k=patch, s=patch) -> LN, official module names ``proj`` and ``norm``.

    Any input size: H and W are zero-padded on the bottom/right to multiples of ``patch_size`` (as the official
    dense backbones do), so the output map is ``ceil(H / p) x ceil(W / p)``.

    Shapes: x (B, C_in, H, W) -> (B, dim, ceil(H/p), ceil(W/p)), normalised over channels.
    """

    def __init__(self, in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        pad_b, pad_r = (-x.shape[2]) % p, (-x.shape[3]) % p
        if pad_b or pad_r:
            x = F.pad(x, (0, pad_r, 0, pad_b))
        x = self.proj(x)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
