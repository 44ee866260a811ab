"""HiLo attention against a straightforward computation from its definition (LITv2 Sec. 3.2, official dense HiLo)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.models.layers import HiLoAttention


def reference_hilo(attn: HiLoAttention, x: torch.Tensor, hw) -> torch.Tensor:
    """HiLo computed the slow, obvious way: zero-pad the map to a multiple of ws, loop over every window, softmax
    attention per head, project each branch, crop, concatenate Hi-Fi first."""
    b, n, c = x.shape
    h, w = hw
    ws, hd, scale = attn.window_size, attn.head_dim, attn.scale
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
    padded = torch.zeros(b, hp, wp, c)
    padded[:, :h, :w] = x.view(b, h, w, c)

    def attention(q, k, v):  # (B, L, heads, hd), (B, S, heads, hd) -> (B, L, heads * hd)
        weights = torch.softmax(torch.einsum('blnd,bsnd->bnls', q, k) * scale, dim=-1)
        return torch.einsum('bnls,bsnd->blnd', weights, v).flatten(2)

    outs = []
    if attn.h_heads:
        qkv = F.linear(padded, attn.h_qkv.weight, attn.h_qkv.bias).view(b, hp, wp, 3, attn.h_heads, hd)
        hifi = torch.zeros(b, hp, wp, attn.h_dim)
        for i in range(0, hp, ws):
            for j in range(0, wp, ws):
                window = qkv[:, i:i + ws, j:j + ws].reshape(b, ws * ws, 3, attn.h_heads, hd)
                hifi[:, i:i + ws, j:j + ws] = attention(*window.unbind(2)).view(b, ws, ws, attn.h_dim)
        outs.append(F.linear(hifi, attn.h_proj.weight, attn.h_proj.bias)[:, :h, :w])
    if attn.l_heads:
        q = F.linear(padded, attn.l_q.weight, attn.l_q.bias).view(b, hp * wp, attn.l_heads, hd)
        pooled = torch.stack([padded[:, i:i + ws, j:j + ws].mean(dim=(1, 2))
                              for i in range(0, hp, ws) for j in range(0, wp, ws)], dim=1)
        k, v = F.linear(pooled, attn.l_kv.weight, attn.l_kv.bias).view(b, -1, 2, attn.l_heads, hd).unbind(2)
        lofi = attention(q, k, v).view(b, hp, wp, attn.l_dim)
        outs.append(F.linear(lofi, attn.l_proj.weight, attn.l_proj.bias)[:, :h, :w])
    return torch.cat(outs, dim=-1).reshape(b, n, c)


@pytest.mark.parametrize('h, w, ws, alpha, heads', [
    (8, 8, 2, 0.9, 4),    # divisible, 3 Lo-Fi + 1 Hi-Fi heads
    (7, 9, 2, 0.5, 4),    # odd sizes: padding on both sides
    (5, 11, 3, 0.5, 6),   # ws 3, not dividing either side
    (9, 6, 4, 0.75, 4),   # ws 4 (the "*" detection variants)
    (1, 3, 2, 0.5, 2),    # map smaller than a window
    (7, 5, 2, 0.0, 4),    # alpha 0: Hi-Fi only
    (6, 7, 2, 1.0, 4),    # alpha 1: Lo-Fi only
    (6, 7, 1, 0.9, 4),    # ws 1: global MSA
])
def test_hilo_matches_reference(h, w, ws, alpha, heads):
    torch.manual_seed(0)
    attn = HiLoAttention(16 * heads, heads, window_size=ws, alpha=alpha).eval()
    x = torch.randn(2, h * w, 16 * heads)
    with torch.no_grad():
        out = attn(x, (h, w))
        expected = reference_hilo(attn, x, (h, w))
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_head_split_and_parameters():
    # Official split for 12 heads (README alpha study): Lo-Fi heads = floor(12 * alpha).
    for alpha, lofi in [(0, 0), (.2, 2), (.4, 4), (.5, 6), (.7, 8), (.9, 10), (1, 12)]:
        attn = HiLoAttention(384, 12, window_size=2, alpha=alpha)
        assert (attn.l_heads, attn.h_heads) == (lofi, 12 - lofi)
        names = {k.split('.')[0] for k in attn.state_dict()}
        expected = ({'l_q', 'l_kv', 'l_proj'} if lofi else set()) | ({'h_qkv', 'h_proj'} if lofi < 12 else set())
        assert names == expected
    # LITv2-S stage 3 (official shapes, reference doc 2.5) and stage 4 (ws 1: all heads global, no Hi-Fi).
    shapes = {k: tuple(v.shape) for k, v in HiLoAttention(384, 12, 2, 0.9).state_dict().items()}
    assert shapes == {'l_q.weight': (320, 384), 'l_q.bias': (320, ), 'l_kv.weight': (640, 384),
                      'l_kv.bias': (640, ), 'l_proj.weight': (320, 320), 'l_proj.bias': (320, ),
                      'h_qkv.weight': (192, 384), 'h_qkv.bias': (192, ), 'h_proj.weight': (64, 64),
                      'h_proj.bias': (64, )}
    global_attn = HiLoAttention(768, 24, 1, 0.9)
    assert (global_attn.l_heads, global_attn.h_heads) == (24, 0)
    assert not hasattr(global_attn, 'h_qkv')


def test_ws1_is_plain_multihead_attention():
    torch.manual_seed(0)
    attn = HiLoAttention(32, 4, window_size=1).eval()
    x = torch.randn(2, 15, 32)
    q = attn.l_q(x).view(2, 15, 4, 8).transpose(1, 2)
    k, v = attn.l_kv(x).view(2, 15, 2, 4, 8).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(8), dim=-1)
    expected = attn.l_proj((weights @ v).transpose(1, 2).reshape(2, 15, 32))
    torch.testing.assert_close(attn(x, (3, 5)), expected, atol=1e-5, rtol=1e-5)


def test_gradients_autocast_and_errors():
    attn = HiLoAttention(64, 4, window_size=2, alpha=0.5)
    x = torch.randn(2, 35, 64, requires_grad=True)
    attn(x, (5, 7)).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attn.parameters())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x, (5, 7))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    with pytest.raises(ValueError, match='do not form'):
        attn(x, (6, 6))
    with pytest.raises(ValueError, match='not divisible'):
        HiLoAttention(30, 4)
    with pytest.raises(ValueError, match='alpha'):
        HiLoAttention(32, 4, alpha=1.5)


@pytest.mark.parametrize('h, w', [(8, 8), (7, 9)])
def test_inference_path_equals_autograd_path(h, w):
    """Inference runs the projections as oneDNN linears (``layers.onednn``); with autograd on they run as F.linear:
    the same numbers."""
    torch.manual_seed(0)
    attn = HiLoAttention(64, 4, window_size=2, alpha=0.75).eval()
    x = torch.randn(2, h * w, 64)
    with torch.no_grad():
        fast = attn(x, (h, w))
    slow = attn(x.requires_grad_(), (h, w))
    assert slow.requires_grad and fast.is_contiguous()
    torch.testing.assert_close(fast, slow.detach(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(fast, reference_hilo(attn, x.detach(), (h, w)), atol=1e-5, rtol=1e-5)

