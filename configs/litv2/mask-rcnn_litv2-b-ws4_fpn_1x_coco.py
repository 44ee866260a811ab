# Mask R-CNN + LITv2-B* (HiLo window 4 in stage 3).
_base_ = './mask-rcnn_litv2-b_fpn_1x_coco.py'

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
