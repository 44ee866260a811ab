# LVT ImageNet-1K classifier with the plain head of the official ``lvt(with_cls_head=True)``: LayerNorm on the
# stage-4 map, global average pooling, Linear. Same recipe as lvt-cls_8xb128_in1k.py.
_base_ = ['./lvt-cls_8xb128_in1k.py']

model = dict(
    backbone=dict(out_norm=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        _delete_=True,
        type='LinearClsHead',
        num_classes=1000,
        in_channels=256,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)))
