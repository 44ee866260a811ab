# LightViT-T on ImageNet-1K (paper Table 2; official hunto/image_classification_sota
# configs/strategies/lightvit/config.yaml): 300 epochs, batch 8 x 128 = 1024.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    # The classification path keeps the global tokens to the end and returns the raw tokens (B, T + H*W, C).
    backbone=dict(type='LightViT', arch='tiny', out_type='tokens', out_indices=(2, ), drop_path_rate=0.1),
    # Final LN, Linear(C, 1280) + LN + GELU, mean over global and image tokens (official norm / neck).
    neck=dict(type='LightViTClsNeck', in_channels=256, out_channels=1280),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=1280,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.2), dict(type='CutMix', alpha=1.0)]))

# RandAugment (2 ops, m9, std 0.5), colour jitter 0.3, random erasing 0.25, bicubic random-resized crops.
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# AdamW lr 1e-3 at batch 1024, wd 0.04; no decay for norms, biases, global tokens and position tables.
optim_wrapper = dict(
    optimizer=dict(lr=1e-3, weight_decay=0.04),
    paramwise_cfg=dict(flat_decay_mult=0.0, custom_keys={'global_token': dict(decay_mult=0.0)}))
# 20 warm-up epochs from 1e-7, then cosine to 1e-6, both stepped per iteration.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20, end=300, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)
