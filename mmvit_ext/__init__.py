"""mmvit_ext: efficient vision-transformer backbones (LIT, LITv2, LightViT, LVT) for OpenMMLab 2.x.

Importing the package registers every model into the MODELS registries of mmdet, mmseg and mmpretrain.
"""
from . import models  # noqa: F401
from .version import __version__

__all__ = ['__version__']
