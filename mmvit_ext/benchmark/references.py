"""The papers' numbers that the report puts next to ours (reference doc: shared/reference/official_implementations)."""

__all__ = ['PAPER_CLASSIFICATION', 'PAPER_DENSE', 'PAPER_ATTENTION']

# Classification models (1000 classes, 224x224), keyed by the config name's first field: params (M), GFLOPs and
# the paper's throughput with its device (reference doc §1.7, §2.2, §2.7, §3.2, §3.7, §4.7).
PAPER_CLASSIFICATION = {
    'lit-ti': (19.89, 3.6, '1,294 img/s, RTX 3090 b64'),
    'lit-s': (27.97, 4.1, '1,298 img/s, RTX 3090 b64'),
    'lit-m': (49.37, 8.6, '638 img/s, RTX 3090 b64'),
    'lit-b': (87.29, 15.0, '444 img/s, RTX 3090 b64'),
    'litv2-s': (27.84, 3.7, '1,471 img/s, RTX 3090 b64'),
    'litv2-m': (48.83, 7.5, '812 img/s, RTX 3090 b64'),
    'litv2-b': (86.52, 13.2, '602 img/s, RTX 3090 b64'),
    'lightvit-t': (9.38, 0.73, '2,578 img/s, V100'),
    'lightvit-s': (19.20, 1.7, '-'),
    'lightvit-b': (35.20, 3.9, '-'),
    'lvt': (None, 0.9, '1,545 img/s, V100 (LightViT Table 3); 3.4 M backbone params'),
    'lvt-cls': (5.52, 0.9, 'official lvt_cls with class-attention layers'),
}

# Dense models, keyed by config file stem: (params M, GFLOPs, input (H, W) of the paper's count, source).
_COCO = (1280, 800)  # mmdet v2 get_flops default, used by the LITv2 / LightViT READMEs
PAPER_DENSE = {
    'retinanet_litv2-s_fpn_1x_coco': (38, 242, _COCO, 'LITv2 Table 2 (get_flops 242.39 G, 38.01 M)'),
    'retinanet_litv2-s-ws4_fpn_1x_coco': (38, 230, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-m_fpn_1x_coco': (59, 348, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-m-ws4_fpn_1x_coco': (59, 312, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-b_fpn_1x_coco': (97, 481, _COCO, 'LITv2 Table 2'),
    'retinanet_litv2-b-ws4_fpn_1x_coco': (97, 430, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-s_fpn_1x_coco': (47, 261, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-s-ws4_fpn_1x_coco': (47, 249, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-m_fpn_1x_coco': (68, 367, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-m-ws4_fpn_1x_coco': (68, 315, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-b_fpn_1x_coco': (106, 500, _COCO, 'LITv2 Table 2'),
    'mask-rcnn_litv2-b-ws4_fpn_1x_coco': (106, 449, _COCO, 'LITv2 Table 2'),
    'fpn_litv2-s_8xb2-80k_ade20k-512x512': (31, 41, (512, 512), 'LITv2 Table 3 (get_flops 41.29 G, 31.45 M)'),
    'fpn_litv2-m_8xb2-80k_ade20k-512x512': (52, 63, (512, 512), 'LITv2 Table 3'),
    'fpn_litv2-b_8xb2-80k_ade20k-512x512': (90, 93, (512, 512), 'LITv2 Table 3'),
    'retinanet_lit-ti_fpn_1x_coco': (30, None, _COCO, 'LIT README'),
    'retinanet_lit-s_fpn_1x_coco': (39, 305, _COCO, 'LITv2 Table 2 (LITv1-S)'),
    'mask-rcnn_lit-ti_fpn_1x_coco': (40, None, _COCO, 'LIT README'),
    'mask-rcnn_lit-s_fpn_1x_coco': (48, 324, _COCO, 'LITv2 Table 2 (LITv1-S)'),
    'fpn_lit-ti_8xb2-80k_ade20k-512x512': (24, None, (512, 512), 'LIT README'),
    'fpn_lit-s_8xb2-80k_ade20k-512x512': (32, 46, (512, 512), 'LITv2 Table 3 (LITv1-S)'),
    'mask-rcnn_lightvit-t_fpn_1x_coco': (28, 187, _COCO, 'LightViT README'),
    'mask-rcnn_lightvit-s_fpn_1x_coco': (38, 204, _COCO, 'LightViT README'),
    'mask-rcnn_lightvit-b_fpn_1x_coco': (54, 240, _COCO, 'LightViT README'),
    'segformer_lvt_8xb2-160k_ade20k-512x512': (3.9, 10.6, (512, 512), 'LVT Table 4'),
    'panoptic-fpn_lvt_fpn_1x_coco': (5.4, 56.4, (800, 1333), 'LVT Table 5'),
}

# HiLo paper Table IV (one layer, ViT-B setting, CPU and GPU throughput in img/s): name -> (params M, MFLOPs, CPU).
# The paper's MSA materialises the attention matrix: ``MSA explicit`` here.
PAPER_ATTENTION = {
    'MSA': (2.36, 521.4, 505), 'MSA explicit': (2.36, 521.4, 505), 'HiLo': (2.20, 298.3, 1029),
    'Window ws7': (2.36, 477.2, 631), 'SRA sr2': (4.72, 419.6, 710),
}
