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
