# The RetinaNet demo (retinanet_litv2-demo_fpn_12e_demo-scenes.py) with a demo-sized LIT instead of LITv2:
# LIT at a quarter of LIT-S's width (24-48-96-192), one block per stage but two MSA blocks in stage 3.
_base_ = './retinanet_litv2-demo_fpn_12e_demo-scenes.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LIT',
        arch=dict(embed_dims=[24, 48, 96, 192], depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6],
                  mlp_ratios=[4, 4, 4, 4], pos_embed='relative', norm_eps=1e-5),
        pretrain_img_size=256,
        drop_path_rate=0.,
        out_indices=(1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[48, 96, 192]))
