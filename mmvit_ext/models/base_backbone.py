"""Plumbing shared by every mmvit_ext backbone: arch selection, pretrained loading, freezing, norm_eval."""
from typing import Dict, Sequence

import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint.common import extract_state_dict, load_converted, read_checkpoint


def select_arch(arch, arch_zoo: Dict[str, dict], required_keys: Sequence[str], family: str) -> dict:
    """Settings of ``arch``: a name (or alias) from ``arch_zoo`` or a dict that holds every key in ``required_keys``."""
    if isinstance(arch, str):
        name = arch.lower()
        if name not in arch_zoo:
            raise ValueError(f'{family}: unknown arch "{arch}"; choose one of {sorted(set(arch_zoo))} '
                             f'or pass a dict with the keys {sorted(required_keys)}')
        return dict(arch_zoo[name])
    if not isinstance(arch, dict):
        raise TypeError(f'{family}: arch must be a name or a dict, got {type(arch).__name__}')
    missing = set(required_keys) - set(arch)
    if missing:
        raise ValueError(f'{family}: custom arch dict lacks the keys {sorted(missing)}')
    return dict(arch)


def resolve_indices(indices: Sequence[int], num_stages: int, family: str, name: str = 'out_indices') -> tuple:
    """Stage indices as non-negative ints: ``-num_stages <= i < num_stages`` (negative counts from the last stage,
    as in mmpretrain); anything else, duplicates or an empty list raise a ValueError naming the valid range."""
    if isinstance(indices, int):
        indices = (indices, )
    indices = list(indices)
    bad = [i for i in indices if not isinstance(i, int) or not -num_stages <= i < num_stages]
    if not indices or bad:
        raise ValueError(f'{family}: {name} must be stage indices in [-{num_stages}, {num_stages}) (the model has '
                         f'{num_stages} stages), got {indices}' + (f'; out of range: {bad}' if bad else ''))
    resolved = [i % num_stages for i in indices]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f'{family}: {name} {indices} name the same stage twice')
    return tuple(resolved)


class VisionBackbone(BaseModule):
    """Base of the mmvit_ext backbones.

    Subclasses set:
        - ``convert_checkpoint``: ``staticmethod(state_dict, model) -> ConvertedState`` that maps the family's
          official checkpoints (classification or dense, prefix already removed) onto this module's keys.
        - ``new_keys_on_pretrained``: fnmatch patterns of keys a classification checkpoint lacks (output norms).
        - ``frozen_modules()``: the modules that ``frozen_stages`` freezes, in stage order.
    """
    convert_checkpoint = None
    new_keys_on_pretrained: Sequence[str] = ()

    def __init__(self, frozen_stages: int = -1, norm_eval: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def frozen_modules(self):
        """Modules frozen by ``frozen_stages``: ``[stem(, stage 1, ..., stage frozen_stages)]``."""
        raise NotImplementedError

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix', 'backbone.'))
            self._is_init = True
            return
        super().init_weights()

    def load_pretrained(self, filename: str, prefix: str = 'backbone.'):
        """Load an official (or our own) checkpoint file, converting keys and layouts on the fly."""
        state = extract_state_dict(read_checkpoint(filename), prefix=prefix)
        converted = type(self).convert_checkpoint(state, self)
        load_converted(self, converted, allow_missing=self.new_keys_on_pretrained, source=str(filename))

    def _freeze(self):
        if self.frozen_stages < 0:
            return
        modules = self.frozen_modules()
        if self.frozen_stages >= len(modules):
            raise ValueError(f'{type(self).__name__}: frozen_stages={self.frozen_stages} but the model has only '
                             f'{len(modules) - 1} stages')
        for module in modules[:self.frozen_stages + 1]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


def trunc_normal_init_linear(module: nn.Module, std: float = .02):
    """timm-style init used by all four official releases: Linear tn(.02) with zero bias, LayerNorm (1, 0).

    timm's ``trunc_normal_(std=.02)`` truncates at +-2 absolute, i.e. 100 standard deviations: the same distribution
    as ``normal_``, which is several times faster to draw for large layers.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
