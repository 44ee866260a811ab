"""LITv2 (Pan et al., "Fast Vision Transformers with HiLo Attention", NeurIPS 2022).

Four stages on a 4x4 patch embedding (conv + LN):
- stages 1-2: ConvFFN-only blocks, ``x = x + DropPath(ConvFFN(LN(x)))`` (no attention, paper Sec. 4.3);
- stages 3-4: ``x = x + DropPath(HiLo(LN(x)))``, ``x = x + DropPath(ConvFFN(LN(x)))``; stage 4 uses window size 1,
  which makes HiLo plain global MSA;
- deformable token merging (DTM) between stages.
There is no positional embedding: the 3x3 depthwise conv in every ConvFFN supplies position information.

Module names follow the official release (``patch_embed``, ``layers.i.blocks.j``, ``layers.i.downsample``, output
norms ``norm{i}``), so official classification and dense checkpoints load with a trivial conversion
(``mmvit_ext/checkpoint/litv2.py``).

Output size rule for an H x W input: stage 1 is ceil(H/4) x ceil(W/4) (the input is zero-padded to a multiple of 4),
each DTM halves with floor, so strides are 4, 8, 16, 32 (e.g. 97x130 -> 25x33, 12x16, 6x8, 3x4). Inside HiLo the map
is padded to a multiple of the window size and cropped back. The input must be at least 29 pixels on each side.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from ...checkpoint.litv2 import convert_litv2
from ...registry import register_model
from ..base_backbone import VisionBackbone, check_images, check_stage_settings, resolve_indices, select_arch
from ..layers.utils import add_residual, run_blocks
from ..layers import ConvFFN, DeformableTokenMerging, HiLoAttention, PatchEmbed

__all__ = ['LITv2', 'litv2_classifier_cfg']


class ConvFFNBlock(nn.Module):
    """Stage 1-2 block without attention: ``x + DropPath(ConvFFN(LN(x)))``. x: (B, H*W, C) -> (B, H*W, C)."""

    def __init__(self, embed_dims: int, mlp_ratio: float = 4., drop_path: float = 0.):
        super().__init__()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = ConvFFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x), hw)))


class HiLoBlock(nn.Module):
    """Stage 3-4 block: ``x + DropPath(HiLo(LN(x)))`` then ``x + DropPath(ConvFFN(LN(x)))``.

    x: (B, H*W, C) -> (B, H*W, C).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 window_size: int,
                 alpha: float,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path: float = 0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = HiLoAttention(embed_dims, num_heads, window_size, alpha, qkv_bias)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = ConvFFN(embed_dims, int(embed_dims * mlp_ratio))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = add_residual(x, self.drop_path(self.attn(self.norm1(x), hw)))
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x), hw)))


class LITv2Stage(nn.Module):
    """``blocks`` at one resolution and the ``downsample`` (DTM, None in the last stage) to the next one.

    ``forward`` runs the blocks: x (B, H*W, C) -> (B, H*W, C); ``merge`` applies the DTM.
    """

    def __init__(self, blocks: Sequence[nn.Module], downsample: Optional[nn.Module], with_cp: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = run_blocks(self.blocks, x, hw, with_cp=self.with_cp)
        return x

    def merge(self, x: torch.Tensor, hw: Tuple[int, int]) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """DTM: x (B, H*W, C) -> (B, H'*W', C'), (H', W') = (floor(H/2), floor(W/2))."""
        b, _, c = x.shape
        # The tokens as a channels-last map, no copy: the CPU op samples rows of it, and the CUDA path (mmcv's
        # kernels) makes its inputs contiguous itself.
        x = self.downsample(x.reshape(b, hw[0], hw[1], c).permute(0, 3, 1, 2))
        return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])


@register_model
class LITv2(VisionBackbone):
    """LITv2 backbone for classification (mmpretrain), detection (mmdet) and segmentation (mmseg).

    Args:
        arch: 'small' / 'medium' / 'base' (aliases 's' / 'm' / 'b') or a dict with ``embed_dims`` (stage-1 width,
            doubled per stage), ``depths``, ``num_heads``, optionally ``drop_path_rate``.
        in_channels: image channels.
        local_ws: HiLo window size per stage; 0 = no attention (ConvFFN-only blocks), 1 = global MSA. The official
            default is [0, 0, 2, 1]; the paper's faster "*" detection variants use [0, 0, 4, 1].
        alpha: fraction of Lo-Fi heads in HiLo (0.9 in every released model).
        mlp_ratio, qkv_bias: block settings (4, True officially).
        drop_path_rate: stochastic depth, linearly increasing over all blocks; None takes the arch's ImageNet value
            (S 0.2, M 0.3, B 0.5; the detection configs use 0.2 / 0.2 / 0.3).
        out_indices: stages whose outputs are returned (0-based), each as (B, C_i, H_i, W_i).
        stage0_out_norm: whether the stage-0 output gets a LayerNorm. The official dense backbones differ here:
            detection (mmdet) has output norms only on stages 1-3 (``norm1..norm3``) and returns stage 0 raw;
            segmentation (mmseg) also normalises stage 0 (``norm0``). False follows detection, True segmentation.
            Other returned stages always get ``norm{i}``; the classifier's final norm is ``norm3``.
        frozen_stages: -1 none; 0 the patch embedding; k >= 1 also stages 1..k (blocks, their DTM and output norm).
        norm_eval: keep the DTM BatchNorms in eval mode during training.
        norm_cfg: norm of the DTM layers, ``dict(type='BN')`` as in the official code; ``dict(type='SyncBN')``
            keeps their statistics equal across ranks in distributed training (mmengine turns it back into BN
            when not distributed). With plain BN each rank keeps its own running statistics and checkpoints hold
            rank 0's.
        with_cp: activation checkpointing per block (same numbers, less memory).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads official classification or dense checkpoints
            (converted on the fly) or our own.
    """
    arch_zoo = {
        **dict.fromkeys(['s', 'small'], dict(embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                             drop_path_rate=0.2)),
        **dict.fromkeys(['m', 'medium'], dict(embed_dims=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24],
                                              drop_path_rate=0.3)),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                                            drop_path_rate=0.5)),
    }
    num_stages = 4
    convert_checkpoint = staticmethod(convert_litv2)
    # Argument names of the official detection / segmentation / classification LITv2 (ziplab/LITv2).
    official_names = dict(
        arch={'embed_dim': 'embed_dims', 'depths': 'depths', 'num_heads': 'num_heads'},
        arguments={
            'in_chans': 'in_channels',
            'use_checkpoint': 'with_cp',
            'has_msa': 'local_ws: 0 marks a stage without attention (official has_msa=[0, 0, 1, 1] with '
                       'local_ws=[0, 0, 2, 1] is local_ws=[0, 0, 2, 1])',
            'window_size': 'drop it: the official LITv2 ignores it too (a Swin leftover); the HiLo window is '
                           'local_ws',
            'pretrain_img_size': 'drop it: LITv2 has no position tables, any input size works',
            'img_size': 'drop it: LITv2 has no position tables, any input size works',
            'patch_size': 'drop it: the patch embedding is 4x4 in every release',
            'patch_norm': 'drop it: the patch embedding always ends with a LayerNorm (official patch_norm=True)',
            'ape': 'drop it: LITv2 has no absolute position embedding (official ape=False)',
            'qk_scale': 'drop it: the attention scale is head_dim ** -0.5 (official qk_scale=None)',
            'norm_layer': 'drop it: always LayerNorm',
            'drop_rate': 'drop it: not supported, every official LITv2 model uses 0',
            'attn_drop_rate': 'drop it: not supported, every official LITv2 model uses 0',
            'num_classes': 'the classifier is an mmpretrain ImageClassifier: set model.head.num_classes '
                           '(configs/litv2/litv2-*_8xb128_in1k.py, litv2_classifier_cfg)',
        })
    # Output norms are not in classification checkpoints (and norm0 not in detection ones).
    new_keys_on_pretrained = ('norm[0-3].*', )

    def __init__(self,
                 arch='small',
                 in_channels: int = 3,
                 local_ws: Sequence[int] = (0, 0, 2, 1),
                 alpha: float = 0.9,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_path_rate: Optional[float] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 stage0_out_norm: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(frozen_stages=frozen_stages, norm_eval=norm_eval, init_cfg=init_cfg)
        settings = select_arch(arch, self.arch_zoo, ('embed_dims', 'depths', 'num_heads'), 'LITv2')
        depths, num_heads = list(settings['depths']), list(settings['num_heads'])
        # local_ws: 0 = ConvFFN-only stage, >= 1 = HiLo window size.
        check_stage_settings('LITv2', self.num_stages, depths=(depths, 1), num_heads=(num_heads, 1),
                             local_ws=(local_ws, 0))
        if not 0. <= alpha <= 1.:
            raise ValueError(f'LITv2: alpha (the fraction of Lo-Fi heads) must lie in [0, 1], got {alpha}')
        self.in_channels = in_channels
        self.local_ws = list(local_ws)
        self.embed_dims = [settings['embed_dims'] * 2**i for i in range(self.num_stages)]
        self.out_indices = resolve_indices(out_indices, self.num_stages, 'LITv2')
        if drop_path_rate is None:
            drop_path_rate = settings.get('drop_path_rate', 0.)
        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()

        self.patch_embed = PatchEmbed(in_channels, self.embed_dims[0], patch_size=4)
        self.layers = nn.ModuleList()
        for i, (dims, depth, heads, ws) in enumerate(zip(self.embed_dims, depths, num_heads, self.local_ws)):
            rates = drop_rates[sum(depths[:i]):sum(depths[:i]) + depth]
            if ws > 0:
                blocks = [HiLoBlock(dims, heads, ws, alpha, mlp_ratio, qkv_bias, rate) for rate in rates]
            else:
                blocks = [ConvFFNBlock(dims, mlp_ratio, rate) for rate in rates]
            downsample = DeformableTokenMerging(dims, 2 * dims, norm_cfg=norm_cfg) if i < self.num_stages - 1 else None
            self.layers.append(LITv2Stage(blocks, downsample, with_cp))
        for i in self.out_indices:
            if i > 0 or stage0_out_norm:
                self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i]))
        # The official init happens at construction: HiLo and ConvFFN init themselves, LayerNorms start at (1, 0).
        self._freeze()

    def frozen_modules(self):
        stages = [nn.ModuleList([layer] + ([getattr(self, f'norm{i}')] if hasattr(self, f'norm{i}') else []))
                  for i, layer in enumerate(self.layers)]
        return [self.patch_embed] + stages

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x: (B, in_channels, H, W) -> tuple of (B, C_i, H_i, W_i) for i in out_indices (strides 4, 8, 16, 32)."""
        # 29 px: three 2x2 token merges after the 4x4 patch embedding leave at least one token.
        check_images(x, self.in_channels, 29, 'LITv2')
        x = self.patch_embed(x)
        hw = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, hw)
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}', None)
                out = norm(x) if norm is not None else x
                outs.append(out.reshape(x.shape[0], hw[0], hw[1], -1).permute(0, 3, 1, 2))
            if layer.downsample is not None:
                x, hw = layer.merge(x, hw)
        return tuple(outs)


def litv2_classifier_cfg(arch='small', num_classes: int = 1000, **backbone_kwargs) -> dict:
    """mmpretrain ``ImageClassifier`` config of the official LITv2 classifier.

    Backbone returning the last stage with its final norm (``norm3`` = official ``norm``), global average pooling,
    linear head (official ``head``). Build with ``mmpretrain.registry.MODELS.build(litv2_classifier_cfg('small'))``.
    """
    settings = select_arch(arch, LITv2.arch_zoo, ('embed_dims', 'depths', 'num_heads'), 'LITv2')
    backbone = dict(type='LITv2', arch=arch, out_indices=(3, ), **backbone_kwargs)
    return dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=settings['embed_dims'] * 8,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
