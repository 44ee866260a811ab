# LIT-S on ImageNet-1K: the official Swin-style recipe (ziplab/LIT classification/code_for_lit_s_m_b): AdamW
# lr 5e-4 x 1024/512, wd 0.05, 300 epochs, 20 warm-up epochs, cosine to 1e-5, grad clip 5.0, label smoothing 0.1,
# RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25; DTM offset-conv weights at lr x 0.01; no decay on 1-D
# parameters and relative position tables. 8 GPUs x 128 images.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='LIT', arch='small', out_indices=(3, ), drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

train_dataloader = dict(batch_size=128)

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'conv_offset.weight': dict(lr_mult=0.01)}),
    clip_grad=dict(max_norm=5.0))
