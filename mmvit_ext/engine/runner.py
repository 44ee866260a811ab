"""mmengine's Runner with checkpoint loading that never loads the wrong weights silently.

mmengine 0.10.7 loads ``load_from``, ``--resume`` and the test checkpoint non-strictly (mismatched keys become a log
line) and with a bare ``torch.load``. ``GuardedRunner`` loads every file through ``checkpoint/safety.py`` (safe
unpickling, clear errors for missing or foreign files) and strictly: any missing, unexpected or wrongly shaped key
fails with the full list, unless ``strict_loading`` is off (``--non-strict``), which loads what fits and warns with
the same list.
"""
import os.path as osp
import re
from collections import OrderedDict

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, _load_checkpoint_to_model

from ..checkpoint import CheckpointMismatchError, load_checkpoint_file, trust_checkpoints
from ..checkpoint.safety import CheckpointNotFoundError


class ResumeError(ValueError):
    """The file or work dir given to ``--resume`` holds no resumable training state."""


def install_checkpoint_loader(trust: bool = False):
    """Route mmengine's local-file loading (``load_from``, resume, ``init_cfg`` of upstream modules) through the
    safe loader; ``trust`` is the user's opt-in to full unpickling (``--trust-checkpoint``)."""
    if trust:
        trust_checkpoints()
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)


def model_state(checkpoint, revise_keys=((r'^module\.', ''), )) -> OrderedDict:
    """The state dict that mmengine's ``_load_checkpoint_to_model`` would load (by default without a DDP
    ``module.`` prefix, as mmengine's ``revise_keys``)."""
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f'expected a dict in the checkpoint, got {type(checkpoint).__name__}')
    state = checkpoint.get('state_dict', checkpoint)
    for pattern, replacement in revise_keys:
        state = OrderedDict((re.sub(pattern, replacement, k), v) for k, v in state.items())
    return state


def checkpoint_mismatches(model, state) -> list:
    """Lines naming every missing, unexpected and wrongly shaped key of ``state`` against ``model``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}' for k in own
                   if k in state and hasattr(state[k], 'shape') and state[k].shape != own[k].shape]
    return [f'  {len(keys)} {title}: ' + ', '.join(keys)
            for title, keys in (('missing keys', missing), ('unexpected keys', unexpected),
                                ('shape mismatches', wrong_shape)) if keys]


class GuardedRunner(Runner):
    """``mmengine.runner.Runner`` with safe, strict checkpoint loading and clear resume errors."""
    strict_loading = True

    def load_checkpoint(self, filename, map_location='cpu', strict=None, revise_keys=[(r'^module\.', '')]):
        strict = self.strict_loading if strict is None else strict
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        problems = checkpoint_mismatches(model, model_state(checkpoint, revise_keys))
        if problems:
            report = '\n'.join([f'{filename} does not fit the model of this config:', *problems])
            if strict:
                raise CheckpointMismatchError(
                    report + '\n  (a checkpoint of another config or num_classes? --non-strict loads the keys that '
                    'fit and leaves the rest at their initialisation)')
            self.logger.warning('=' * 80 + '\n--non-strict: ' + report + '\n  these keys keep their '
                                'initialisation: the results do not come from the checkpoint alone\n' + '=' * 80)
        _load_checkpoint_to_model(model, checkpoint, strict=False, logger=self.logger, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(self, filename, *args, **kwargs):
        auto = self._load_from is None  # --resume without a file: mmengine read work_dir/last_checkpoint
        last = osp.join(self.work_dir, 'last_checkpoint')
        if auto and not filename:
            raise ResumeError(f'cannot resume: {last} is empty (a run killed while writing it?); pass the '
                              'checkpoint explicitly with --resume PATH')
        try:
            super().resume(filename, *args, **kwargs)
        except CheckpointNotFoundError as err:
            if auto:
                raise ResumeError(f'cannot resume: {last} names {filename}, which does not exist; pass the '
                                  'checkpoint explicitly with --resume PATH') from err
            raise
        except KeyError as err:
            raise ResumeError(
                f'cannot resume from {filename}: it has no {err} entry, so it is not a training checkpoint written '
                'by tools/train.py (a plain state dict or a converted release?). To start a new run from its '
                'weights use --cfg-options load_from=PATH without --resume.') from err


def build_runner(cfg, strict: bool = True) -> Runner:
    """The config's runner: ``GuardedRunner`` unless the config names its own ``runner_type``."""
    if cfg.get('runner_type', 'Runner') not in ('Runner', 'GuardedRunner'):
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    runner = GuardedRunner.from_cfg(cfg)
    runner.strict_loading = strict
    return runner
