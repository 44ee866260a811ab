"""Checkpoint safety and strictness: no file runs code unless the user opts in, the official release layouts and our
own checkpoints load under torch's safe loading, and a checkpoint that does not fit the model stops the run.

A poisoned file carries a ``__reduce__`` payload that creates a marker folder; the tests assert that the marker is
NOT created on every path the project loads a file through, and that it is created once the user opts in.
"""
import argparse
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

import mmvit_ext  # noqa: F401  (registers the safe globals)
from mmvit_ext.checkpoint import (NotACheckpointError, UnsafeCheckpointError, load_checkpoint_file, safe_globals,
                                  trust_checkpoints)
from mmvit_ext.models.backbones.litv2 import LITv2

TINY_LITV2 = dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])


class Payload:
    """Unpickling this object calls ``os.makedirs(marker)``: arbitrary code run by a pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.makedirs, (self.marker, )


def poison(path, marker, state=None):
    """A checkpoint file whose ``meta`` holds the payload next to real weights."""
    torch.save({'state_dict': state or {'w': torch.zeros(1)}, 'meta': {'note': Payload(marker)}}, str(path))
    return str(path)


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / 'PAYLOAD_RAN'
    yield path
    trust_checkpoints(False)


def test_poisoned_init_cfg_is_refused(tmp_path, marker):
    path = poison(tmp_path / 'evil.pth', marker)
    model = LITv2(arch=TINY_LITV2, init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(UnsafeCheckpointError, match=r'refusing to unpickle .*evil\.pth.*os\.makedirs'
                       r'.*--trust-checkpoint'):
        model.init_weights()
    assert not marker.exists()


def test_opt_in_runs_the_payload(tmp_path, marker):
    """The opt-in is real: with it the file is fully unpickled (and its code runs)."""
    path = poison(tmp_path / 'evil.pth', marker)
    trust_checkpoints()
    load_checkpoint_file(path)
    assert marker.exists()


@pytest.mark.parametrize('route', ['load_from', 'resume', 'auto-resume', 'test', 'converter'])
def test_poisoned_file_is_refused_by_every_tool(route, run_tool, workspace, trained_cls, tmp_path, marker):
    work = str(tmp_path / 'work')
    evil = poison(tmp_path / 'evil.pth', marker)
    config = str(workspace / 'cls_4.py')
    if route == 'load_from':
        args = ('train.py', config, '--work-dir', work, '--cfg-options', f'load_from={evil}')
    elif route == 'resume':
        args = ('train.py', config, '--work-dir', work, '--resume', evil)
    elif route == 'auto-resume':  # a poisoned work dir, e.g. shipped inside a cloned repository
        os.makedirs(work)
        shutil.copy(evil, osp.join(work, 'iter_4.pth'))
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(work, 'iter_4.pth'))
        args = ('train.py', config, '--work-dir', work, '--resume')
    elif route == 'test':
        args = ('test.py', config, evil, '--work-dir', work)
    else:
        args = ('model_converters/litv2_to_mmvit.py', evil, str(tmp_path / 'out.pth'))
    code, log = run_tool(*args)
    assert code != 0 and 'refusing to unpickle' in log and 'os.makedirs' in log, log[-2000:]
    assert '--trust-checkpoint' in log and 'MMVIT_TRUST_CHECKPOINTS' in log
    assert not marker.exists()


def test_tool_opt_in_flag_and_environment(run_tool, workspace, tmp_path, marker):
    evil = poison(tmp_path / 'evil.pth', marker)
    config = str(workspace / 'cls_4.py')
    run_tool('test.py', config, evil, '--work-dir', str(tmp_path / 'w1'), '--trust-checkpoint')
    assert marker.exists()
    os.rmdir(marker)
    run_tool('test.py', config, evil, '--work-dir', str(tmp_path / 'w2'), env={'MMVIT_TRUST_CHECKPOINTS': '1'})
    assert marker.exists()


def test_our_training_checkpoint_needs_only_safe_globals(trained_cls):
    """What tools/train.py writes loads under torch's default safe loading once mmvit_ext is imported."""
    path = osp.join(trained_cls, 'iter_4.pth')
    checkpoint = torch.load(path)  # torch's default: weights_only=True
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(checkpoint)
    allowed = {f'{g.__module__}.{g.__qualname__}' if not isinstance(g, tuple) else g[1] for g in safe_globals()}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) <= allowed


def _official_release(kind):
    """The non-tensor parts of the official release layouts (values as the training scripts write them)."""
    args = argparse.Namespace(model='lit_ti', batch_size=128, lr=5e-4, input_size=224, output_dir='out',
                              drop_path=0.1, model_ema=False)
    if kind == 'deit':  # LIT / LITv2 (DeiT trainer): model, optimizer, lr_scheduler, epoch, args
        return dict(optimizer={'state': {}, 'param_groups': [{'lr': 1e-5, 'params': [0]}]},
                    lr_scheduler={'last_epoch': 299, 'base_lrs': [5e-4]}, epoch=299, args=args)
    # LVT (timm CheckpointSaver) .pth.tar: epoch, arch, version, args, metric
    return dict(epoch=299, arch='lvt_cls', version=2, args=args, metric=float(np.float64(74.8)))


@pytest.mark.parametrize('kind', ['deit', 'timm'])
def test_official_release_layouts_load_without_opt_in(kind, tmp_path):
    model = LITv2(arch=TINY_LITV2)
    path = str(tmp_path / ('release.pth' if kind == 'deit' else 'release.pth.tar'))
    key = 'model' if kind == 'deit' else 'state_dict'
    torch.save({key: model.state_dict(), **_official_release(kind)}, path)
    loaded = load_checkpoint_file(path)
    assert isinstance(loaded['args'], argparse.Namespace) and loaded['args'].batch_size == 128
    fresh = LITv2(arch=TINY_LITV2, init_cfg=dict(type='Pretrained', checkpoint=path))
    fresh.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_numpy_objects_of_numpy_1_pickles_are_safe(tmp_path):
    """Files written with numpy 1.x name ``numpy.core.multiarray``: both spellings are allowed."""
    path = str(tmp_path / 'np.pth')
    torch.save({'hist': np.arange(3.), 'best': np.float64(0.5), 'dtype': np.dtype('int64')}, path)
    loaded = load_checkpoint_file(path)
    assert loaded['best'] == 0.5 and loaded['hist'].tolist() == [0., 1., 2.]
    names = {g[1] for g in safe_globals() if isinstance(g, tuple)}
    assert {'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct'} <= names


@pytest.mark.parametrize('content', [b'random \x00\x13 bytes' * 10, b"_base_ = ['x.py']\n"])
def test_not_a_checkpoint_names_the_file(content, tmp_path):
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    model = LITv2(arch=TINY_LITV2, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(NotACheckpointError, match=f'not a checkpoint file: {path}'):
        model.init_weights()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save(LITv2(arch=TINY_LITV2).state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(NotACheckpointError, match='truncated or corrupt'):
        load_checkpoint_file(str(path))
