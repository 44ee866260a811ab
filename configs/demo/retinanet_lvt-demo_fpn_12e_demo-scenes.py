# The RetinaNet demo (retinanet_litv2-demo_fpn_12e_demo-scenes.py) with a demo-sized LVT instead of LITv2:
# LVT at half of LVT's width (32-32-80-128), one block per stage.
_base_ = './retinanet_litv2-demo_fpn_12e_demo-scenes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch=dict(embed_dims=[32, 32, 80, 128], depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4],
                  mlp_ratios=[4, 4, 4, 4], sr_ratios=[8, 4, 2, 1]),
        out_indices=(1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[32, 80, 128]))
