# LIT-Ti on ImageNet-1K: the official DeiT/PVT-style recipe (ziplab/LIT classification/code_for_lit_ti): AdamW
# lr 5e-4 x 1024/512, wd 0.05, 300 epochs, 5 warm-up epochs from 1e-6, cosine to 1e-5, no grad clipping,
# label smoothing 0.1, RandAugment, Mixup 0.8 / CutMix 1.0, random erasing 0.25, repeated augmentation, drop path
# 0.1; DTM offset-conv weights at lr x 0.01; no decay on 1-D parameters and the cls token (the position embeddings
# are decayed, as officially). Classifies the normed cls token. 8 GPUs x 128 images.
_base_ = './lit-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='tiny', out_type='cls_token', drop_path_rate=0.1),
    neck=None,
    head=dict(in_channels=512))

train_dataloader = dict(sampler=dict(type='RepeatAugSampler', shuffle=True))

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'.cls_token': dict(decay_mult=0.0)}),
    clip_grad=None)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5)
]
