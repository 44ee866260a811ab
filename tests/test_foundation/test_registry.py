"""Registration of mmvit_ext classes into the mmdet / mmseg / mmpretrain model registries."""
import subprocess
import textwrap

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope

import mmvit_ext
from mmvit_ext.registry import installed_model_registries, register_model


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_bare_type_resolves_in_each_scope(scope):
    with DefaultScope.overwrite_default_scope(scope):
        layer = MODELS.build(dict(type='DeformableTokenMerging', in_channels=4, out_channels=8))
    assert type(layer).__name__ == 'DeformableTokenMerging'
    assert layer(torch.randn(1, 4, 8, 8)).shape == (1, 8, 4, 4)


def test_every_codebase_is_registered_into():
    assert set(installed_model_registries()) == {'mmdet', 'mmseg', 'mmpretrain'}


def test_registering_a_name_that_a_codebase_owns_fails_clearly():
    installed_model_registries()['mmdet'].get('RetinaNet')  # imports mmdet.models

    class RetinaNet(torch.nn.Module):
        pass

    with pytest.raises(KeyError, match='RetinaNet is already registered in mmdet::model'):
        register_model(RetinaNet)


def test_import_is_light_and_collision_free(python):
    """Importing mmvit_ext loads no model zoo; the codebases' own lazy imports still succeed afterwards."""
    code = textwrap.dedent('''
        import sys
        import mmvit_ext
        heavy = [m for m in ('mmdet.models', 'mmseg.models', 'mmpretrain.models') if m in sys.modules]
        assert not heavy, heavy
        import mmdet.models, mmseg.models, mmpretrain.models  # would raise KeyError on a name collision
        print('ok')
    ''')
    result = subprocess.run([python, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr[-3000:]


def test_version():
    assert mmvit_ext.__version__.count('.') == 2


BUILD_FROM_CONFIG = '''
import sys
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
cfg = Config.fromfile(sys.argv[1])
init_default_scope(cfg.default_scope)
print(type(MODELS.build(cfg.model)).__name__)
'''


def _build_from_config(python, path):
    return subprocess.run([python, '-c', BUILD_FROM_CONFIG, str(path)], capture_output=True, text=True)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_custom_imports_from_a_config_file(python, tmp_path, scope):
    """A fresh interpreter that only reads a config with custom_imports can build our models in each scope."""
    cfg = tmp_path / 'with_import.py'
    cfg.write_text("custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)\n"
                   f"default_scope = '{scope}'\n"
                   "model = dict(type='DeformableTokenMerging', in_channels=4, out_channels=8)\n")
    result = _build_from_config(python, cfg)
    assert result.returncode == 0 and result.stdout.strip() == 'DeformableTokenMerging', result.stderr[-2000:]


def test_without_custom_imports_the_type_is_unknown(python, tmp_path):
    cfg = tmp_path / 'without_import.py'
    cfg.write_text("default_scope = 'mmdet'\nmodel = dict(type='DeformableTokenMerging', in_channels=4, out_channels=8)\n")
    result = _build_from_config(python, cfg)
    assert result.returncode != 0
    assert 'DeformableTokenMerging is not in the mmdet::model registry' in result.stderr
