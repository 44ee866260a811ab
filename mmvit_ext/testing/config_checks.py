"""Smoke-run a config: build its full model and run one training iteration on a tiny generated batch."""
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope

from ..engine import drop_pretrained
from ..model_checks import check_config_keys, check_model


def _find(cfg, key):
    """First value of ``key`` in a nested config, depth first."""
    if isinstance(cfg, dict):
        if key in cfg:
            return cfg[key]
        for value in cfg.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _det_batch(cfg, batch_size, hw):
    from mmdet.testing import demo_mm_inputs
    model = cfg.model
    panoptic = model.get('type') == 'PanopticFPN'
    things = _find(model, 'num_things_classes') if panoptic else _find(model, 'num_classes')
    batch = demo_mm_inputs(batch_size, [(3, *hw)] * batch_size, num_items=[3] * batch_size,
                           num_classes=things or 10, with_mask=_find(model, 'mask_head') is not None or panoptic)
    if panoptic:
        from mmengine.structures import PixelData
        classes = things + _find(model, 'num_stuff_classes')
        for sample in batch['data_samples']:
            sample.gt_sem_seg = PixelData(sem_seg=torch.randint(0, classes, (1, *hw)))
    return batch


def _seg_batch(cfg, batch_size, hw):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    num_classes = _find(cfg.model, 'num_classes') or 10
    samples = []
    for _ in range(batch_size):
        sample = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw, pad_shape=hw))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, *hw)))
        samples.append(sample)
    return dict(inputs=[torch.randint(0, 256, (3, *hw), dtype=torch.uint8) for _ in range(batch_size)],
                data_samples=samples)


def _cls_batch(cfg, batch_size, hw):
    from mmpretrain.structures import DataSample
    num_classes = _find(cfg.model, 'num_classes') or 10
    return dict(inputs=[torch.randint(0, 256, (3, *hw), dtype=torch.uint8) for _ in range(batch_size)],
                data_samples=[DataSample().set_gt_label(i % num_classes) for i in range(batch_size)])


_BATCHES = dict(mmdet=_det_batch, mmseg=_seg_batch, mmpretrain=_cls_batch)


def run_config_smoke(config_path: str, image_size: Tuple[int, int] = (128, 160), batch_size: int = 2,
                     cfg_options: Optional[dict] = None) -> dict:
    """Build the config's full model (no pretrained weights) and run one training step with its optim_wrapper.

    The config's own ``optim_wrapper`` (including ``paramwise_cfg.custom_keys``) is built, so a key that matches
    no parameter or a wrong optimizer setting fails here too, and so do the build-time checks of our tools
    (``mmvit_ext.model_checks``: mmdet-2 keys, channels and strides from the backbone through neck and heads).
    Returns the step's log variables.
    """
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_config_keys(cfg, config_path)
    scope = cfg.get('default_scope')
    if scope not in _BATCHES:
        raise ValueError(f'{config_path}: default_scope must be one of {sorted(_BATCHES)}, got {scope!r}')
    # scoped, so that later builds in the same process do not inherit this config's default scope
    with DefaultScope.overwrite_default_scope(scope):
        drop_pretrained(cfg.model)
        if cfg.get('data_preprocessor') is not None:  # mmpretrain's top-level key, as the Runner passes it on
            cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
        preprocessor = cfg.model.get('data_preprocessor')
        if scope == 'mmseg' and preprocessor is not None and preprocessor.get('size') is not None:
            preprocessor['size'] = image_size  # pad to the tiny test size, not the 512x512 crop
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
        check_model(model)
        model.init_weights()
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        model.train()
        log_vars = model.train_step(_BATCHES[scope](cfg, batch_size, image_size), optim_wrapper)
        loss = log_vars['loss']
        assert torch.isfinite(torch.as_tensor(loss)), f'{config_path}: non-finite loss {loss}'
        changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
        assert any(n.startswith('backbone.') for n in changed), \
            f'{config_path}: the step did not update the backbone'
        return log_vars


def repoint_demo_data(node, root: str):
    """A copy of a config subtree with the demo data folder ``data/demo`` replaced by ``root`` in every string
    (to run the shipped demo configs on a small generated set)."""
    if isinstance(node, dict):
        return {k: repoint_demo_data(v, root) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(repoint_demo_data(v, root) for v in node)
    if isinstance(node, str) and node.startswith('data/demo'):
        return root + node[len('data/demo'):]
    return node
