# Semantic FPN + LITv2-M on ADE20K, 80k iterations (segmentation drop path 0.2).
_base_ = './fpn_litv2-s_8xb2-80k_ade20k-512x512.py'

checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_m.pth'
model = dict(backbone=dict(arch='medium', drop_path_rate=0.2, init_cfg=dict(checkpoint=checkpoint)))
