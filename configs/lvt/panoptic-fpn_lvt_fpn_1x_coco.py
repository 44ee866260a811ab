# Panoptic FPN with the LVT encoder on COCO panoptic, as the official panoptic_fpn_lvt_fpn_1x_coco.py: the reduced
# head widths (FPN 96, RPN 96, box head fc 160, mask head 96, semantic head 96 -> 48 with GN(12)), AdamW lr 4e-4,
# wd 1e-4, 12 epochs with steps at 8 and 11 (500-iteration linear warm-up from the base schedule), 8 images per GPU.
_base_ = ['mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch='mobile',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')),
    neck=dict(in_channels=[64, 64, 160, 256], out_channels=96),
    rpn_head=dict(in_channels=96, feat_channels=96),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=96),
        bbox_head=dict(in_channels=96, fc_out_channels=160),
        mask_roi_extractor=dict(out_channels=96),
        mask_head=dict(in_channels=96, conv_out_channels=96)),
    semantic_head=dict(in_channels=96, inner_channels=48, norm_cfg=dict(type='GN', num_groups=12,
                                                                        requires_grad=True)))

train_dataloader = dict(batch_size=8)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=1e-4))
