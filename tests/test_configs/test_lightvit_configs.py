"""Every LightViT config builds its full model and trains one step; the recipes are the official ones."""
import os.path as osp
from functools import lru_cache
from glob import glob

import pytest
from mmengine.config import Config

from mmvit_ext.testing import run_config_smoke

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob(osp.join(ROOT, 'configs/lightvit/*.py')))
NAMES = [osp.basename(c) for c in CONFIGS]


@lru_cache(maxsize=None)
def load(name):
    return Config.fromfile(osp.join(ROOT, 'configs/lightvit', name))


def test_every_variant_and_schedule_has_a_config():
    for v in 't', 's', 'b':
        for name in (f'mask-rcnn_lightvit-{v}_fpn_1x_coco.py', f'mask-rcnn_lightvit-{v}_fpn_ms-crop-3x_coco.py',
                     f'retinanet_lightvit-{v}_fpn_1x_coco.py', f'lightvit-{v}_8xb128_in1k.py'):
            assert name in NAMES


@pytest.mark.parametrize('cfg', CONFIGS, ids=NAMES)
def test_config_trains_one_step(cfg):
    run_config_smoke(cfg, image_size=(96, 128), batch_size=1)


@pytest.mark.parametrize('v,arch,dims,ckpt', [('t', 'tiny', [64, 128, 256], 'lightvit_tiny_78.7.ckpt'),
                                              ('s', 'small', [96, 192, 384], 'lightvit_small_80.9.ckpt'),
                                              ('b', 'base', [128, 256, 512], 'lightvit_base_82.1.ckpt')])
def test_mask_rcnn_recipes(v, arch, dims, ckpt):
    one = load(f'mask-rcnn_lightvit-{v}_fpn_1x_coco.py')
    three = load(f'mask-rcnn_lightvit-{v}_fpn_ms-crop-3x_coco.py')
    for cfg in one, three:
        backbone, neck = cfg.model.backbone, cfg.model.neck
        assert backbone.type == 'LightViT' and backbone.arch == arch and backbone.drop_path_rate == 0.1
        assert backbone.stem_norm_eval and backbone.init_cfg.checkpoint.endswith(ckpt)
        assert neck.type == 'LightViTFPN' and neck.in_channels == dims and neck.num_outs == 5
        assert neck.num_extra_trans_convs == 1
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 2e-4, 0.04)
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        for key in ('relative_position_bias_table', 'norm', 'stem.1', 'stem.4', 'stem.7', 'stem.10', 'global_token'):
            assert keys[key].decay_mult == 0.
    assert one.param_scheduler[1].milestones == [8, 11] and one.train_cfg.max_epochs == 12
    assert three.param_scheduler[1].milestones == [27, 33] and three.train_cfg.max_epochs == 36
    pipeline = [t.type for t in three.train_dataloader.dataset.pipeline]
    assert 'RandomChoice' in pipeline


@pytest.mark.parametrize('v', ['t', 's', 'b'])
def test_retinanet_recipes(v):
    cfg = load(f'retinanet_lightvit-{v}_fpn_1x_coco.py')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-4, 0.04)
    assert cfg.model.neck.start_level == 0 and cfg.model.neck.add_extra_convs == 'on_input'


@pytest.mark.parametrize('v,arch,dp', [('t', 'tiny', 0.1), ('s', 'small', 0.1), ('b', 'base', 0.3)])
def test_imagenet_recipes(v, arch, dp):
    cfg = load(f'lightvit-{v}_8xb128_in1k.py')
    assert cfg.model.backbone.arch == arch and cfg.model.backbone.drop_path_rate == dp
    assert cfg.train_dataloader.batch_size == 128
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', 1e-3, 0.04)
    warmup, cosine = cfg.param_scheduler
    assert opt.lr * warmup.start_factor == pytest.approx(1e-7) and warmup.end == 20
    assert cosine.eta_min == 1e-6 and cfg.train_cfg.max_epochs == 300
    assert [a['alpha'] for a in cfg.model.train_cfg.augments] == [0.2, 1.0]
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert steps['RandAugment'].magnitude_level == 9 and steps['RandomErasing'].erase_prob == 0.25
    assert steps['ColorJitter'].brightness == 0.3
