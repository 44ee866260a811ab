"""LightViT classification neck: final norm, 1280-d expansion, mean over all tokens (official ``forward_features``).

Used in an mmpretrain ``ImageClassifier`` between ``LightViT(out_type='tokens')`` and a plain ``LinearClsHead``
(``in_channels=1280``): backbone tokens (B, T + H*W, C) -> ``norm`` LN(C, eps 1e-6) -> ``expand`` = Linear(C, 1280)
-> LN(1280) -> GELU -> mean over global and image tokens -> (B, 1280) -> ``head.fc`` Linear(1280, classes).
The three parts match the official ``norm``, ``neck.{0,1}`` and ``head`` (see ``convert_lightvit_classifier``).
"""
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from ...registry import register_model
from ..layers import Linear

__all__ = ['LightViTClsNeck']


@register_model
class LightViTClsNeck(BaseModule):
    """Args: in_channels: C of the last stage. out_channels: expansion width (1280).

    Shapes: ``forward(tokens)``: a tuple of (B, N, C) -> a tuple holding one (B, out_channels) tensor (the last).
    """

    def __init__(self, in_channels: int, out_channels: int = 1280, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.norm = nn.LayerNorm(in_channels, eps=1e-6)
        self.expand = nn.Sequential(Linear(in_channels, out_channels), nn.LayerNorm(out_channels), nn.GELU())

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is None:
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.trunc_normal_(module.weight, std=.02)
                    nn.init.zeros_(module.bias)

    def forward(self, inputs) -> Tuple[torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            inputs = (inputs, )
        tokens = inputs[-1]
        if tokens.dim() != 3:
            raise ValueError('LightViTClsNeck expects token sequences (B, N, C); build the backbone with '
                             f"out_type='tokens' (got a tensor of shape {tuple(tokens.shape)})")
        return (self.expand(self.norm(tokens)).mean(1), )
