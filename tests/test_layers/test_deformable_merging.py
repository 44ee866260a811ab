"""Deformable token merging (LIT Sec. 3.3, LITv2): mmcv deformable conv + separate offset conv + BN + GELU."""
import torch
import torch.nn.functional as F

from mmvit_ext.models.layers import DeformableTokenMerging


def test_zero_offsets_equal_plain_strided_conv():
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(6, 10).eval()
    conv = dtm.dconv
    assert not conv.conv_offset.weight.any() and not conv.conv_offset.bias.any(), 'offset conv must start at zero'
    with torch.no_grad():
        conv.bias.normal_()
        dtm.norm_layer.running_mean.normal_()
        dtm.norm_layer.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 6, 9, 7)
    expected_conv = F.conv2d(x, conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(conv(x), expected_conv, atol=1e-5, rtol=1e-5)
    assert conv(x).shape == (2, 10, 4, 3)  # floor(9 / 2), floor(7 / 2)
    expected = F.gelu(dtm.norm_layer(expected_conv))
    torch.testing.assert_close(dtm(x), expected, atol=1e-5, rtol=1e-5)


def test_offsets_move_the_sampling_points():
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(4, 4).eval()
    x = torch.randn(1, 4, 8, 8)
    before = dtm(x)
    with torch.no_grad():
        dtm.dconv.conv_offset.bias.fill_(0.5)  # shift every tap by half a pixel down/right
    assert (dtm(x) - before).abs().max() > 1e-3


def test_gradients_reach_offset_conv_and_odd_batch():
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(8, 16).train()
    x = torch.randn(33, 8, 6, 10, requires_grad=True)  # batch not divisible by mmcv's default im2col step (32)
    out = dtm(x)
    assert out.shape == (33, 16, 3, 5)
    (out * torch.randn_like(out)).sum().backward()
    for name, param in dtm.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f'no gradient for {name}'
    assert x.grad.abs().sum() > 0


def test_bf16_autocast():
    dtm = DeformableTokenMerging(8, 16).train()
    x = torch.randn(3, 8, 7, 7, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = dtm(x)
    assert torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert torch.isfinite(dtm.dconv.conv_offset.weight.grad).all()
