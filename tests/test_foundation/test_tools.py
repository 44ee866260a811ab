"""tools/train.py and tools/test.py end to end on a tiny generated classification set (subprocesses, CPU)."""
import glob
import os
import os.path as osp
import pickle
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

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


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('tools')
    make_data(str(root / 'data'))
    for iters in (4, 8):
        (root / f'cls_{iters}.py').write_text(CONFIG.format(data=root / 'data', iters=iters))
    return root


def run_tool(python, repo_root, *args):
    result = subprocess.run([python, osp.join(repo_root, 'tools', args[0]), *args[1:]], capture_output=True,
                            text=True, cwd=repo_root)
    return result.returncode, result.stdout + result.stderr


def test_train_resume_test(python, repo_root, workspace):
    work = str(workspace / 'work')
    code, log = run_tool(python, repo_root, 'train.py', str(workspace / 'cls_4.py'), '--work-dir', work)
    assert code == 0, log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    assert re.search(r'accuracy/top1: [\d.]+', log), 'no validation metric in the log'

    # Resume from the named checkpoint with a longer schedule: training continues at iteration 5.
    code, log = run_tool(python, repo_root, 'train.py', str(workspace / 'cls_8.py'), '--work-dir', work,
                         '--resume', osp.join(work, 'iter_4.pth'))
    assert code == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 4' in log, log[-3000:]
    assert re.search(r'Iter\(train\) \[5/8\]', log) and not re.search(r'Iter\(train\) \[1/8\]', log)
    assert osp.isfile(osp.join(work, 'iter_8.pth'))

    # Bare --resume picks the latest checkpoint of the work_dir (already finished: nothing more to train).
    code, log = run_tool(python, repo_root, 'train.py', str(workspace / 'cls_8.py'), '--work-dir', work, '--resume')
    assert code == 0 and 'resumed epoch: 0, iter: 8' in log, log[-3000:]

    out = str(workspace / 'preds.pkl')
    code, log = run_tool(python, repo_root, 'test.py', str(workspace / 'cls_8.py'), osp.join(work, 'iter_8.pth'),
                         '--work-dir', work, '--out', out)
    assert code == 0, log[-3000:]
    top1 = float(re.search(r'accuracy/top1: ([\d.]+)', log).group(1))
    assert top1 >= 75.0, f'the trained classifier should separate dark from bright images, got {top1}%'
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 16


def test_show_dir_writes_images(python, repo_root, workspace):
    work = str(workspace / 'work_show')
    code, log = run_tool(python, repo_root, 'train.py', str(workspace / 'cls_4.py'), '--work-dir', work)
    assert code == 0, log[-3000:]
    code, log = run_tool(python, repo_root, 'test.py', str(workspace / 'cls_4.py'), osp.join(work, 'iter_4.pth'),
                         '--work-dir', work, '--show-dir', 'vis')
    assert code == 0, log[-3000:]
    assert len(glob.glob(osp.join(work, '**', 'vis', '*.png'), recursive=True)) == 16


def test_missing_config_file(python, repo_root):
    code, log = run_tool(python, repo_root, 'train.py', 'configs/no_such_config.py')
    assert code != 0 and 'config file not found: configs/no_such_config.py' in log


def test_unknown_type_names_the_problem(python, repo_root, workspace):
    bad = workspace / 'bad_type.py'
    bad.write_text((workspace / 'cls_4.py').read_text().replace("'ResNet_CIFAR'", "'LITv99'"))
    code, log = run_tool(python, repo_root, 'train.py', str(bad), '--work-dir', str(workspace / 'bad'))
    assert code != 0
    assert 'LITv99 is not in the mmpretrain::model registry' in log and 'custom_imports' in log, log[-2000:]
    assert 'Traceback' not in log


def test_missing_dataset_names_the_path(python, repo_root, workspace):
    bad = workspace / 'bad_data.py'
    bad.write_text((workspace / 'cls_4.py').read_text().replace(str(workspace / 'data'), '/nonexistent/data'))
    code, log = run_tool(python, repo_root, 'train.py', str(bad), '--work-dir', str(workspace / 'bad'))
    assert code != 0 and '/nonexistent/data' in log and 'data_root' in log, log[-2000:]


def test_missing_checkpoint(python, repo_root, workspace):
    code, log = run_tool(python, repo_root, 'test.py', str(workspace / 'cls_4.py'), '/nonexistent.pth')
    assert code != 0 and 'checkpoint file not found: /nonexistent.pth' in log


def test_distributed_training_on_cpu(python, repo_root, workspace):
    """Two processes under torchrun (gloo): both ranks train, the checkpoint is written once, by rank 0."""
    work = str(workspace / 'work_dist')
    env = dict(os.environ, PYTHON=python, PORT='29517')
    result = subprocess.run(['bash', osp.join(repo_root, 'tools', 'dist_train.sh'), str(workspace / 'cls_4.py'),
                             '2', '--work-dir', work], capture_output=True, text=True, cwd=repo_root, env=env)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # mmengine reports the world size as "GPU number" whatever the device.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert re.search(r'Iter\(train\) \[4/4\]', log), 'training did not reach its last iteration'
    assert glob.glob(osp.join(work, 'iter_4.pth')) and len(glob.glob(osp.join(work, '*.pth'))) == 1
