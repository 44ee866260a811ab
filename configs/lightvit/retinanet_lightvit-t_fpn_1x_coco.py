# LightViT-T RetinaNet, 1x schedule. Not in the official release: the Mask R-CNN recipe (AdamW, wd 0.04, the same
# no-decay keys) with RetinaNet's usual lr 1e-4. RetinaNet starts at P3, so the plain mmdet FPN over the backbone's
# strides 8/16/32 with two stride-2 convs on the last backbone map gives P3-P7 (strides 8..128).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

checkpoint = 'https://github.com/hunto/LightViT/releases/download/v0.0.1/lightvit_tiny_78.7.ckpt'
model = dict(
    backbone=dict(
        _delete_=True,
        type='LightViT',
        arch='tiny',
        out_indices=(0, 1, 2),
        drop_path_rate=0.1,
        stem_norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[64, 128, 256], start_level=0, add_extra_convs='on_input', num_outs=5))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.04),
    paramwise_cfg=dict(
        custom_keys={
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'stem.1': dict(decay_mult=0.),
            'stem.4': dict(decay_mult=0.),
            'stem.7': dict(decay_mult=0.),
            'stem.10': dict(decay_mult=0.),
            'global_token': dict(decay_mult=0.),
        }))
