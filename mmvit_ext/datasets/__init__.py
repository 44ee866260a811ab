"""Datasets of the embedded demo: the scene generator, the mmseg dataset class that reads its semantic maps, and a
fallback for ``panopticapi`` (GitHub-only) so that mmdet's panoptic loading and PQ metric work without it."""
from .demo_scenes import *  # noqa: F401,F403
from .demo_seg_dataset import *  # noqa: F401,F403
from .panoptic_quality import provide_panopticapi

provide_panopticapi()
