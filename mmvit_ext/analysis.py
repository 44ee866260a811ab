"""Counting helpers shared by ``tools/analysis_tools/get_flops.py`` and the benchmark (``mmvit_ext.benchmark``).

- ``count_complexity``: params and FLOPs through ``mmengine.analysis`` (fvcore-style jit tracing, one multiply-add
  counts as one FLOP, as in the papers' tables), with handles for the two ops that mmengine does not count but our
  models spend real time in: fused attention (``aten::scaled_dot_product_attention``) and mmcv's deformable conv.
  Without them a HiLo layer's attention and every DTM would count as free.
- ``build_config_model`` / ``config_inputs``: any mmdet / mmseg / mmpretrain config's model with a random batch
  that went through the model's own data preprocessor (no dataset needed).
"""
import copy
import logging
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape

from .engine import drop_pretrained

__all__ = ['sdpa_flop_jit', 'deform_conv_flop_jit', 'EXTRA_FLOP_HANDLES', 'count_complexity', 'build_config_model',
           'config_inputs', 'config_forward', 'config_complexity', 'DEFAULT_INPUT_SHAPES', 'format_count']

# Input (H, W) per codebase when none is given: mmdet's get_flops convention, the ADE20K crop, ImageNet.
DEFAULT_INPUT_SHAPES = {'mmdet': (1280, 800), 'mmseg': (512, 512), 'mmpretrain': (224, 224)}


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of ``scaled_dot_product_attention(q, k, v)``: q (..., L, E), k (..., S, E), v (..., S, Ev).

    ``L*S*E`` multiply-adds for ``q @ k^T`` plus ``L*S*Ev`` for ``attn @ v`` per batch-head, as fvcore counts the
    two matmuls of a hand-written attention (softmax, scale and an additive mask are not counted).
    """
    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = math.prod(q[:-2])
    length, source = q[-2], k[-2]
    return batch * length * source * (q[-1] + v[-1])


def deform_conv_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """FLOPs of mmcv's ``DeformConv2dFunction(input, offset, weight)``: like a conv, out numel x (C_in/g * kh * kw).

    The bilinear sampling of the offsets is not counted (fvcore counts no interpolation either).
    """
    weight = get_shape(inputs[2])
    out = get_shape(outputs[0])
    return math.prod(out) * math.prod(weight[1:])


EXTRA_FLOP_HANDLES = {
    'aten::scaled_dot_product_attention': sdpa_flop_jit,
    'prim::PythonOp.DeformConv2dFunction': deform_conv_flop_jit,
    'prim::PythonOp.ModulatedDeformConv2dFunction': deform_conv_flop_jit,
    'mmvit_ext::deform_conv2d': deform_conv_flop_jit,  # the DTM op (mmvit_ext/models/layers/deform_conv.py)
}


def count_complexity(model: nn.Module, inputs: Tuple, by_operator: bool = False) -> Dict[str, Any]:
    """Params and FLOPs of ``model(*inputs)``: ``{'params', 'flops'[, 'flops_by_operator', 'unsupported_ops']}``.

    Same machinery as ``mmengine.analysis.get_model_complexity_info`` (``FlopAnalyzer`` + ``parameter_count``), plus
    ``EXTRA_FLOP_HANDLES``; one trace instead of two (no activation count), which matters at 800x1333.
    The trace runs on a copy of the model, so that per-size caches filled while tracing (traced values) neither
    leak into later eager runs nor into a second trace at another size.
    """
    params = parameter_count(model)['']
    analyzer = FlopAnalyzer(copy.deepcopy(model), inputs).set_op_handle(**EXTRA_FLOP_HANDLES)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
    with torch.no_grad():
        flops = analyzer.total()
    result = dict(params=params, flops=flops)
    if by_operator:
        result['flops_by_operator'] = dict(analyzer.by_operator())
        result['unsupported_ops'] = dict(analyzer.unsupported_ops())
    return result


def build_config_model(cfg, device: torch.device = torch.device('cpu')) -> nn.Module:
    """The eval-mode model of an mmdet / mmseg / mmpretrain ``Config``, built in the config's ``default_scope``,
    without pretrained weights, SyncBN reverted to BN (as the Runner does on CPU)."""
    from mmengine.logging import MMLogger
    from mmengine.model.utils import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg['custom_imports'])
    scope = cfg.get('default_scope')
    if scope is None:
        raise ValueError('the config has no default_scope: cannot tell whether it is an mmdet, mmseg or '
                         'mmpretrain config')
    init_default_scope(scope)
    model_cfg = copy.deepcopy(cfg.model)
    drop_pretrained(model_cfg)
    model = MODELS.build(model_cfg)
    model = revert_sync_batchnorm(model)
    # The models' own init (e.g. RetinaNet's prior-probability bias) keeps post-processing realistic; its
    # per-parameter INFO log is silenced.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    model.to(device)
    model.eval()  # not chained: some upstream train() overrides return None
    return model


def config_inputs(model: nn.Module, scope: str, shape: Sequence[int], batch: int = 1,
                  seed: int = 0) -> Tuple[torch.Tensor, Any]:
    """A random ``batch`` of ``shape`` = (H, W) images run through ``model.data_preprocessor``, as the test loop
    feeds the model: ``(inputs, data_samples)`` with normalised, padded inputs and complete metainfo."""
    height, width = shape
    gen = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8) for _ in range(batch)]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        samples = [DetDataSample(metainfo=meta) for _ in range(batch)]
    elif scope == 'mmseg':
        from mmseg.structures import SegDataSample
        samples = [SegDataSample(metainfo=meta) for _ in range(batch)]
    elif scope == 'mmpretrain':
        from mmpretrain.structures import DataSample
        samples = [DataSample(metainfo=meta) for _ in range(batch)]
    else:
        raise ValueError(f'unsupported default_scope "{scope}": expected mmdet, mmseg or mmpretrain')
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), False)
    return data['inputs'], data['data_samples']


class _TensorModeForward(nn.Module):
    """``model(inputs, data_samples, mode='tensor')`` with the samples bound, so jit tracing sees one tensor."""

    def __init__(self, model: nn.Module, data_samples: Any):
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode='tensor')


def config_forward(model: nn.Module, data_samples: Any) -> nn.Module:
    """The model's raw network forward (``mode='tensor'``: backbone, neck and heads, no post-processing) as a
    module of one tensor, for FLOP counting."""
    return _TensorModeForward(model, data_samples)


def config_complexity(config: str, shape: Optional[Sequence[int]] = None, batch_size: int = 1,
                      cfg_options: Optional[dict] = None, by_operator: bool = False) -> Dict[str, Any]:
    """Params and FLOPs of a config file's model on a random batch of ``shape`` = (H, W) or (S,) images.

    Returns ``count_complexity``'s dict (params of the whole model) plus the config, scope and shapes."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    model = build_config_model(cfg)
    if shape is None:
        shape = DEFAULT_INPUT_SHAPES.get(scope, (224, 224))
    elif len(shape) == 1:
        shape = (shape[0], shape[0])
    inputs, samples = config_inputs(model, scope, shape, batch=batch_size)
    result = count_complexity(config_forward(model, samples), (inputs, ), by_operator=by_operator)
    result.update(config=config, scope=scope, input_shape=list(shape), padded_shape=list(inputs.shape[-2:]),
                  batch_size=batch_size)
    return result


def format_count(value: Optional[float], unit: str = '') -> str:
    """``27_840_000 -> '27.84M'``; ``None -> '-'``."""
    if value is None:
        return '-'
    for scale, suffix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(value) >= scale:
            return f'{value / scale:.2f}{suffix}{unit}'
    return f'{value:.0f}{unit}'

