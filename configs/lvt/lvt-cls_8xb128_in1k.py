# LVT ImageNet-1K classifier in the official ``lvt_cls`` form (2 class-attention layers + auxiliary token head,
# 5.52 M params) so that the official lvt_imagenet.pth.tar evaluates here (convert it with
# tools/model_converters/lvt_to_mmvit.py). Paper recipe: 8 GPUs x 128, AdamW lr 1.6e-3, wd 0.05 (none on norms,
# biases and the class token), 300 epochs, cosine to 1e-5 after 20 linear warm-up epochs from 1e-6, RandAugment
# m9 (mstd 0.5), random erasing 0.25, label smoothing 0.1, no mixup/cutmix. Not reproduced: MixToken and the
# token-labelling targets of the official run (see README). Test: bicubic resize to 233 (crop_pct 0.96), crop 224.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='LVT', arch='mobile', out_indices=(3, ), drop_path_rate=0.1),
    head=dict(
        type='LVTClassAttentionHead',
        num_classes=1000,
        in_channels=256,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))

train_dataloader = dict(batch_size=128)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=233, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(lr=1.6e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={'cls_token': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1.6e-3, by_epoch=True, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20)
]
