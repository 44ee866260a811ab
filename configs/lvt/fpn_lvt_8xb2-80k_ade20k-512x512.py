# Semantic FPN with the LVT encoder on ADE20K (PVT / LITv2 protocol; LVT released no Semantic FPN model):
# 8 GPUs x 2 images, 512x512 crops, 80k iterations, AdamW lr 1e-4, wd 1e-4, poly (power 0.9).
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch='mobile',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')),
    neck=dict(in_channels=[64, 64, 160, 256]))

train_dataloader = dict(batch_size=2, num_workers=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000))
