# Mask R-CNN with the demo-sized LITv2 (see retinanet_litv2-demo_fpn_12e_demo-scenes.py) on the generated demo
# scenes: narrow FPN / heads, fewer proposals and RoI samples, anchors from 16 px.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_instance.py',
    '../_base_/schedules/demo_adamw_12e.py',
]
custom_imports = dict(imports=['mmvit_ext', 'mmvit_ext.datasets'], allow_failed_imports=False)

litv2_demo = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
model = dict(
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch=litv2_demo,
        local_ws=[0, 0, 2, 1],
        alpha=0.9,
        drop_path_rate=0.,
        out_indices=(0, 1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[24, 48, 96, 192], out_channels=64, num_outs=5),
    rpn_head=dict(in_channels=64, feat_channels=64, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=5),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=2, in_channels=64, conv_out_channels=64, num_classes=5)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
