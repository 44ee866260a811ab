"""Packaging of mmvit_ext.

``pip install .`` and ``pip wheel .`` ship the configs and the model index as package data under
``mmvit_ext/.mim/`` (``configs/``, ``model-index.yml``), the layout OpenMMLab projects use: ``build_py`` copies them
into the build tree, so the source tree gets no copy and no symlink. An editable install (``pip install -e .``)
reads them from the checkout; ``mmvit_ext.get_config_path`` finds them either way.

``install_requires`` states the ranges the code is written for; the tested stack is the pinned one in
``requirements/stack.txt``, which ``tools/setup_env.sh`` installs. Versions follow semantic versioning, released as
git tags ``v<version>`` (``mmvit_ext/version.py`` is the one source; CHANGELOG.md lists each release).
"""
import glob
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# Shipped under mmvit_ext/.mim/, relative to the repository root.
MIM_FILES = ('model-index.yml', 'configs/**/*.py', 'configs/**/*.md', 'configs/**/*.yml')

# What the code is written for (the OpenMMLab 2.x stack); requirements/stack.txt pins the tested versions.
STACK = [
    'torch>=2.6',  # weights_only loading by default, torch.serialization.add_safe_globals
    'mmengine>=0.10.0,<0.11.0',
    'mmcv>=2.0.0,<2.2.0',  # with its compiled ops; mmdet 3.3 and mmseg 1.2 need mmcv < 2.2
    'mmdet>=3.3.0,<3.4.0',
    'mmsegmentation>=1.2.0,<1.3.0',
    'mmpretrain>=1.2.0,<1.3.0',
    'setuptools<82',  # mmengine 0.10 and mmcv 2.1 import pkg_resources, removed in setuptools 82
]


def read_requirements(path):
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies ``configs/`` and ``model-index.yml`` into ``<build>/mmvit_ext/.mim/``."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return  # an editable install reads the checkout itself
        target = os.path.join(self.build_lib, 'mmvit_ext', '.mim')
        for pattern in MIM_FILES:
            for path in sorted(glob.glob(pattern, recursive=True)):
                destination = os.path.join(target, path)
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                shutil.copyfile(path, destination)


version = {}
with open('mmvit_ext/version.py') as f:
    exec(f.read(), version)

setup(
    name='mmvit_ext',
    version=version['__version__'],
    description='Efficient vision-transformer backbones (LIT, LITv2, LightViT, LVT) for mmdet, mmseg and mmpretrain',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmvit_ext', 'mmvit_ext.*']),
    cmdclass={'build_py': BuildPyWithConfigs},
    python_requires='>=3.9',  # torch 2.6
    install_requires=STACK + read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt'),
                    'deploy': read_requirements('requirements/deploy.txt')},
    license='Apache-2.0',
    license_files=['LICENSE'],
    zip_safe=False,
)
