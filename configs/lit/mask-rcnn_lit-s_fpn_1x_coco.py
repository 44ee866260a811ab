# Mask R-CNN 1x with LIT-S (ziplab/LIT detection/configs/lit/mask_rcnn_lit_s_fpn_1x_coco.py): AdamW lr 2e-4
# wd 1e-4 without decay on norms and position tables, drop path 0.2, activation checkpointing, tables stored for
# 800x800, no norm on the stride-4 output (as the official detection backbone). Official run: apex fp16 (--amp).
_base_ = './mask-rcnn_lit-ti_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='small',
        pretrain_img_size=800,
        out_norm_indices=(1, 2, 3),
        drop_path_rate=0.2,
        with_cp=True,
        init_cfg=dict(checkpoint='https://github.com/ziplab/LIT/releases/download/v1.0/lit_s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
