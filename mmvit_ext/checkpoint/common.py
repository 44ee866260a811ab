"""Reading official checkpoint files and loading converted weights with a full report.

Every family's converter is a function ``convert(state_dict, model) -> ConvertedState``. It maps official key names
and layouts onto ours and lists what it dropped on purpose (a classifier head in a backbone, ...). ``load_converted``
then loads strictly: any key that is missing (and not declared new by the model), unexpected, or of the wrong shape
raises a ``CheckpointMismatchError`` naming every offending key, so a wrong checkpoint never loads silently.
"""
import fnmatch
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List

import torch
from mmengine.fileio import get_local_path
from mmengine.logging import MMLogger

from .safety import load_checkpoint_file


class CheckpointMismatchError(RuntimeError):
    """The checkpoint does not fit the model: wrong family, wrong variant, or a corrupt file."""


@dataclass
class ConvertedState:
    """Weights in our layout plus the official keys the converter dropped, each with the reason."""
    state_dict: Dict[str, torch.Tensor]
    skipped: Dict[str, str] = field(default_factory=dict)


def read_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint file (a local path or a URL that mmengine can fetch) with the safe loader of
    ``checkpoint/safety.py``: official releases and our checkpoints load, code-running pickles are refused."""
    with get_local_path(filename) as local:
        return load_checkpoint_file(local, map_location=map_location)


def extract_state_dict(checkpoint: dict, prefix: str = 'backbone.') -> Dict[str, torch.Tensor]:
    """The tensors of a checkpoint: under ``'state_dict'``, ``'model'`` or the raw dict; ``module.`` stripped.

    If any key starts with ``prefix`` (a dense-task checkpoint), only those keys are kept, without the prefix.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f'expected a dict of tensors in the checkpoint, got {type(checkpoint)}')
    for key in ('state_dict', 'model', 'state_dict_ema', 'model_ema'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    state = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in checkpoint.items()
                        if isinstance(v, torch.Tensor))
    if not state:
        raise CheckpointMismatchError('the checkpoint holds no tensors under "state_dict", "model" or at its top')
    if prefix and any(k.startswith(prefix) for k in state):
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    return state


def load_converted(module: torch.nn.Module,
                   converted: ConvertedState,
                   allow_missing: Iterable[str] = (),
                   source: str = 'checkpoint',
                   logger=None) -> List[str]:
    """Load converted weights into ``module``; raise on any mismatch, warn about what was skipped or is new.

    Args:
        allow_missing: fnmatch patterns of our keys that legitimately have no counterpart in the checkpoint
            (e.g. the output norms a dense backbone adds to a classification checkpoint). They keep their init.
    Returns:
        the missing keys that ``allow_missing`` admitted.
    """
    logger = logger or MMLogger.get_current_instance()
    own = module.state_dict()
    state = converted.state_dict
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}' for k in own
                   if k in state and state[k].shape != own[k].shape]
    admitted = [k for k in missing if any(fnmatch.fnmatchcase(k, p) for p in allow_missing)]
    missing = [k for k in missing if k not in admitted]
    if missing or unexpected or wrong_shape:
        lines = [f'{type(module).__name__} cannot load {source}:']
        for title, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                            ('shape mismatches', wrong_shape)):
            if keys:
                lines.append(f'  {len(keys)} {title}: ' + ', '.join(keys))
        lines.append('  (is this checkpoint of the same family and variant as the configured arch?)')
        raise CheckpointMismatchError('\n'.join(lines))
    module.load_state_dict(state, strict=False)
    if converted.skipped:
        logger.warning(f'{source}: skipped {len(converted.skipped)} keys that {type(module).__name__} does not use: '
                       + ', '.join(f'{k} ({why})' for k, why in converted.skipped.items()))
    if admitted:
        logger.warning(f'{source}: {len(admitted)} keys of {type(module).__name__} are not in the checkpoint and '
                       'keep their initialisation: ' + ', '.join(admitted))
    logger.info(f'{type(module).__name__}: loaded {len(state)} tensors from {source}')
    return admitted
