# The paper's Panoptic FPN setting (Table 5): 3x schedule (36 epochs, steps at 24 and 33), multi-scale training
# (short side 640-800, long side <= 1333), AdamW lr 3e-4, wd 1e-4. The official config repeats the 12-epoch
# dataset 3 times (RepeatDataset); 36 plain epochs are the same schedule.
_base_ = ['./panoptic-fpn_lvt_fpn_1x_coco.py']

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True, backend_args=None),
    dict(type='RandomResize', scale=[(1333, 640), (1333, 800)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(optimizer=dict(lr=3e-4))
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs, val_interval=3)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[24, 33], gamma=0.1)
]
