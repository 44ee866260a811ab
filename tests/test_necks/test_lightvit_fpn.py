"""LightViTFPN: strides 4..64 over LightViT's 3 levels, official keys, and equality with mmdet's FPN."""
import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.models.backbones import LightViT
from mmvit_ext.models.necks import LightViTFPN


def official_neck():
    """The official Mask R-CNN neck settings (reference doc §3.6)."""
    return LightViTFPN(in_channels=[64, 128, 256], out_channels=256, num_outs=5, num_extra_trans_convs=1)


def test_strides_4_to_64_on_backbone_features():
    torch.manual_seed(0)
    backbone, neck = LightViT('tiny'), official_neck()
    neck.init_weights()
    h, w = 128, 192
    outs = neck(backbone(torch.randn(1, 3, h, w)))
    assert len(outs) == 5
    assert [(h // o.shape[2], w // o.shape[3]) for o in outs] == [(s, s) for s in (4, 8, 16, 32, 64)]
    assert all(o.shape[1] == 256 for o in outs)


def test_odd_sizes():
    backbone, neck = LightViT('tiny'), official_neck()
    outs = neck(backbone(torch.randn(1, 3, 97, 130)))
    assert [tuple(o.shape[2:]) for o in outs] == [(26, 34), (13, 17), (7, 9), (4, 5), (2, 3)]


def test_official_keys_and_transposed_conv():
    neck = official_neck()
    state = neck.state_dict()
    assert state['extra_trans_convs.0.conv.weight'].shape == (256, 256, 2, 2)
    assert 'extra_trans_convs.0.conv.bias' in state and 'extra_fpn_convs.0.conv.weight' in state
    assert isinstance(neck.extra_trans_convs[0].conv, torch.nn.ConvTranspose2d)
    assert sorted({k.split('.')[0] for k in state}) == ['extra_fpn_convs', 'extra_trans_convs', 'fpn_convs',
                                                        'lateral_convs']


def test_reference_computation():
    """P2 = conv3x3(deconv2x2(fused P3 lateral)); P6 = max_pool(P5, 1, stride 2)."""
    torch.manual_seed(0)
    neck = official_neck().eval()
    feats = [torch.randn(1, c, s, s) for c, s in ((64, 8), (128, 4), (256, 2))]
    with torch.no_grad():
        outs = neck(feats)
        lat = [conv.conv(f) for conv, f in zip(neck.lateral_convs, feats)]
        lat[1] = lat[1] + F.interpolate(lat[2], size=(4, 4))
        lat[0] = lat[0] + F.interpolate(lat[1], size=(8, 8))
        p2 = neck.extra_fpn_convs[0].conv(neck.extra_trans_convs[0].conv(lat[0]))
        p3 = neck.fpn_convs[0].conv(lat[0])
        p5 = neck.fpn_convs[2].conv(lat[2])
        torch.testing.assert_close(outs[0], p2)
        torch.testing.assert_close(outs[1], p3)
        torch.testing.assert_close(outs[4], F.max_pool2d(p5, 1, stride=2))


@pytest.mark.parametrize('extra', [False, 'on_input', 'on_output'])
def test_equals_mmdet_fpn_without_transposed_convs(extra):
    from mmdet.models.necks import FPN
    torch.manual_seed(0)
    ours = LightViTFPN([64, 128, 256], 32, num_outs=5, num_extra_trans_convs=0, add_extra_convs=extra,
                       relu_before_extra_convs=True).eval()
    theirs = FPN([64, 128, 256], 32, num_outs=5, add_extra_convs=extra, relu_before_extra_convs=True).eval()
    theirs.load_state_dict(ours.state_dict())
    feats = [torch.randn(2, c, s, s + 1) for c, s in ((64, 9), (128, 5), (256, 3))]
    with torch.no_grad():
        for a, b in zip(ours(feats), theirs(feats)):
            torch.testing.assert_close(a, b)


def test_bad_configuration_raises():
    with pytest.raises(ValueError, match='num_outs'):
        LightViTFPN([64, 128, 256], 256, num_outs=3, num_extra_trans_convs=1)
    with pytest.raises(ValueError, match='add_extra_convs'):
        LightViTFPN([64, 128, 256], 256, num_outs=5, add_extra_convs='on_nothing')
    with pytest.raises(ValueError, match='input levels'):
        official_neck()([torch.randn(1, 64, 8, 8)])
