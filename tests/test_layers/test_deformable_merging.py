"""Deformable token merging (LIT Sec. 3.3, LITv2): deformable conv + separate offset conv + norm + GELU. About 2 s."""
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import DeformConv2dPack
from mmcv.ops import deform_conv2d as mmcv_deform_conv2d
from mmengine.logging import MMLogger

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


def test_norm_cfg_builds_the_norm_under_the_checkpoint_name():
    """``norm_cfg`` goes through mmcv's build_norm_layer; the attribute stays ``norm_layer`` (same state-dict keys)."""
    bn = DeformableTokenMerging(4, 8)
    assert type(bn.norm_layer) is nn.BatchNorm2d
    sync = DeformableTokenMerging(4, 8, norm_cfg=dict(type='SyncBN'))
    assert isinstance(sync.norm_layer, nn.SyncBatchNorm)
    assert list(sync.state_dict()) == list(bn.state_dict())
    sync.load_state_dict(bn.state_dict())
    gn = DeformableTokenMerging(4, 8, norm_cfg=dict(type='GN', num_groups=2))
    assert isinstance(gn.norm_layer, nn.GroupNorm) and gn(torch.randn(1, 4, 6, 6)).shape == (1, 8, 3, 3)


class _MmcvSubclassDTM(nn.Module):
    """The layout this module had as an mmcv ``DeformConv2dPack`` subclass: its state dicts carry ``version: 2``."""

    def __init__(self, in_channels, out_channels):
        super().__init__()

        class Biased(DeformConv2dPack):
            def __init__(self):
                super().__init__(in_channels, out_channels, 2, stride=2)
                self.bias = nn.Parameter(torch.zeros(out_channels))

        self.dconv = Biased()
        self.norm_layer = nn.BatchNorm2d(out_channels)
        self.act_layer = nn.GELU()

    def forward(self, x):
        d = self.dconv
        out = mmcv_deform_conv2d(x, d.conv_offset(x), d.weight, 2, 0, 1, 1, 1, False, x.shape[0])
        return self.act_layer(self.norm_layer(out + d.bias.view(1, -1, 1, 1)))


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_checkpoints_of_the_mmcv_subclass_load_silently_with_the_same_numbers():
    """A state dict saved while DTM's conv was mmcv's ``DeformConv2dPack`` (``version: 2`` metadata) loads strictly,
    without mmcv's 'upgraded to version 2' log line on every load, and gives that module's outputs."""
    torch.manual_seed(0)
    old = _MmcvSubclassDTM(6, 10).eval()
    with torch.no_grad():
        for p in old.parameters():
            p.normal_(std=0.5)
        old.norm_layer.running_var.uniform_(0.5, 2)
    state = old.state_dict()
    assert state._metadata['dconv']['version'] == 2
    new = DeformableTokenMerging(6, 10).eval()
    handler = _Messages()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        old.load_state_dict(state)
        assert any('upgraded to version 2' in m for m in handler.messages)  # what mmcv's class logs
        handler.messages.clear()
        new.load_state_dict(state)
        assert handler.messages == []
    finally:
        logger.removeHandler(handler)
    assert list(new.state_dict()) == list(state)
    x = torch.randn(2, 6, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(new(x), old(x), atol=1e-5, rtol=1e-5)
