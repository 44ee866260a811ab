"""Every LVT config builds its full model and runs one training step (one forward for ImageNet) on tiny data."""
from glob import glob

import pytest
from mmengine.config import Config

from mmvit_ext.testing import run_config_smoke

CONFIGS = sorted(glob('configs/lvt/*.py'))


def test_every_framework_has_its_config():
    names = {path.split('/')[-1] for path in CONFIGS}
    assert names == {
        'segformer_lvt_8xb2-160k_ade20k-512x512.py', 'fpn_lvt_8xb2-80k_ade20k-512x512.py',
        'panoptic-fpn_lvt_fpn_1x_coco.py', 'panoptic-fpn_lvt_fpn_ms-3x_coco.py', 'retinanet_lvt_fpn_1x_coco.py',
        'mask-rcnn_lvt_fpn_1x_coco.py', 'lvt-cls_8xb128_in1k.py', 'lvt_8xb128_in1k.py'
    }


def test_segformer_recipe():
    cfg = Config.fromfile('configs/lvt/segformer_lvt_8xb2-160k_ade20k-512x512.py')
    assert cfg.model.backbone.type == 'LVT' and cfg.model.backbone.init_cfg.checkpoint.startswith('lvt_imagenet')
    head = cfg.model.decode_head
    assert (head.type, head.in_channels, head.channels, head.num_classes) == ('SegformerHead', [64, 64, 160, 256],
                                                                               256, 150)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 6e-5, 0.01)
    keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
    assert keys['head'] == dict(lr_mult=10.) and keys['norm'] == dict(decay_mult=0.)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.end, poly.type, poly.power, poly.end) == ('LinearLR', 1500, 'PolyLR', 1.0, 160000)
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_cfg.val_interval == 16000
    assert cfg.train_dataloader.batch_size * 8 == 16 and cfg.crop_size == (512, 512)


@pytest.mark.parametrize('schedule,lr,milestones,epochs', [('1x', 4e-4, [8, 11], 12), ('ms-3x', 3e-4, [24, 33], 36)])
def test_panoptic_fpn_recipe(schedule, lr, milestones, epochs):
    cfg = Config.fromfile(f'configs/lvt/panoptic-fpn_lvt_fpn_{schedule}_coco.py')
    model = cfg.model
    assert model.type == 'PanopticFPN' and model.neck.in_channels == [64, 64, 160, 256]
    assert model.neck.out_channels == 96 and model.rpn_head.feat_channels == 96
    assert model.roi_head.bbox_head.fc_out_channels == 160 and model.roi_head.mask_head.conv_out_channels == 96
    semantic = model.semantic_head
    assert (semantic.in_channels, semantic.inner_channels, semantic.norm_cfg.num_groups) == (96, 48, 12)
    assert (cfg.optim_wrapper.optimizer.type, cfg.optim_wrapper.optimizer.lr) == ('AdamW', lr)
    assert cfg.optim_wrapper.optimizer.weight_decay == 1e-4
    assert cfg.param_scheduler[-1].milestones == milestones and cfg.train_cfg.max_epochs == epochs
    if schedule == 'ms-3x':
        resize = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomResize'][0]
        assert resize.scale == [(1333, 640), (1333, 800)]


@pytest.mark.parametrize('name', ['lvt-cls_8xb128_in1k.py', 'lvt_8xb128_in1k.py'])
def test_imagenet_recipe(name):
    cfg = Config.fromfile(f'configs/lvt/{name}')
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1.6e-3, 0.05)
    assert cfg.train_dataloader.batch_size * 8 == 1024 and cfg.train_cfg.max_epochs == 300
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 20 and cosine.type == 'CosineAnnealingLR' and cosine.eta_min == 1e-5
    assert cfg.model.head.loss.label_smooth_val == 0.1
    transforms = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert transforms['RandAugment'].magnitude_level == 9 and transforms['RandomErasing'].erase_prob == 0.25


@pytest.mark.parametrize('cfg', CONFIGS)
def test_config_trains_one_step(cfg):
    run_config_smoke(cfg)
