_base_ = ['./lightvit-t_8xb128_in1k.py']

model = dict(backbone=dict(arch='small'), neck=dict(in_channels=384))
