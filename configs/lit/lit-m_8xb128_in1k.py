# LIT-M on ImageNet-1K: the LIT-S recipe with drop path 0.3.
_base_ = './lit-s_8xb128_in1k.py'

model = dict(backbone=dict(arch='medium', drop_path_rate=0.3))
