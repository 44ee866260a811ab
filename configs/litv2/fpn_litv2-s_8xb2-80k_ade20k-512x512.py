# Semantic FPN + LITv2-S on ADE20K, 80k iterations (paper Sec. 5.3; official segmentation/configs/litv2):
# AdamW lr 1e-4, wd 1e-4, poly decay (power 0.9, min lr 1e-6), 512x512 crops, 2 images x 8 GPUs = 16.
# The segmentation backbone also normalises its stage-0 output (official norm0).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

crop_size = (512, 512)
checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_s.pth'
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch='small',
        local_ws=[0, 0, 2, 1],
        alpha=0.9,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        stage0_out_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[96, 192, 384, 768], out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=2)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'conv_offset.weight': dict(lr_mult=0.01)}))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=0, end=80000, by_epoch=False)]
