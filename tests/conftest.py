import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random weights and inputs on every run."""
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _default_scope():
    """Every test starts with the registry default scope it would have alone: mmengine keeps the last scope set
    (e.g. mmseg's, by a config built in the deploy tests), under which mmpretrain's MODELS.build looks in mmseg."""
    from mmengine.registry import DefaultScope
    before = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(before)


@pytest.fixture(scope='session')
def repo_root():
    return ROOT


@pytest.fixture(scope='session')
def python():
    """The interpreter of this test session (the project's venv), for tools run as subprocesses."""
    return sys.executable


# A tiny mmpretrain classifier that trains in seconds: the subject of the tools tests.
CONFIG = '''
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=2, in_channels=64, loss=dict(type='CrossEntropyLoss')),
    data_preprocessor=dict(num_classes=2, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True))
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
loader = dict(batch_size=4, num_workers=0, dataset=dict(type='CustomDataset', data_root='{data}', pipeline=pipeline),
              sampler=dict(type='DefaultSampler', shuffle=True))
train_dataloader = loader
val_dataloader = dict(loader, sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))
train_cfg = dict(by_epoch=False, max_iters={iters}, val_interval={iters})
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
                     logger=dict(type='LoggerHook', interval=1),
                     visualization=dict(type='VisualizationHook', enable=False))
visualizer = dict(type='UniversalVisualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(by_epoch=False)
log_level = 'INFO'
'''


def make_data(root, per_class=8):
    """Two classes that are easy to tell apart: dark and bright 32x32 images."""
    rng = np.random.default_rng(0)
    for label, base in enumerate((40, 200)):
        os.makedirs(osp.join(root, f'class{label}'), exist_ok=True)
        for i in range(per_class):
            img = np.clip(base + rng.integers(-30, 30, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(osp.join(root, f'class{label}', f'c{label}_{i}.png'))


@pytest.fixture(scope='session')
def workspace(tmp_path_factory):
    """A tiny two-class image set and classifier configs ``cls_4.py`` / ``cls_8.py`` (4 / 8 iterations)."""
    root = tmp_path_factory.mktemp('tools')
    make_data(str(root / 'data'))
    for iters in (4, 8):
        (root / f'cls_{iters}.py').write_text(CONFIG.format(data=root / 'data', iters=iters))
    return root


@pytest.fixture(scope='session')
def run_tool(python, repo_root):
    """``run_tool('train.py', *args, env=None) -> (exit code, stdout + stderr)``: one of tools/ in a subprocess."""
    def run(tool, *args, env=None):
        result = subprocess.run([python, osp.join(repo_root, 'tools', tool), *args], capture_output=True, text=True,
                                cwd=repo_root, env=None if env is None else dict(os.environ, **env))
        return result.returncode, result.stdout + result.stderr
    return run


@pytest.fixture(scope='session')
def trained_cls(run_tool, workspace):
    """The work dir of one 4-iteration training run of ``cls_4.py`` (``iter_4.pth``, ``last_checkpoint``)."""
    work = str(workspace / 'trained')
    code, log = run_tool('train.py', str(workspace / 'cls_4.py'), '--work-dir', work)
    assert code == 0, log[-3000:]
    return work
