# LITv2-B on ImageNet-1K: the LITv2-S recipe with drop path 0.5.
_base_ = './litv2-s_8xb128_in1k.py'

model = dict(backbone=dict(arch='base', drop_path_rate=0.5), head=dict(in_channels=1024))
