# The Semantic FPN demo (fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py) with a demo-sized LightViT instead of LITv2:
# LightViT at half of LightViT-T's width (32-64-128), 4 global tokens.
_base_ = './fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='LightViT',
        arch=dict(embed_dims=[32, 64, 128], depths=[1, 2, 2], num_heads=[1, 2, 4], mlp_ratios=[4, 4, 4],
                  num_global_tokens=4),
        drop_path_rate=0.,
        out_indices=(0, 1, 2),
        init_cfg=None),
    # strides 8/16/32 from the backbone, a transposed conv adds stride 4
    neck=dict(_delete_=True, type='LightViTFPN', in_channels=[32, 64, 128], out_channels=64, num_outs=4,
              num_extra_trans_convs=1))
