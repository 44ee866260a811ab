"""Glue between our tools and mmengine 0.10.7 on current torch: trusted checkpoint loading, CPU launchers."""
import contextlib
import os
import os.path as osp
from typing import Iterable, Optional

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

_trusted_files = set()
_trusted_dirs = set()


def _is_trusted(filename: str) -> bool:
    path = osp.realpath(filename)
    return path in _trusted_files or any(path.startswith(d + os.sep) for d in _trusted_dirs)


def _load_local(filename, map_location):
    """mmengine's local loader, with full unpickling for the checkpoints the user chose to load.

    torch>=2.6 loads with ``weights_only=True`` by default, which rejects mmengine's own checkpoints (they pickle
    the message hub and numpy objects). mmengine 0.10.7 does not pass ``weights_only``; we pass ``False`` only for
    files the user named (``--resume``, ``load_from``, the test checkpoint) or that the run itself wrote into its
    work_dir, and keep torch's safe default for everything else.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return torch.load(filename, map_location=map_location, weights_only=not _is_trusted(filename))


def trust_checkpoints(files: Iterable[Optional[str]] = (), dirs: Iterable[Optional[str]] = ()):
    """Allow full unpickling of ``files`` and of checkpoints under ``dirs`` (e.g. the work_dir for auto-resume)."""
    _trusted_files.update(osp.realpath(f) for f in files if f)
    _trusted_dirs.update(osp.realpath(d) for d in dirs if d)
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_local)


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


@contextlib.contextmanager
def explain_errors(config_path: str):
    """Turn the usual config mistakes into one clear message instead of a deep traceback."""
    try:
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
