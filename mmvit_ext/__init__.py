"""mmvit_ext: efficient vision-transformer backbones (LIT, LITv2, LightViT, LVT) for OpenMMLab 2.x.

Importing the package registers every model into the MODELS registries of mmdet, mmseg and mmpretrain, and the
non-tensor types of our and the official checkpoints as torch safe globals (``checkpoint/safety.py``), so that
checkpoints written by our runs load under torch's default ``weights_only`` loading in every codebase's API.
It also adds our classification models to mmpretrain's model hub (``mmpretrain.get_model('litv2-s_8xb128_in1k')``)
and ``get_config_path('litv2/retinanet_litv2-s_fpn_1x_coco.py')`` finds a shipped config (``hub.py``).
"""
from . import engine, models  # noqa: F401  (engine registers AtomicCheckpointHook)
from .checkpoint import register_safe_globals
from .hub import get_config_path, register_model_hub
from .version import __version__

register_safe_globals()
register_model_hub()

__all__ = ['__version__', 'get_config_path']
