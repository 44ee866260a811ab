# The demo detectors' schedule: AdamW with a 100-iteration warm-up and a cosine decay over 12 epochs, one
# evaluation at the end, a checkpoint every epoch (saved atomically, the last one kept: a killed run resumes with
# --resume and loses at most one epoch), a fixed seed. A config that trains longer overrides train_cfg,
# param_scheduler and default_hooks.checkpoint together. Includes mmdet's default runtime, whose hooks it adjusts.
_base_ = ['mmdet::_base_/default_runtime.py']

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.05, by_epoch=True, begin=0, end=max_epochs)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    # As the official LIT / LITv2 recipes: the DTM offset convs learn 100x slower (harmless without DTM).
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.), 'conv_offset.weight': dict(lr_mult=0.01)}),
    clip_grad=dict(max_norm=10., norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1))
log_processor = dict(window_size=10)
randomness = dict(seed=0)
