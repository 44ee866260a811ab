# Semantic FPN + LITv2-B on ADE20K, 80k iterations (segmentation drop path 0.3).
_base_ = './fpn_litv2-s_8xb2-80k_ade20k-512x512.py'

checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_b.pth'
model = dict(
    backbone=dict(arch='base', drop_path_rate=0.3, init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 256, 512, 1024]))
