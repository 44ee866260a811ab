"""Ours against the official code: same variant, identical weights, equal outputs, interleaved timing.

The official model files are imported in place from the user's clone of the official repository (never copied into
this project) by ``OfficialSource``: each file runs as a private module whose imports go through a resolver, so
that the few imports the model code cannot run here get stand-ins, while torch, timm, numpy and mmengine are the
real ones:

- the CUDA-only deformable conv of LIT / LITv2 (``mm_modules.DCN``) -> ``TorchvisionDeformConv2dPack``, the official
  parameter layout (``weight``, ``bias``, ``conv_offset``) computed with ``torchvision.ops.deform_conv2d``;
- registries and loggers of the mmdet / mmseg copies inside the repositories (``mmdet.registry``,
  ``..builder``, ``mmdet.utils``), ``mmcv.runner`` (gone in mmcv 2), ``mmcv_custom``, LIT-Ti's argument parser
  ``params`` and timm's model registry: names the model classes only use for registration, logging or loading.

The official classification code imports ``timm``, which the pinned stack does not hold: ``ensure_timm`` installs
it into the running environment on request (``--install-timm`` of the tool).

``compare_official`` builds each official variant and its mmvit_ext twin (the classifier of our ImageNet config, or
the dense backbone with the official dense settings), perturbs the official weights (so that the offsets of the
deformable convs and the BatchNorm statistics are not at their trivial init), copies them into ours with our
checkpoint converters (``mmvit_ext.checkpoint``), checks the outputs agree (max abs diff <= ``tolerance``) and times
both in alternation (``time_interleaved``).
"""
import builtins
import importlib
import logging
import os
import os.path as osp
import subprocess
import sys
import types
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.utils import _pair

from .timing import ProgressBar, RunOptions, time_interleaved

__all__ = ['OfficialSource', 'TorchvisionDeformConv2dPack', 'OfficialVariant', 'OFFICIAL_VARIANTS',
           'detect_family', 'official_variants', 'ensure_timm', 'perturb_', 'max_abs_diff', 'compare_official',
           'DENSE_INPUT', 'repo_commit']

# The dense input of the comparison (H, W): a COCO-sized image whose sides are multiples of 32, so that every
# official dense backbone (some do not pad) runs it.
DENSE_INPUT = (800, 1216)


class TorchvisionDeformConv2dPack(nn.Module):
    """Stand-in for the official CUDA-only ``DeformConv2dPack`` (DCNv1): same parameters, same init, same outputs.

    ``weight`` (C_out, C_in / groups, kh, kw), ``bias`` (C_out), ``conv_offset`` = Conv2d(C_in,
    2 * deformable_groups * kh * kw, kernel, stride, padding) initialised to zero; per kernel tap the offsets are
    (dy, dx), the layout of ``torchvision.ops.deform_conv2d``. ``returns_offset``: LIT v1 returns ``(out, offset)``
    (``offset`` None unless asked), LITv2 the output alone.

    Shapes: x (B, C_in, H, W) -> (B, C_out, H', W').
    """
    returns_offset = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation=1, groups=1,
                 deformable_groups=1, im2col_step=32, bias=True, lr_mult=0.1):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.groups, self.deformable_groups = groups, deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels), requires_grad=bias)
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)
        bound = 1 / (in_channels // groups * self.kernel_size[0] * self.kernel_size[1]) ** 0.5
        nn.init.uniform_(self.bias, -bound, bound) if bias else nn.init.zeros_(self.bias)
        self.conv_offset = nn.Conv2d(in_channels, deformable_groups * 2 * self.kernel_size[0] * self.kernel_size[1],
                                     self.kernel_size, self.stride, self.padding, bias=True)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor, return_offset: bool = False):
        from torchvision.ops import deform_conv2d
        offset = self.conv_offset(x)
        out = deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation)
        if self.returns_offset:
            return out, offset if return_offset else None
        return out


class _OffsetReturningDeformConv2dPack(TorchvisionDeformConv2dPack):
    returns_offset = True


def _identity_decorator(*args, **kwargs):
    """``@register`` and ``@register(...)`` alike: the decorated object unchanged."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return args[0]
    return lambda obj: obj


class _Registry:
    """A registry the official model files decorate their classes with; registers nothing."""
    register_module = staticmethod(_identity_decorator)


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _base_module():
    from mmengine.model import BaseModule
    return BaseModule


def _stand_ins(offset_returning_dcn: bool) -> Dict[str, Callable[[], types.ModuleType]]:
    """Module name -> builder of its stand-in (see the module docstring)."""
    dcn = _OffsetReturningDeformConv2dPack if offset_returning_dcn else TorchvisionDeformConv2dPack

    def no_checkpoint(*args, **kwargs):
        raise RuntimeError('the official model code was asked to load a checkpoint; the comparison copies weights '
                           'itself')

    registries = dict(BACKBONES=_Registry(), NECKS=_Registry(), MODELS=_Registry())
    return {
        'mm_modules.DCN.modules.deform_conv2d': lambda: _module('deform_conv2d', DeformConv2dPack=dcn,
                                                                DeformConv2d=dcn),
        'mmdet.registry': lambda: _module('registry', **registries),
        'mmdet.models.builder': lambda: _module('builder', **registries),
        'mmseg.models.builder': lambda: _module('builder', **registries),
        'mmdet.utils': lambda: _module('utils', get_root_logger=lambda *a, **k: logging.getLogger('official')),
        'mmseg.utils': lambda: _module('utils', get_root_logger=lambda *a, **k: logging.getLogger('official')),
        'mmcv_custom': lambda: _module('mmcv_custom', load_checkpoint=no_checkpoint),
        'mmcv.runner': lambda: _module('runner', load_checkpoint=no_checkpoint, auto_fp16=_identity_decorator,
                                       force_fp32=_identity_decorator, BaseModule=_base_module()),
        'params': lambda: _module('params', args=types.SimpleNamespace()),
        'timm.models.registry': lambda: _module('registry', register_model=_identity_decorator),
    }


class OfficialSource:
    """Model files of an official repository clone, imported in place with stand-ins (see the module docstring).

    Args:
        root: the clone.
        package_dir: folder (relative to ``root``) that dotted module names are relative to, e.g. ``detection``
            for ``mmdet/models/backbones/litv2.py`` (whose ``..builder`` is then ``mmdet.models.builder``).
        local: top-level module names loaded from ``package_dir`` (e.g. ``models`` of the classification code).
            Every other name is a stand-in or a real import.
        offset_returning_dcn: the deformable conv stand-in returns ``(out, offset)`` (LIT v1).
    """

    def __init__(self, root: str, package_dir: str = '', local: Sequence[str] = (),
                 offset_returning_dcn: bool = False):
        self.root = osp.abspath(root)
        self.package_dir = osp.join(self.root, package_dir)
        self.local = set(local)
        self.stand_ins = _stand_ins(offset_returning_dcn)
        self.modules: Dict[str, types.ModuleType] = {}
        self._builtins = dict(builtins.__dict__, __import__=self._import)

    def load(self, relpath: str) -> types.ModuleType:
        """The module of ``relpath`` (relative to ``package_dir``), e.g. ``'mmdet/models/backbones/litv2.py'``."""
        path = osp.join(self.package_dir, relpath)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found: is {self.root} a clone of the official repository?')
        name = osp.splitext(relpath)[0].replace(os.sep, '.').replace('/', '.')
        return self._exec(name, path)

    def _exec(self, name: str, path: str) -> types.ModuleType:
        if name in self.modules:
            return self.modules[name]
        module = types.ModuleType(name)
        module.__file__ = path
        module.__package__ = name.rpartition('.')[0]
        module.__builtins__ = self._builtins
        self.modules[name] = module  # before running it: circular imports see the partial module, as in Python
        with open(path) as f:
            code = compile(f.read(), path, 'exec')
        exec(code, module.__dict__)
        return module

    def _resolve(self, name: str) -> Optional[types.ModuleType]:
        """A stand-in or a local module for ``name``; None for names the real import system handles."""
        if name in self.stand_ins:
            if name not in self.modules:
                self.modules[name] = self.stand_ins[name]()
            return self.modules[name]
        if name.split('.')[0] not in self.local:
            return None
        base = osp.join(self.package_dir, *name.split('.'))
        if osp.isfile(base + '.py'):
            return self._exec(name, base + '.py')
        if osp.isdir(base):  # a package: its __init__ is not run (it would import the training code)
            return self.modules.setdefault(name, _module(name, __path__=[base]))
        raise ImportError(f'official module {name} not found under {self.package_dir}')

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        full = name
        if level:
            package = (globals or {}).get('__package__') or ''
            parts = package.split('.') if package else []
            if level - 1 > len(parts):
                raise ImportError(f'relative import beyond the top of {package}')
            full = '.'.join(parts[:len(parts) - (level - 1)] + ([name] if name else []))
        module = self._resolve(full)
        if module is None:
            if level:
                raise ImportError(f'the official code imports {full}, which has no stand-in here')
            if full.split('.')[0] == 'timm':
                ensure_timm()
            return builtins.__import__(name, globals, locals, fromlist, level)
        if fromlist:
            for item in fromlist:
                if item != '*' and not hasattr(module, item):
                    sub = self._resolve(f'{full}.{item}')
                    if sub is not None:
                        setattr(module, item, sub)
            return module
        if '.' in full:
            raise ImportError(f'"import {full}" of an official or stand-in module is not supported; the model '
                              'files use "from ... import ..."')
        return module


def ensure_timm(install: bool = False):
    """Import timm (the official model code needs it); if it is missing, pip-install it into this interpreter's
    environment with ``install`` (outside the pinned stack: nothing else is upgraded), or stop with the hint."""
    try:
        return importlib.import_module('timm')
    except ImportError:
        if not install:
            raise SystemExit('the official model code imports timm, which is not installed: rerun with '
                             '--install-timm to pip-install it into this environment (it is not part of the pinned '
                             f'stack), or run: {sys.executable} -m pip install timm')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--upgrade-strategy', 'only-if-needed', 'timm'],
                   check=True)
    importlib.invalidate_caches()
    return importlib.import_module('timm')


@torch.no_grad()
def perturb_(model: nn.Module, seed: int = 0, scale: float = .02) -> nn.Module:
    """Move the weights that start at a constant off it, reproducibly: Gaussian noise of ``scale`` on each floating
    tensor whose elements are all equal (zero-initialised deformable offsets then sample between pixels; biases,
    norm weights and zero-initialised tokens become generic), BatchNorm statistics drawn at random. Randomly
    initialised weights keep their init, so activations keep their trained-like magnitudes."""
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point() or not tensor.numel():
            continue
        if name.endswith('running_var'):
            tensor.copy_(torch.rand(tensor.shape, generator=gen) + .5)
        elif name.endswith('running_mean'):
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * .1)
        elif bool((tensor == tensor.flatten()[0]).all()):
            tensor.add_(torch.randn(tensor.shape, generator=gen) * scale)
    return model


def _flatten(out) -> List[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _flatten(item)]
    raise TypeError(f'cannot compare an output of type {type(out).__name__}')


def max_abs_diff(a, b) -> float:
    """Max abs difference of two outputs (tensors or nested tuples / lists of them); shapes must agree."""
    a, b = _flatten(a), _flatten(b)
    if len(a) != len(b):
        raise ValueError(f'the outputs differ in number: {len(a)} vs {len(b)} tensors')
    for x, y in zip(a, b):
        if x.shape != y.shape:
            raise ValueError(f'the outputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}')
    return max(float((x.double() - y.double()).abs().max()) for x, y in zip(a, b))


@dataclass
class OfficialVariant:
    """One official model and its mmvit_ext twin.

    Attributes:
        name: our name of the variant (``LITv2-small``).
        official_name: the official class or function.
        task: ``'cls'`` (whole classifier, logits) or ``'dense'`` (backbone feature maps).
        build_official: clone root -> the official model.
        build_ours: () -> our model.
        load_weights: (ours, official state dict) -> None, through our converters (strict).
        forward_ours: how our model is called (default ``model(x)``).
    """
    name: str
    official_name: str
    task: str
    build_official: Callable[[str], nn.Module]
    build_ours: Callable[[], nn.Module]
    load_weights: Callable[[nn.Module, dict], None]
    forward_ours: Callable[[nn.Module, torch.Tensor], object] = field(default=lambda model, x: model(x))


# The converters report what they skip (heads, regenerated buffers): expected here, so not printed.
_QUIET = logging.getLogger('mmvit_ext.benchmark.official')
_QUIET.setLevel(logging.ERROR)


def _repo_root() -> str:
    return osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _our_classifier(config: str) -> nn.Module:
    from mmengine.config import Config

    from ..analysis import build_config_model
    return build_config_model(Config.fromfile(osp.join(_repo_root(), config)))


def _classifier_forward(model, x):
    return model(x, mode='tensor')


def _load_backbone(convert):
    """Weights of an official backbone into ours through ``convert(state, model) -> ConvertedState``."""
    def load(ours: nn.Module, state: dict):
        from ..checkpoint import load_converted
        load_converted(ours, convert(state, ours), source='official model', logger=_QUIET)
    return load


def _load_classifier(convert):
    """Weights of an official classifier into our ImageClassifier through ``convert(state) -> state``."""
    def load(ours: nn.Module, state: dict):
        ours.load_state_dict(convert(state), strict=True)
    return load


def _load_lit_classifier(ours: nn.Module, state: dict):
    from ..checkpoint import load_converted
    from ..checkpoint.lit import convert_lit
    load_converted(ours.backbone, convert_lit(state, ours.backbone), source='official model', logger=_QUIET)
    ours.head.fc.load_state_dict(dict(weight=state['head.weight'], bias=state['head.bias']))


def _litv2_variants() -> List[OfficialVariant]:
    from ..checkpoint.litv2 import convert_litv2, convert_litv2_classifier
    from ..models.backbones import LITv2
    settings = {'small': dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
                'medium': dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
                'base': dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])}
    out = []
    for arch, kwargs in settings.items():
        def cls(root, kwargs=kwargs):
            module = OfficialSource(root, 'classification', local=('models', )).load('models/litv2.py')
            return module.LITv2(alpha=.9, local_ws=[0, 0, 2, 1], **kwargs)

        def dense(root, kwargs=kwargs):
            module = OfficialSource(root, 'detection').load('mmdet/models/backbones/litv2.py')
            return module.LITv2(alpha=.9, local_ws=[0, 0, 2, 1], **kwargs)

        out += [OfficialVariant(f'LITv2-{arch}', 'classification/models/litv2.py LITv2', 'cls', cls,
                                lambda arch=arch: _our_classifier(f'configs/litv2/litv2-{arch[0]}_8xb128_in1k.py'),
                                _load_classifier(convert_litv2_classifier), _classifier_forward),
                OfficialVariant(f'LITv2-{arch}', 'detection/mmdet/models/backbones/litv2.py LITv2', 'dense', dense,
                                lambda arch=arch: LITv2(arch, stage0_out_norm=False), _load_backbone(convert_litv2))]
    return out


def _lit_variants() -> List[OfficialVariant]:
    from ..checkpoint.lit import convert_lit
    from ..models.backbones import LIT

    def ti_cls(root):
        module = OfficialSource(root, 'classification/code_for_lit_ti', local=('blocks', 'attention', 'patch_embed'),
                                offset_returning_dcn=True).load('lit.py')
        return module.lit_ti()

    def ti_dense(root):
        module = OfficialSource(root, 'detection', offset_returning_dcn=True).load('mmdet/models/backbones/lit_ti.py')
        return module.LIT_Ti()

    out = [OfficialVariant('LIT-tiny', 'classification/code_for_lit_ti/lit.py lit_ti', 'cls', ti_cls,
                           lambda: _our_classifier('configs/lit/lit-ti_8xb128_in1k.py'), _load_lit_classifier,
                           _classifier_forward),
           OfficialVariant('LIT-tiny', 'detection/mmdet/models/backbones/lit_ti.py LIT_Ti', 'dense', ti_dense,
                           lambda: LIT('tiny', out_norm_indices=()), _load_backbone(convert_lit))]
    settings = {'small': dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24]),
                'medium': dict(embed_dim=96, depths=[2, 2, 18, 2], num_heads=[3, 6, 12, 24]),
                'base': dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])}
    for arch, kwargs in settings.items():
        def cls(root, kwargs=kwargs):
            module = OfficialSource(root, 'classification/code_for_lit_s_m_b', local=('models', ),
                                    offset_returning_dcn=True).load('models/lit.py')
            return module.LIT(**kwargs)

        def dense(root, kwargs=kwargs):
            module = OfficialSource(root, 'detection', offset_returning_dcn=True).load('mmdet/models/backbones/lit.py')
            return module.LIT(pretrain_img_size=800, **kwargs)

        out += [OfficialVariant(f'LIT-{arch}', 'classification/code_for_lit_s_m_b/models/lit.py LIT', 'cls', cls,
                                lambda arch=arch: _our_classifier(f'configs/lit/lit-{arch[0]}_8xb128_in1k.py'),
                                _load_lit_classifier, _classifier_forward),
                OfficialVariant(f'LIT-{arch}', 'detection/mmdet/models/backbones/lit.py LIT', 'dense', dense,
                                lambda arch=arch: LIT(arch, pretrain_img_size=800, out_norm_indices=(1, 2, 3)),
                                _load_backbone(convert_lit))]
    return out


def _lightvit_variants() -> List[OfficialVariant]:
    from ..checkpoint.lightvit import convert_lightvit, convert_lightvit_classifier
    from ..models.backbones import LightViT
    dense_tokens = {'tiny': 512, 'small': 16, 'base': 24}  # the official detection classes (tiny: 512, sic)
    out = []
    for arch in ('tiny', 'small', 'base'):
        def cls(root, arch=arch):
            package = 'classification' if osp.isdir(osp.join(root, 'classification', 'lib')) else ''
            module = OfficialSource(root, package, local=('lib', )).load('lib/models/lightvit.py')
            return getattr(module, f'lightvit_{arch}')()

        def dense(root, arch=arch):
            return getattr(OfficialSource(root, 'detection').load('lightvit.py'), f'lightvit_{arch}')(
                out_indices=(0, 1, 2))

        config = f'configs/lightvit/lightvit-{arch[0]}_8xb128_in1k.py'
        out += [OfficialVariant(f'LightViT-{arch}', f'lib/models/lightvit.py lightvit_{arch}', 'cls', cls,
                                lambda config=config: _our_classifier(config),
                                _load_classifier(convert_lightvit_classifier), _classifier_forward),
                OfficialVariant(f'LightViT-{arch}', f'detection/lightvit.py lightvit_{arch}', 'dense', dense,
                                lambda arch=arch: LightViT(arch, num_global_tokens=dense_tokens[arch]),
                                _load_backbone(convert_lightvit))]
    return out


# The official RASA settings (``classification/configs/lvt_imagenet.py``), read as attributes by the model code.
_LVT_RASA = dict(atrous_rates=[1, 3, 5], act_layer='nn.SiLU(True)', init='kaiming', r_num=2)


def _rasa_cfg():
    from mmengine.config import ConfigDict
    return ConfigDict(_LVT_RASA)


def _lvt_variants() -> List[OfficialVariant]:
    from ..checkpoint.lvt import convert_lvt, convert_lvt_classifier
    from ..models.backbones import LVT

    def cls(root):
        source = OfficialSource(root, 'classification', local=('models', ))
        source.load('models/lvt.py')
        return source.load('models/lvt_cls.py').lvt_cls(rasa_cfg=_rasa_cfg())

    def dense(root):
        module = OfficialSource(root, 'segmentation').load('mmseg/models/backbones/lvt.py')
        return module.lvt(rasa_cfg=_rasa_cfg(), with_cls_head=False)

    return [OfficialVariant('LVT-mobile', 'classification/models/lvt_cls.py lvt_cls', 'cls', cls,
                            lambda: _our_classifier('configs/lvt/lvt-cls_8xb128_in1k.py'),
                            _load_classifier(convert_lvt_classifier), _classifier_forward),
            OfficialVariant('LVT-mobile', 'segmentation/mmseg/models/backbones/lvt.py lvt', 'dense', dense,
                            lambda: LVT('mobile'), _load_backbone(convert_lvt))]


OFFICIAL_VARIANTS = {'LITv2': _litv2_variants, 'LIT': _lit_variants, 'LightViT': _lightvit_variants,
                     'LVT': _lvt_variants}

# A file that tells each family's clone apart, relative to the clone.
_MARKERS = [('LITv2', 'classification/models/litv2.py'), ('LITv2', 'detection/mmdet/models/backbones/litv2.py'),
            ('LIT', 'classification/code_for_lit_ti/lit.py'), ('LightViT', 'detection/lightvit.py'),
            ('LightViT', 'lib/models/lightvit.py'), ('LVT', 'classification/models/lvt.py')]


def detect_family(root: str) -> str:
    """The family of an official clone (ziplab/LITv2, ziplab/LIT, hunto/LightViT or
    hunto/image_classification_sota, Chenglin-Yang/LVT), from the files it has."""
    if not osp.isdir(root):
        raise SystemExit(f'--repo {root}: no such folder')
    for family, marker in _MARKERS:
        if osp.isfile(osp.join(root, marker)):
            return family
    raise SystemExit(f'--repo {root}: not a clone of ziplab/LITv2, ziplab/LIT, hunto/LightViT, '
                     'hunto/image_classification_sota or Chenglin-Yang/LVT (none of '
                     + ', '.join(m for _, m in _MARKERS) + ' found)')


def official_variants(root: str, family: Optional[str] = None) -> List[OfficialVariant]:
    """Every variant of ``root``'s family whose official file exists in the clone (a LightViT clone without its
    classification submodule offers the dense models only, image_classification_sota the classifiers only)."""
    family = family or detect_family(root)
    out = []
    for variant in OFFICIAL_VARIANTS[family]():
        path = variant.official_name.split(' ')[0]
        candidates = [path, osp.join('classification', path)] if family == 'LightViT' else [path]
        if any(osp.isfile(osp.join(root, c)) for c in candidates):
            out.append(variant)
    return out


def repo_commit(root: str) -> Optional[str]:
    """The checked-out commit of a git clone (None for a plain copy or without git)."""
    try:
        return subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


@torch.no_grad()
def _check_outputs(variant: OfficialVariant, ours: nn.Module, official: nn.Module, x: torch.Tensor,
                   tolerance: float) -> dict:
    """``max_abs_diff`` of the fp32 outputs; where it exceeds ``tolerance`` (rounding through a deep dense model:
    a deformable conv amplifies tiny input differences through its sampling positions), the same weights and
    input are compared again in float64 (``max_abs_diff_fp64``). The outputs agree if either is within."""
    result = dict(max_abs_diff=max_abs_diff(variant.forward_ours(ours, x), official(x)))
    if result['max_abs_diff'] > tolerance:
        try:
            ours.double(), official.double()
            result['max_abs_diff_fp64'] = max_abs_diff(variant.forward_ours(ours, x.double()),
                                                       official(x.double()))
        finally:
            ours.float(), official.float()
    return result


def compare_official(root: str, variants: Sequence[OfficialVariant], settings: Sequence[Tuple[str, int]],
                     opts: RunOptions, quick_sizes: Optional[Dict[str, Tuple[int, int]]] = None,
                     tolerance: float = 1e-4, progress: bool = True,
                     profile_below: Optional[Dict[str, float]] = None,
                     on_row: Optional[Callable[[dict], None]] = None) -> List[dict]:
    """One row per (variant, setting): outputs compared, both timed interleaved.

    ``settings``: ``(task, batch)`` pairs, e.g. ``[('cls', 1), ('cls', 8), ('dense', 1)]``; a variant is measured
    at the settings of its task. Sizes: 224x224 for classifiers, ``DENSE_INPUT`` for dense backbones (or
    ``quick_sizes``). Row fields: ``max_abs_diff`` (and ``max_abs_diff_fp64``, see ``_check_outputs``),
    ``ours_ms`` / ``official_ms`` (medians with p25 / p75), ``speedup`` = official / ours latency (ours faster
    above 1), or ``error``; outputs that disagree beyond ``tolerance`` are not timed. ``profile_below``:
    setting -> speed-up under which both sides are profiled by op group (``op_groups``: {'mmvit_ext': ...,
    'official': ...}, self ms per ``profiling.OP_GROUPS`` entry). ``on_row`` is called with each finished row.
    """
    from .profiling import time_by_op_group
    sizes = quick_sizes or {'cls': (224, 224), 'dense': DENSE_INPUT}
    plan = [(v, task, batch) for v in variants for task, batch in settings if v.task == task]
    bar = ProgressBar(len(plan), progress)
    rows, built = [], {}
    for variant, task, batch in plan:
        shape = sizes[task]
        setting = 'cls' if task == 'cls' else 'dense'
        row = dict(mode='official', model=variant.name, family=variant.name.split('-')[0], setting=setting,
                   official_model=variant.official_name, input=f'{shape[0]}x{shape[1]}', batch=batch)
        try:
            key = (variant.name, task)
            if key not in built:
                official = perturb_(variant.build_official(root))
                official.eval()
                ours = variant.build_ours()
                variant.load_weights(ours, official.state_dict())
                ours.eval()
                built = {key: (ours.to(opts.device), official.to(opts.device))}  # one pair in memory at a time
            ours, official = built[key]
            x = torch.randn(batch, 3, *shape, generator=torch.Generator().manual_seed(batch)).to(opts.device)
            row.update(_check_outputs(variant, ours, official, x, tolerance))
            if not min(row['max_abs_diff'], row.get('max_abs_diff_fp64', row['max_abs_diff'])) <= tolerance:
                raise AssertionError(f'outputs differ by {row["max_abs_diff"]:.2e} in fp32 and '
                                     f'{row.get("max_abs_diff_fp64", float("nan")):.2e} in fp64 '
                                     f'(> {tolerance:.0e})')

            def run_ours(ours=ours, x=x, variant=variant):
                with torch.no_grad():
                    return variant.forward_ours(ours, x)

            def run_official(official=official, x=x):
                with torch.no_grad():
                    return official(x)

            mine, theirs = time_interleaved([run_ours, run_official], opts.device, warmup=opts.warmup,
                                            repeat=opts.repeat, max_seconds=opts.max_seconds)
            for side, timing in (('ours', mine), ('official', theirs)):
                row.update({f'{side}_ms': timing.median * 1e3, f'{side}_p25_ms': timing.quantile(.25) * 1e3,
                            f'{side}_p75_ms': timing.quantile(.75) * 1e3})
            row['runs'] = len(mine.runs)
            row['speedup'] = theirs.median / mine.median
            if profile_below and row['speedup'] < profile_below.get(setting, 0.):
                row['op_groups'] = {'mmvit_ext': time_by_op_group(run_ours, opts.device),
                                    'official': time_by_op_group(run_official, opts.device)}
        except SystemExit:
            raise
        except Exception as exc:
            row['error'] = f'{type(exc).__name__}: {exc}'
        rows.append(row)
        if on_row:
            on_row(row)
        bar.step(f'{variant.name} {task} b{batch}')
    return rows
