# Mask R-CNN + LITv2-S* (paper Table 2 "*": HiLo window 4 in stage 3, faster at 1333x800; same ImageNet weights).
_base_ = './mask-rcnn_litv2-s_fpn_1x_coco.py'

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
