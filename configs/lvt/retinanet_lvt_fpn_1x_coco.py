# RetinaNet with the LVT encoder on COCO (PVT protocol; LVT released no RetinaNet model): strides 8-32 from the
# backbone, P6/P7 from the stride-32 map, AdamW lr 1e-4, wd 1e-4, 1x schedule, 8 GPUs x 2 images.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch='mobile',
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')),
    neck=dict(in_channels=[64, 160, 256], start_level=0, add_extra_convs='on_input', num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4))
