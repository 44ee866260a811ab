from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [line.split('#')[0].strip() for line in f if line.split('#')[0].strip()]


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
    python_requires='>=3.8',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={'tests': read_requirements('requirements/tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
