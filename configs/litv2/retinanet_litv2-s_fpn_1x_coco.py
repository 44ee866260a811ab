# RetinaNet + LITv2-S, 1x schedule on COCO (paper Sec. 5.2; official detection/configs/litv2, mmdet 2.11 tree):
# AdamW lr 1e-4, wd 1e-4, no decay on norms, 500 linear warm-up iterations, lr x0.1 at epochs 8 and 11,
# 2 images x 8 GPUs, 1333x800 single scale + flip.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

checkpoint = 'https://github.com/ziplab/LITv2/releases/download/v1.0/litv2_s.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='LITv2',
        arch='small',
        local_ws=[0, 0, 2, 1],
        alpha=0.9,
        drop_path_rate=0.2,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(in_channels=[96, 192, 384, 768], start_level=1, add_extra_convs='on_input', num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.), 'conv_offset.weight': dict(lr_mult=0.01)}))

auto_scale_lr = dict(enable=False, base_batch_size=16)
