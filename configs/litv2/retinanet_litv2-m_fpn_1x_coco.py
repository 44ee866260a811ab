# RetinaNet + LITv2-M, 1x: the LITv2-S recipe (detection drop path 0.2).
_base_ = './retinanet_litv2-s_fpn_1x_coco.py'

checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_m.pth'
model = dict(backbone=dict(arch='medium', drop_path_rate=0.2, init_cfg=dict(checkpoint=checkpoint)))
