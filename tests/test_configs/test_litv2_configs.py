"""Every LITv2 config builds its full model and runs one training step (one forward for ImageNet) on tiny data."""
from glob import glob

import pytest
from mmengine.config import Config

from mmvit_ext.testing import run_config_smoke

CONFIGS = sorted(glob('configs/litv2/*.py'))


def test_every_variant_has_its_configs():
    names = {path.split('/')[-1] for path in CONFIGS}
    for v in ('s', 'm', 'b'):
        assert f'litv2-{v}_8xb128_in1k.py' in names
        assert f'fpn_litv2-{v}_8xb2-80k_ade20k-512x512.py' in names
        for detector in ('retinanet', 'mask-rcnn'):
            assert f'{detector}_litv2-{v}_fpn_1x_coco.py' in names
            assert f'{detector}_litv2-{v}-ws4_fpn_1x_coco.py' in names
    assert len(CONFIGS) == 18


@pytest.mark.parametrize('cfg', CONFIGS)
def test_config_recipe(cfg):
    config = Config.fromfile(cfg)
    backbone = config.model.backbone
    assert backbone.type == 'LITv2'
    assert config.optim_wrapper.paramwise_cfg.custom_keys['conv_offset.weight'] == dict(lr_mult=0.01)
    assert backbone.local_ws == ([0, 0, 4, 1] if '-ws4' in cfg else [0, 0, 2, 1])
    if 'in1k' not in cfg:
        assert backbone.init_cfg.checkpoint.endswith(f'litv2_{backbone.arch[0]}.pth')
        # Official difference: segmentation normalises the stage-0 output, detection does not.
        assert bool(backbone.get('stage0_out_norm')) == ('ade20k' in cfg)
        assert config.model.neck.in_channels[0] == {'s': 96, 'm': 96, 'b': 128}[backbone.arch[0]]


@pytest.mark.parametrize('cfg', CONFIGS)
def test_config_trains_one_step(cfg):
    # Small images keep the 18 configs (up to LITv2-B Mask R-CNN) affordable on CPU; the backbone needs >= 29 px.
    run_config_smoke(cfg, image_size=(64, 96), batch_size=1)
