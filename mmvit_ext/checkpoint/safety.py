"""Checkpoint safety: every file is read with torch's ``weights_only`` unpickler, which cannot run code.

Checkpoints hold more than tensors: mmengine's training checkpoints pickle the message hub (``HistoryBuffer``
objects with numpy arrays, numpy scalars), the official DeiT-style releases of LIT and LITv2 an
``argparse.Namespace`` of the training arguments, timm's ``.pth.tar`` (LVT) the same. ``safe_globals()`` is the
exact set of such types found in those layouts; importing ``mmvit_ext`` registers it with
``torch.serialization.add_safe_globals`` (and makes ``HistoryBuffer`` pickle without function references), so
checkpoints written after ``import mmvit_ext`` load in mmdet / mmseg / mmpretrain's own APIs under torch's default
safe loading.

A file that holds anything else is refused with an ``UnsafeCheckpointError`` naming what it holds. Full unpickling
(which runs whatever code the file names) happens only on the user's opt-in: ``--trust-checkpoint`` in our tools,
``MMVIT_TRUST_CHECKPOINTS=1`` in the environment, or ``trust_checkpoints()`` in Python.
"""
import argparse
import copyreg
import os
import os.path as osp
import pickle
import re
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

TRUST_ENV = 'MMVIT_TRUST_CHECKPOINTS'
_trusted = False


class CheckpointNotFoundError(FileNotFoundError):
    """The checkpoint path names no file."""


class NotACheckpointError(ValueError):
    """The file is not a torch checkpoint (a config, a text file, random or truncated bytes)."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The checkpoint pickles objects outside ``SAFE_GLOBALS``; loading it would run code named by the file."""


def _numpy_globals() -> list:
    """numpy's array, dtype and scalar reconstructors under their numpy 2 and numpy 1 pickle names."""
    core = np._core if hasattr(np, '_core') else np.core
    multiarray = core.multiarray
    found = [np.ndarray, np.dtype]
    for name in ('_reconstruct', 'scalar'):
        func = getattr(multiarray, name)
        found += [(func, f'numpy._core.multiarray.{name}'), (func, f'numpy.core.multiarray.{name}')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 pickles dtypes by their class
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def _reduce_history_buffer(buffer: HistoryBuffer):
    """Pickle a ``HistoryBuffer`` (the message hub's scalar logs in a training checkpoint) as class + state, without
    its statistics functions: mmengine pickles those as ``getattr(HistoryBuffer, 'mean')``, and allowing ``getattr``
    would let a file reach any attribute of the allowed types. ``HistoryBuffer.__setstate__`` restores them."""
    state = {k: v for k, v in buffer.__dict__.items() if k != 'statistics_methods'}
    return copyreg.__newobj__, (HistoryBuffer, ), state


def safe_globals() -> List:
    """The non-tensor types that our training checkpoints and the official releases of the four families hold."""
    return [argparse.Namespace, HistoryBuffer, *_numpy_globals()]


def register_safe_globals():
    """Allow ``safe_globals()`` in torch's ``weights_only`` loading, and pickle ``HistoryBuffer`` in a form that
    needs nothing else (``copyreg``, so every checkpoint an mmengine runner writes in this process qualifies,
    whichever checkpoint hook saves it). Process-wide; idempotent."""
    torch.serialization.add_safe_globals(safe_globals())
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


def trust_checkpoints(enable: bool = True):
    """Opt in to full unpickling of every checkpoint this process loads (runs code from the files)."""
    global _trusted
    _trusted = enable


def checkpoints_trusted() -> bool:
    return _trusted or os.environ.get(TRUST_ENV, '') not in ('', '0', 'false', 'False')


def _is_torch_file(path: str) -> bool:
    """Starts like a torch zip archive (a local file header) or a legacy pickle (the PROTO opcode)."""
    with open(path, 'rb') as f:
        head = f.read(4)
    return head == b'PK\x03\x04' or head[:1] == b'\x80'


def _unsafe_globals(path: str, err: Exception) -> List[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # legacy (non-zip) files: fall back to the global torch named in its message
        found = []
    return found or re.findall(r'GLOBAL ([\w.]+)', str(err))[:1] or ['(see the error below)']


def load_checkpoint_file(filename: str, map_location='cpu'):
    """``torch.load`` a local file safely; the errors name the file and the problem.

    Raises:
        CheckpointNotFoundError: no such file.
        NotACheckpointError: the file is not a torch checkpoint, or it is truncated or corrupt.
        UnsafeCheckpointError: it pickles objects outside ``safe_globals()`` and the user has not opted in.
    """
    path = osp.expanduser(str(filename))
    if not osp.isfile(path):
        raise CheckpointNotFoundError(f'checkpoint file not found: {filename}')
    if not _is_torch_file(path):
        raise NotACheckpointError(f'not a checkpoint file: {filename} (neither a torch zip archive nor a pickle)')
    try:
        return torch.load(path, map_location=map_location, weights_only=not checkpoints_trusted())
    except pickle.UnpicklingError as err:
        if 'Weights only load failed' not in str(err):
            raise NotACheckpointError(f'not a checkpoint file: {filename} ({err})') from err
        names = _unsafe_globals(path, err)
        raise UnsafeCheckpointError(
            f'refusing to unpickle {filename}: it holds {", ".join(names)}, which torch\'s safe loading does not '
            'allow; unpickling it would run code that the file names. If you trust the source of this file, opt '
            f'in with --trust-checkpoint (our tools) or {TRUST_ENV}=1, or convert it to a plain state dict '
            '(tools/model_converters/).') from None
    except (RuntimeError, EOFError) as err:
        raise NotACheckpointError(f'not a checkpoint file: {filename} is truncated or corrupt ({err})') from err
