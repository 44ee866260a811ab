"""LVT ops against references written from the paper's definitions and the official data flow (reference doc §4.3)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmvit_ext.models.layers import (AtrousSelfAttention, ConvolutionalSelfAttention, LVTOverlapPatchEmbed,
                                     RecursiveAtrousSelfAttention)


def _randomise(module: nn.Module, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module.eval()


def csa_loop_reference(m: ConvolutionalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Eq. (4) window by window: y_i = sum_j a_{i->j} W_{i->j} x_j in 3x3 windows centred every 2 pixels.

    The attention Linear's output index is head * 81 + target_tap * 9 + source_tap (official layout); window
    outputs outside the map are dropped, overlapping ones summed.
    """
    b, height, width, c = x.shape
    heads, hd = m.num_heads, c // m.num_heads
    h, w = -(-height // 2), -(-width // 2)
    y = torch.zeros_like(x)
    for n in range(b):
        for py in range(h):
            for px in range(w):
                pooled = x[n, 2 * py:2 * py + 2, 2 * px:2 * px + 2].mean(dim=(0, 1))
                logits = m.attn_weights(pooled).view(heads, 9, 9) * hd**-0.5
                alpha = logits.softmax(dim=-1)
                sources = []
                for tap in range(9):
                    iy, ix = 2 * py - 1 + tap // 3, 2 * px - 1 + tap % 3
                    inside = 0 <= iy < height and 0 <= ix < width
                    sources.append(m.tap_proj[tap] @ x[n, iy, ix] if inside else x.new_zeros(c))
                values = torch.stack(sources)  # (source tap, C)
                for target in range(9):
                    oy, ox = 2 * py - 1 + target // 3, 2 * px - 1 + target % 3
                    if not (0 <= oy < height and 0 <= ox < width):
                        continue
                    for head in range(heads):
                        part = slice(head * hd, (head + 1) * hd)
                        y[n, oy, ox, part] += alpha[head, target] @ values[:, part]
    return m.proj(y)


def csa_official_reference(m: ConvolutionalSelfAttention, x: torch.Tensor, grouped_weight: torch.Tensor):
    """The official flow with the official parameter layout: nn.Unfold -> grouped 1x1 conv (9 groups) on
    (B*hw, 9C, 1, 1) -> attention -> F.fold. ``grouped_weight``: the official ``attn.weight.weight`` (9C, C, 1, 1)."""
    b, height, width, c = x.shape
    heads, hd = m.num_heads, c // m.num_heads
    pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), 2, 2, ceil_mode=True).permute(0, 2, 3, 1)
    h, w = pooled.shape[1:3]
    attn = m.attn_weights(pooled).reshape(b, h * w, heads, 9, 9).permute(0, 2, 1, 3, 4)
    attn = (attn * hd**-0.5).softmax(dim=-1)
    cols = nn.Unfold(3, padding=1, stride=2)(x.permute(0, 3, 1, 2))  # (B, C*9, hw), channel-major
    cols = cols.reshape(b, c, 9, h * w).permute(0, 3, 2, 1).reshape(b * h * w, 9 * c, 1, 1)
    values = F.conv2d(cols, grouped_weight, groups=9)
    values = values.reshape(b, h * w, 9, heads, hd).permute(0, 3, 1, 2, 4)
    out = (attn @ values).permute(0, 1, 4, 3, 2).reshape(b, c * 9, h * w)
    out = F.fold(out, (height, width), 3, padding=1, stride=2)
    return m.proj(out.permute(0, 2, 3, 1))


@pytest.mark.parametrize('hw', [(5, 7), (4, 6), (1, 1), (2, 3)])
def test_csa_matches_window_loop_reference(hw):
    m = _randomise(ConvolutionalSelfAttention(8, 2))
    x = torch.randn(2, *hw, 8)
    with torch.no_grad():
        torch.testing.assert_close(m(x), csa_loop_reference(m, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('hw', [(14, 14), (13, 10)])
def test_csa_matches_official_unfold_grouped_conv_fold(hw):
    m = _randomise(ConvolutionalSelfAttention(64, 2))
    # Official layout: attn.weight.weight[g*C:(g+1)*C, :, 0, 0] is the (out, in) matrix of tap g.
    grouped_weight = m.tap_proj.detach().reshape(9 * 64, 64, 1, 1)
    x = torch.randn(2, *hw, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), csa_official_reference(m, x, grouped_weight), atol=1e-5, rtol=1e-5)


def test_csa_gradients_match_the_official_flow():
    """The fast form's backward (strided tap gather, source-axis softmax, in-place overlap-add) equals autograd
    through the official unfold -> grouped conv -> fold flow, for the input and every parameter."""
    m = _randomise(ConvolutionalSelfAttention(16, 2)).train()
    x = torch.randn(2, 7, 6, 16, requires_grad=True)
    weight = torch.randn(2, 7, 6, 16)
    fast = torch.autograd.grad((m(x) * weight).sum(), [x] + list(m.parameters()))
    grouped = m.tap_proj.reshape(9 * 16, 16, 1, 1)  # the official layout, a view of the same parameter
    slow = torch.autograd.grad((csa_official_reference(m, x, grouped) * weight).sum(), [x] + list(m.parameters()))
    for name, a, b in zip(['x'] + [n for n, _ in m.named_parameters()], fast, slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)


def test_csa_output_size_and_gradients():
    m = ConvolutionalSelfAttention(16, 2).train()
    x = torch.randn(1, 9, 11, 16, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    with pytest.raises(ValueError, match='divisible'):
        ConvolutionalSelfAttention(10, 3)


def asa_reference(m: AtrousSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Eq. (5)-(6) with explicit softmax attention: Q = sum_r SiLU(DWConv_r(x W_q)), K, V from the (reduced) map."""
    b, h, w, c = x.shape
    heads, hd = m.num_heads, c // m.num_heads
    dw = nn.Conv2d(c, c, 3, groups=c, bias=False)
    dw.weight = m.atrous_kernel
    q = m.q(x).permute(0, 3, 1, 2)
    query = 0
    for d in m.dilations:
        dw.dilation, dw.padding = (d, d), (d, d)
        query = query + F.silu(dw(q))
    query = query.flatten(2).transpose(1, 2)  # (B, HW, C)
    src = x
    if m.sr_ratio > 1:
        src = m.norm(m.sr(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
    kv = m.kv(src.flatten(1, 2))
    k, v = kv[..., :c], kv[..., c:]
    outs = []
    for head in range(heads):
        part = slice(head * hd, (head + 1) * hd)
        attn = (query[..., part] @ k[..., part].transpose(1, 2) * hd**-0.5).softmax(dim=-1)
        outs.append(attn @ v[..., part])
    return m.proj(torch.cat(outs, dim=-1).view(b, h, w, c))


@pytest.mark.parametrize('sr_ratio,hw', [(1, (5, 6)), (2, (6, 7)), (4, (9, 8))])
def test_asa_matches_reference(sr_ratio, hw):
    m = _randomise(AtrousSelfAttention(16, 2, sr_ratio=sr_ratio))
    x = torch.randn(2, *hw, 16)
    with torch.no_grad():
        torch.testing.assert_close(m(x), asa_reference(m, x), atol=1e-5, rtol=1e-4)


def test_asa_single_dilation_query_is_silu_depthwise_conv():
    m = _randomise(AtrousSelfAttention(8, 2, dilations=(1, )))
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    conv.weight = m.atrous_kernel
    q = torch.randn(2, 5, 7, 8)
    with torch.no_grad():
        expected = F.silu(conv(q.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        torch.testing.assert_close(m.atrous_query(q), expected)


def test_asa_pads_maps_smaller_than_the_reduction():
    m = AtrousSelfAttention(8, 2, sr_ratio=4).eval()
    x = torch.randn(1, 2, 3, 8)
    assert m(x).shape == x.shape
    assert torch.isfinite(m(x)).all()


def test_rasa_one_recursion_is_one_asa():
    asa = _randomise(AtrousSelfAttention(16, 2, sr_ratio=2))
    rasa = RecursiveAtrousSelfAttention(16, 2, num_recursions=1, sr_ratio=2).eval()
    rasa.load_state_dict(asa.state_dict())
    x = torch.randn(2, 6, 8, 16)
    with torch.no_grad():
        torch.testing.assert_close(rasa(x), asa(x))


@pytest.mark.parametrize('num_recursions', [2, 3])
def test_rasa_recursion_shares_weights(num_recursions):
    asa = _randomise(AtrousSelfAttention(16, 2, sr_ratio=2))
    rasa = RecursiveAtrousSelfAttention(16, 2, num_recursions=num_recursions, sr_ratio=2).eval()
    rasa.load_state_dict(asa.state_dict())
    assert set(rasa.state_dict()) == set(asa.state_dict())
    x = torch.randn(1, 6, 8, 16)
    with torch.no_grad():
        y, hidden = F.silu(asa(x)), x  # official: x_in = x; y = SiLU(A(x)); repeat: x_in = y + x_in; y = SiLU(A(x_in))
        for _ in range(num_recursions - 1):
            hidden = y + hidden
            y = F.silu(asa(hidden))
        torch.testing.assert_close(rasa(x), y)
    if num_recursions == 2:
        with torch.no_grad():
            torch.testing.assert_close(rasa(x), F.silu(asa(F.silu(asa(x)) + x)))


def test_rasa_in_place_ops_keep_input_and_gradients():
    """RASA's in-place SiLU / sums leave the input untouched and give the gradients of the out-of-place
    recursion (written here with the reference ASA)."""
    rasa = _randomise(RecursiveAtrousSelfAttention(16, 2, num_recursions=2, sr_ratio=2)).train()
    x = torch.randn(2, 6, 7, 16, requires_grad=True)
    before = x.detach().clone()
    weight = torch.randn(2, 6, 7, 16)
    fast = torch.autograd.grad((rasa(x) * weight).sum(), [x] + list(rasa.parameters()))
    assert torch.equal(x.detach(), before)
    reference = F.silu(asa_reference(rasa, F.silu(asa_reference(rasa, x)) + x))
    slow = torch.autograd.grad((reference * weight).sum(), [x] + list(rasa.parameters()))
    for name, a, b in zip(['x'] + [n for n, _ in rasa.named_parameters()], fast, slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)


def test_overlap_patch_embed_sizes_and_channel_check():
    embed = LVTOverlapPatchEmbed(3, 8, patch_size=7, stride=4)
    for h, w in [(97, 130), (225, 333), (4, 5), (1, 1)]:
        assert embed(torch.randn(1, 3, h, w)).shape == (1, -(-h // 4), -(-w // 4), 8)
    with pytest.raises(ValueError, match='input channels'):
        embed(torch.randn(1, 4, 16, 16))
