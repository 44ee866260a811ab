# LightViT-T Mask R-CNN, 1x schedule (official hunto/LightViT detection/configs/mask_rcnn_lightvit_tiny_fpn_1x_coco.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

checkpoint = 'https://github.com/hunto/LightViT/releases/download/v0.0.1/lightvit_tiny_78.7.ckpt'
model = dict(
    backbone=dict(
        _delete_=True,
        type='LightViT',
        arch='tiny',  # 8 global tokens (the paper's); the official release used 512, see README
        out_indices=(0, 1, 2),
        drop_path_rate=0.1,
        stem_norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    # Strides 8/16/32 from the backbone; a 2x2 transposed conv adds the stride-4 level: P2-P6.
    neck=dict(type='LightViTFPN', in_channels=[64, 128, 256], num_extra_trans_convs=1))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.04),
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
