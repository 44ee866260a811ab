_base_ = ['./retinanet_lightvit-t_fpn_1x_coco.py']

checkpoint = 'https://github.com/hunto/LightViT/releases/download/v0.0.1/lightvit_small_80.9.ckpt'
model = dict(
    backbone=dict(arch='small', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[96, 192, 384]))
