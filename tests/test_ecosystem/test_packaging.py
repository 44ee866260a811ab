"""What ``pip install`` users get: a wheel built from a copy of the sources ships the configs and the model index as
package data, states the supported stack, carries the license, and its configs are found by
``mmvit_ext.get_config_path`` and mmpretrain's model hub when the package is imported from the wheel. The wheel
build takes a few seconds (``pip wheel --no-deps --no-build-isolation``, no network); the import check runs in a
subprocess (about 6 s)."""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

import mmvit_ext

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SOURCES = ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE', 'CHANGELOG.md', 'model-index.yml', 'requirements',
           'mmvit_ext', 'configs')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources (the checkout itself stays free of build/ and egg-info)."""
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    src.mkdir()
    for name in SOURCES:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '.mim'))
        else:
            shutil.copy(path, src / name)
    result = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                             '-w', str(root / 'dist'), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path, ) = glob.glob(str(root / 'dist' / 'mmvit_ext-*.whl'))
    return path


def test_wheel_ships_configs_and_model_index(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.*'), recursive=True)
               if p.endswith(('.py', '.md', '.yml')) and '__pycache__' not in p}
    assert len(configs) > 80
    missing = sorted(c for c in configs if f'mmvit_ext/.mim/{c}' not in names)
    assert not missing, missing
    assert 'mmvit_ext/.mim/model-index.yml' in names
    assert any(n.endswith('.dist-info/licenses/LICENSE') or n.endswith('.dist-info/LICENSE') for n in names)


def test_wheel_metadata_states_the_stack(wheel):
    archive = zipfile.ZipFile(wheel)
    (metadata, ) = [n for n in archive.namelist() if n.endswith('.dist-info/METADATA')]
    text = archive.read(metadata).decode()
    requires = re.findall(r'^Requires-Dist: ([^;\n]+)$', text, re.M)
    for package in ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmsegmentation', 'mmpretrain'):
        spec = next((r for r in requires if re.match(rf'{package}\b', r)), None)
        assert spec is not None and re.search(r'[<>]=?', spec), f'{package}: no version range in {requires}'
    assert f'Version: {mmvit_ext.__version__}' in text and 'License: Apache-2.0' in text


def test_the_pinned_stack_is_inside_the_stated_ranges(wheel):
    from packaging.requirements import Requirement
    archive = zipfile.ZipFile(wheel)
    (metadata, ) = [n for n in archive.namelist() if n.endswith('.dist-info/METADATA')]
    ranges = {Requirement(r).name: Requirement(r).specifier
              for r in re.findall(r'^Requires-Dist: ([^;\n]+)$', archive.read(metadata).decode(), re.M)}
    with open(osp.join(REPO, 'requirements', 'stack.txt')) as f:
        pins = [Requirement(line.split('#')[0].strip()) for line in f if '==' in line.split('#')[0]]
    assert len(pins) >= 6
    for pin in pins:
        version = next(iter(pin.specifier)).version
        if pin.name in ranges:
            assert version in ranges[pin.name], f'{pin.name}=={version} is outside {ranges[pin.name]}'


def test_configs_are_found_in_an_installed_wheel(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import mmvit_ext, mmpretrain; print(mmvit_ext.__file__); "
            "print(mmvit_ext.get_config_path('litv2/retinanet_litv2-s_fpn_1x_coco.py')); "
            "print(mmpretrain.list_models('lvt*'))")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    module, config, models = result.stdout.strip().splitlines()[-3:]
    assert module == str(tmp_path / 'mmvit_ext' / '__init__.py')
    assert config == str(tmp_path / 'mmvit_ext' / '.mim' / 'configs' / 'litv2' / 'retinanet_litv2-s_fpn_1x_coco.py')
    assert models == "['lvt-cls_8xb128_in1k', 'lvt_8xb128_in1k']"


def test_license_and_changelog():
    with open(osp.join(REPO, 'LICENSE')) as f:
        text = f.read()
    assert 'Apache License' in text and 'Version 2.0, January 2004' in text and 'END OF TERMS AND CONDITIONS' in text
    with open(osp.join(REPO, 'CHANGELOG.md')) as f:
        releases = re.findall(r'^## (\d+\.\d+\.\d+)\b', f.read(), re.M)
    assert releases and releases[0] == mmvit_ext.__version__, 'the newest CHANGELOG section is not the version'
