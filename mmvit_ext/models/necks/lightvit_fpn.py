"""LightViT's FPN for a 3-stage backbone (paper Sec. 5.2, Fig. 5b; official ``detection/lightvit_fpn.py``).

A standard FPN (1x1 laterals, nearest top-down fusion, 3x3 output convs) over the backbone levels (strides 8, 16,
32), plus ``num_extra_trans_convs`` 2x2 stride-2 transposed convs applied in a chain to the fused finest lateral,
each with its own 3x3 output conv, making finer levels (stride 4). Levels above the backbone come from max-pooling
(``add_extra_convs=False``, Mask R-CNN) or stride-2 3x3 convs (``'on_input' | 'on_lateral' | 'on_output'``).
Outputs, finest first: [transposed levels..., backbone levels..., extra levels...]; with the official settings
(3 inputs, ``num_extra_trans_convs=1``, ``num_outs=5``) P2-P6 at strides 4, 8, 16, 32, 64.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from ...registry import register_model

__all__ = ['LightViTFPN']


@register_model
class LightViTFPN(BaseModule):
    """Args:
        in_channels: channels of each backbone level. out_channels: channels of every output (256).
        num_outs: number of outputs, transposed levels included.
        num_extra_trans_convs: transposed-conv levels below the finest backbone level (1 in LightViT).
        add_extra_convs: False (max-pool) or the source of the stride-2 convs above the coarsest level.
        relu_before_extra_convs: ReLU before every extra conv but the first.
        conv_cfg, norm_cfg, act_cfg: for every ConvModule (the transposed convs take norm/act too, as officially).
        upsample_cfg: ``F.interpolate`` kwargs of the top-down path (nearest, to the finer level's size).
    Official state-dict names: ``lateral_convs``, ``fpn_convs``, ``extra_trans_convs.{i}.conv`` (ConvTranspose2d),
    ``extra_fpn_convs``. Init: Xavier-uniform on Conv2d (as the official FPN), MSRA on the transposed convs.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 num_extra_trans_convs: int = 1,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 conv_cfg=None,
                 norm_cfg=None,
                 act_cfg=None,
                 upsample_cfg=dict(mode='nearest'),
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        if add_extra_convs is True:
            add_extra_convs = 'on_input'
        if add_extra_convs not in (False, 'on_input', 'on_lateral', 'on_output'):
            raise ValueError(f'LightViTFPN: add_extra_convs must be False, True, "on_input", "on_lateral" or '
                             f'"on_output", got {add_extra_convs!r}')
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.num_extra_trans_convs = num_extra_trans_convs
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg)
        num_extra_levels = num_outs - len(self.in_channels) - num_extra_trans_convs
        if num_extra_levels < 0:
            raise ValueError(f'LightViTFPN: num_outs={num_outs} is fewer than the {len(self.in_channels)} backbone '
                             f'levels plus {num_extra_trans_convs} transposed-conv levels')
        conv = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False)
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1, **conv) for c in self.in_channels)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, **conv) for _ in self.in_channels)
        if add_extra_convs:
            for i in range(num_extra_levels):
                source = self.in_channels[-1] if i == 0 and add_extra_convs == 'on_input' else out_channels
                self.fpn_convs.append(ConvModule(source, out_channels, 3, stride=2, padding=1, **conv))
        self.extra_trans_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 2, stride=2, **dict(conv, conv_cfg=dict(type='deconv')))
            for _ in range(num_extra_trans_convs))
        self.extra_fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, **conv) for _ in range(num_extra_trans_convs))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """inputs: one (B, C_i, H_i, W_i) map per backbone level -> ``num_outs`` maps (B, out_channels, ., .)."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'LightViTFPN: expected {len(self.in_channels)} input levels, got {len(inputs)}')
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                                              **self.upsample_cfg)
        upsampled: List[torch.Tensor] = []
        source = laterals[0]
        for trans_conv in self.extra_trans_convs:
            source = trans_conv(source)
            upsampled.insert(0, source)
        # Official pairing: extra_fpn_convs[0] serves the finest level.
        finer = [conv(x) for conv, x in zip(self.extra_fpn_convs, upsampled)]
        outs = [conv(lateral) for conv, lateral in zip(self.fpn_convs, laterals)]
        num_extra_levels = self.num_outs - len(finer) - len(outs)
        if num_extra_levels and not self.add_extra_convs:
            for _ in range(num_extra_levels):
                outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        elif num_extra_levels:
            source = {'on_input': inputs[-1], 'on_lateral': laterals[-1], 'on_output': outs[-1]}[self.add_extra_convs]
            first = len(laterals)
            outs.append(self.fpn_convs[first](source))
            for conv in self.fpn_convs[first + 1:]:
                outs.append(conv(F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]))
        return tuple(finer + outs)
