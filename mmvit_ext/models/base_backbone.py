"""Plumbing shared by every mmvit_ext backbone: arch selection, pretrained loading, freezing, norm_eval, and
clear errors for the argument and registry names of the official code."""
import dataclasses
import functools
import inspect
import warnings
from typing import Callable, Dict, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint.common import extract_state_dict, load_converted, read_checkpoint
from .layers.utils import is_tracing
from ..registry import installed_model_registries


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


def check_stage_settings(family: str, num_stages: int, **settings):
    """Each ``name=(values, minimum)`` must list ``num_stages`` integers >= ``minimum``; a ValueError names the
    setting otherwise (a negative window size would silently turn attention off, a short list drop a stage)."""
    for name, (values, minimum) in settings.items():
        values = list(values)
        if len(values) != num_stages:
            raise ValueError(f'{family}: {name} needs {num_stages} entries (one per stage), got {values}')
        bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < minimum]
        if bad:
            raise ValueError(f'{family}: {name} entries must be integers >= {minimum}, got {values}')


def check_images(x: torch.Tensor, in_channels: int, min_size: int, family: str):
    """Refuse inputs that would give an obscure error or a silently wrong result.

    ``x`` must be (B, in_channels, H, W) with H, W >= ``min_size`` and finite: a NaN pixel would otherwise vanish
    inside the deformable sampling of DTM (mmcv samples zeros for non-finite offsets) and give finite features. The
    finiteness check is skipped while tracing, exporting or compiling, where it would be data-dependent control
    flow. It is one sum (a NaN or Inf anywhere makes the sum non-finite; 0.04 ms for 8x3x224x224, where
    ``isfinite(x).all()`` took 1.1 ms, 5% of a LightViT-T forward); only a sum that overflows on finite values
    falls back to the element-wise check.
    """
    if x.dim() != 4:
        hint = ' (one image? add the batch dimension: x[None])' if x.dim() == 3 else ''
        raise ValueError(f'{family} expects a batch of images (B, {in_channels}, H, W), got a tensor of shape '
                         f'{tuple(x.shape)}{hint}')
    if x.shape[1] != in_channels:
        raise ValueError(f'{family} expects {in_channels} input channels (B, {in_channels}, H, W), got shape '
                         f'{tuple(x.shape)}')
    if min(x.shape[2:]) < min_size:
        raise ValueError(f'{family} needs images of at least {min_size}x{min_size} pixels, got {tuple(x.shape[2:])}')
    if not is_tracing() and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f'{family}: the input images hold NaN or Inf values; check the data pipeline '
                         '(normalisation, decoding)')


class BackboneArgumentError(TypeError):
    """A backbone argument the backbone does not take (an official name, mmseg's ``pretrained`` beside
    ``init_cfg``, an official registry name); the message says what to write instead."""


@dataclasses.dataclass(frozen=True)
class OfficialNames:
    """How a family's official code names what its backbone takes, for errors that say what to write instead.

    Attributes:
        arch: official argument -> key of our ``arch`` dict, or ``(key, convert)`` where the value changes form
            (e.g. the stage-1 width ``embed_dim=96`` -> ``embed_dims=[96, 192, 384, 768]``).
        arguments: official argument -> what to write instead.
        types: official registry name -> the arguments that select the same model here (``"arch='tiny'"``).
    """
    arch: Dict[str, Union[str, Tuple[str, Callable]]] = dataclasses.field(default_factory=dict)
    arguments: Dict[str, str] = dataclasses.field(default_factory=dict)
    types: Dict[str, str] = dataclasses.field(default_factory=dict)


def _same(ours, theirs) -> bool:
    if isinstance(ours, (list, tuple)) and isinstance(theirs, (list, tuple)):
        return list(ours) == list(theirs)
    return ours == theirs


def _arch_hint(cls, settings: dict) -> str:
    """``arch='small'`` when the official settings are a zoo variant, else the ``arch=dict(...)`` to write."""
    variants = {}
    for name, entry in getattr(cls, 'arch_zoo', {}).items():
        if all(_same(entry.get(key), value) for key, value in settings.items()):
            variants.setdefault(id(entry), []).append(name)
    if len(variants) == 1:
        return f"arch='{max(next(iter(variants.values())), key=len)}'"
    keys = sorted(next(iter(cls.arch_zoo.values()))) if getattr(cls, 'arch_zoo', None) else []
    return (f"arch=dict({', '.join(f'{k}={v!r}' for k, v in settings.items())}, ...) (a custom arch dict takes "
            f'the keys {keys}; {cls.__name__}.arch_zoo has the released variants)')


def explain_unexpected_arguments(cls, kwargs: dict, unexpected: Sequence[str], accepted: Sequence[str]) -> str:
    """The message for keyword arguments ``cls`` does not take, translating the official names."""
    names = cls.official_names
    arch_args = [k for k in unexpected if k in names.arch]
    lines = []
    if arch_args:
        settings = {}
        for arg in arch_args:
            key, convert = names.arch[arg] if isinstance(names.arch[arg], tuple) else (names.arch[arg], None)
            settings[key] = convert(kwargs[arg]) if convert else kwargs[arg]
        lines.append(f"{', '.join(arch_args)} -> {_arch_hint(cls, settings)}")
    for arg in unexpected:
        if arg not in names.arch:
            lines.append(f'{arg} -> {names.arguments.get(arg, f"not an argument of {cls.__name__}")}')
    return (f'{cls.__name__} got keyword arguments it does not take: {", ".join(unexpected)}. In mmvit_ext '
            'write (official names on the left):\n  - ' + '\n  - '.join(lines) +
            f'\n{cls.__name__} takes: {", ".join(accepted)}')


def _pretrained_as_init_cfg(family: str, kwargs: dict) -> dict:
    """mmseg's legacy ``pretrained=`` (segmentors pass it on to the backbone), handled as mmseg's backbones do."""
    kwargs = dict(kwargs)
    pretrained = kwargs.pop('pretrained')
    if pretrained is None:
        return kwargs
    if not isinstance(pretrained, str):
        raise BackboneArgumentError(f'{family}: pretrained must be a checkpoint path or URL (str) or None, '
                                    f'got {type(pretrained).__name__}')
    if kwargs.get('init_cfg') is not None:
        raise BackboneArgumentError(
            f'{family}: both pretrained={pretrained!r} and init_cfg={kwargs["init_cfg"]!r} are set; keep one '
            '(mmseg passes the segmentor\'s model.pretrained on to the backbone: set model.pretrained=None to keep '
            'the backbone\'s init_cfg)')
    warnings.warn(f'DeprecationWarning: {family}: pretrained is deprecated, please use "init_cfg" instead '
                  f"(loading init_cfg=dict(type='Pretrained', checkpoint={pretrained!r}))")
    kwargs['init_cfg'] = dict(type='Pretrained', checkpoint=pretrained)
    return kwargs


def _check_init_cfg(family: str, init_cfg):
    if isinstance(init_cfg, dict) and 'type' not in init_cfg and 'checkpoint' in init_cfg:
        raise BackboneArgumentError(
            f'{family}: init_cfg={init_cfg!r} has no type (the official LVT backbones read the checkpoint '
            f"themselves); write init_cfg=dict(type='Pretrained', checkpoint={init_cfg['checkpoint']!r})")


def _with_argument_checks(cls, init):
    """Wrap ``cls.__init__``: ``pretrained=`` becomes ``init_cfg``, unknown keywords get a translating error."""
    params = inspect.signature(init).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return init
    accepted = [name for name, p in params.items()
                if name != 'self' and p.kind is not inspect.Parameter.VAR_POSITIONAL]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if 'pretrained' in kwargs and 'pretrained' not in accepted:
            kwargs = _pretrained_as_init_cfg(cls.__name__, kwargs)
        unexpected = [k for k in kwargs if k not in accepted]
        if unexpected:
            raise BackboneArgumentError(explain_unexpected_arguments(cls, kwargs, unexpected, accepted))
        _check_init_cfg(cls.__name__, kwargs.get('init_cfg'))
        init(self, *args, **kwargs)

    return __init__


def _register_official_types(cls):
    """Register each official registry name as a builder that says which mmvit_ext type and arch to use."""
    for name, selection in cls.official_names.types.items():

        def official_type(*args, _name=name, _selection=selection, **kwargs):
            raise BackboneArgumentError(
                f"type='{_name}' is the official registry name; in mmvit_ext write type='{cls.__name__}', "
                f"{_selection} (see 'Coming from the official repositories' in "
                f'configs/{cls.__name__.lower()}/README.md)')

        official_type.__name__ = official_type.__qualname__ = name
        for registry in installed_model_registries().values():
            if name not in registry.module_dict:
                registry.register_module(name=name, module=official_type)


def _contiguous_outputs(outputs, clone_inference: bool):
    """The tensors of (nested tuples / lists / dicts of) ``outputs`` made contiguous; with ``clone_inference``, those
    made under ``torch.inference_mode`` are cloned into ordinary tensors, which later code may modify in place or
    save for a backward pass. The backbones return their feature maps as NCHW views of their channels-last tokens:
    the one copy here lays them out and, in inference, takes them out of inference mode (one pass over the
    features, not two)."""
    if isinstance(outputs, torch.Tensor):
        if clone_inference and outputs.is_inference():
            return outputs.clone(memory_format=torch.contiguous_format)
        return outputs.contiguous()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_contiguous_outputs(o, clone_inference) for o in outputs)
    if isinstance(outputs, dict):
        return {k: _contiguous_outputs(o, clone_inference) for k, o in outputs.items()}
    return outputs


def _inference_mode_without_autograd(forward):
    """Wrap a backbone's ``forward``: with autograd off (``torch.no_grad()``, the mm test loops) and no graph being
    recorded, it runs under ``torch.inference_mode``, which spares every op its version counter and view tracking
    (LightViT-S at 224 batch 1: 43.0 -> 40.5 ms on a 2-core Xeon), and its outputs come back as ordinary contiguous
    tensors (``_contiguous_outputs``); otherwise its outputs are only made contiguous."""

    @functools.wraps(forward)
    def run(self, *args, **kwargs):
        if torch.is_grad_enabled() or torch.is_inference_mode_enabled() or is_tracing():
            return _contiguous_outputs(forward(self, *args, **kwargs), clone_inference=False)
        with torch.inference_mode():
            outputs = forward(self, *args, **kwargs)
        return _contiguous_outputs(outputs, clone_inference=True)

    return run


class VisionBackbone(BaseModule):
    """Base of the mmvit_ext backbones.

    Subclasses set:
        - ``convert_checkpoint``: ``staticmethod(state_dict, model) -> ConvertedState`` that maps the family's
          official checkpoints (classification or dense, prefix already removed) onto this module's keys.
        - ``new_keys_on_pretrained``: fnmatch patterns of keys a classification checkpoint lacks (output norms).
        - ``frozen_modules()``: the modules that ``frozen_stages`` freezes, in stage order.
        - ``embed_dims`` and ``out_indices`` (instance attributes) and ``stage_strides``: the channels and strides
          of each stage, read by ``out_channels`` / ``out_strides`` and the build-time checks
          (``mmvit_ext/model_checks.py``).
        - ``official_names``: the official code's argument and registry names (an ``OfficialNames`` or a dict of
          its fields).

    Every subclass ``forward`` runs under ``torch.inference_mode`` where autograd is off, and its outputs are made
    contiguous (``_inference_mode_without_autograd``). Every subclass ``__init__`` also accepts mmseg's legacy
    ``pretrained=`` (turned into ``init_cfg``, with a deprecation warning, as mmseg's own backbones do) and answers
    an unknown keyword with a ``TypeError`` that translates the official argument names.
    """
    convert_checkpoint = None
    new_keys_on_pretrained: Sequence[str] = ()
    stage_strides: Sequence[int] = (4, 8, 16, 32)
    official_names = OfficialNames()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if '__init__' in cls.__dict__:
            cls.__init__ = _with_argument_checks(cls, cls.__dict__['__init__'])
        if 'forward' in cls.__dict__:
            cls.forward = _inference_mode_without_autograd(cls.__dict__['forward'])
        if 'official_names' in cls.__dict__:
            if isinstance(cls.official_names, dict):
                cls.official_names = OfficialNames(**cls.official_names)
            _register_official_types(cls)

    def __init__(self, frozen_stages: int = -1, norm_eval: bool = False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

    def frozen_modules(self):
        """Modules frozen by ``frozen_stages``: ``[stem(, stage 1, ..., stage frozen_stages)]``."""
        raise NotImplementedError

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each returned feature, in ``out_indices`` order."""
        return tuple(self.embed_dims[i] for i in self.out_indices)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride (input pixels per feature-map cell) of each returned map, in ``out_indices`` order."""
        return tuple(self.stage_strides[i] for i in self.out_indices)

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
