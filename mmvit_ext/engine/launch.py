"""Glue between our tools and mmengine 0.10.7: config loading, work dirs, CPU launchers, clear errors."""
import contextlib
import gc
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.config import Config

from ..checkpoint import CheckpointMismatchError, NotACheckpointError, UnsafeCheckpointError
from ..checkpoint.safety import TRUST_ENV, CheckpointNotFoundError
from .runner import ResumeError


def adapt_launcher_to_device(cfg: Config):
    """Distributed runs without CUDA: gloo instead of nccl, and DDP without device ids (CPU modules).

    mmengine 0.10.7 calls ``torch.cuda.set_device`` when it initialises the torchrun launcher, so on a machine
    without CUDA the process group is initialised here (from torchrun's environment) and mmengine reuses it.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')


@contextlib.contextmanager
def distributed_teardown():
    """Ends the process group when the run ends: left to the interpreter's exit, gloo's threads can outlive it and
    abort the process (``terminate called without an active exception``) after a run that succeeded.

    The DDP wrapper holds the group too, and mmengine's runner sits in reference cycles (hooks, visualizer), so the
    body must keep the runner in a frame that has returned; the cycles are collected here, before the group ends.
    """
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gc.collect()
            torch.distributed.destroy_process_group()


def work_dir_for(cfg: Config, config_path: str, cli_work_dir: Optional[str]) -> str:
    """Priority: command line > config > ./work_dirs/<config name> (the OpenMMLab convention)."""
    if cli_work_dir:
        return cli_work_dir
    if cfg.get('work_dir'):
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile`` with a clear message for a missing file, plus ``--cfg-options``."""
    if not osp.isfile(path):
        raise SystemExit(f'error: config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def add_trust_argument(parser):
    """``--trust-checkpoint``: the opt-in to full unpickling, for every tool that reads checkpoints."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle checkpoints fully, which RUNS CODE named by the file: only for files from a '
                        'source you trust that hold objects beyond tensors and the known-safe types (by default '
                        f'they are refused; the environment variable {TRUST_ENV}=1 does the same)')


def add_checkpoint_args(parser):
    """The checkpoint-loading flags of tools/train.py and tools/test.py."""
    add_trust_argument(parser)
    parser.add_argument('--non-strict', action='store_true',
                        help='load checkpoints (load_from, --resume, the test checkpoint) even when keys are '
                        'missing, unexpected or of another shape: loads what fits, warns with the list')


@contextlib.contextmanager
def checkpoint_errors_as_messages():
    """For command-line tools: a refused, missing or foreign checkpoint ends the program with its message."""
    try:
        yield
    except (CheckpointNotFoundError, NotACheckpointError, UnsafeCheckpointError, CheckpointMismatchError,
            ResumeError) as err:
        raise SystemExit(f'error: {err}') from err


def use_atomic_checkpoints(cfg: Config):
    """Save checkpoints with ``AtomicCheckpointHook`` where the config uses mmengine's ``CheckpointHook``."""
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if hook is not None and hook.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook'):
        hook['type'] = 'AtomicCheckpointHook'


def _empty_dataset(tb) -> Optional[str]:
    """The dataset whose ``full_init`` failed on an empty annotation list, from the traceback's frames."""
    from mmengine.dataset import BaseDataset
    while tb is not None:
        owner = tb.tb_frame.f_locals.get('self')
        if isinstance(owner, BaseDataset):
            return f'{type(owner).__name__} (ann_file={owner.ann_file!r}, data_root={owner.data_root!r})'
        tb = tb.tb_next
    return None


@contextlib.contextmanager
def explain_errors(config_path: str):
    """Turn the usual mistakes into one clear message instead of a deep traceback."""
    try:
        with checkpoint_errors_as_messages():
            yield
    except KeyError as err:
        message = str(err.args[0]) if err.args else str(err)
        if 'registry' not in message:
            raise
        raise SystemExit(
            f'error in {config_path}: {message.split(". Please check")[0]}.\n'
            '  Check the spelling of the type. A type from mmvit_ext needs '
            "custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False) in the config; a type from "
            "another codebase needs its scope prefix, e.g. type='mmpretrain.ResNet'.") from err
    except FileNotFoundError as err:
        raise SystemExit(
            f'error in {config_path}: {err}.\n  A file or dataset path named by the config does not exist: check '
            'data_root / ann_file (see the data/ layout in README.md), or generate the demo data with '
            '`python tools/dataset_converters/generate_demo_data.py`.') from err
    except ValueError as err:
        dataset = _empty_dataset(sys.exc_info()[2]) if 'need at least one array' in str(err) else None
        if dataset is None:
            raise
        raise SystemExit(f'error in {config_path}: dataset {dataset} has no samples: check ann_file (an empty '
                         'annotation list, or every image filtered out by filter_cfg)') from err


def drop_pretrained(cfg):
    """Remove every ``Pretrained`` init_cfg (and legacy ``pretrained=``) so no file or URL is read."""
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        if cfg.get('pretrained') is not None:
            cfg['pretrained'] = None
        for value in cfg.values():
            drop_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_pretrained(value)
