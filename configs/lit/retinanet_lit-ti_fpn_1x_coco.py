# RetinaNet 1x with LIT-Ti (ziplab/LIT detection/configs/lit/retinanet_lit_ti_fpn_1x_coco.py): FPN on the four
# stage outputs from stride 8 (start_level 1, extra convs on the input), AdamW lr 1e-4 wd 1e-4, 500-iteration linear
# warm-up, steps at epochs 8 and 11. Like the official LIT_Ti dense backbone: drop path 0.1, no output norms,
# stage embeddings resized bilinearly to each map.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LIT',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        out_norm_indices=(),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://github.com/ziplab/LIT/releases/download/v1.0/lit_ti.pth')),
    neck=dict(in_channels=[64, 128, 320, 512]))

optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.0001))
