_base_ = ['./mask-rcnn_lightvit-t_fpn_ms-crop-3x_coco.py']

checkpoint = 'https://github.com/hunto/LightViT/releases/download/v0.0.1/lightvit_base_82.1.ckpt'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 256, 512]))
