# Mask R-CNN with the LVT encoder on COCO (PVT protocol; LVT released no Mask R-CNN model): strides 4-32 into a
# standard FPN, AdamW lr 1e-4, wd 1e-4, 1x schedule, 8 GPUs x 2 images.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch='mobile',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')),
    neck=dict(in_channels=[64, 64, 160, 256]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4))
