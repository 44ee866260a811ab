"""``DemoSceneSegDataset``: mmseg's view of the demo scenes' ADE20K-style semantic maps (``reduce_zero_label``)."""
from .demo_scenes import CLASSES, PALETTE

__all__ = []

try:
    from mmseg.datasets import BaseSegDataset
    from mmseg.registry import DATASETS
except ImportError:  # mmsegmentation not installed: nothing to register
    pass
else:

    @DATASETS.register_module()
    class DemoSceneSegDataset(BaseSegDataset):
        """Semantic segmentation of the generated demo scenes: 5 thing and 4 stuff classes.

        Label maps store ``k + 1`` for class ``k`` and 0 for crowd pixels, the ADE20K convention, so the dataset
        defaults to ``reduce_zero_label=True`` (0 becomes the ignore index 255). Images are ``.jpg``, label maps
        ``.png`` with the same stem.
        """
        METAINFO = dict(classes=CLASSES, palette=[list(c) for c in PALETTE])

        def __init__(self, img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True, **kwargs):
            super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                             reduce_zero_label=reduce_zero_label, **kwargs)

    __all__.append('DemoSceneSegDataset')
