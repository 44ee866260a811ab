# Mask R-CNN + LITv2-B, 1x: the LITv2-S recipe, detection drop path 0.3, activation checkpointing (official).
_base_ = './mask-rcnn_litv2-s_fpn_1x_coco.py'

checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_b.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3, with_cp=True, init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
