"""Every framework of the demo, end to end on a tiny generated scene set: train a few iterations, evaluate with the
real metric, test from the saved checkpoint (same numbers); and overfit a fixed handful of images (the loss halves).

The configs are the real ``configs/demo`` files, pointed at the tiny set and shortened.
"""
import copy
import glob
import logging
import math
import os.path as osp
import signal
import subprocess
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner

from mmvit_ext.datasets import SceneConfig, generate_demo_dataset
from mmvit_ext.testing import repoint_demo_data, run_config_smoke

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    'retinanet': 'retinanet_litv2-demo_fpn_12e_demo-scenes.py',
    'mask-rcnn': 'mask-rcnn_litv2-demo_fpn_12e_demo-scenes.py',
    'panoptic-fpn': 'panoptic-fpn_litv2-demo_fpn_12e_demo-scenes.py',
    'semantic-fpn': 'fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py',
    'segformer': 'segformer_litv2-demo_4xb4-1k_demo-scenes-256x256.py',
    'classification': 'litv2-demo_30e_demo-scenes-crops.py',
}
# The metric each framework reports, and how many iterations its overfitting run may take.
METRIC = {
    'retinanet': 'coco/bbox_mAP',
    'mask-rcnn': 'coco/segm_mAP',
    'panoptic-fpn': 'coco_panoptic/PQ',
    'semantic-fpn': 'mIoU',
    'segformer': 'mIoU',
    'classification': 'accuracy/top1',
}
OVERFIT_ITERS = 20
IMG = 128


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('demo_scenes'))
    generate_demo_dataset(root, num_train=6, num_val=3, seed=0, cfg=SceneConfig(height=IMG, width=IMG, min_objects=2),
                          crop_size=64)
    return root


def tiny_config(name, root, work_dir, iters=4):
    """The demo config of framework ``name`` on the tiny set: ``iters`` iterations, batch 2, no worker processes,
    a checkpoint at the end, images at 128 px, everything scored (untrained models score low)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', CONFIGS[name]))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator'):
        cfg[key] = repoint_demo_data(cfg[key].to_dict() if hasattr(cfg[key], 'to_dict') else cfg[key], root)
        if key.endswith('dataloader'):
            cfg[key].update(batch_size=2, num_workers=0, persistent_workers=False)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[key]['dataset']['pipeline']:
            if step['type'] in ('Resize', 'RandomResize') and cfg.default_scope == 'mmdet':
                step['scale'] = (IMG, IMG)
            if step['type'] == 'RandomCrop':
                step['crop_size'] = (IMG, IMG)
    if cfg.default_scope == 'mmseg':
        cfg.model.data_preprocessor.size = (IMG, IMG)
    by_epoch = cfg.train_cfg.get('by_epoch', cfg.train_cfg.get('type') != 'IterBasedTrainLoop')
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop':
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    else:
        # an epoch of the 6 training images is 3 batches (more for the crops); ``iters`` rounds up to epochs
        epochs = math.ceil(iters / 3)
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs + 1)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=by_epoch, interval=1 << 20,
                                        save_last=True, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1 << 20)
    if cfg.default_scope == 'mmdet':
        test_cfg = cfg.model.test_cfg
        for part in (test_cfg.get('rcnn'), test_cfg if 'score_thr' in test_cfg else None):
            if part is not None:
                part.score_thr = 0.
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=0)
    return cfg


def _runner(cfg):
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    return Runner.from_cfg(copy.deepcopy(cfg))


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_train_evaluate_and_test_from_checkpoint(name, tiny_root, tmp_path):
    # mmengine's own loading (torch's default weights_only=True) reads the checkpoint: import mmvit_ext made the
    # types it holds safe globals
    cfg = tiny_config(name, tiny_root, str(tmp_path))
    runner = _runner(cfg)
    runner.train()
    trained = runner.val()
    assert METRIC[name] in trained, sorted(trained)
    value = trained[METRIC[name]]
    assert math.isfinite(value) and 0. <= value <= 100.

    checkpoints = glob.glob(str(tmp_path / '*.pth'))
    assert len(checkpoints) == 1, checkpoints
    cfg.load_from = checkpoints[0]
    tested = _runner(cfg).test()
    for key, v in trained.items():
        if isinstance(v, float):
            assert tested[key] == pytest.approx(v, abs=1e-6), key


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_overfits_a_fixed_batch(name, tiny_root, tmp_path):
    """With the config's own model and optimizer, the training loss on one fixed batch of 4 images halves."""
    cfg = tiny_config(name, tiny_root, str(tmp_path))
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    runner = _runner(cfg)
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader, seed=0)))
    optim_wrapper = runner.build_optim_wrapper(cfg.optim_wrapper)
    model = runner.model
    model.init_weights()  # as Runner.train() does: the heads' priors (e.g. RetinaNet's focal-loss bias)
    model.train()
    losses = []
    for _ in range(OVERFIT_ITERS):
        loss = model.train_step(batch, optim_wrapper)['loss']
        losses.append(float(loss.detach() if torch.is_tensor(loss) else loss))
    assert all(math.isfinite(v) for v in losses)
    start, end = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert end <= 0.5 * start, f'{name}: loss {start:.3f} -> {end:.3f} in {OVERFIT_ITERS} iterations: {losses}'


FAMILIES = ('lit', 'lightvit', 'lvt')
OTHER_FAMILY_CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', 'demo', '*.py'))
                              if '_litv2-' not in p and not osp.basename(p).startswith('litv2-'))


def test_every_framework_has_a_demo_config_per_family():
    """The LITv2 demo configs are the frameworks above; each other family has the same six, with its backbone."""
    litv2 = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', 'demo', '*litv2-demo*.py')))
    assert litv2 == sorted(CONFIGS.values())
    expected = sorted(name.replace('litv2-demo', f'{family}-demo') for name in litv2 for family in FAMILIES)
    assert OTHER_FAMILY_CONFIGS == expected


@pytest.mark.parametrize('name', OTHER_FAMILY_CONFIGS)
def test_other_family_demo_config_trains_one_step(name):
    family = name.split('-demo')[0].split('_')[-1]
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', name))
    assert cfg.model.backbone.type == dict(lit='LIT', lightvit='LightViT', lvt='LVT')[family]
    run_config_smoke(osp.join(REPO, 'configs', 'demo', name), image_size=(64, 64))


def test_shipped_demo_config_resumes_bitwise_after_kill(python, tiny_root, tmp_path):
    """The RetinaNet demo config as shipped (epoch checkpoints saved atomically, non-persistent workers, seed 0),
    on the tiny set with 2 workers: killed with SIGKILL after its first epoch and resumed, it ends with exactly the
    weights of an uninterrupted run."""
    cfg = tiny_config('retinanet', tiny_root, '')
    shipped = Config.fromfile(osp.join(REPO, 'configs', 'demo', CONFIGS['retinanet']))
    cfg.default_hooks.checkpoint = shipped.default_hooks.checkpoint
    cfg.train_dataloader.update(num_workers=2, persistent_workers=shipped.train_dataloader.persistent_workers)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4, val_interval=100)
    config = str(tmp_path / 'retinanet.py')
    cfg.dump(config)
    train = [python, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir']

    subprocess.run(train + [str(tmp_path / 'straight')], cwd=REPO, check=True, capture_output=True)
    killed = tmp_path / 'killed'
    proc = subprocess.Popen(train + [str(killed)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (killed / 'last_checkpoint').exists():
        assert proc.poll() is None, 'the run ended before its first checkpoint'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    resumed_from = torch.load((killed / 'last_checkpoint').read_text())['meta']['epoch']
    assert resumed_from < 4
    subprocess.run(train + [str(killed), '--resume'], cwd=REPO, check=True, capture_output=True)

    straight = torch.load(str(tmp_path / 'straight' / 'epoch_4.pth'))['state_dict']
    resumed = torch.load(str(killed / 'epoch_4.pth'))['state_dict']
    assert straight.keys() == resumed.keys()
    differ = [k for k in straight if not torch.equal(straight[k], resumed[k])]
    assert not differ, f'{len(differ)} of {len(straight)} tensors differ after resuming from epoch {resumed_from}'
