"""Runs never use the wrong weights silently and never lose their checkpoints: strict loading in tools/test.py,
``load_from`` and ``--resume``; clear resume errors; atomic checkpoint saving under ``kill -9``; bitwise resume."""
import os
import os.path as osp
import signal
import subprocess
import time

import torch

import mmvit_ext  # noqa: F401  (its checkpoints load under torch's safe loading once imported)

HOOK_MODULE = '''
import os.path as osp
import time

from mmengine.registry import HOOKS

from mmvit_ext.engine import AtomicCheckpointHook


@HOOKS.register_module()
class SlowPublishCheckpointHook(AtomicCheckpointHook):
    """Holds the run inside the save window of iter_8.pth (written, not yet renamed) and says so with a file."""

    @staticmethod
    def _publish(partial, final):
        if osp.basename(final) == 'iter_8.pth':
            open(final + '.saving', 'w').close()
            time.sleep(120)
        AtomicCheckpointHook._publish(partial, final)
'''


def _config(workspace, name, text_from='cls_8.py', **replace):
    text = (workspace / text_from).read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = workspace / name
    path.write_text(text)
    return str(path)


def test_test_tool_refuses_a_checkpoint_of_another_model(run_tool, workspace, trained_cls):
    """A head with another num_classes: every mismatched key is named; --non-strict loads with a loud warning."""
    config = _config(workspace, 'cls_3classes.py', text_from='cls_4.py',
                     **{'num_classes=2, in_channels=64': 'num_classes=3, in_channels=64',
                        'dict(num_classes=2,': 'dict(num_classes=3,'})
    ckpt = osp.join(trained_cls, 'iter_4.pth')
    code, log = run_tool('test.py', config, ckpt, '--work-dir', str(workspace / 'strict'))
    assert code != 0, log[-2000:]
    assert 'does not fit the model' in log and 'head.fc.weight: checkpoint (2, 64) vs model (3, 64)' in log
    assert 'head.fc.bias' in log and '--non-strict' in log and 'accuracy/top1' not in log
    code, log = run_tool('test.py', config, ckpt, '--work-dir', str(workspace / 'nonstrict'), '--non-strict')
    assert code == 0, log[-2000:]
    assert '--non-strict' in log and 'head.fc.weight' in log and 'accuracy/top1' in log


def test_load_from_and_resume_are_strict(run_tool, workspace, trained_cls, tmp_path):
    foreign = str(tmp_path / 'foreign.pth')
    torch.save({'state_dict': {'backbone.other.weight': torch.zeros(3)}}, foreign)
    config = str(workspace / 'cls_4.py')
    for args in (('--cfg-options', f'load_from={foreign}'), ('--resume', foreign)):
        code, log = run_tool('train.py', config, '--work-dir', str(tmp_path / 'w'), *args)
        assert code != 0 and 'does not fit the model' in log, log[-2000:]
        assert 'unexpected keys: backbone.other.weight' in log and 'missing keys' in log


def test_resume_errors_name_the_problem(run_tool, workspace, trained_cls, tmp_path):
    config = str(workspace / 'cls_8.py')
    # a config file instead of a checkpoint
    code, log = run_tool('train.py', config, '--work-dir', str(tmp_path / 'a'), '--resume', config)
    assert code != 0 and f'not a checkpoint file: {config}' in log, log[-2000:]
    # a plain state dict (right keys, no training state)
    plain = str(tmp_path / 'plain.pth')
    torch.save(torch.load(osp.join(trained_cls, 'iter_4.pth'))['state_dict'], plain)
    code, log = run_tool('train.py', config, '--work-dir', str(tmp_path / 'b'), '--resume', plain)
    assert code != 0 and 'not a training checkpoint' in log and 'load_from' in log, log[-2000:]
    # an empty last_checkpoint (a kill while mmengine rewrote it) and one naming a deleted file
    for content, expected in (('', 'is empty'), (str(tmp_path / 'gone.pth'), 'which does not exist')):
        work = tmp_path / f'c{len(content)}'
        work.mkdir()
        (work / 'last_checkpoint').write_text(content)
        code, log = run_tool('train.py', config, '--work-dir', str(work), '--resume')
        assert code != 0 and 'last_checkpoint' in log and expected in log, log[-2000:]
        assert 'check data_root' not in log  # the hint for a missing dataset


def test_kill_inside_the_save_window_keeps_a_checkpoint(python, repo_root, workspace, tmp_path):
    """kill -9 while iter_8.pth is being saved (max_keep_ckpts=1): iter_4.pth and last_checkpoint still name a
    complete checkpoint, and --resume finishes the run."""
    (tmp_path / 'slow_publish.py').write_text(HOOK_MODULE)
    hooks = "checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False)"
    slow = _config(workspace, 'cls_12_slow.py', text_from='cls_8.py', **{
        'max_iters=8, val_interval=8': 'max_iters=12, val_interval=12',
        hooks: "checkpoint=dict(type='SlowPublishCheckpointHook', interval=4, by_epoch=False, max_keep_ckpts=1)",
        "imports=['mmvit_ext']": "imports=['mmvit_ext', 'slow_publish']"})
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen([python, osp.join(repo_root, 'tools', 'train.py'), slow, '--work-dir', str(work)],
                            cwd=repo_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (work / 'iter_8.pth.saving').exists():
        assert proc.poll() is None and time.time() < deadline, 'the run ended before reaching its save window'
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    last = (work / 'last_checkpoint').read_text()
    assert last == str(work / 'iter_4.pth')
    assert torch.load(last)['meta']['iter'] == 4
    resume = _config(workspace, 'cls_12.py', text_from='cls_8.py', **{
        'max_iters=8, val_interval=8': 'max_iters=12, val_interval=12',
        hooks: "checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False, max_keep_ckpts=1)"})
    result = subprocess.run([python, osp.join(repo_root, 'tools', 'train.py'), resume, '--work-dir', str(work),
                             '--resume'], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0 and 'resumed epoch: 0, iter: 4' in result.stdout + result.stderr
    assert torch.load(str(work / 'iter_12.pth'))['meta']['iter'] == 12
    assert sorted(p for p in os.listdir(work) if p.endswith(('.pth', '.partial'))) == ['iter_12.pth']


RANK_DUMP_MODULE = '''
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(model.state_dict(), osp.join(runner.work_dir, f'rank{get_rank()}.pth'))
'''


def test_two_rank_run_keeps_parameters_equal_and_documents_batchnorm_statistics(python, repo_root, workspace,
                                                                                tmp_path):
    """After a 2-rank CPU run of a LITv2 classifier, every parameter is equal on both ranks; the DTM BatchNorm
    running statistics are each rank's own (plain BN, as the official code; SyncBN through norm_cfg makes them
    agree on CUDA) and the checkpoint holds rank 0's."""
    (tmp_path / 'dump_rank_state.py').write_text(RANK_DUMP_MODULE)
    litv2 = ("backbone=dict(type='LITv2', arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]), "
             "out_indices=(3, ), drop_path_rate=0.)")  # stage 4: 64 channels, as the head expects
    config = _config(workspace, 'cls_litv2_dist.py', text_from='cls_8.py', **{
        "backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8, base_channels=8)": litv2,
        "imports=['mmvit_ext']": "imports=['mmvit_ext', 'dump_rank_state']",
        "log_level = 'INFO'": "log_level = 'INFO'\ncustom_hooks = [dict(type='DumpRankStateHook')]"})
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHON=python, PORT='29531', PYTHONPATH=str(tmp_path))
    result = subprocess.run(['bash', osp.join(repo_root, 'tools', 'dist_train.sh'), config, '2', '--work-dir',
                             str(work)], capture_output=True, text=True, cwd=repo_root, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    rank0, rank1 = (torch.load(str(work / f'rank{r}.pth')) for r in (0, 1))
    stats = [k for k in rank0 if k.endswith(('running_mean', 'running_var'))]
    params = [k for k in rank0 if k not in stats and not k.endswith('num_batches_tracked')]
    assert len(stats) == 6 and len(params) > 50
    assert all(torch.equal(rank0[k], rank1[k]) for k in params)
    assert any(not torch.equal(rank0[k], rank1[k]) for k in stats)
    checkpoint = torch.load(str(work / 'iter_8.pth'))['state_dict']
    assert all(torch.equal(checkpoint[k], rank0[k]) for k in stats)
