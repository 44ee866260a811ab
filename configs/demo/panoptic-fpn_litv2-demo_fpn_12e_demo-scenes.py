# Panoptic FPN with the demo-sized LITv2 on the generated demo scenes (5 thing + 4 stuff classes): the Mask R-CNN
# of mask-rcnn_litv2-demo_fpn_12e_demo-scenes.py plus mmdet's panoptic semantic head, narrowed to 64 channels.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/demo_panoptic.py',
    '../_base_/schedules/demo_adamw_12e.py',
]
custom_imports = dict(imports=['mmvit_ext', 'mmvit_ext.datasets'], allow_failed_imports=False)

litv2_demo = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
model = dict(
    type='PanopticFPN',
    data_preprocessor=dict(pad_seg=True, seg_pad_value=255, mask_pad_value=0, pad_mask=True),
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
    semantic_head=dict(
        type='PanopticFPNHead',
        num_things_classes=5,
        num_stuff_classes=4,
        in_channels=64,
        inner_channels=64,
        start_level=0,
        end_level=4,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        conv_cfg=None,
        loss_seg=dict(type='CrossEntropyLoss', ignore_index=255, loss_weight=0.5)),
    panoptic_fusion_head=dict(type='HeuristicFusionHead', num_things_classes=5, num_stuff_classes=4),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(score_thr=0.6, nms=dict(type='nms', iou_threshold=0.5, class_agnostic=True), max_per_img=100,
                  mask_thr_binary=0.5),
        # stuff regions under 16x16 px become void (mmdet: 64x64 px at COCO's 800x1333)
        panoptic=dict(mask_overlap=0.5, stuff_area_limit=256)))

# mmdet's panoptic configs drop NumClassCheckHook (its class count differs from the panoptic head's)
custom_hooks = []
