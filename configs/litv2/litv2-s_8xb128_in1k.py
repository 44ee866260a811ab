# LITv2-S on ImageNet-1K (paper Sec. 5.1; official classification/configs/litv2-small.yaml): 300 epochs, AdamW
# lr 1e-3 at total batch 1024 (5e-4 x 1024 / 512), wd 0.05, cosine with 20 warm-up epochs, grad clip 5.0,
# RandAugment m9, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25, no decay on norms and biases.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='LITv2', arch='small', local_ws=[0, 0, 2, 1], alpha=0.9, drop_path_rate=0.2,
                  out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        cal_acc=False),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]))

# 8 GPUs x 128 images = 1024.
train_dataloader = dict(batch_size=128)

optim_wrapper = dict(
    clip_grad=dict(max_norm=5.0),
    # Official recipe: the DTM offset convs learn 100x slower.
    paramwise_cfg=dict(custom_keys={'conv_offset.weight': dict(lr_mult=0.01)}))
