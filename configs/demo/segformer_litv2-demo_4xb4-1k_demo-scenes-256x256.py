# SegFormer's all-MLP decoder on the demo-sized LITv2 (instead of MiT), on the generated demo scenes (9 classes).
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/demo_semantic.py',
    'mmseg::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext', 'mmvit_ext.datasets'], allow_failed_imports=False)

crop_size = (256, 256)
norm_cfg = dict(type='BN', requires_grad=True)
litv2_demo = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch=litv2_demo,
        local_ws=[0, 0, 2, 1],
        alpha=0.9,
        drop_path_rate=0.,
        out_indices=(0, 1, 2, 3),
        stage0_out_norm=True,
        init_cfg=None),
    decode_head=dict(in_channels=[24, 48, 96, 192], channels=64, num_classes=9, norm_cfg=norm_cfg))

max_iters = 1000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'norm': dict(decay_mult=0.), 'head': dict(lr_mult=10.), 'conv_offset.weight': dict(lr_mult=0.01)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0., power=1.0, begin=50, end=max_iters, by_epoch=False)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    # a checkpoint every 100 iterations (less than one epoch of the demo scenes), saved atomically
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook'))
