# Semantic FPN with LIT-Ti on ADE20K (ziplab/LIT segmentation/configs/lit/): FPN (256 channels, 4 levels) +
# FPNHead, 512x512 crops, 8 GPUs x 2 images, AdamW lr 1e-4 wd 1e-4, poly decay (power 0.9, min lr 1e-6) over
# 80k iterations (the official config; the paper text says 8K steps), whole-image test.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LIT',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        out_norm_indices=(),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://github.com/ziplab/LIT/releases/download/v1.0/lit_ti.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]),
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.0001),
    clip_grad=None)

param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=80000, by_epoch=False)]
