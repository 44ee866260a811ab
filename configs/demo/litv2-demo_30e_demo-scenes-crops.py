# ImageNet-style classification of the generated demo scenes' 64x64 object crops (5 classes) with the demo-sized
# LITv2: its last stage, final norm, global average pooling and a linear head, as LITv2's ImageNet classifier.
_base_ = [
    '../_base_/datasets/demo_classification.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext', 'mmvit_ext.datasets'], allow_failed_imports=False)

litv2_demo = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
model = dict(
    type='ImageClassifier',
    backbone=dict(type='LITv2', arch=litv2_demo, local_ws=[0, 0, 2, 1], alpha=0.9, drop_path_rate=0.,
                  out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=5, in_channels=192,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))

max_epochs = 30
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'conv_offset.weight': dict(lr_mult=0.01)}),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True, begin=2, end=max_epochs)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1))
