"""What mmdet needs of ``panopticapi`` (COCO panoptic PNG ids and the PQ statistics), for machines without it.

mmdet's ``LoadPanopticAnnotations`` and ``CocoPanopticMetric`` import ``panopticapi``, which is only published on
GitHub (cocodataset/panopticapi), not on PyPI. When it is not installed, :func:`provide_panopticapi` registers this
module's functions under the names mmdet imports (``panopticapi.utils.rgb2id`` / ``id2rgb``,
``panopticapi.evaluation.PQStat`` / ``VOID`` / ``OFFSET``), so the panoptic demo trains and evaluates anyway.
An installed ``panopticapi`` is always used as it is.

PQ (Kirillov et al., "Panoptic Segmentation", CVPR 2019, Eq. 1): per category,
``PQ = sum_{TP} IoU / (|TP| + |FP| / 2 + |FN| / 2) = SQ * RQ`` with ``SQ = sum_{TP} IoU / |TP|`` and
``RQ = |TP| / (|TP| + |FP| / 2 + |FN| / 2)``; averaged over the categories that occur.
"""
import importlib.util
import sys
import types
from collections import defaultdict

import numpy as np

__all__ = ['rgb2id', 'id2rgb', 'PQStatCat', 'PQStat', 'provide_panopticapi', 'VOID', 'OFFSET']

VOID = 0
OFFSET = 256 * 256 * 256


def rgb2id(color):
    """(H, W, 3) RGB panoptic PNG -> (H, W) segment ids ``R + 256 G + 256^2 B``; an RGB triple -> one id."""
    if isinstance(color, np.ndarray) and color.ndim == 3:
        color = color.astype(np.int32)
        return color[..., 0] + 256 * color[..., 1] + 256 * 256 * color[..., 2]
    return int(color[0] + 256 * color[1] + 256 * 256 * color[2])


def id2rgb(id_map):
    """(H, W) segment ids -> (H, W, 3) uint8 RGB; one id -> an RGB list."""
    if isinstance(id_map, np.ndarray):
        rgb = np.zeros((*id_map.shape, 3), dtype=np.uint8)
        ids = id_map.copy()
        for channel in range(3):
            rgb[..., channel] = ids % 256
            ids //= 256
        return rgb
    return [(id_map // 256**channel) % 256 for channel in range(3)]


class PQStatCat:
    """Matching counts of one category: summed IoU of the true positives, and |TP|, |FP|, |FN|."""

    def __init__(self):
        self.iou = 0.0
        self.tp = 0
        self.fp = 0
        self.fn = 0

    def __iadd__(self, other):
        self.iou += other.iou
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        return self


class PQStat:
    """Per-category :class:`PQStatCat`, summed over images with ``+=``."""

    def __init__(self):
        self.pq_per_cat = defaultdict(PQStatCat)

    def __getitem__(self, category_id):
        return self.pq_per_cat[category_id]

    def __iadd__(self, other):
        for category_id, stat in other.pq_per_cat.items():
            self.pq_per_cat[category_id] += stat
        return self

    def pq_average(self, categories, isthing):
        """Mean PQ / SQ / RQ over the categories (``{id: {'isthing': 0|1}}``; things only if ``isthing`` is True,
        stuff only if False, all if None) that occur in ground truth or predictions, and the per-category values."""
        totals = dict(pq=0., sq=0., rq=0.)
        count = 0
        per_class = {}
        for category_id, info in categories.items():
            if isthing is not None and (info['isthing'] == 1) != isthing:
                continue
            stat = self.pq_per_cat[category_id]
            denominator = stat.tp + 0.5 * stat.fp + 0.5 * stat.fn
            if denominator == 0:
                per_class[category_id] = dict(pq=0.0, sq=0.0, rq=0.0)
                continue
            count += 1
            values = dict(pq=stat.iou / denominator, sq=stat.iou / stat.tp if stat.tp else 0.,
                          rq=stat.tp / denominator)
            per_class[category_id] = values
            for key in totals:
                totals[key] += values[key]
        if count == 0:
            return dict(pq=0., sq=0., rq=0., n=0), per_class
        return dict({k: v / count for k, v in totals.items()}, n=count), per_class


def provide_panopticapi():
    """Register this module as ``panopticapi`` (with ``.utils`` and ``.evaluation``) unless it is installed.

    Returns True when the fallback was registered. Must run before mmdet's evaluation modules are imported (they
    look ``panopticapi`` up once); ``import mmvit_ext`` does it.
    """
    if 'panopticapi' in sys.modules or importlib.util.find_spec('panopticapi') is not None:
        return False
    package = types.ModuleType('panopticapi')
    package.__doc__ = f'mmvit_ext fallback for cocodataset/panopticapi ({__name__})'
    package.__path__ = []
    utils = types.ModuleType('panopticapi.utils')
    utils.rgb2id, utils.id2rgb = rgb2id, id2rgb
    evaluation = types.ModuleType('panopticapi.evaluation')
    evaluation.PQStat, evaluation.PQStatCat, evaluation.VOID, evaluation.OFFSET = PQStat, PQStatCat, VOID, OFFSET
    package.utils, package.evaluation = utils, evaluation
    sys.modules.update({'panopticapi': package, 'panopticapi.utils': utils, 'panopticapi.evaluation': evaluation})
    return True
