"""Build-time checks (``mmvit_ext.model_checks``): models whose parts do not fit together and mmdet-2 config keys
stop with a message that names the config keys and both numbers; the shipped configs pass (they are checked by
``run_config_smoke`` in tests/test_configs). Models are the small demo configs, built without training (~0.3 s
each); the tool tests run tools/train.py's main in this process until it stops, before any data is read."""
import importlib.util
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmvit_ext  # noqa: F401
from mmvit_ext.engine import drop_pretrained
from mmvit_ext.model_checks import ModelConfigError, check_config_keys, check_model
from mmvit_ext.models.backbones import LightViT, LIT, LITv2, LVT

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
TINY_LITV2 = dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 2])


def build(config, **options):
    cfg = Config.fromfile(osp.join(DEMO, config) if not osp.isabs(config) else config)
    cfg.merge_from_dict(options)
    init_default_scope(cfg.default_scope)
    drop_pretrained(cfg.model)
    return MODELS.build(cfg.model)


def problems(model):
    with pytest.raises(ModelConfigError) as info:
        check_model(model)
    return str(info.value)


@pytest.mark.parametrize('backbone', [
    LITv2(TINY_LITV2, out_indices=(1, 3)),
    LIT(dict(embed_dims=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2],
             pos_embed='relative', norm_eps=1e-5), out_indices=(0, 2)),
    LightViT(dict(embed_dims=[8, 16, 24], depths=[1, 1, 1], num_heads=[1, 1, 2], mlp_ratios=[2, 2, 2],
                  num_global_tokens=2), out_indices=(0, 1, 2)),
    LVT(dict(embed_dims=[8, 8, 16, 24], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], mlp_ratios=[2, 2, 2, 2],
             sr_ratios=[8, 4, 2, 1]), out_indices=(1, 2, 3)),
], ids=['LITv2', 'LIT', 'LightViT', 'LVT'])
def test_declared_channels_and_strides_are_the_real_ones(backbone):
    import torch
    h, w = 96, 128
    outs = backbone.eval()(torch.randn(1, 3, h, w))
    assert [o.shape[1] for o in outs] == list(backbone.out_channels)
    assert [round(w / o.shape[3]) for o in outs] == list(backbone.out_strides)


README_RETINANET = '''
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='LITv2', arch={arch}, out_indices={out_indices}),
    neck=dict(in_channels={in_channels}, out_channels=16),
    bbox_head=dict(in_channels=16, feat_channels=16, stacked_convs=1))
'''


def test_misanchored_retinanet_of_the_old_readme(tmp_path):
    """``out_indices=(1, 2, 3)`` with the base's ``start_level=1``: FPN levels at strides 16-256, anchors at 8-128."""
    config = tmp_path / 'retinanet.py'
    config.write_text(README_RETINANET.format(arch=TINY_LITV2, out_indices=(1, 2, 3), in_channels=[16, 32, 64]))
    message = problems(build(str(config)))
    assert 'model.bbox_head.anchor_generator.strides are [8, 16, 32, 64, 128]' in message
    assert 'start_level=1' in message and '[16, 32, 64, 128, 256]' in message

    config.write_text(README_RETINANET.format(arch=TINY_LITV2, out_indices=(0, 1, 2, 3),
                                              in_channels=[8, 16, 32, 64]))
    check_model(build(str(config)))


def test_wrong_neck_in_channels_names_both_lists():
    model = build('retinanet_litv2-demo_fpn_12e_demo-scenes.py', model=dict(neck=dict(in_channels=[48, 96, 190])))
    message = problems(model)
    assert 'model.neck.in_channels is [48, 96, 190]' in message
    assert 'channels [48, 96, 192]' in message and 'set model.neck.in_channels=[48, 96, 192]' in message


def test_dense_head_channels_and_roi_strides():
    model = build('retinanet_litv2-demo_fpn_12e_demo-scenes.py', model=dict(bbox_head=dict(in_channels=32)))
    assert 'model.bbox_head.in_channels is 32' in problems(model)
    model = build('mask-rcnn_litv2-demo_fpn_12e_demo-scenes.py',
                  model=dict(roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64]))))
    message = problems(model)
    assert 'model.roi_head.bbox_roi_extractor.featmap_strides are [8, 16, 32, 64]' in message


def test_lightvit_fpn_levels_against_rpn_anchors():
    """LightViTFPN makes its stride-4 level with a transposed conv; without it the RPN anchors are one level off."""
    check_model(build('mask-rcnn_lightvit-demo_fpn_12e_demo-scenes.py'))
    model = build('mask-rcnn_lightvit-demo_fpn_12e_demo-scenes.py', model=dict(neck=dict(num_extra_trans_convs=0)))
    message = problems(model)
    assert 'model.rpn_head.anchor_generator.strides are [4, 8, 16, 32, 64]' in message
    assert 'strides [8, 16, 32, 64, 128]' in message


def test_segmentation_heads():
    model = build('segformer_lvt-demo_4xb4-1k_demo-scenes-256x256.py',
                  model=dict(decode_head=dict(in_channels=[32, 32, 80, 64])))
    message = problems(model)
    assert 'model.decode_head.in_channels is [32, 32, 80, 64]' in message
    assert 'set model.decode_head.in_channels=[32, 32, 80, 128]' in message
    model = build('fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py',
                  model=dict(decode_head=dict(feature_strides=[8, 16, 32, 64])))
    assert 'model.decode_head.feature_strides are [8, 16, 32, 64]' in problems(model)


def test_classifier_heads():
    model = build('litv2-demo_30e_demo-scenes-crops.py', model=dict(head=dict(in_channels=96)))
    message = problems(model)
    assert 'model.head.in_channels is 96' in message and 'set model.head.in_channels=192' in message
    lightvit = osp.join(REPO, 'configs', 'lightvit', 'lightvit-t_8xb128_in1k.py')  # LightViTClsNeck (1280)
    check_model(build(lightvit))
    message = problems(build(lightvit, model=dict(neck=dict(in_channels=192))))
    assert 'model.neck.in_channels is 192' in message and 'set model.neck.in_channels=256' in message
    assert 'model.head.in_channels is 1000' in problems(build(lightvit, model=dict(head=dict(in_channels=1000))))


MMDET2_CONFIG = '''
_base_ = ['{base}']
optimizer = dict(type='AdamW', lr=0.0001, weight_decay=0.0001, paramwise_cfg=dict({{'norm': dict(decay_mult=0.)}}))
lr_config = dict(step=[8, 11])
runner = dict(type='EpochBasedRunnerAmp', max_epochs=12)
'''


def test_mmdet2_keys_stop_with_their_replacement(tmp_path):
    config = tmp_path / 'official_style.py'
    config.write_text(MMDET2_CONFIG.format(base=osp.join(DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py')))
    with pytest.raises(ModelConfigError) as info:
        check_config_keys(Config.fromfile(str(config)), str(config))
    message = str(info.value)
    assert "optimizer = {'type': 'AdamW'" in message and 'would use optim_wrapper.optimizer' in message
    assert 'lr_config' in message and 'param_scheduler' in message
    assert 'runner' in message and 'train_cfg' in message


def test_optimizer_as_a_variable_of_optim_wrapper_is_fine(tmp_path):
    """mmseg's schedules define ``optimizer`` and use it in ``optim_wrapper``: that is not the mmdet-2 key."""
    config = tmp_path / 'mmseg_style.py'
    config.write_text(f"_base_ = ['{osp.join(DEMO, 'fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py')}']\n"
                      "optimizer = dict(type='AdamW', lr=1e-4)\n"
                      "optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=optimizer)\n")
    check_config_keys(Config.fromfile(str(config)), str(config))
    # an mmseg base's optimizer variable, overridden by optim_wrapper in the config: not written here either
    check_config_keys(Config.fromfile(osp.join(REPO, 'configs/litv2/fpn_litv2-s_8xb2-80k_ade20k-512x512.py')),
                      osp.join(REPO, 'configs/litv2/fpn_litv2-s_8xb2-80k_ade20k-512x512.py'))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'mmvit_tools_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_train(monkeypatch):
    """``run_train(*argv)``: tools/train.py's main in this process, returning the message it stops with. What the
    tool changes process-wide (mmengine's checkpoint loaders and its log function) is restored afterwards."""
    import mmengine.runner.checkpoint as mmengine_checkpoint
    monkeypatch.setattr(mmengine_checkpoint.CheckpointLoader, '_schemes',
                        dict(mmengine_checkpoint.CheckpointLoader._schemes))
    monkeypatch.setattr(mmengine_checkpoint, 'print_log', mmengine_checkpoint.print_log)

    def run(*argv):
        with pytest.raises(SystemExit) as info:
            load_tool('train').main(list(argv))
        return str(info.value)

    return run


def test_train_tool_stops_on_mmdet2_keys(run_train, tmp_path):
    config = tmp_path / 'official_style.py'
    config.write_text(MMDET2_CONFIG.format(base=osp.join(DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py')))
    message = run_train(str(config), '--work-dir', str(tmp_path / 'work'))
    assert message.startswith(f'error in {config}') and 'optim_wrapper' in message


def test_train_tool_stops_on_wrong_neck_channels(run_train, tmp_path):
    message = run_train(osp.join(DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py'), '--work-dir',
                        str(tmp_path / 'work'), '--cfg-options', 'model.neck.in_channels=[48,96,190]')
    assert 'model.neck.in_channels is [48, 96, 190]' in message
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_amp_without_a_gpu_fails_at_argument_parsing(monkeypatch, capsys):
    train = load_tool('train')
    for name in ('is_cuda_available', 'is_npu_available', 'is_mlu_available', 'is_musa_available'):
        monkeypatch.setattr(train, name, lambda: False)
    with pytest.raises(SystemExit) as info:
        train.parse_args([osp.join(DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py'), '--amp'])
    assert info.value.code == 2 and '--amp needs a GPU' in capsys.readouterr().err
