# COCO-style panoptic segmentation on the generated demo scenes: 5 thing and 4 stuff classes,
# mmdet's coco_panoptic.py scaled down to 256x256 images.
dataset_type = 'CocoPanopticDataset'
data_root = 'data/demo/'
metainfo = dict(
    classes=('disc', 'square', 'triangle', 'ring', 'star', 'sky', 'grass', 'water', 'wall'),
    thing_classes=('disc', 'square', 'triangle', 'ring', 'star'),
    stuff_classes=('sky', 'grass', 'water', 'wall'),
    palette=[(220, 20, 60), (255, 140, 0), (255, 215, 0), (138, 43, 226), (0, 191, 255), (135, 206, 250),
             (34, 139, 34), (0, 90, 160), (150, 60, 45)])
img_scale = (256, 256)
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', backend_args=backend_args),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    # Workers restart each epoch from seeds fixed by the epoch, so a resumed run sees the same augmentations as an
    # uninterrupted one (persistent workers would restart their random stream at the resume).
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='images/train/', seg='annotations/panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='images/val/', seg='annotations/panoptic_val/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val.json',
    seg_prefix=data_root + 'annotations/panoptic_val/',
    backend_args=backend_args)
test_evaluator = val_evaluator
