"""The authors' backbone dicts (copied from the official configs) stop with an error that names the mmvit_ext
equivalent of every official argument and registry name; mmseg's legacy ``pretrained=`` is taken as mmseg's own
backbones take it. The errors come before any layer is built; two ported dicts are built (LITv2-S, LVT): a few
seconds for the file."""
import warnings

import pytest
from mmengine.registry import MODELS, DefaultScope

import mmvit_ext  # noqa: F401
from mmvit_ext.models.backbones import LIT, LITv2, LVT, LightViT
from mmvit_ext.models.base_backbone import BackboneArgumentError

# ziplab/LITv2 detection/configs/_base_/models/retinanet_litv2_fpn.py + retinanet_litv2_s_fpn_1x_coco.py
LITV2_RETINANET_S = dict(
    type='LITv2', embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4.,
    qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2, ape=False, patch_norm=True,
    out_indices=(0, 1, 2, 3), use_checkpoint=False, alpha=0.9, local_ws=[0, 0, 2, 1],
    init_cfg=dict(type='Pretrained', checkpoint='https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_s.pth'))
# ziplab/LIT detection/configs/_base_/models/retinanet_fpn_lit_s.py
LIT_RETINANET_S = dict(
    type='LIT', embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4.,
    qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.2, ape=False, patch_norm=True,
    out_indices=(0, 1, 2, 3), use_checkpoint=False)
# ziplab/LIT detection/configs/_base_/models/retinanet_fpn_lit_ti.py (LIT_Ti ignores these ResNet keys)
LIT_TI_RETINANET = dict(type='LIT_Ti', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                        norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch')
# hunto/LightViT detection/configs/mask_rcnn_lightvit_tiny_fpn_1x_coco.py
LIGHTVIT_MASK_RCNN_T = dict(type='lightvit_tiny', drop_path_rate=0.1, out_indices=(0, 1, 2), stem_norm_eval=True,
                            init_cfg=dict(type='Pretrained', checkpoint='lightvit_tiny_78.7.ckpt'))
# hunto/LightViT detection/lightvit.py lightvit_tiny's settings, passed to the LightViT class itself
LIGHTVIT_TINY_KWARGS = dict(patch_size=8, embed_dims=[64, 128, 256], num_layers=[2, 6, 6], num_heads=[2, 4, 8],
                            mlp_ratios=[8, 4, 4], num_tokens=512, drop_path_rate=0.1)
# Chenglin-Yang/LVT segmentation/local_configs/lvt/segformer.lvt.512x512.ade.160k.py
LVT_SEGFORMER = dict(type='lvt', with_cls_head=False,
                     rasa_cfg=dict(atrous_rates=[1, 3, 5], act_layer='nn.SiLU(True)', init='kaiming', r_num=2),
                     init_cfg=dict(checkpoint='pretrained/lvt_imagenet_pretrained.pth.tar'))


def build_error(cfg, scope='mmdet'):
    with DefaultScope.overwrite_default_scope(scope), pytest.raises(BackboneArgumentError) as info:
        MODELS.build(cfg)
    return str(info.value)


def test_official_litv2_detection_backbone():
    message = build_error(LITV2_RETINANET_S)
    assert "embed_dim, depths, num_heads -> arch='small'" in message
    assert 'use_checkpoint -> with_cp' in message
    for name in ('window_size', 'qk_scale', 'drop_rate', 'attn_drop_rate', 'ape', 'patch_norm'):
        assert f'{name} -> drop it' in message, name
    # the arguments with the same name pass: the translated dict builds the official model
    assert 'alpha ->' not in message and 'local_ws ->' not in message and 'init_cfg ->' not in message
    ported = dict(type='LITv2', arch='small', drop_path_rate=0.2, alpha=0.9, local_ws=[0, 0, 2, 1], with_cp=False,
                  out_indices=(0, 1, 2, 3))
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert MODELS.build(ported).embed_dims == [96, 192, 384, 768]


def test_a_custom_width_becomes_an_arch_dict():
    with pytest.raises(BackboneArgumentError, match=r'arch=dict\(embed_dims=64, depths=\[2, 2, 6, 2\]'):
        LITv2(embed_dim=64, depths=[2, 2, 6, 2], num_heads=[2, 4, 8, 16])


def test_official_lit_backbones():
    message = build_error(LIT_RETINANET_S)
    assert "embed_dim, depths, num_heads, mlp_ratio -> arch='small'" in message
    assert 'use_checkpoint -> with_cp' in message and 'window_size -> drop it' in message
    message = build_error(LIT_TI_RETINANET)
    assert "type='LIT_Ti' is the official registry name" in message and "type='LIT', arch='tiny'" in message
    with pytest.raises(BackboneArgumentError, match='depth -> drop it: a ResNet key'):
        LIT('tiny', **{k: v for k, v in LIT_TI_RETINANET.items() if k != 'type'})


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_official_lightvit_type_names(scope):
    message = build_error(LIGHTVIT_MASK_RCNN_T, scope)
    assert "type='lightvit_tiny' is the official registry name" in message
    assert "type='LightViT', arch='tiny'" in message


def test_official_lightvit_arguments():
    with pytest.raises(BackboneArgumentError) as info:
        LightViT(**LIGHTVIT_TINY_KWARGS)
    message = str(info.value)
    assert "embed_dims, num_layers, num_heads, mlp_ratios -> arch='tiny'" in message
    assert 'num_tokens -> num_global_tokens' in message and 'patch_size -> drop it' in message


def test_official_lvt_segmentation_backbone():
    message = build_error(LVT_SEGFORMER, 'mmseg')
    assert "type='lvt' is the official registry name" in message and "type='LVT', arch='mobile'" in message
    with pytest.raises(BackboneArgumentError) as info:
        LVT(**{k: v for k, v in LVT_SEGFORMER.items() if k != 'type'})
    message = str(info.value)
    assert 'rasa_cfg -> dilations=atrous_rates' in message and 'num_recursions=r_num' in message
    assert 'with_cls_head -> drop it' in message
    # the official init_cfg has no type (the official backbone reads the file itself)
    with pytest.raises(BackboneArgumentError, match=r"write init_cfg=dict\(type='Pretrained', checkpoint="):
        LVT(init_cfg=LVT_SEGFORMER['init_cfg'])


def test_an_unknown_argument_is_named_with_the_accepted_ones():
    with pytest.raises(BackboneArgumentError) as info:
        LITv2(windw_size=7)
    assert 'windw_size -> not an argument of LITv2' in str(info.value)
    assert 'LITv2 takes: arch, in_channels, local_ws' in str(info.value)


def test_mmseg_pretrained_becomes_init_cfg():
    """As mmseg's backbones: a deprecation warning, then ``init_cfg=dict(type='Pretrained', checkpoint=...)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        backbone = LVT(pretrained='lvt_imagenet_pretrained.pth.tar')
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')
    assert any('pretrained is deprecated, please use "init_cfg"' in str(w.message) for w in caught)
    assert LVT(pretrained=None).init_cfg is None
    with pytest.raises(BackboneArgumentError, match='both pretrained=.* and init_cfg=.* are set'):
        LVT(pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b.pth'))
    with pytest.raises(BackboneArgumentError, match='pretrained must be a checkpoint path'):
        LVT(pretrained=True)
