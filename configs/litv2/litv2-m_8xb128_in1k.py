# LITv2-M on ImageNet-1K: the LITv2-S recipe with drop path 0.3.
_base_ = './litv2-s_8xb128_in1k.py'

model = dict(backbone=dict(arch='medium', drop_path_rate=0.3))
