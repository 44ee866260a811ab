# RetinaNet + LITv2-M* (HiLo window 4 in stage 3).
_base_ = './retinanet_litv2-m_fpn_1x_coco.py'

model = dict(backbone=dict(local_ws=[0, 0, 4, 1]))
