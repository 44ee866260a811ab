"""LightViT: Towards Light-Weight Convolution-Free Vision Transformers (Huang et al., arXiv 2207.05557).

Conv stem (stride 8) -> 3 stages of LightViT blocks (strides 8, 16, 32); a residual patch merging opens stages 2
and 3. Learnable global tokens are concatenated in front of the image tokens and flow through every block and stage
(paper Fig. 3). Each block: ``x += DP(LocalGlobalAttention(norm1(x)))``; ``x += DP(BiDimensionalAttentionFFN(
norm2(x)))``, on global and image tokens alike.

Two output types:
    - ``out_type='featmap'`` (dense tasks, official ``detection/lightvit.py``): per stage in ``out_indices``, the
      image tokens normalised by ``norm{i}`` (LN eps 1e-6) as an NCHW map. The last block of the last stage drops the
      global tokens right after its attention, so its FFN (and its BiAttn mean) sees image tokens only.
    - ``out_type='tokens'`` (classification, official ``lib/models/lightvit.py``): per stage in ``out_indices``, the
      raw ``(B, T + H*W, C)`` tokens, global tokens kept to the end; ``LightViTClsNeck`` applies the final norm,
      the 1280-d neck and the mean over all tokens.

Output sizes: stem ``ceil(H/8) x ceil(W/8)``, then each merge ``ceil(./2)``: 1x3x97x130 -> 13x17, 7x9, 4x5.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from ...checkpoint.lightvit import convert_lightvit
from ...registry import register_model
from ..base_backbone import VisionBackbone, check_images, resolve_indices, select_arch, trunc_normal_init_linear
from ..layers.utils import add_residual, run_blocks
from ..layers.lightvit_attention import (BiDimensionalAttentionFFN, LightViTStem, LocalGlobalAttention,
                                         ResidualPatchMerging)

__all__ = ['LightViT', 'LightViTBlock', 'LightViTStage']


class LightViTBlock(nn.Module):
    """Pre-norm transformer block with local-global attention and the bi-dimensional attention FFN.

    Args:
        drop_global_tokens: drop the global tokens after attention (official dense last block); the output then
            holds the H*W image tokens only.
    Shapes: ``forward(x, hw)``: x (B, T + H*W, C) -> (B, T + H*W, C) (or (B, H*W, C) with drop_global_tokens).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window_size: int = 7, qkv_bias: bool = True,
                 drop: float = 0., drop_path: float = 0., drop_global_tokens: bool = False):
        super().__init__()
        self.drop_global_tokens = drop_global_tokens
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = LocalGlobalAttention(dim, num_heads, window_size, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = BiDimensionalAttentionFFN(dim, int(dim * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = add_residual(x, self.drop_path(self.attn(self.norm1(x), hw)))
        if self.drop_global_tokens:
            x = x[:, x.shape[1] - hw[0] * hw[1]:]
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x))))


class LightViTStage(nn.Module):
    """Optional ``downsample`` (ResidualPatchMerging) then ``blocks``.

    Shapes: x (B, T + H*W, C_in) -> ((B, T + H'*W', C), (H', W')).
    """

    def __init__(self, blocks: Sequence[LightViTBlock], downsample: nn.Module = None, with_cp: bool = False):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        if self.downsample is not None:
            x, hw = self.downsample(x, hw)
        x = run_blocks(self.blocks, x, hw, with_cp=self.with_cp)
        return x, hw


@register_model
class LightViT(VisionBackbone):
    """LightViT backbone for mmdet / mmseg / mmpretrain.

    Args:
        arch: ``'tiny' | 'small' | 'base'`` (aliases ``t``, ``s``, ``b``) or a dict with ``embed_dims``,
            ``depths``, ``num_heads``, ``mlp_ratios``, ``num_global_tokens``.
        num_global_tokens: overrides the arch's count (paper: 8 / 16 / 24). The official detection release builds
            LightViT-T with **512** zero-initialised global tokens, which cannot take the 8 ImageNet-trained ones
            (mmcv's non-strict loading silently skipped them); we default to the paper's count so the pretrained
            tokens load. ``num_global_tokens=512`` reproduces the official detection model, trained from a
            checkpoint without a matching ``global_token``.
        window_size: local attention window (7). in_channels: image channels.
        out_type: ``'featmap'`` (NCHW maps of the image tokens with output norms) or ``'tokens'`` (raw token
            sequences for ``LightViTClsNeck``); see the module docstring.
        out_indices: stages to return (0, 1, 2 -> strides 8, 16, 32).
        drop_rate: dropout in the FFN. drop_path_rate: stochastic depth, linear over the blocks (merges excluded).
        stem_norm_eval: keep the stem's BatchNorms in eval mode (official dense configs). ``norm_eval`` does the
            same for every BatchNorm, which in LightViT are all in the stem.
        frozen_stages: -1 none; 0 stem + global tokens; i > 0 also stages 1..i with their output norms.
        with_cp: activation checkpointing per block.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=[64, 128, 256], depths=[2, 6, 6], num_heads=[2, 4, 8],
                                            mlp_ratios=[8, 4, 4], num_global_tokens=8)),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=[96, 192, 384], depths=[2, 6, 6], num_heads=[3, 6, 12],
                                             mlp_ratios=[8, 4, 4], num_global_tokens=16)),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=[128, 256, 512], depths=[3, 8, 6], num_heads=[4, 8, 16],
                                            mlp_ratios=[8, 4, 4], num_global_tokens=24)),
    }
    convert_checkpoint = staticmethod(convert_lightvit)
    stage_strides = (8, 16, 32)
    # Argument and registry names of the official LightViT (hunto/LightViT detection, image_classification_sota).
    official_names = dict(
        arch={'embed_dims': 'embed_dims', 'num_layers': 'depths', 'num_heads': 'num_heads',
              'mlp_ratios': 'mlp_ratios'},
        arguments={
            'in_chans': 'in_channels',
            'num_tokens': 'num_global_tokens (the official detection lightvit_tiny builds 512, the paper 8)',
            'img_size': 'drop it: any input size works',
            'patch_size': 'drop it: the stem has stride 8 in every release',
            'attn_drop_rate': 'drop it: not supported, every official LightViT model uses 0',
            'neck_dim': 'the classifier\'s neck: LightViTClsNeck(out_channels=1280) (configs/lightvit/'
                        'lightvit-*_8xb128_in1k.py)',
            'num_classes': 'the classifier is an mmpretrain ImageClassifier: set model.head.num_classes',
            'embed_layer': 'drop it: the stem is fixed (LightViTStem)',
            'norm_layer': 'drop it: always LayerNorm',
            'act_layer': 'drop it: always GELU',
            'weight_init': 'drop it: the official default init is the only one',
        },
        types={'lightvit_tiny': "arch='tiny'", 'lightvit_small': "arch='small'", 'lightvit_base': "arch='base'"})

    def __init__(self,
                 arch='tiny',
                 num_global_tokens: int = None,
                 window_size: int = 7,
                 in_channels: int = 3,
                 out_type: str = 'featmap',
                 out_indices: Sequence[int] = (0, 1, 2),
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 stem_norm_eval: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(frozen_stages=frozen_stages, norm_eval=norm_eval, init_cfg=init_cfg)
        settings = select_arch(arch, self.arch_zoo,
                               ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'num_global_tokens'), 'LightViT')
        self.embed_dims = list(settings['embed_dims'])
        depths = list(settings['depths'])
        num_stages = len(self.embed_dims)
        if not (len(depths) == len(settings['num_heads']) == len(settings['mlp_ratios']) == num_stages):
            raise ValueError('LightViT: embed_dims, depths, num_heads and mlp_ratios need one entry per stage')
        if out_type not in ('featmap', 'tokens'):
            raise ValueError(f'LightViT: out_type must be "featmap" or "tokens", got {out_type!r}')
        self.out_type = out_type
        self.out_indices = resolve_indices(out_indices, num_stages, 'LightViT')
        self.num_global_tokens = settings['num_global_tokens'] if num_global_tokens is None else num_global_tokens
        self.in_channels = in_channels

        self.patch_embed = LightViTStem(in_channels, self.embed_dims[0], norm_eval=stem_norm_eval)
        self.global_token = nn.Parameter(torch.zeros(1, self.num_global_tokens, self.embed_dims[0]))
        nn.init.trunc_normal_(self.global_token, std=.02)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(self.embed_dims, depths)):
            first = sum(depths[:i])
            blocks = [
                LightViTBlock(dim, settings['num_heads'][i], settings['mlp_ratios'][i], window_size, qkv_bias,
                              drop_rate, dpr[first + j],
                              drop_global_tokens=(out_type == 'featmap' and i == num_stages - 1 and j == depth - 1))
                for j in range(depth)
            ]
            downsample = ResidualPatchMerging(self.embed_dims[i - 1], dim) if i > 0 else None
            self.stages.append(LightViTStage(blocks, downsample, with_cp))
        if out_type == 'featmap':
            for i in self.out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i], eps=1e-6))
        self.new_keys_on_pretrained = tuple(f'norm{i}.*' for i in self.out_indices) if out_type == 'featmap' else ()
        self._freeze()

    def init_weights(self):
        super().init_weights()
        if self.init_cfg is not None:  # a checkpoint or the user's own init
            return
        # Official classification init (timm ``_init_vit_weights``); convs keep the PyTorch default, the global
        # tokens and position tables their trunc-normal(.02) from construction.
        self.apply(trunc_normal_init_linear)

    def frozen_modules(self):
        stages = []
        for i, stage in enumerate(self.stages):
            norm = getattr(self, f'norm{i}', None)
            stages.append(nn.ModuleList([stage] + ([norm] if norm is not None else [])))
        return [self.patch_embed] + stages

    def _freeze(self):
        super()._freeze()
        if self.frozen_stages >= 0:
            self.global_token.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x: (B, C_in, H, W) -> tuple of (B, C_i, H_i, W_i) maps, or of (B, T + H_i*W_i, C_i) token sequences."""
        check_images(x, self.in_channels, 1, 'LightViT')
        x, hw = self.patch_embed(x)
        x = torch.cat([self.global_token.expand(x.shape[0], -1, -1), x], dim=1)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw = stage(x, hw)
            if i not in self.out_indices:
                continue
            if self.out_type == 'tokens':
                outs.append(x)
            else:
                feat = getattr(self, f'norm{i}')(x[:, x.shape[1] - hw[0] * hw[1]:])
                outs.append(feat.reshape(x.shape[0], *hw, -1).permute(0, 3, 1, 2))
        return tuple(outs)
