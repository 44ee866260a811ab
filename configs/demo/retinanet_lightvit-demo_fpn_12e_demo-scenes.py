# The RetinaNet demo (retinanet_litv2-demo_fpn_12e_demo-scenes.py) with a demo-sized LightViT instead of LITv2:
# LightViT at half of LightViT-T's width (32-64-128), 4 global tokens.
_base_ = './retinanet_litv2-demo_fpn_12e_demo-scenes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LightViT',
        arch=dict(embed_dims=[32, 64, 128], depths=[1, 2, 2], num_heads=[1, 2, 4], mlp_ratios=[4, 4, 4],
                  num_global_tokens=4),
        drop_path_rate=0.,
        out_indices=(0, 1, 2),
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128]))
