"""Build-time checks of a whole model and of a config, for mistakes the codebases notice late or never.

- ``check_model(model)``: the channels and strides that flow from one of our backbones through the neck into the
  heads, read from the built modules (no forward pass). A wrong neck ``in_channels`` otherwise fails only at the first
  forward (``mat1 and mat2 shapes cannot be multiplied``); RetinaNet anchors at strides the FPN levels do not have,
  or a Semantic FPN head told the wrong strides, train without a word.
- ``check_config_keys(cfg, path)``: mmdet-2 style top-level keys (``optimizer``, ``lr_config``, ``runner`` ...)
  that mmengine silently ignores, so the run would train with the base config's optimizer and schedule.

Both raise ``ModelConfigError`` (a ``ValueError``) whose message names the config keys and both numbers. Only what
the checks can see for certain is checked: models whose backbone is an mmvit_ext backbone, and the necks and heads
named below; anything else passes unchecked.
"""
import ast
import contextlib
import os.path as osp
from typing import List, Optional, Sequence

import torch.nn as nn

from .models.base_backbone import BackboneArgumentError, VisionBackbone

__all__ = ['ModelConfigError', 'check_model', 'check_config_keys', 'config_errors_as_exit']


class ModelConfigError(ValueError):
    """A model or config whose parts do not fit together."""


class Features:
    """Channels and strides of a list of feature maps, and where they come from (for the messages)."""

    def __init__(self, channels: Sequence[int], strides: Optional[Sequence[int]], source: str):
        self.channels = list(channels)
        self.strides = list(strides) if strides is not None else None
        self.source = source


def _has_base(module: nn.Module, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(module).__mro__)


def _unwrap(model: nn.Module) -> nn.Module:
    """The detector / segmentor / classifier inside DDP or TTA wrappers."""
    while not hasattr(model, 'backbone') and isinstance(getattr(model, 'module', None), nn.Module):
        model = model.module
    return model


def _backbone_features(backbone: VisionBackbone) -> Features:
    name = type(backbone).__name__
    return Features(backbone.out_channels, backbone.out_strides,
                    f'the backbone ({name} with out_indices={tuple(backbone.out_indices)}) returns '
                    f'{len(backbone.out_indices)} maps with channels {list(backbone.out_channels)} at strides '
                    f'{list(backbone.out_strides)}')


def _neck_features(neck: nn.Module, inputs: Features, problems: List[str]) -> Optional[Features]:
    """Check the neck's inputs and return its outputs; None for a neck whose outputs the checks cannot know."""
    if _has_base(neck, 'GlobalAveragePooling'):
        return Features(inputs.channels, None, f'{inputs.source}, pooled by the neck')
    if _has_base(neck, 'LightViTClsNeck'):
        in_channels, out_channels = neck.norm.normalized_shape[0], neck.expand[0].out_features
        if in_channels != inputs.channels[-1]:
            problems.append(f'model.neck.in_channels is {in_channels} but {inputs.source}: set '
                            f'model.neck.in_channels={inputs.channels[-1]}')
        return Features([out_channels], None, f'the neck (LightViTClsNeck) returns {out_channels} channels')
    if not _has_base(neck, 'FPN', 'LightViTFPN', 'ChannelMapper', 'MultiLevelNeck'):
        return None
    in_channels = list(neck.in_channels)
    if in_channels != inputs.channels:
        problems.append(f'model.neck.in_channels is {in_channels} but {inputs.source}: set '
                        f'model.neck.in_channels={inputs.channels}')
        return None
    strides = None
    if inputs.strides is not None and _has_base(neck, 'FPN'):
        used = inputs.strides[neck.start_level:neck.backbone_end_level]
        strides = used + [used[-1] * 2**(i + 1) for i in range(neck.num_outs - len(used))]
        source = (f'the neck ({type(neck).__name__}, start_level={neck.start_level}, num_outs={neck.num_outs}) '
                  f'returns levels at strides {strides} from backbone maps at strides {inputs.strides}')
    elif inputs.strides is not None and _has_base(neck, 'LightViTFPN'):
        finest, coarsest = inputs.strides[0], inputs.strides[-1]
        finer = [finest // 2**i for i in range(neck.num_extra_trans_convs, 0, -1)]
        extra = neck.num_outs - len(finer) - len(inputs.strides)
        strides = finer + inputs.strides + [coarsest * 2**(i + 1) for i in range(extra)]
        source = (f'the neck (LightViTFPN, num_extra_trans_convs={neck.num_extra_trans_convs}, '
                  f'num_outs={neck.num_outs}) returns levels at strides {strides}')
    else:
        source = f'the neck ({type(neck).__name__}) returns {getattr(neck, "num_outs", "its")} levels'
    num_outs = getattr(neck, 'num_outs', len(in_channels))
    return Features([neck.out_channels] * num_outs, strides, source)


def _check_dense_head(key: str, head: nn.Module, features: Features, problems: List[str]):
    """mmdet dense heads (RetinaHead, RPNHead, FCOSHead, ...): input channels and prior strides."""
    in_channels = getattr(head, 'in_channels', None)
    if isinstance(in_channels, int) and len(set(features.channels)) == 1 and in_channels != features.channels[0]:
        problems.append(f'model.{key}.in_channels is {in_channels} but {features.source} with '
                        f'{features.channels[0]} channels: set model.{key}.in_channels={features.channels[0]}')
    generator = getattr(head, 'prior_generator', None)
    if generator is None or features.strides is None:
        return
    prior_strides = [s[0] if isinstance(s, (tuple, list)) else s for s in generator.strides]
    if prior_strides != features.strides:
        generator_key = 'anchor_generator.strides' if 'Anchor' in type(generator).__name__ else 'strides'
        problems.append(
            f'model.{key}.{generator_key} are {prior_strides} but {features.source}: the priors would sit at '
            'the wrong scale. Make the first FPN level match the first prior stride (e.g. for RetinaNet at '
            'strides 8-128: backbone out_indices=(0, 1, 2, 3) with neck start_level=1, or out_indices=(1, 2, 3) '
            'with start_level=0), or change the prior strides')


def _check_roi_head(roi_head: nn.Module, features: Features, problems: List[str]):
    """mmdet two-stage RoI extractors: ``featmap_strides`` are the strides of the first neck levels."""
    if features.strides is None:
        return
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        extractor = getattr(roi_head, name, None)
        strides = list(getattr(extractor, 'featmap_strides', None) or [])
        if strides and strides != features.strides[:len(strides)]:
            problems.append(f'model.roi_head.{name}.featmap_strides are {strides} but {features.source}')


def _check_decode_head(key: str, head: nn.Module, features: Features, problems: List[str]):
    """mmseg decode heads: ``in_channels`` / ``in_index`` / ``input_transform`` (and FPNHead's strides)."""
    if not hasattr(head, 'in_index') or not hasattr(head, 'input_transform'):
        return
    indices = head.in_index if isinstance(head.in_index, (list, tuple)) else [head.in_index]
    bad = [i for i in indices if not -len(features.channels) <= i < len(features.channels)]
    if bad:
        problems.append(f'model.{key}.in_index {head.in_index} selects maps that do not exist: '
                        f'{features.source}')
        return
    selected = [features.channels[i] for i in indices]
    if head.input_transform == 'resize_concat':
        expected, got = sum(selected), head.in_channels
    elif head.input_transform == 'multiple_select':
        expected, got = selected, list(head.in_channels)
    else:
        expected, got = selected[0], head.in_channels
    if expected != got:
        problems.append(f'model.{key}.in_channels is {got} with in_index={head.in_index} but {features.source}: '
                        f'set model.{key}.in_channels={expected}')
    feature_strides = getattr(head, 'feature_strides', None)
    if feature_strides is not None and features.strides is not None:
        strides = [features.strides[i] for i in indices]
        if list(feature_strides) != strides:
            problems.append(f'model.{key}.feature_strides are {list(feature_strides)} but {features.source}')


def _check_cls_head(head: nn.Module, features: Features, problems: List[str]):
    """mmpretrain heads classify the last feature: ``head.in_channels`` is its channel count."""
    in_channels = getattr(head, 'in_channels', None)
    if isinstance(in_channels, int) and in_channels != features.channels[-1]:
        problems.append(f'model.head.in_channels is {in_channels} but {features.source} (the head takes the last '
                        f'one, {features.channels[-1]} channels): set model.head.in_channels={features.channels[-1]}')


def check_model(model: nn.Module):
    """Raise ``ModelConfigError`` listing every mismatch between our backbone, the neck and the heads of ``model``.

    Models with another backbone pass unchecked; so do the parts after a neck of a kind the checks do not know.
    """
    model = _unwrap(model)
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, VisionBackbone):
        return
    problems: List[str] = []
    features = _backbone_features(backbone)
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Sequential):
        neck = neck[0] if len(neck) == 1 else None
        features = features if neck is not None else None
    if neck is not None:
        features = _neck_features(neck, features, problems)
    if features is not None:
        for key in ('bbox_head', 'rpn_head'):
            head = getattr(model, key, None)
            if isinstance(head, nn.Module) and hasattr(head, 'prior_generator'):
                _check_dense_head(key, head, features, problems)
        if isinstance(getattr(model, 'roi_head', None), nn.Module):
            _check_roi_head(model.roi_head, features, problems)
        for key in ('decode_head', 'auxiliary_head'):
            heads = getattr(model, key, None)
            if isinstance(heads, nn.ModuleList):
                for i, head in enumerate(heads):
                    _check_decode_head(f'{key}[{i}]', head, features, problems)
            elif isinstance(heads, nn.Module):
                _check_decode_head(key, heads, features, problems)
        if _has_base(model, 'ImageClassifier') and isinstance(getattr(model, 'head', None), nn.Module):
            _check_cls_head(model.head, features, problems)
    if problems:
        raise ModelConfigError('the model config does not fit together:\n  - ' + '\n  - '.join(problems))


# mmdet-2 / mmcv-1 top-level keys that mmengine ignores, and what replaces each.
LEGACY_KEYS = {
    'optimizer': 'optim_wrapper = dict(type=\'OptimWrapper\', optimizer=dict(type=..., lr=...), '
                 'paramwise_cfg=dict(custom_keys=...))',
    'optimizer_config': 'optim_wrapper = dict(clip_grad=dict(max_norm=...)) (AMP: tools/train.py --amp)',
    'lr_config': 'param_scheduler = [dict(type=\'LinearLR\', ...), dict(type=\'MultiStepLR\', milestones=[8, 11], '
                 '...)]',
    'momentum_config': 'param_scheduler (a momentum scheduler such as CosineAnnealingMomentum)',
    'runner': 'train_cfg = dict(type=\'EpochBasedTrainLoop\', max_epochs=12) (or IterBasedTrainLoop, max_iters)',
    'total_epochs': 'train_cfg = dict(max_epochs=...)',
    'data': 'train_dataloader / val_dataloader / test_dataloader = dict(batch_size=..., num_workers=..., '
            'dataset=...)',
    'evaluation': 'val_evaluator = dict(type=\'CocoMetric\', ...) and train_cfg = dict(val_interval=...)',
    'checkpoint_config': 'default_hooks = dict(checkpoint=dict(type=\'CheckpointHook\', interval=...))',
    'log_config': 'default_hooks = dict(logger=dict(type=\'LoggerHook\', interval=...))',
    'workflow': 'train_cfg / val_cfg',
    'fp16': 'optim_wrapper = dict(type=\'AmpOptimWrapper\') (tools/train.py --amp)',
}


def _assigned_names(path: str, seen=None) -> set:
    """Top-level names assigned in ``path`` and in its local ``_base_`` files (not the ``pkg::`` upstream ones)."""
    seen = set() if seen is None else seen
    path = osp.realpath(path)
    if path in seen or not osp.isfile(path) or not path.endswith('.py'):
        return set()
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), filename=path)
    names, bases = set(), []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
                if target.id == '_base_':
                    try:
                        value = ast.literal_eval(node.value)
                    except ValueError:
                        continue
                    bases += [value] if isinstance(value, str) else list(value)
    for base in bases:
        if isinstance(base, str) and '::' not in base:
            names |= _assigned_names(osp.join(osp.dirname(path), base), seen)
    return names


def check_config_keys(cfg, path: Optional[str] = None):
    """Raise ``ModelConfigError`` for mmdet-2 style top-level keys that an mmengine runner would ignore.

    Only keys written in the config itself or in one of its local ``_base_`` files count (not those of upstream
    ``mmdet::`` bases). ``optimizer`` is also legal as a variable that ``optim_wrapper`` uses (as in mmseg's
    schedules): it is an error only when it differs from ``optim_wrapper.optimizer``.
    """
    assigned = _assigned_names(path) if path else set(cfg.keys())
    found = []
    for key, replacement in LEGACY_KEYS.items():
        if key not in cfg or key not in assigned:
            continue
        if key == 'optimizer':
            used = (cfg.get('optim_wrapper') or {}).get('optimizer')
            if cfg.optimizer == used:
                continue
            found.append(f'optimizer = {dict(cfg.optimizer)} is the mmdet-2 key; mmengine ignores it and the run '
                         f'would use optim_wrapper.optimizer = {dict(used) if used else None}. Write: {replacement}')
        else:
            found.append(f'{key}: the mmdet-2 key, ignored by mmengine. Write: {replacement}')
    if found:
        where = f' in {path}' if path else ''
        raise ModelConfigError(f'config keys of mmdet 2 / mmcv 1{where}, which mmdet 3, mmseg 1 and mmpretrain '
                               'ignore without a word:\n  - ' + '\n  - '.join(found))


@contextlib.contextmanager
def config_errors_as_exit(config_path: str):
    """In our tools: a config that does not fit together stops with its message instead of a traceback."""
    try:
        yield
    except (ModelConfigError, BackboneArgumentError) as err:
        raise SystemExit(f'error in {config_path}: {err}') from err
