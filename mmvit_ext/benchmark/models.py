"""The backbones a benchmark measures: every mmvit_ext arch (discovered from ``arch_zoo``) and the baselines."""
import fnmatch
import functools
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch.nn as nn

__all__ = ['ModelSpec', 'unique_archs', 'mmvit_backbones', 'select_models']


@dataclass
class ModelSpec:
    """A backbone to measure: ``build()`` returns a module whose forward maps (B, 3, H, W) to feature maps."""
    name: str
    family: str
    source: str
    build: Callable[[], nn.Module]


def unique_archs(arch_zoo: Dict[str, dict]) -> List[str]:
    """The distinct variants of an ``arch_zoo``: aliases (keys with equal settings) collapse to the longest name,
    in order of first appearance."""
    groups: Dict[str, List[str]] = {}
    for name, settings in arch_zoo.items():
        groups.setdefault(repr(sorted(settings.items())), []).append(name)
    return [max(names, key=len) for names in groups.values()]


def mmvit_backbones() -> List[ModelSpec]:
    """Every backbone class exported by ``mmvit_ext.models.backbones`` that has an ``arch_zoo``, one spec per arch.

    Families that have not landed yet (no class with an ``arch_zoo``) are simply absent."""
    from mmvit_ext.models import backbones
    specs = []
    for attr in sorted(getattr(backbones, '__all__', dir(backbones))):
        cls = getattr(backbones, attr, None)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)
                and isinstance(getattr(cls, 'arch_zoo', None), dict)):
            continue
        for arch in unique_archs(cls.arch_zoo):
            specs.append(ModelSpec(f'{cls.__name__}-{arch}', cls.__name__, 'mmvit_ext',
                                   functools.partial(cls, arch=arch)))
        specs.extend(_extra_variants(cls))
    return specs


def _extra_variants(cls) -> List[ModelSpec]:
    """Variants that are settings of an arch rather than zoo entries: the LITv2 paper's ``*`` detection models
    (stage-3 HiLo window 4 instead of 2, same weights)."""
    if cls.__name__ != 'LITv2':
        return []
    return [ModelSpec(f'LITv2-{arch}-ws4', 'LITv2', 'mmvit_ext',
                      functools.partial(cls, arch=arch, local_ws=(0, 0, 4, 1)))
            for arch in unique_archs(cls.arch_zoo)]


def select_models(patterns: Optional[Sequence[str]], with_baselines: bool = True) -> List[ModelSpec]:
    """Specs whose name matches any of the (case-insensitive, fnmatch) ``patterns``; all when none given."""
    from .baselines import baseline_backbones
    specs = mmvit_backbones() + (baseline_backbones() if with_baselines else [])
    if not patterns:
        return specs
    chosen = [s for s in specs if any(fnmatch.fnmatch(s.name.lower(), p.lower()) for p in patterns)]
    if not chosen:
        raise SystemExit(f'no model matches {list(patterns)}; available: {", ".join(s.name for s in specs)}')
    return chosen
