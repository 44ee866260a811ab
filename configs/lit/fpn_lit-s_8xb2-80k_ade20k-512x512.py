# Semantic FPN with LIT-S on ADE20K: the LIT-Ti recipe with the official LIT-S segmentation backbone: output norms
# on all four stages, drop path 0.2, activation checkpointing, relative position tables stored for 512x512.
_base_ = './fpn_lit-ti_8xb2-80k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='small',
        pretrain_img_size=512,
        out_norm_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        with_cp=True,
        init_cfg=dict(checkpoint='https://github.com/ziplab/LIT/releases/download/v1.0/lit_s.pth')),
    neck=dict(in_channels=[96, 192, 384, 768]))
