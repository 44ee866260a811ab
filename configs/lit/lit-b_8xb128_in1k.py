# LIT-B on ImageNet-1K: the LIT-S recipe with drop path 0.5; the official run used activation checkpointing
# (scripts/lit-b.sh --use-checkpoint).
_base_ = './lit-s_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='base', drop_path_rate=0.5, with_cp=True),
    head=dict(in_channels=1024))
