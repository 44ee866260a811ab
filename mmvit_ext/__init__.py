"""mmvit_ext: efficient vision-transformer backbones (LIT, LITv2, LightViT, LVT) for OpenMMLab 2.x.

Importing the package registers every model into the MODELS registries of mmdet, mmseg and mmpretrain, and the
non-tensor types of our and the official checkpoints as torch safe globals (``checkpoint/safety.py``), so that
checkpoints written by our runs load under torch's default ``weights_only`` loading in every codebase's API.
"""
from . import engine, models  # noqa: F401  (engine registers AtomicCheckpointHook)
from .checkpoint import register_safe_globals
from .version import __version__

register_safe_globals()

__all__ = ['__version__']
