"""Every configs/lit config builds its full model and runs one training step (dense) or a forward (ImageNet)."""
import os.path as osp
from glob import glob

import pytest
from mmengine.config import Config

from mmvit_ext.testing import run_config_smoke

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob(osp.join(ROOT, 'configs', 'lit', '*.py')))


def test_every_family_config_is_tested():
    names = {osp.basename(c) for c in CONFIGS}
    for variant in ('ti', 's', 'm', 'b'):
        assert f'lit-{variant}_8xb128_in1k.py' in names
    for variant in ('ti', 's'):
        assert {f'retinanet_lit-{variant}_fpn_1x_coco.py', f'mask-rcnn_lit-{variant}_fpn_1x_coco.py',
                f'fpn_lit-{variant}_8xb2-80k_ade20k-512x512.py'} <= names


@pytest.mark.parametrize('cfg', CONFIGS, ids=osp.basename)
def test_config_smoke(cfg):
    run_config_smoke(cfg, image_size=(64, 96) if 'in1k' in cfg else (128, 160))


def test_recipes_match_the_official_release():
    ti = Config.fromfile(osp.join(ROOT, 'configs', 'lit', 'lit-ti_8xb128_in1k.py'))
    assert ti.model.backbone.out_type == 'cls_token' and ti.optim_wrapper.clip_grad is None
    assert ti.param_scheduler[0].end == 5 and ti.optim_wrapper.optimizer.lr == 1e-3
    small = Config.fromfile(osp.join(ROOT, 'configs', 'lit', 'lit-s_8xb128_in1k.py'))
    assert small.optim_wrapper.clip_grad.max_norm == 5.0 and small.param_scheduler[0].end == 20
    assert small.optim_wrapper.paramwise_cfg.custom_keys['conv_offset.weight'].lr_mult == 0.01
    seg = Config.fromfile(osp.join(ROOT, 'configs', 'lit', 'fpn_lit-s_8xb2-80k_ade20k-512x512.py'))
    assert seg.train_cfg.max_iters == 80000 and seg.param_scheduler[0].power == 0.9
    retina = Config.fromfile(osp.join(ROOT, 'configs', 'lit', 'retinanet_lit-s_fpn_1x_coco.py'))
    assert retina.model.backbone.pretrain_img_size == 800
    assert retina.param_scheduler[1].milestones == [8, 11]
