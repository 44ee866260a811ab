# RetinaNet 1x with LIT-S (ziplab/LIT detection/configs/lit/retinanet_lit_s_fpn_1x_coco.py): as for LIT-Ti, plus
# no weight decay on norms and position tables, drop path 0.2, activation checkpointing, no norm on the (unused)
# stride-4 output, and relative position tables stored for 800x800 (the ImageNet 27x27 / 13x13 tables are resized
# bicubically on load, then to each map, as officially). The official run used apex fp16: add --amp.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LIT',
        arch='small',
        pretrain_img_size=800,
        out_indices=(0, 1, 2, 3),
        out_norm_indices=(1, 2, 3),
        drop_path_rate=0.2,
        with_cp=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://github.com/ziplab/LIT/releases/download/v1.0/lit_s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
