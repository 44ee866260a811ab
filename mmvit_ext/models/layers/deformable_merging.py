"""Deformable token merging (DTM), LIT paper Sec. 3.3 / LITv2 Sec. 4.

A learned-offset 2x2 stride-2 deformable convolution merges neighbouring patches into one token, followed by
BatchNorm and GELU. Used by LIT and LITv2 between stages.
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch.nn.modules.utils import _pair

from ...registry import register_model
from .deform_conv import deform_conv2d
from .utils import batch_norm_train


class BiasedDeformConv2d(nn.Module):
    """Deformable conv with its own offset conv (zero-initialised) and an output bias, on ``deform_conv2d``.

    The parameter layout of mmcv's ``DeformConv2dPack`` plus the official DTM's bias (``weight``, ``bias``,
    ``conv_offset.weight``, ``conv_offset.bias``), so official checkpoints and those saved while this class was a
    ``DeformConv2dPack`` subclass load unchanged (their ``version`` metadata is not needed here).
    Under autocast the offsets and the op run in fp32: the sampling positions are precision-sensitive.

    Shapes: x (B, C_in, H, W) -> (B, C_out, H', W'), H' = (H + 2 * padding - dilation * (k - 1) - 1) // stride + 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.conv_offset = nn.Conv2d(in_channels, 2 * self.kernel_size[0] * self.kernel_size[1], self.kernel_size,
                                     stride=self.stride, padding=self.padding, dilation=self.dilation)
        self.reset_parameters()

    def reset_parameters(self):
        """mmcv's ``DeformConv2dPack`` initialisation: kaiming-uniform weight, zero offsets (zero bias here)."""
        nn.init.kaiming_uniform_(self.weight, nonlinearity='relu')
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(device_type=x.device.type, enabled=False):
                return self._forward(x.float())
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != 'cuda':
            # The CPU op samples rows of the channels-last input, and the offset conv runs several times faster on
            # it (a no-op when the tokens arrive as a (B, H, W, C) view).
            x = x.contiguous(memory_format=torch.channels_last)
        offset = self.conv_offset(x)
        return deform_conv2d(x, offset, self.weight.to(x.dtype), self.bias.to(x.dtype), self.stride, self.padding,
                             self.dilation)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}')


@register_model
class DeformableTokenMerging(nn.Module):
    """DTM: deformable conv (kernel = stride) -> norm -> GELU, official module names (``dconv``, ``norm_layer``).

    Args:
        in_channels, out_channels: channels before and after merging.
        kernel_size, stride: the merge window (2x2, stride 2 in both papers).
        norm_cfg: mmcv norm config of ``norm_layer`` (BatchNorm in both papers; ``dict(type='SyncBN')`` for
            distributed training).
    Shapes: x (B, C_in, H, W) -> (B, C_out, floor(H/2), floor(W/2)) for the default 2x2 / stride 2; on CPU the
    output is laid out channels-last, so flattening it into (B, H'*W', C_out) tokens copies nothing.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, stride: int = 2,
                 norm_cfg: dict = dict(type='BN')):
        super().__init__()
        self.dconv = BiasedDeformConv2d(in_channels, out_channels, kernel_size, stride)
        self.norm_layer = build_norm_layer(norm_cfg, out_channels)[1]
        self.act_layer = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_layer(batch_norm_train(self.norm_layer, self.dconv(x), 'DeformableTokenMerging'))
