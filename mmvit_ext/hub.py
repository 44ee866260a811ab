"""The configs and model index that ship with mmvit_ext, and their registration with mmpretrain's model hub.

Where the files are: a wheel installs them as package data under ``mmvit_ext/.mim/`` (``configs/``,
``model-index.yml``; copied there by ``setup.py`` at build time, as OpenMMLab projects do); a source checkout or an
editable install reads them from the repository root. ``get_config_path`` gives a config's path either way, since
mmengine 0.10.7 accepts only the OpenMMLab packages before ``::`` in ``_base_`` and ``Config.fromfile``.

``register_model_hub()`` (run by ``import mmvit_ext``) registers our classification models with mmpretrain's
``ModelHub``, so ``mmpretrain.get_model('litv2-s_8xb128_in1k')`` and ``mmpretrain.list_models('*litv2*')`` know
them. Only models whose config builds in mmpretrain are registered (``get_model`` builds every model with
mmpretrain's registry); the detection and segmentation entries of the index are for mim and the READMEs.
"""
import ast
import difflib
import glob
import os.path as osp

__all__ = ['get_config_path', 'package_data_root', 'register_model_hub']

_PACKAGE_DIR = osp.dirname(osp.abspath(__file__))


def package_data_root() -> str:
    """The folder that holds ``configs/`` and ``model-index.yml``: ``mmvit_ext/.mim`` in a wheel, else the
    repository root of a source checkout."""
    installed = osp.join(_PACKAGE_DIR, '.mim')
    if osp.isdir(osp.join(installed, 'configs')):
        return installed
    checkout = osp.dirname(_PACKAGE_DIR)
    if osp.isdir(osp.join(checkout, 'configs')) and osp.isfile(osp.join(checkout, 'model-index.yml')):
        return checkout
    raise FileNotFoundError(f'mmvit_ext: no configs next to the package ({installed} or {checkout}); '
                            'reinstall mmvit_ext from a wheel or a source checkout')


def get_config_path(name: str) -> str:
    """Absolute path of a shipped config, e.g. ``get_config_path('litv2/retinanet_litv2-s_fpn_1x_coco.py')``.

    ``name`` is relative to ``configs/`` (a leading ``configs/`` and a missing ``.py`` are accepted).
    """
    relative = name[len('configs/'):] if name.startswith('configs/') else name
    relative = relative if relative.endswith('.py') else relative + '.py'
    configs = osp.join(package_data_root(), 'configs')
    path = osp.join(configs, relative)
    if osp.isfile(path):
        return path
    known = sorted(osp.relpath(p, configs) for p in glob.glob(osp.join(configs, '*', '*.py')))
    close = difflib.get_close_matches(relative, known, n=3, cutoff=0.5)
    hint = f'; did you mean {", ".join(close)}?' if close else f'; the configs are {", ".join(known[:8])}, ...'
    raise FileNotFoundError(f'mmvit_ext has no config "{name}" (looked in {configs}){hint}')


def _builds_in_mmpretrain(config_path: str) -> bool:
    """Whether a config inherits mmpretrain's bases (and so its ``default_scope``), itself or through its local
    ``_base_`` files; read as text, without executing the configs."""
    with open(config_path, encoding='utf-8') as f:
        source = f.read()
    if 'mmpretrain::' in source:
        return True
    for node in ast.parse(source, filename=config_path).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_' for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return any(_builds_in_mmpretrain(osp.join(osp.dirname(config_path), base))
                       for base in bases if '::' not in base)
    return False


def register_model_hub():
    """Add our classification models to mmpretrain's ``ModelHub`` (idempotent; a no-op without mmpretrain).

    mmpretrain's public ``ModelHub.register_model_index`` would also register the detection and segmentation
    entries, which its ``get_model`` cannot build; this does the same per entry for the models it can build.
    """
    try:
        from mmpretrain.apis import ModelHub
        from modelindex.load_model_index import load
    except ImportError:
        return
    root = package_data_root()
    index = load(osp.join(root, 'model-index.yml'))
    index.build_models_with_collections()
    for metainfo in index.models:
        name = metainfo.name.lower()
        config = osp.abspath(osp.join(root, metainfo.config))
        if not _builds_in_mmpretrain(config):
            continue
        registered = ModelHub._models_dict.get(name)
        if registered is not None and registered.config != config:
            raise ValueError(f'mmvit_ext: the model name {name} ({config}) is already in mmpretrain\'s model hub '
                             f'with the config {registered.config}')
        metainfo.config = config
        ModelHub._models_dict[name] = metainfo
