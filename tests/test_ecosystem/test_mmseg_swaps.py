"""Our backbones swapped into mmseg's own configs, as a user writes it: ``mmseg::segformer/...`` and
``mmseg::sem_fpn/...``, whose base sets ``model.pretrained`` (a ResNet checkpoint for Semantic FPN) that mmseg's
segmentors pass on to the backbone. Each swap builds, turns ``pretrained`` into ``init_cfg`` like mmseg's backbones,
passes the build-time checks and trains one step at 64x64 (a demo-sized backbone: about 3 s per case)."""
import warnings

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmvit_ext  # noqa: F401
from mmvit_ext.model_checks import ModelConfigError, check_model
from mmvit_ext.testing import run_config_smoke

LITV2_DEMO = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
LVT_DEMO = dict(embed_dims=[32, 32, 80, 128], depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4], mlp_ratios=[4, 4, 4, 4],
                sr_ratios=[8, 4, 2, 1])
SWAPS = {
    'segformer+LVT': '''
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='LVT', arch={lvt}),
    decode_head=dict(in_channels=[32, 32, 80, 128]))
''',
    'sem_fpn+LITv2': '''
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='LITv2', arch={litv2}, stage0_out_norm=True),
    neck=dict(in_channels=[24, 48, 96, 192]))
''',
}


def write(tmp_path, name, **replace):
    text = SWAPS[name].format(lvt=LVT_DEMO, litv2=LITV2_DEMO)
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / (name.replace('+', '_') + '.py')
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_swap_builds_and_trains(name, tmp_path):
    path = write(tmp_path, name)
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = MODELS.build(cfg.model)
    check_model(model)
    deprecated = [str(w.message) for w in caught if 'pretrained is deprecated' in str(w.message)]
    if cfg.model.get('pretrained'):  # Semantic FPN's base: the ResNet-50 weights, handed to our backbone
        assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=cfg.model.pretrained)
        assert deprecated
    else:
        assert model.backbone.init_cfg is None and not deprecated
    run_config_smoke(path, image_size=(64, 64))


def test_swap_with_the_base_neck_fails_at_build(tmp_path):
    """Forgetting the neck's ``in_channels`` (the base's ResNet [256, 512, 1024, 2048]) is caught before training."""
    path = write(tmp_path, 'sem_fpn+LITv2', **{'    neck=dict(in_channels=[24, 48, 96, 192]))': ')'})
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    with pytest.raises(ModelConfigError, match=r'model.neck.in_channels is \[256, 512, 1024, 2048\]'):
        check_model(model)
