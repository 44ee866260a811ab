"""RelPosMultiheadAttention / GridRelativePositionBias / GridPositionEmbedding against their definitions."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.models.layers.attention import (GridPositionEmbedding, GridRelativePositionBias,
                                               RelPosMultiheadAttention, relative_offsets,
                                               resize_position_embedding, resize_relative_position_table)


def reference_bias(table: torch.Tensor, table_hw, hw) -> torch.Tensor:
    """B[h, p, q] = T[(i_p - i_q + H - 1), (j_p - j_q + W - 1), h] over the (2H-1) x (2W-1) table of the map,
    written pair by pair; the table is first resized with the official call (bicubic, align_corners=False)."""
    heads = table.shape[1]
    th, tw = 2 * table_hw[0] - 1, 2 * table_hw[1] - 1
    h, w = hw
    image = table.t().reshape(1, heads, th, tw)
    if (h, w) != tuple(table_hw):
        image = F.interpolate(image, size=(2 * h - 1, 2 * w - 1), mode='bicubic', align_corners=False)
    image = image[0]
    n = h * w
    bias = torch.empty(heads, n, n)
    for p in range(n):
        for q in range(n):
            di, dj = p // w - q // w, p % w - q % w
            bias[:, p, q] = image[:, di + h - 1, dj + w - 1]
    return bias


def reference_attention(attn: RelPosMultiheadAttention, x: torch.Tensor, bias) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + B) v, then the output projection; explicit matrices."""
    b, n, c = x.shape
    heads = attn.num_heads
    q, k, v = attn.qkv(x).split(c, dim=-1)
    q, k, v = (t.reshape(b, n, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    logits = q @ k.transpose(-2, -1) / math.sqrt(c // heads)
    if bias is not None:
        logits = logits + bias
    out = logits.softmax(-1) @ v
    return attn.proj(out.transpose(1, 2).reshape(b, n, c))


def test_bias_equals_swin_flat_index_gather():
    """The per-axis gathers give exactly Swin's ``table[relative_position_index]`` (the official LIT layout)."""
    torch.manual_seed(0)
    h, w = 3, 5
    rpb = GridRelativePositionBias(num_heads=2, grid_size=(h, w))
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    index = (rel[..., 0] + h - 1) * (2 * w - 1) + rel[..., 1] + w - 1
    table = rpb.relative_position_bias_table.detach()
    assert torch.equal(rpb().detach(), table[index.view(-1)].view(h * w, h * w, 2).permute(2, 0, 1))
    assert relative_offsets(3, 'cpu') is relative_offsets(3, torch.device('cpu'))
    assert relative_offsets(3, 'cpu').tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]


@pytest.mark.parametrize('hw', [(3, 3), (2, 4), (5, 3)])
def test_bias_matches_definition(hw):
    torch.manual_seed(0)
    rpb = GridRelativePositionBias(num_heads=3, grid_size=(3, 3))
    with torch.no_grad():
        rpb.relative_position_bias_table.normal_()
    expected = reference_bias(rpb.relative_position_bias_table.detach(), (3, 3), hw)
    assert torch.allclose(rpb(hw).detach(), expected, atol=1e-6)


@pytest.mark.parametrize('with_bias', [True, False])
def test_attention_matches_definition(with_bias):
    torch.manual_seed(0)
    hw = (3, 4)
    attn = RelPosMultiheadAttention(16, 4, rel_pos_grid=(2, 2) if with_bias else None).eval()
    if with_bias:
        with torch.no_grad():
            attn.rel_pos.relative_position_bias_table.normal_()
    x = torch.randn(2, 12, 16)
    bias = reference_bias(attn.rel_pos.relative_position_bias_table.detach(), (2, 2), hw) if with_bias else None
    with torch.no_grad():
        assert torch.allclose(attn(x, hw), reference_attention(attn, x, bias), atol=1e-5)


def test_cached_path_equals_fresh_for_sizes_in_a_row_and_back():
    torch.manual_seed(0)
    attn = RelPosMultiheadAttention(32, 4, rel_pos_grid=(4, 4)).eval()
    with torch.no_grad():
        attn.rel_pos.relative_position_bias_table.normal_()
    rpb = attn.rel_pos
    inputs = {hw: torch.randn(1, hw[0] * hw[1], 32) for hw in [(5, 7), (3, 6)]}
    for hw in [(5, 7), (3, 6), (5, 7), (3, 6)]:
        with torch.no_grad():
            cached = attn(inputs[hw], hw)
            cached_bias = rpb(hw)
        # Fresh: the definition, nothing cached.
        fresh_bias = reference_bias(rpb.relative_position_bias_table.detach(), (4, 4), hw)
        assert torch.equal(cached_bias, rpb(hw).detach())  # the grad path computes it anew
        assert torch.allclose(cached_bias, fresh_bias, atol=1e-6)
        with torch.no_grad():
            assert torch.allclose(cached, reference_attention(attn, inputs[hw], fresh_bias), atol=1e-5)
    # Both sizes are cached: the same tensors come back.
    with torch.no_grad():
        assert rpb.resized_table((5, 7)) is rpb.resized_table((5, 7))
        assert rpb.resized_table((3, 6)) is not rpb.resized_table((5, 7))


def test_cache_invalidated_when_table_changes():
    rpb = GridRelativePositionBias(2, (3, 3))
    with torch.no_grad():
        before = rpb((4, 4)).clone()
        rpb.relative_position_bias_table.add_(1.0)  # what an optimizer step does
        after = rpb((4, 4))
    assert not torch.allclose(before, after)
    assert torch.allclose(after, reference_bias(rpb.relative_position_bias_table.detach(), (3, 3), (4, 4)),
                          atol=1e-6)
    rpb.load_state_dict({'relative_position_bias_table': torch.zeros(25, 2)})
    with torch.no_grad():
        assert torch.equal(rpb((4, 4)), torch.zeros(2, 16, 16))


def test_gathered_bias_is_cached_for_small_grids_only(monkeypatch):
    from mmvit_ext.models.layers import attention as attention_module
    rpb = GridRelativePositionBias(2, (3, 3))
    with torch.no_grad():
        assert rpb((3, 3)) is rpb((3, 3))  # a window: gathered once
        monkeypatch.setattr(attention_module, 'CACHED_BIAS_ELEMENTS', 2 * 9 ** 2 - 1)
        large = rpb((3, 3))
        assert large is not rpb((3, 3))  # above the limit: gathered per call
        torch.testing.assert_close(large, reference_bias(rpb.relative_position_bias_table, (3, 3), (3, 3)))
    assert rpb((3, 3)).requires_grad  # training gathers from the live table


def test_gradient_reaches_table_through_interpolation():
    rpb = GridRelativePositionBias(2, (3, 3))
    with torch.no_grad():
        rpb((4, 5))  # fill the cache first: training must not use it
    rpb((4, 5)).square().sum().backward()
    assert rpb.relative_position_bias_table.grad.abs().sum() > 0


def test_interpolation_at_trained_size_is_identity():
    torch.manual_seed(0)
    table = torch.randn(7 * 9, 3)
    assert resize_relative_position_table(table, (4, 5), (4, 5)) is table
    # The official code always calls F.interpolate; at the same size that is exactly the identity too.
    image = table.t().reshape(1, 3, 7, 9)
    assert torch.equal(F.interpolate(image, size=(7, 9), mode='bicubic', align_corners=False), image)
    embed = torch.randn(1, 1 + 7 * 7, 8)
    assert resize_position_embedding(embed, (7, 7), (7, 7), 1) is embed
    grid = embed[:, 1:].reshape(1, 7, 7, 8).permute(0, 3, 1, 2)
    assert torch.equal(F.interpolate(grid, size=(7, 7), mode='bilinear', align_corners=False), grid)


def test_absolute_embedding_resize_and_cache():
    torch.manual_seed(0)
    pe = GridPositionEmbedding((4, 4), 8, num_extra_tokens=1)
    x = torch.zeros(2, 1 + 6 * 5, 8)
    with torch.no_grad():
        out = pe(x, (6, 5))
        grid = pe.weight[:, 1:].reshape(1, 4, 4, 8).permute(0, 3, 1, 2)
        expected = F.interpolate(grid, size=(6, 5), mode='bilinear', align_corners=False).flatten(2).transpose(1, 2)
        assert torch.allclose(out[:, 1:], expected.expand(2, -1, -1), atol=1e-6)
        assert torch.equal(out[:, :1], pe.weight[:, :1].expand(2, -1, -1))
        assert pe.resized((6, 5)) is pe.resized((6, 5))
        assert torch.equal(pe(torch.zeros(1, 17, 8), (4, 4)), pe.weight)


def test_attention_rejects_wrong_grid():
    attn = RelPosMultiheadAttention(8, 2, rel_pos_grid=(2, 2))
    with pytest.raises(ValueError, match='grid size'):
        attn(torch.randn(1, 6, 8), (2, 2))
    with pytest.raises(ValueError, match='divisible'):
        RelPosMultiheadAttention(10, 3)


# HiLo's Lo-Fi queries as it passes them: (B, L, heads, E) seen as (B, heads, L, E), a transposed view
LOFI_TRANSPOSED_Q = (2, 196, 10, 64)


@pytest.mark.parametrize('q_shape, keys, explicit', [
    ((6272, 2, 4, 64), 4, True),  # HiLo's 2x2 windows
    ((2, 10, 196, 64), 49, True),  # HiLo's Lo-Fi branch: 4 queries per key
    (LOFI_TRANSPOSED_Q, 49, True),
    ((2, 4, 49, 32), 64, True),  # at the key limit
    ((2, 4, 196, 32), 8, False),  # many queries on LightViT's global tokens
    ((2, 3, 9, 8), 65, False),  # beyond the key limit
], ids=['hilo-window', 'hilo-lofi', 'hilo-lofi-strided', 'at-key-limit', 'many-queries', 'many-keys'])
@pytest.mark.parametrize('scale', [None, .3])
@pytest.mark.parametrize('with_bias', [False, True])
def test_explicit_attention_equals_fused_sdpa(q_shape, keys, explicit, scale, with_bias):
    """CPU inference on short softmax rows takes the explicit product (the bias added by baddbmm), which equals the
    fused op; other shapes and training take the fused op. The bias is left as it was."""
    from torch.profiler import profile
    from mmvit_ext.models.layers.utils import attention
    torch.manual_seed(0)
    q = torch.randn(q_shape)
    if q_shape == LOFI_TRANSPOSED_Q:
        q = q.transpose(1, 2)
        q_shape = q.shape
    k, v = torch.randn(*q_shape[:-2], keys, q_shape[-1]), torch.randn(*q_shape[:-2], keys, 24)
    bias = torch.randn(1, q_shape[1], q_shape[2], keys) if with_bias else None
    kept = None if bias is None else bias.clone()
    with torch.no_grad(), profile() as prof:
        out = attention(q, k, v, scale, bias)
    fused = 'aten::scaled_dot_product_attention' in {e.name for e in prof.events()}
    assert fused != explicit
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    # Two fp32 summation orders: they differed by up to 4e-6 on a Sapphire Rapids (unit-variance inputs and bias).
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.shape == (*q_shape[:-1], 24)
    if with_bias:
        assert torch.equal(bias, kept)
    q.requires_grad_()
    with profile() as prof:
        attention(q, k, v, scale, bias).sum().backward()
    assert 'aten::scaled_dot_product_attention' in {e.name for e in prof.events()}  # training: the fused op
