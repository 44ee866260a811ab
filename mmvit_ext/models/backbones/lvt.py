"""LVT (Yang et al., "Lite Vision Transformer with Enhanced Self-Attention", CVPR 2022).

Four stages (paper Table 2), each an overlapping patch embedding (conv 7/4, then 3/2, + LN) and transformer blocks
``x = x + DropPath(Attn(LN(x)))``, ``x = x + DropPath(MLP(LN(x)))`` on channels-last maps:
- stage 1: Convolutional Self-Attention (CSA, 3x3 windows at stride 2) and a plain Linear MLP;
- stages 2-4: Recursive Atrous Self-Attention (RASA: dilations 1/3/5 on the query, keys/values spatially reduced by
  4/2/1, two recursions) and the conv-MLP (fc1 -> 3x3 depthwise -> GELU -> fc2, ``ConvFFN``).
No positional embedding, no BatchNorm.

Output size rule for an H x W input: every patch embedding maps n -> floor((n - 1) / stride) + 1 = ceil(n / stride),
so the outputs are ceil(H/4) x ceil(W/4), then halved with ceil three times (strides 4, 8, 16, 32; e.g. 97x130 ->
25x33, 13x17, 7x9, 4x5). Any input size >= 1 works: CSA folds back to the full map, and a RASA map smaller than its
spatial-reduction ratio is zero-padded to it for the key/value conv (see ``AtrousSelfAttention``).

Differences from the official release (Chenglin-Yang/LVT), all documented in configs/lvt/README.md:
- ``drop_path_rate`` works. The official registered ``lvt`` / ``lvt_cls`` constructors drop it, so the published
  numbers were trained without stochastic depth (rate 0, the default here).
- Module names: ``stages.i.patch_embed`` / ``stages.i.blocks.j`` for the official ``backbone.i.0`` / ``backbone.i.1.j``;
  ``mmvit_ext/checkpoint/lvt.py`` converts official files on the fly.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from ...checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from ...checkpoint.lvt import convert_lvt
from ...registry import register_model
from ..base_backbone import VisionBackbone, check_images, resolve_indices, select_arch, trunc_normal_init_linear
from ..layers.utils import add_residual, run_blocks
from ..layers import (AtrousSelfAttention, ConvFFN, ConvolutionalSelfAttention, LinearFFN, LVTOverlapPatchEmbed,
                      RecursiveAtrousSelfAttention)

__all__ = ['LVT', 'LVTBlock', 'lvt_classifier_cfg']


class LVTBlock(nn.Module):
    """Pre-norm transformer block on a channels-last map, with CSA + Linear MLP or RASA + ConvFFN.

    x: (B, H, W, C) -> (B, H, W, C).
    """

    def __init__(self,
                 dims: int,
                 num_heads: int,
                 attention: str,
                 mlp_ratio: float = 4.,
                 sr_ratio: int = 1,
                 dilations: Sequence[int] = (1, 3, 5),
                 num_recursions: int = 2,
                 qkv_bias: bool = False,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.):
        super().__init__()
        hidden = int(dims * mlp_ratio)
        self.norm1 = nn.LayerNorm(dims)
        self.norm2 = nn.LayerNorm(dims)
        if attention == 'csa':
            self.attn = ConvolutionalSelfAttention(dims, num_heads, attn_drop=attn_drop, proj_drop=drop)
            self.mlp = LinearFFN(dims, hidden, drop)
        elif attention == 'rasa':
            self.attn = RecursiveAtrousSelfAttention(dims, num_heads, num_recursions, sr_ratio=sr_ratio,
                                                     dilations=dilations, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                                     proj_drop=drop)
            self.mlp = ConvFFN(dims, hidden, drop=drop)
        else:
            raise ValueError(f'LVT: unknown attention "{attention}", expected "csa" or "rasa"')
        self.conv_mlp = attention == 'rasa'
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = add_residual(x, self.drop_path(self.attn(self.norm1(x))))
        if self.conv_mlp:
            b, h, w, c = x.shape
            branch = self.mlp(self.norm2(x).view(b, h * w, c), (h, w)).view(b, h, w, c)
            return add_residual(x, self.drop_path(branch))
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x))))


class LVTStage(nn.Module):
    """Overlapping patch embedding, then the blocks. x: (B, C_in, H, W) -> (B, H', W', C) channels-last."""

    def __init__(self, patch_embed: nn.Module, blocks: Sequence[nn.Module], with_cp: bool = False):
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = run_blocks(self.blocks, x, with_cp=self.with_cp)
        return x


@register_model
class LVT(VisionBackbone):
    """LVT backbone for classification (mmpretrain), detection (mmdet) and segmentation (mmseg).

    Args:
        arch: 'mobile' (the paper's model, Table 2) or a dict with ``embed_dims``, ``depths``, ``num_heads``,
            ``mlp_ratios``, ``sr_ratios`` (4 entries each) and optionally ``attentions`` (default
            ``['csa', 'rasa', 'rasa', 'rasa']``).
        in_channels: image channels.
        dilations: RASA query dilations (paper: 1, 3, 5).
        num_recursions: RASA recursion count (paper: 2; Table 7 studies 1-4).
        qkv_bias: bias in RASA's q / kv Linears (False officially).
        drop_rate, attn_drop_rate: dropout after projections / MLPs and on attention weights.
        drop_path_rate: stochastic depth, linear over the 8 blocks. Officially ignored (see module docstring), so 0.
        out_indices: stages whose outputs are returned (0-based), each as (B, C_i, H_i, W_i).
        out_norm: a LayerNorm on every returned stage (``norm{i}``). The official dense backbones have none (False);
            the official plain classifier normalises the last stage before pooling (True with out_indices=(3,)).
        frozen_stages: -1 none; 0 the first patch embedding; k >= 1 also stages 1..k (with their output norms).
        norm_eval: no effect on accuracy (LVT has no BatchNorm); kept for the common interface.
        with_cp: activation checkpointing per block (same numbers, less memory).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads the official ``lvt_imagenet.pth.tar``
            (classification), ``lvt_imagenet_pretrained.pth.tar`` (backbone-only), official or our dense
            checkpoints, or our converted files.
    """
    arch_zoo = {
        'mobile':
        dict(embed_dims=[64, 64, 160, 256], depths=[2, 2, 2, 2], num_heads=[2, 2, 5, 8], mlp_ratios=[4, 8, 4, 4],
             sr_ratios=[8, 4, 2, 1], attentions=['csa', 'rasa', 'rasa', 'rasa']),
    }
    num_stages = 4
    patch_sizes = (7, 3, 3, 3)
    strides = (4, 2, 2, 2)
    convert_checkpoint = staticmethod(convert_lvt)
    # Argument and registry names of the official LVT (Chenglin-Yang/LVT, ``lvt`` / ``lite_vision_transformer``).
    official_names = dict(
        arch={'layers': 'depths', 'embed_dims': 'embed_dims', 'num_heads': 'num_heads', 'mlp_ratios': 'mlp_ratios',
              'sr_ratios': 'sr_ratios', 'sa_layers': 'attentions'},
        arguments={
            'in_chans': 'in_channels',
            'rasa_cfg': 'dilations=atrous_rates (official [1, 3, 5]) and num_recursions=r_num (official 2); the '
                        "SiLU activation and the 'kaiming' init are fixed",
            'with_cls_head': 'drop it: the backbone has no head; the classifiers are configs/lvt/'
                             'lvt_8xb128_in1k.py (plain head) and lvt-cls_8xb128_in1k.py (class attention)',
            'patch_size': 'drop it: the patch embeddings are 7x7/4 then 3x3/2 in every release',
            'mlp_depconv': 'drop it: stages 2-4 have the depthwise-conv FFN as officially',
            'qk_scale': 'drop it: the attention scale is head_dim ** -0.5 (official qk_scale=None)',
            'norm_layer': 'drop it: always LayerNorm',
            'num_classes': 'the classifier is an mmpretrain ImageClassifier: set model.head.num_classes',
        },
        types={'lvt': "arch='mobile'"})
    # Official files have no output norms except the plain classifier's ``downstream_norms`` / final ``norm``.
    new_keys_on_pretrained = ('norm[0-3].*', )

    def __init__(self,
                 arch='mobile',
                 in_channels: int = 3,
                 dilations: Sequence[int] = (1, 3, 5),
                 num_recursions: int = 2,
                 qkv_bias: bool = False,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 out_norm: bool = False,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(frozen_stages=frozen_stages, norm_eval=norm_eval, init_cfg=init_cfg)
        settings = select_arch(arch, self.arch_zoo,
                               ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios'), 'LVT')
        settings.setdefault('attentions', ['csa'] + ['rasa'] * (self.num_stages - 1))
        for key in ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios', 'attentions'):
            if len(settings[key]) != self.num_stages:
                raise ValueError(f'LVT: arch "{key}" needs {self.num_stages} entries, got {settings[key]}')
        self.in_channels = in_channels
        self.embed_dims = list(settings['embed_dims'])
        self.out_indices = resolve_indices(out_indices, self.num_stages, 'LVT')
        depths = settings['depths']
        drop_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()

        self.stages = nn.ModuleList()
        dims_in = in_channels
        for i in range(self.num_stages):
            dims = self.embed_dims[i]
            blocks = [
                LVTBlock(dims, settings['num_heads'][i], settings['attentions'][i], settings['mlp_ratios'][i],
                         settings['sr_ratios'][i], dilations, num_recursions, qkv_bias, drop_rate, attn_drop_rate,
                         rate) for rate in drop_rates[sum(depths[:i]):sum(depths[:i + 1])]
            ]
            patch_embed = LVTOverlapPatchEmbed(dims_in, dims, self.patch_sizes[i], self.strides[i])
            self.stages.append(LVTStage(patch_embed, blocks, with_cp))
            dims_in = dims
        if out_norm:
            for i in self.out_indices:
                self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i]))
        self._init_official()
        self._freeze()

    def _init_official(self):
        """Official init: Linear trunc-normal(.02) / zero bias, LN (1, 0), Conv2d (also the 1x1 convs that the
        conv-MLP's Linears replace) N(0, sqrt(2 / fan_out)) / zero bias; CSA taps and the RASA kernel as in the ops."""
        self.apply(trunc_normal_init_linear)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
                nn.init.normal_(module.weight, 0, (2. / fan_out)**0.5)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, ConvFFN):
                for fc in (module.fc1, module.fc2):
                    nn.init.normal_(fc.weight, 0, (2. / fc.out_features)**0.5)
            elif isinstance(module, ConvolutionalSelfAttention):
                module.reset_tap_proj()
            elif isinstance(module, AtrousSelfAttention):
                module.reset_atrous_kernel()

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            super().init_weights()
        elif cfg is None:
            self._init_official()
        else:
            super().init_weights()

    def load_pretrained(self, filename: str, prefix: str = 'backbone.'):
        """Like ``VisionBackbone.load_pretrained``, but ``convert_lvt`` strips the ``backbone.`` prefixes itself (the
        official files nest the backbone under ``backbone.``, dense ones twice) and names every key it skips."""
        state = extract_state_dict(read_checkpoint(filename), prefix=None if prefix == 'backbone.' else prefix)
        load_converted(self, convert_lvt(state, self), allow_missing=self.new_keys_on_pretrained, source=str(filename))

    def frozen_modules(self):
        groups = [nn.ModuleList([stage] + ([getattr(self, f'norm{i}')] if hasattr(self, f'norm{i}') else []))
                  for i, stage in enumerate(self.stages)]
        return [self.stages[0].patch_embed] + groups

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x: (B, in_channels, H, W) -> tuple of (B, C_i, H_i, W_i) for i in out_indices (strides 4, 8, 16, 32)."""
        check_images(x, self.in_channels, 1, 'LVT')
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}', None)
                out = norm(x) if norm is not None else x
                outs.append(out.permute(0, 3, 1, 2))
            x = x.permute(0, 3, 1, 2)
        return tuple(outs)


def lvt_classifier_cfg(num_classes: int = 1000, head: str = 'class_attention', **backbone_kwargs) -> dict:
    """mmpretrain ``ImageClassifier`` config of an LVT classifier.

    ``head='class_attention'``: the official ``lvt_cls`` (2 class-attention layers + auxiliary token head, 5.52 M
    params; loads ``lvt_imagenet.pth.tar``). ``head='linear'``: the plain classifier (LN on the last stage, global
    average pooling, Linear).
    """
    if head == 'class_attention':
        backbone = dict(type='LVT', arch='mobile', out_indices=(3, ), **backbone_kwargs)
        return dict(type='ImageClassifier', backbone=backbone,
                    head=dict(type='LVTClassAttentionHead', num_classes=num_classes, in_channels=256,
                              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    if head == 'linear':
        backbone = dict(type='LVT', arch='mobile', out_indices=(3, ), out_norm=True, **backbone_kwargs)
        return dict(type='ImageClassifier', backbone=backbone, neck=dict(type='GlobalAveragePooling'),
                    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=256,
                              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    raise ValueError(f'lvt_classifier_cfg: head must be "class_attention" or "linear", got {head!r}')
