# The main demo (tools/run_demo.py, `make demo`): RetinaNet with a reduced-width LITv2 trained from scratch on the
# generated demo scenes, sized to train and evaluate on 2 CPU cores in minutes.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/demo_detection.py',
    '../_base_/schedules/demo_adamw_12e.py',
]
custom_imports = dict(imports=['mmvit_ext', 'mmvit_ext.datasets'], allow_failed_imports=False)

# LITv2 at a quarter of LITv2-S's width (stage widths 24-48-96-192), one block per stage but two HiLo blocks in stage 3.
litv2_demo = dict(embed_dims=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 6])
model = dict(
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch=litv2_demo,
        local_ws=[0, 0, 2, 1],
        alpha=0.9,
        drop_path_rate=0.,
        out_indices=(1, 2, 3),
        init_cfg=None),
    neck=dict(in_channels=[48, 96, 192], out_channels=64, start_level=0, add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        num_classes=5,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        # anchors from 16 px (stride 8) up: the scenes' things are 12 to 170 px
        anchor_generator=dict(octave_base_scale=2),
        # GIoU on the decoded boxes: localises better than L1 on the deltas in a schedule this short
        reg_decoded_bbox=True,
        loss_bbox=dict(type='GIoULoss', loss_weight=2.0)))

optim_wrapper = dict(optimizer=dict(lr=2e-3))
