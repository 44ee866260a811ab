"""LIT: "Less is More: Pay Less Attention in Vision Transformers" (Pan et al., AAAI 2022).

Four stages over a stride-4 patch embedding (paper Sec. 3.1, Fig. 1): stages 1-2 are MLP-only blocks (Eq. 1),
stages 3-4 standard Transformer blocks with global multi-head self-attention (Eq. 2); deformable token merging
(DTM, Sec. 3.3, Eq. 8) halves the map between stages. Positional information as in the official release:

- LIT-Ti (``tiny``): learned absolute embeddings per stage, added after the stage's patch embedding / DTM; in
  classification a cls token is prepended in stage 4 and the normed cls token is classified.
- LIT-S/M/B: a relative position bias over the whole stage-3/4 map (``RelPosMultiheadAttention``), no embeddings;
  classification averages the normed stage-4 tokens.

Any input size of at least 32 x 32, with the official dense code's size rule: LIT-S/M/B zero-pad H, W to multiples
of 4 before the patch embedding (``H_0 = ceil(H / 4)``), LIT-Ti does not pad and drops the last ``H % 4`` rows and
``W % 4`` columns (``H_0 = floor(H / 4)``; ``pad_input`` switches); each DTM floors odd maps
(``H_i = floor(H_{i-1} / 2)``), the same for W. Position tables/embeddings are stored for ``pretrain_img_size`` and
resized to the actual maps (bicubic tables, bilinear Ti embeddings, as the official code does); the resized values
and the N*N bias index are cached per size (see ``mmvit_ext/models/layers/attention.py``), where the official dense
code rebuilt them on every forward.

Module layout (official names where they cost nothing; ``mmvit_ext/checkpoint/lit.py`` maps the official keys):
``patch_embed`` (Conv 4x4/4 + LN), ``stages[i]`` = ``downsample`` (DTM, stages 1-3) -> ``pos_embed`` (Ti) ->
``blocks``; output norms ``norm{i}``; ``cls_token`` (Ti classification).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from ...checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from ...checkpoint.lit import convert_lit
from ...registry import register_model
from ..base_backbone import VisionBackbone, check_images, resolve_indices, select_arch, trunc_normal_init_linear
from ..layers.onednn import mlp
from ..layers.utils import add_residual, run_blocks
from ..layers import (DeformableTokenMerging, GridPositionEmbedding, Linear, PatchEmbed, RelPosMultiheadAttention,
                      nlc_to_nchw)

__all__ = ['LIT', 'lit_classifier_cfg']


class Mlp(nn.Module):
    """fc1 -> GELU (fused into fc1) -> dropout -> fc2 -> dropout. x: (B, N, C) -> (B, N, C)."""

    def __init__(self, embed_dims: int, hidden_dims: int, drop: float = 0.):
        super().__init__()
        self.fc1 = Linear(embed_dims, hidden_dims, activation='gelu')
        self.fc2 = Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(mlp(x, self.fc1, self.fc2, self.drop))


class MLPBlock(nn.Module):
    """Paper Eq. (1): ``x + DropPath(MLP(LN(x)))``. No attention; the norm keeps the official name ``norm2``.

    ``forward(x, hw)``: x (B, N, C) -> (B, N, C) (``hw`` unused, same signature as ``TransformerBlock``).
    """

    def __init__(self, embed_dims: int, mlp_ratio: float, drop_path: float = 0., drop: float = 0.,
                 norm_eps: float = 1e-5):
        super().__init__()
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x))))


class TransformerBlock(nn.Module):
    """Paper Eq. (2): ``x + DP(MSA(LN(x)))`` then ``x + DP(MLP(LN(x)))``; MSA is global over all tokens.

    ``rel_pos_grid``: grid of the relative position table (LIT-S/M/B) or None (LIT-Ti).
    ``forward(x, hw)``: x (B, N, C), ``hw`` the map size of the (last H*W) tokens -> (B, N, C).
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float, rel_pos_grid=None,
                 qkv_bias: bool = True, drop_path: float = 0., drop: float = 0., attn_drop: float = 0.,
                 norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = RelPosMultiheadAttention(embed_dims, num_heads, qkv_bias=qkv_bias, rel_pos_grid=rel_pos_grid,
                                             attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, hw: Tuple[int, int]) -> torch.Tensor:
        x = add_residual(x, self.drop_path(self.attn(self.norm1(x), hw)))
        return add_residual(x, self.drop_path(self.mlp(self.norm2(x))))


class LITStage(nn.Module):
    """One stage: [DTM (B, C_in, 2H, 2W) -> (B, C, H, W)] -> tokens -> [+ absolute embeddings] -> blocks.

    ``forward(x, extra_tokens)``: x (B, C_in, H', W') map, ``extra_tokens`` (B, E, C) prepended before the
    embeddings (the cls token) or None -> (tokens (B, E + H*W, C), (H, W)).
    """

    def __init__(self, blocks: Sequence[nn.Module], downsample: Optional[nn.Module] = None,
                 pos_embed: Optional[nn.Module] = None, with_cp: bool = False):
        super().__init__()
        self.downsample = downsample
        self.pos_embed = pos_embed
        self.blocks = nn.ModuleList(blocks)
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor, extra_tokens: Optional[torch.Tensor] = None):
        if self.downsample is not None:
            # x: the previous stage's tokens as a channels-last map, passed without a copy (the CPU op samples its
            # rows; the CUDA path, mmcv's kernels, makes its inputs contiguous itself).
            x = self.downsample(x)
        hw = (x.shape[2], x.shape[3])
        # Contiguous tokens (a no-op after the patch embedding): a transposed residual stream would make every
        # LayerNorm / Linear of the stage copy its input.
        x = x.flatten(2).transpose(1, 2).contiguous()
        if extra_tokens is not None:
            x = torch.cat([extra_tokens.to(x.dtype), x], dim=1)
        if self.pos_embed is not None:
            x = self.pos_embed(x, hw)
        x = run_blocks(self.blocks, x, hw, with_cp=self.with_cp)
        return x, hw


@register_model
class LIT(VisionBackbone):
    """LIT backbone (Ti / S / M / B) for mmdet, mmseg and mmpretrain.

    Args:
        arch: ``'tiny'``/``'ti'``, ``'small'``/``'s'``, ``'medium'``/``'m'``, ``'base'``/``'b'`` or a dict with the
            keys of ``arch_zoo`` entries (``embed_dims, depths, num_heads, mlp_ratios, pos_embed, norm_eps``).
        in_channels: image channels.
        pretrain_img_size: image size the position tables / embeddings are stored for (int or (h, w)). 224 for
            ImageNet; the official dense LIT-S configs store the tables for 800 (detection) and 512 (segmentation),
            LIT-Ti keeps its 224 embeddings. Checkpoints are resized to it on load.
        pad_input: zero-pad H, W to multiples of 4 before the patch embedding (stage-1 map ``ceil(H / 4)``) instead
            of dropping the last ``H % 4`` rows / ``W % 4`` columns (``floor(H / 4)``). ``None``: the official rule
            of the arch (LIT-Ti drops, LIT-S/M/B pad; custom dicts may set ``pad_input``, default True).
        out_indices: stages (0-3) whose outputs are returned.
        out_norm_indices: stages whose output passes an LN ``norm{i}`` (default: ``out_indices``). The official
            detection LIT-S has no norm on stage 0 (``(1, 2, 3)``), its segmentation copy norms all four, the dense
            LIT-Ti none (``()``). A classification checkpoint's final ``norm`` becomes ``norm3`` only in the
            classification form (``out_indices=(3,)`` with ``norm3``); dense forms start every output norm fresh,
            as the official dense loaders do.
        out_type: ``'featmap'`` (NCHW maps) or ``'cls_token'`` (LIT-Ti classification: a cls token joins stage 4
            and its normed value (B, C) is the stage-4 output; the stage-4 embeddings get the cls slot).
        drop_rate, attn_drop_rate: dropout in MLPs/projections and on attention weights.
        drop_path_rate: stochastic depth, linear over all blocks; ``None`` = the arch's ImageNet value
            (Ti 0.1, S 0.2, M 0.3, B 0.5).
        qkv_bias: bias of the q/k/v projection.
        frozen_stages: -1 none; k >= 0 freezes the patch embedding and stages 1..k (with their DTM and output norm).
        norm_eval: keep the DTM BatchNorms in eval mode while training.
        norm_cfg: norm of the DTM layers, ``dict(type='BN')`` as in the official code; ``dict(type='SyncBN')``
            keeps their statistics equal across ranks in distributed training (mmengine turns it back into BN
            when not distributed). With plain BN each rank keeps its own running statistics and checkpoints hold
            rank 0's.
        with_cp: activation checkpointing per block.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads official LIT checkpoints (classification or
            dense, converted on the fly) or our own.

    Forward: x (B, 3, H, W) -> tuple of (B, C_i, H_i, W_i) for i in ``out_indices`` (strides 4, 8, 16, 32).
    """
    arch_zoo = {
        **dict.fromkeys(['ti', 'tiny'], dict(
            embed_dims=[64, 128, 320, 512], depths=[3, 4, 6, 3], num_heads=[1, 2, 5, 8], mlp_ratios=[8, 8, 4, 4],
            pos_embed='absolute', norm_eps=1e-6, drop_path_rate=0.1, pad_input=False)),
        **dict.fromkeys(['s', 'small'], dict(
            embed_dims=[96, 192, 384, 768], depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], mlp_ratios=[4, 4, 4, 4],
            pos_embed='relative', norm_eps=1e-5, drop_path_rate=0.2, pad_input=True)),
        **dict.fromkeys(['m', 'medium'], dict(
            embed_dims=[96, 192, 384, 768], depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24],
            mlp_ratios=[4, 4, 4, 4], pos_embed='relative', norm_eps=1e-5, drop_path_rate=0.3, pad_input=True)),
        **dict.fromkeys(['b', 'base'], dict(
            embed_dims=[128, 256, 512, 1024], depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
            mlp_ratios=[4, 4, 4, 4], pos_embed='relative', norm_eps=1e-5, drop_path_rate=0.5, pad_input=True)),
    }
    # Stages with MSA blocks (official ``HAS_MSA = [0, 0, 1, 1]``); the others are MLP-only.
    msa_stages = (False, False, True, True)
    patch_size = 4
    convert_checkpoint = staticmethod(convert_lit)
    # Argument and registry names of the official LIT (ziplab/LIT): the Swin-style LIT-S/M/B backbones and the
    # PVT-style LIT-Ti, whose dense LIT_Ti ignores every argument (its configs pass ResNet keys).
    official_names = dict(
        arch={'embed_dim': ('embed_dims', lambda width: [width * 2**i for i in range(4)]),
              'embed_dims': 'embed_dims', 'depths': 'depths', 'num_heads': 'num_heads',
              'mlp_ratio': ('mlp_ratios', lambda ratio: [ratio] * 4), 'mlp_ratios': 'mlp_ratios'},
        arguments={
            'in_chans': 'in_channels',
            'use_checkpoint': 'with_cp',
            'img_size': 'pretrain_img_size (the size the position tables are stored for)',
            'has_msa': 'drop it: stages 1-2 are MLP-only and 3-4 have attention (official has_msa=[0, 0, 1, 1])',
            'window_size': 'drop it: the official LIT ignores it too, attention is global',
            'patch_size': 'drop it: the patch embedding is 4x4 in every release',
            'patch_norm': 'drop it: the patch embedding always ends with a LayerNorm (official patch_norm=True)',
            'ape': "drop it: LIT-S/M/B have no absolute position embedding; arch='tiny' has LIT-Ti's",
            'qk_scale': 'drop it: the attention scale is head_dim ** -0.5 (official qk_scale=None)',
            'norm_layer': 'drop it: always LayerNorm',
            'sr_ratios': 'drop it: the official LIT-Ti ignores it too',
            'F4': 'drop it: not supported',
            'depth': 'drop it: a ResNet key that the official LIT_Ti ignored',
            'num_stages': 'drop it: a ResNet key that the official LIT_Ti ignored',
            'style': 'drop it: a ResNet key that the official LIT_Ti ignored',
            'num_classes': 'the classifier is an mmpretrain ImageClassifier: set model.head.num_classes '
                           '(configs/lit/lit-*_8xb128_in1k.py, lit_classifier_cfg)',
        },
        types={'LIT_Ti': "arch='tiny'"})

    def __init__(self,
                 arch: Union[str, dict] = 'small',
                 in_channels: int = 3,
                 pretrain_img_size: Union[int, Sequence[int]] = 224,
                 pad_input: Optional[bool] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 out_norm_indices: Optional[Sequence[int]] = None,
                 out_type: str = 'featmap',
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: Optional[float] = None,
                 qkv_bias: bool = True,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 with_cp: bool = False,
                 init_cfg=None):
        super().__init__(frozen_stages=frozen_stages, norm_eval=norm_eval, init_cfg=init_cfg)
        settings = select_arch(arch, self.arch_zoo,
                               ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'pos_embed', 'norm_eps'), 'LIT')
        self.embed_dims = list(settings['embed_dims'])
        self.depths = list(settings['depths'])
        self.num_stages = len(self.depths)
        if not (len(self.embed_dims) == len(settings['num_heads']) == len(settings['mlp_ratios'])
                == self.num_stages == len(self.msa_stages)):
            raise ValueError(f'LIT: embed_dims, depths, num_heads and mlp_ratios need {len(self.msa_stages)} '
                             f'entries each, got {settings}')
        if settings['pos_embed'] not in ('absolute', 'relative'):
            raise ValueError(f'LIT: pos_embed must be "absolute" or "relative", got {settings["pos_embed"]!r}')
        if out_type not in ('featmap', 'cls_token'):
            raise ValueError(f'LIT: out_type must be "featmap" or "cls_token", got {out_type!r}')
        if out_type == 'cls_token' and settings['pos_embed'] != 'absolute':
            raise ValueError('LIT: out_type="cls_token" needs the absolute position embeddings of LIT-Ti')
        self.out_indices = resolve_indices(out_indices, self.num_stages, 'LIT')
        if out_type == 'cls_token' and self.num_stages - 1 not in self.out_indices:
            raise ValueError('LIT: out_type="cls_token" classifies stage 4, so out_indices must contain 3')
        if out_norm_indices is None:
            self.out_norm_indices = self.out_indices
        else:  # may be empty: LIT-Ti's dense maps have no output norms
            self.out_norm_indices = resolve_indices(out_norm_indices, self.num_stages, 'LIT',
                                                    'out_norm_indices') if len(out_norm_indices) else ()
        if not set(self.out_norm_indices) <= set(self.out_indices):
            raise ValueError(f'LIT: out_norm_indices {self.out_norm_indices} must be among out_indices '
                             f'{self.out_indices}')
        # Output norms that a classification checkpoint lacks: all but the classification form's norm3 (the
        # official final ``norm``), which dense forms also start fresh (see ``convert_lit``).
        self.new_keys_on_pretrained = ('norm0.*', 'norm1.*', 'norm2.*') if self.is_classification_form \
            else ('norm[0-3].*', )
        self.in_channels = in_channels
        self.out_type = out_type
        self.pos_embed_type = settings['pos_embed']
        if drop_path_rate is None:
            drop_path_rate = settings.get('drop_path_rate', 0.)
        img_h, img_w = (pretrain_img_size, pretrain_img_size) if isinstance(pretrain_img_size, int) \
            else tuple(pretrain_img_size)
        self.pretrain_img_size = (img_h, img_w)

        self.pad_input = settings.get('pad_input', True) if pad_input is None else pad_input
        self.patch_embed = PatchEmbed(in_channels, self.embed_dims[0], self.patch_size, pad=self.pad_input)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dims[-1])) if out_type == 'cls_token' else None
        drop_paths = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (dims, depth, heads, ratio) in enumerate(
                zip(self.embed_dims, self.depths, settings['num_heads'], settings['mlp_ratios'])):
            stride = self.patch_size * 2**i
            grid = (img_h // stride, img_w // stride)
            pos_embed = None
            if self.pos_embed_type == 'absolute':
                extra = 1 if (self.cls_token is not None and i == self.num_stages - 1) else 0
                pos_embed = GridPositionEmbedding(grid, dims, num_extra_tokens=extra, interp_mode='bilinear')
            rel_pos_grid = grid if self.pos_embed_type == 'relative' else None
            dpr = drop_paths[sum(self.depths[:i]):sum(self.depths[:i + 1])]
            if self.msa_stages[i]:
                blocks = [TransformerBlock(dims, heads, ratio, rel_pos_grid, qkv_bias, dpr[j], drop_rate,
                                           attn_drop_rate, settings['norm_eps']) for j in range(depth)]
            else:
                blocks = [MLPBlock(dims, ratio, dpr[j], drop_rate, settings['norm_eps']) for j in range(depth)]
            downsample = DeformableTokenMerging(self.embed_dims[i - 1], dims, norm_cfg=norm_cfg) if i > 0 else None
            self.stages.append(LITStage(blocks, downsample, pos_embed, with_cp))
        for i in self.out_norm_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(self.embed_dims[i], eps=settings['norm_eps']))

        self.apply(trunc_normal_init_linear)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=.02)
        self._freeze()

    @property
    def is_classification_form(self) -> bool:
        """Only stage 4 is returned, through ``norm3``: the official classifier's backbone and final ``norm``."""
        return self.out_indices == (self.num_stages - 1, ) and self.num_stages - 1 in self.out_norm_indices

    def load_pretrained(self, filename: str, prefix: str = 'backbone.'):
        """Load an official (or our own) checkpoint; a classifier's final norm reaches only the classification form.

        Whether the file is a classifier (official ``head.*`` or our ``head.fc.*``) is read from the whole file before
        the ``prefix`` part is taken.
        """
        checkpoint = extract_state_dict(read_checkpoint(filename), prefix=None)
        from_classifier = any(k.startswith('head.') for k in checkpoint)
        state = extract_state_dict(checkpoint, prefix=prefix)
        converted = convert_lit(state, self, from_classifier=from_classifier)
        load_converted(self, converted, allow_missing=self.new_keys_on_pretrained, source=str(filename))

    def frozen_modules(self):
        modules = [self.patch_embed]
        for i, stage in enumerate(self.stages):
            norm = getattr(self, f'norm{i}', None)
            modules.append(stage if norm is None else nn.ModuleList([stage, norm]))
        return modules

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        check_images(x, self.in_channels, self.patch_size * 2**(self.num_stages - 1), 'LIT')
        x = self.patch_embed(x)
        outs = []
        for i, stage in enumerate(self.stages):
            cls = None
            if self.cls_token is not None and i == self.num_stages - 1:
                cls = self.cls_token.expand(x.shape[0], -1, -1)
            tokens, hw = stage(x, cls)
            extra = tokens.shape[1] - hw[0] * hw[1]
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(tokens) if i in self.out_norm_indices else tokens
                if cls is not None:
                    outs.append(out[:, 0])
                else:
                    outs.append(nlc_to_nchw(out[:, extra:], hw))
            x = nlc_to_nchw(tokens[:, extra:], hw)
        return tuple(outs)


def lit_classifier_cfg(arch: Union[str, dict] = 'small', num_classes: int = 1000, **backbone_kwargs) -> dict:
    """mmpretrain ``ImageClassifier`` config of the official LIT classifier; build it with
    ``mmpretrain.registry.MODELS.build(lit_classifier_cfg('small'))``.

    LIT-Ti: final LN -> cls token -> Linear; LIT-S/M/B: final LN -> token mean (``GlobalAveragePooling``) -> Linear.
    Official ``head.*`` weights map to ``head.fc.*`` (``tools/model_converters/lit_to_mmvit.py``).
    """
    settings = select_arch(arch, LIT.arch_zoo, ('embed_dims', 'pos_embed'), 'LIT')
    cls_token = settings['pos_embed'] == 'absolute'
    backbone = dict(type='LIT', arch=arch, out_indices=(3, ), out_type='cls_token' if cls_token else 'featmap')
    backbone.update(backbone_kwargs)
    return dict(
        type='ImageClassifier',
        backbone=backbone,
        neck=None if cls_token else dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=settings['embed_dims'][-1],
                  loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), topk=(1, 5)))
