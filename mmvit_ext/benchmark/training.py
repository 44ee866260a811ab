"""One training iteration of the demo RetinaNet (LITv2-demo, batch 4, 256 px): DTM's deformable conv on the
registered op (``models/layers/deform_conv.py``) against ``mmcv.ops.deform_conv2d``, the op it replaced.

Both sides start from the same weights and take the same batch; their losses are compared, then their iterations
(``model.train_step``: data preprocessing, forward, loss, backward, optimizer step) are timed in alternation and
profiled by op group (the share of the deformable conv, forward and backward).
"""
import contextlib
import copy
import os.path as osp
from typing import List

import torch
from mmengine.config import Config

from ..analysis import build_config_model
from .profiling import time_by_op_group
from .timing import RunOptions, time_interleaved

__all__ = ['DEMO_TRAINING_CONFIG', 'mmcv_deformable_merging', 'demo_training_batch', 'bench_demo_training']

DEMO_TRAINING_CONFIG = osp.join('configs', 'demo', 'retinanet_litv2-demo_fpn_12e_demo-scenes.py')


@contextlib.contextmanager
def mmcv_deformable_merging():
    """While the context lasts, every DTM runs its deformable conv as ``mmcv.ops.DeformConv2dPack`` did: the
    offset conv on the input as it comes, then ``mmcv.ops.deform_conv2d`` (mmcv's kernels, on CPU too)."""
    from mmcv.ops import deform_conv2d as mmcv_deform_conv2d

    from ..models.layers.deformable_merging import BiasedDeformConv2d

    def forward_on_mmcv(self, x):
        x = x.contiguous()
        out = mmcv_deform_conv2d(x, self.conv_offset(x), self.weight, self.stride, self.padding, self.dilation)
        return out + self.bias.view(1, -1, 1, 1)

    original = BiasedDeformConv2d._forward
    BiasedDeformConv2d._forward = forward_on_mmcv
    try:
        yield
    finally:
        BiasedDeformConv2d._forward = original


def demo_training_batch(batch: int, size: int, num_classes: int, seed: int = 0) -> dict:
    """A data batch as mmdet's train dataloader yields it: ``batch`` random uint8 images of ``size`` px, each with
    2-6 ground-truth boxes (12-170 px sides, the demo scenes' range) of random classes."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        n = int(torch.randint(2, 7, (1, ), generator=gen))
        sides = torch.rand(n, 2, generator=gen) * min(158, size - 12) + 12
        corner = torch.rand(n, 2, generator=gen) * (size - sides)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1., 1.),
                                             flip=False, flip_direction=None))
        sample.gt_instances = InstanceData(bboxes=torch.cat([corner, corner + sides], dim=1),
                                           labels=torch.randint(0, num_classes, (n, ), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def bench_demo_training(opts: RunOptions, root: str, batch: int = 4, size: int = 256,
                        quick: bool = False) -> List[dict]:
    """One row per side (``dtm`` = 'op' or 'mmcv'): median ms per iteration, the speed-up of the op over mmcv, the
    largest loss difference of their first two iterations, and the deformable conv's share of an iteration."""
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(osp.join(root, DEMO_TRAINING_CONFIG))
    if quick:
        batch, size = 2, 64
    model = build_config_model(cfg, opts.device)
    model.train()
    data = demo_training_batch(batch, size, cfg.model.bbox_head.num_classes)
    sides = {}
    for name, context in (('op', contextlib.nullcontext), ('mmcv', mmcv_deformable_merging)):
        side_model = copy.deepcopy(model)
        wrapper = build_optim_wrapper(side_model, copy.deepcopy(cfg.optim_wrapper))
        sides[name] = (side_model, wrapper, context)

    def iteration(name: str):
        side_model, wrapper, context = sides[name]
        with context():
            return side_model.train_step(data, wrapper)

    # Two iterations of each side from the same weights: the second iteration's losses agree only if the
    # gradients of the first (the offsets' included) did.
    loss_diff = 0.
    for _ in range(2):
        op, mmcv = ({k: float(torch.as_tensor(v).detach()) for k, v in iteration(name).items()} for name in sides)
        loss_diff = max([loss_diff] + [abs(op[k] - mmcv[k]) for k in op])
    timings = time_interleaved([lambda: iteration('op'), lambda: iteration('mmcv')], opts.device,
                               warmup=opts.warmup, repeat=opts.repeat, max_seconds=2 * opts.max_seconds)
    rows = []
    for name, timing in zip(sides, timings):
        groups = time_by_op_group(lambda: iteration(name), opts.device, grad=True)
        dtm_share = groups['deformable conv (DTM)'] / (sum(groups.values()) or 1)
        rows.append(dict(mode='training', model='RetinaNet LITv2-demo', dtm=name, input=f'{batch}x3x{size}x{size}',
                         batch=batch, dtm_share=dtm_share, max_loss_diff=loss_diff, **timing.summary(batch)))
    op, mmcv = rows
    op['speedup'] = mmcv['latency_ms'] / op['latency_ms']
    return rows
