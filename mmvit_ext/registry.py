"""Register mmvit_ext classes into the MODELS registries of mmdet, mmseg and mmpretrain.

A bare ``type='LITv2'`` must resolve under each codebase's ``default_scope``. Registries are searched from the
current scope towards the root and never into siblings, so every class goes into each installed codebase's
``MODELS``. Importing ``<codebase>.registry`` is cheap: it does not import the codebase's model zoo.
"""
import importlib

_CODEBASES = ('mmdet', 'mmseg', 'mmpretrain')
_registries = None


def installed_model_registries():
    """The ``MODELS`` registries of the installed codebases, as ``{scope: registry}``."""
    global _registries
    if _registries is None:
        _registries = {}
        for scope in _CODEBASES:
            try:
                module = importlib.import_module(f'{scope}.registry')
            except ImportError:
                continue
            _registries[scope] = module.MODELS
    return _registries


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


def register_lazy(name: str, target: str, scopes=_CODEBASES):
    """Register ``name`` as a builder that imports ``target`` (``'package.module:Class'``) on first use.

    For classes that subclass a codebase's model zoo (e.g. an mmpretrain ``ClsHead``): importing that zoo at
    ``import mmvit_ext`` time would cost seconds, so the module is only imported when a config builds the class.
    The target class itself must not be decorated with ``register_model``.
    """
    module_name, attr = target.split(':')

    def build(*args, **kwargs):
        return getattr(importlib.import_module(module_name), attr)(*args, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'Builds {target} (imported on first use).'
    registries = installed_model_registries()
    for scope in scopes:
        if scope in registries and name not in registries[scope].module_dict:
            registries[scope].register_module(name=name, module=build)
    return build
