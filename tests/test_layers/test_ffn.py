"""ConvFFN (LITv2 Sec. 4.2): fc1 -> 3x3 depthwise conv -> GELU -> fc2, official names and init."""
import math

import torch
import torch.nn.functional as F

from mmvit_ext.models.layers import ConvFFN


def test_convffn_matches_definition_on_non_square_map():
    torch.manual_seed(0)
    ffn = ConvFFN(8, 32).eval()
    h, w = 3, 5
    x = torch.randn(2, h * w, 8)
    hidden = F.linear(x, ffn.fc1.weight, ffn.fc1.bias)
    # Token (i, j) sits at row i, column j of the map: convolve the (B, C, H, W) image explicitly.
    image = hidden.view(2, h, w, 32).permute(0, 3, 1, 2)
    conv = F.conv2d(image, ffn.dwconv.dwconv.weight, ffn.dwconv.dwconv.bias, padding=1, groups=32)
    expected = F.linear(F.gelu(conv.flatten(2).transpose(1, 2)), ffn.fc2.weight, ffn.fc2.bias)
    torch.testing.assert_close(ffn(x, (h, w)), expected, atol=1e-6, rtol=1e-5)
    # The conv mixes neighbours: the result is not a per-token function.
    x2 = x.clone()
    x2[:, 0] += 1
    changed = (ffn(x2, (h, w)) - ffn(x, (h, w))).abs().sum(-1)[0]
    assert changed[1] > 0 and changed[w] > 0 and changed[2 * w + 4] == 0


def test_convffn_official_names_shapes_and_init():
    ffn = ConvFFN(96)
    shapes = {k: tuple(v.shape) for k, v in ffn.state_dict().items()}
    assert shapes == {'fc1.weight': (384, 96), 'fc1.bias': (384, ), 'dwconv.dwconv.weight': (384, 1, 3, 3),
                      'dwconv.dwconv.bias': (384, ), 'fc2.weight': (96, 384), 'fc2.bias': (96, )}
    # Official init: conv N(0, sqrt(2 / 9)), Linear trunc-normal(.02), zero biases.
    assert abs(ffn.dwconv.dwconv.weight.std().item() - math.sqrt(2 / 9)) < 0.05
    assert abs(ffn.fc1.weight.std().item() - 0.02) < 0.003
    assert not ffn.fc1.bias.any() and not ffn.dwconv.dwconv.bias.any()


def test_convffn_gradients_and_autocast():
    ffn = ConvFFN(16)
    x = torch.randn(3, 20, 16, requires_grad=True)
    ffn(x, (4, 5)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ffn.parameters())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = ffn(x, (5, 4))
    assert torch.isfinite(out.float()).all()
