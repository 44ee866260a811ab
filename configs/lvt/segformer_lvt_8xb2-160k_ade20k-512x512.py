# SegFormer (MLP decoder) with the LVT encoder on ADE20K, as the official segformer.lvt.512x512.ade.160k.py:
# AdamW lr 6e-5, wd 0.01, head lr x10, no decay on norms, linear warm-up 1500 iters, poly (power 1.0) to 160k,
# 8 GPUs x 2 images, 512x512 crops, evaluation every 16k iterations (all inherited from the MiT-B0 config).
_base_ = ['mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py']

custom_imports = dict(imports=['mmvit_ext'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='LVT',
        arch='mobile',
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='lvt_imagenet_pretrained.pth.tar')),
    decode_head=dict(in_channels=[64, 64, 160, 256], channels=256))
