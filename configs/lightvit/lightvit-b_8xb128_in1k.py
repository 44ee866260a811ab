_base_ = ['./lightvit-t_8xb128_in1k.py']

# LightViT-B: drop path 0.3 (paper Table 2); the official run used mixed precision (train with --amp).
model = dict(backbone=dict(arch='base', drop_path_rate=0.3), neck=dict(in_channels=512))
