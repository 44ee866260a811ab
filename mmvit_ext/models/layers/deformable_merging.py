"""Deformable token merging (DTM), LIT paper Sec. 3.3 / LITv2 Sec. 4.

A learned-offset 2x2 stride-2 deformable convolution merges neighbouring patches into one token, followed by
BatchNorm and GELU. Used by LIT and LITv2 between stages.
"""
import torch
import torch.nn as nn
from mmcv.ops import DeformConv2dPack, deform_conv2d

from ...registry import register_model


class BiasedDeformConv2d(DeformConv2dPack):
    """``mmcv.ops.DeformConv2dPack`` (offset conv, zero-initialised) plus an output bias.

    mmcv's deformable conv refuses ``bias=True``; the official DTM has one, so it is a separate parameter added after
    the op. Parameter names match the official ``DeformConv2dPack`` (``weight``, ``bias``, ``conv_offset.*``).
    The op always runs in fp32: mmcv's CPU kernel has no bf16 and the offsets are precision-sensitive.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int = 0):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H', W') with H' = floor((H + 2p - k) / s) + 1."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            # mmcv needs contiguous input and offsets (the offset conv keeps the input's memory layout).
            x = x.float().contiguous()
            offset = self.conv_offset(x)
            # im2col over the whole batch: mmcv requires the batch to be divisible by its im2col step.
            out = deform_conv2d(x, offset, self.weight.float(), self.stride, self.padding,
                                self.dilation, self.groups, self.deform_groups, False, x.shape[0])
            return out + self.bias.float().view(1, -1, 1, 1)


@register_model
class DeformableTokenMerging(nn.Module):
    """DTM: deformable conv (kernel = stride) -> BatchNorm -> GELU, official module names (``dconv``, ``norm_layer``).

    Args:
        in_channels, out_channels: channels before and after merging.
        kernel_size, stride: the merge window (2x2, stride 2 in both papers).
    Shapes: x (B, C_in, H, W) -> (B, C_out, floor(H/2), floor(W/2)) for the default 2x2 / stride 2.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, stride: int = 2):
        super().__init__()
        self.dconv = BiasedDeformConv2d(in_channels, out_channels, kernel_size, stride)
        self.norm_layer = nn.BatchNorm2d(out_channels)
        self.act_layer = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_layer(self.norm_layer(self.dconv(x)))
