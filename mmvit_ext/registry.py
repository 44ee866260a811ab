"""Register mmvit_ext classes into the registries of mmdet, mmseg and mmpretrain.

A bare ``type='LITv2'`` must resolve under each codebase's ``default_scope``. Registries are searched from the
current scope towards the root and never into siblings, so every class goes into each installed codebase's
registry. Importing ``<codebase>.registry`` is cheap: it does not import the codebase's model zoo.
"""
import importlib

_CODEBASES = ('mmdet', 'mmseg', 'mmpretrain')
_registries = {}


def installed_registries(kind: str = 'MODELS'):
    """The ``kind`` registries (``MODELS``, ``DATASETS``, ...) of the installed codebases, as ``{scope: registry}``."""
    if kind not in _registries:
        _registries[kind] = {}
        for scope in _CODEBASES:
            try:
                module = importlib.import_module(f'{scope}.registry')
            except ImportError:
                continue
            _registries[kind][scope] = getattr(module, kind)
    return _registries[kind]


def installed_model_registries():
    """The ``MODELS`` registries of the installed codebases, as ``{scope: registry}``."""
    return installed_registries('MODELS')


def register_model(cls):
    """Class decorator: register ``cls`` under its own name in every installed codebase's ``MODELS``."""
    for scope, registry in installed_model_registries().items():
        existing = registry.module_dict.get(cls.__name__)
        if existing is not None and existing is not cls:
            raise KeyError(f'{cls.__name__} is already registered in {scope}::model by {existing.__module__}; '
                           'mmvit_ext classes need names that no codebase uses')
        if existing is None:
            registry.register_module(module=cls)
    return cls


def register_lazy(name: str, target: str, kind: str = 'MODELS', scopes=_CODEBASES):
    """Register ``name`` as a builder that imports ``target`` (``'package.module:Class'``) on first use.

    For classes that subclass a codebase's zoo (an mmpretrain ``ClsHead``, an mmseg dataset): importing that zoo
    at ``import mmvit_ext`` time costs seconds, so the module is only imported when a config builds the class.
    The target class itself must not be registered by a decorator.
    """
    module_name, attr = target.split(':')

    def build(*args, **kwargs):
        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'Builds {target} (imported on first use).'
    for scope, registry in installed_registries(kind).items():
        if scope in scopes and name not in registry.module_dict:
            registry.register_module(name=name, module=build)
    return build
