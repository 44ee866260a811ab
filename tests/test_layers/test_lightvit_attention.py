"""LightViT ops against obviously-correct reference computations of the paper / official data flow."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.models.layers.lightvit_attention import (BiDimensionalAttentionFFN, LightViTStem, LocalGlobalAttention,
                                                        ResidualPatchMerging)


def softmax_attention(q, k, v, bias=None):
    """Plain attention, q: (heads, Nq, d), k/v: (heads, Nk, d)."""
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1) @ v


def split_heads(x, heads):
    """(N, C) -> (heads, N, C / heads)."""
    return x.view(x.shape[0], heads, -1).transpose(0, 1)


def reference_window_attention(attn, x_img, hw):
    """Official local attention for one sample: zero-pad the map, qkv, per-window softmax with the relative bias.

    x_img: (H*W, C) -> (local output (H*W, C), q, k, v each (heads, H*W, d)) with explicit loops over windows.
    """
    h, w = hw
    ws, heads, c = attn.window_size, attn.num_heads, attn.dim
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
    padded = torch.zeros(hp, wp, c)
    padded[:h, :w] = x_img.view(h, w, c)
    q, k, v = attn.qkv(padded).view(hp, wp, 3, heads, c // heads).permute(2, 3, 0, 1, 4)  # (heads, Hp, Wp, d)
    table = attn.relative_position_bias.relative_position_bias_table
    out = torch.zeros(heads, hp, wp, c // heads)
    for i in range(0, hp, ws):
        for j in range(0, wp, ws):
            win = [t[:, i:i + ws, j:j + ws].reshape(heads, ws * ws, -1) for t in (q, k, v)]
            bias = torch.empty(heads, ws * ws, ws * ws)
            for a in range(ws * ws):
                for b in range(ws * ws):
                    dy, dx = a // ws - b // ws, a % ws - b % ws
                    bias[:, a, b] = table[(dy + ws - 1) * (2 * ws - 1) + dx + ws - 1]
            out[:, i:i + ws, j:j + ws] = softmax_attention(*win, bias).view(heads, ws, ws, -1)
    crop = [t[:, :h, :w].reshape(heads, h * w, -1) for t in (out, q, k, v)]
    local = crop[0].transpose(0, 1).reshape(h * w, c)
    return local, crop[1], crop[2], crop[3]


def reference_local_global_attention(attn, x, hw):
    """Official LightViT attention for one sample x: (T + H*W, C), written step by step (paper Eq. 1-4)."""
    h, w = hw
    num_tokens = x.shape[0] - h * w
    heads, c = attn.num_heads, attn.dim
    x_glb, x_img = x[:num_tokens], x[num_tokens:]
    local, q, k, v = reference_window_attention(attn, x_img, hw)
    if num_tokens == 0:
        return attn.proj(local)
    q_glb = split_heads(attn.qkv(x_glb)[:, :c], heads)  # keys/values of the global tokens are discarded
    new_glb = softmax_attention(q_glb, k, v).transpose(0, 1).reshape(num_tokens, c)  # Eq. 2
    k_glb, v_glb = attn.kv_global(new_glb).split(c, dim=-1)
    broadcast = softmax_attention(q, split_heads(k_glb, heads), split_heads(v_glb, heads))  # Eq. 3
    x_img = local + broadcast.transpose(0, 1).reshape(h * w, c)  # Eq. 4
    return attn.proj(torch.cat([new_glb, x_img]))


@pytest.fixture
def attn():
    torch.manual_seed(0)
    module = LocalGlobalAttention(dim=16, num_heads=2, window_size=3)
    with torch.no_grad():
        module.relative_position_bias.relative_position_bias_table.normal_()
    return module.eval()


@pytest.mark.parametrize('hw', [(6, 9), (5, 7), (3, 3), (1, 4)])
@pytest.mark.parametrize('num_tokens', [0, 4])
def test_local_global_attention_matches_official_flow(attn, hw, num_tokens):
    x = torch.randn(2, num_tokens + hw[0] * hw[1], 16)
    with torch.no_grad():
        out = attn(x, hw)
        for i in range(2):
            ref = reference_local_global_attention(attn, x[i], hw)
            torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('hw', [(6, 9), (5, 7), (1, 4)])
def test_recorded_graph_path_equals_eager_window_gather(attn, hw, monkeypatch):
    """Eager mode gathers the windows straight from the unpadded map; a recorded graph pads by concatenation and
    partitions by reshapes. Both give the same numbers, with gradients (training uses the eager path too)."""
    import mmvit_ext.models.layers.lightvit_attention as module
    x = torch.randn(2, 4 + hw[0] * hw[1], 16, requires_grad=True)
    eager = attn(x, hw)
    grads = torch.autograd.grad(eager.square().sum(), [x, attn.qkv.bias])
    monkeypatch.setattr(module, 'is_tracing', lambda: True)
    recorded = attn(x, hw)
    torch.testing.assert_close(recorded, eager, atol=1e-6, rtol=1e-6)
    for ours, theirs in zip(grads, torch.autograd.grad(recorded.square().sum(), [x, attn.qkv.bias])):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_zero_kv_global_gives_plain_window_attention(attn):
    """With kv_global zeroed the broadcast adds softmax(.) @ 0 = 0: image tokens get plain window attention."""
    hw = (5, 8)
    x = torch.randn(1, 4 + 40, 16)
    with torch.no_grad():
        attn.kv_global.weight.zero_()
        attn.kv_global.bias.zero_()
        out = attn(x, hw)[0, 4:]
        local, *_ = reference_window_attention(attn, x[0, 4:], hw)
        torch.testing.assert_close(out, attn.proj(local), atol=1e-5, rtol=1e-5)
        # ... and the global tokens still change the image tokens when kv_global is active.
        attn.kv_global.weight.normal_()
        assert not torch.allclose(attn(x, hw)[0, 4:], out, atol=1e-3)


def test_window_bias_is_the_shared_module_with_official_table_shape(attn):
    """A 7x7 window has the official table (13*13, heads); the index is a cached helper, not state."""
    from mmvit_ext.models.layers.attention import GridRelativePositionBias
    full = LocalGlobalAttention(dim=32, num_heads=4)
    assert isinstance(full.relative_position_bias, GridRelativePositionBias)
    assert full.relative_position_bias.relative_position_bias_table.shape == (169, 4)
    assert full.relative_position_bias().shape == (4, 49, 49)
    assert not any('index' in k for k in full.state_dict())


def test_attention_gradients_and_bf16_autocast(attn):
    x = torch.randn(2, 3 + 20, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn.train()(x, (4, 5))
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all()
    for name, p in attn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bi_dimensional_attention_ffn_reference():
    torch.manual_seed(0)
    ffn = BiDimensionalAttentionFFN(dim=16, hidden_dim=32).eval()
    x = torch.randn(2, 11, 16)
    def fc(layer, inputs):  # plain F.linear: the reference runs none of the layers' fused paths
        return F.linear(inputs, layer.weight, layer.bias)

    with torch.no_grad():
        y = fc(ffn.fc2, F.gelu(fc(ffn.fc1, x)))
        gate = ffn.gate
        normed = F.layer_norm(y, (16, ), gate.norm.weight, gate.norm.bias)
        g = F.gelu(fc(gate.global_reduce, normed.mean(1, keepdim=True)))  # [B, 1, C/4]
        local = F.gelu(fc(gate.local_reduce, normed))  # [B, N, C/4]
        channel = torch.sigmoid(fc(gate.channel_select, g))  # [B, 1, C]
        spatial = torch.sigmoid(fc(gate.spatial_select, torch.cat([local, g.expand(-1, 11, -1)], -1)))  # [B, N, 1]
        torch.testing.assert_close(ffn(x), y * channel * spatial)
    assert gate.global_reduce.out_features == 4 and gate.spatial_select.in_features == 8


def test_bi_dimensional_attention_ffn_gates_in_place_only_without_autograd():
    """Inference gates fc2's output in place; with autograd the same numbers come out of place, with gradients."""
    torch.manual_seed(0)
    ffn = BiDimensionalAttentionFFN(dim=16, hidden_dim=32)
    x = torch.randn(2, 11, 16)
    with torch.no_grad():
        inference = ffn(x)
    training = ffn(x)
    torch.testing.assert_close(training.detach(), inference)
    training.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ffn.parameters())


@pytest.mark.parametrize('hw', [(4, 6), (5, 7)])
def test_residual_patch_merging_reference(hw):
    torch.manual_seed(0)
    merge = ResidualPatchMerging(8, 12).eval()
    h, w = hw
    x = torch.randn(2, 3 + h * w, 8) - 0.5
    with torch.no_grad():
        out, out_hw = merge(x, hw)
        assert out_hw == (math.ceil(h / 2), math.ceil(w / 2))
        img = F.pad(x[:, 3:].view(2, h, w, 8), (0, 0, 0, w % 2, 0, h % 2))
        pooled = F.max_pool2d(img.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
        cat = torch.cat([img[:, 0::2, 0::2], img[:, 1::2, 0::2], img[:, 0::2, 1::2], img[:, 1::2, 1::2]], -1)
        ref_img = merge.reduction(merge.norm(cat)) + merge.res_proj(pooled)
        ref_glb = merge.proj(merge.norm2(x[:, :3]))
        torch.testing.assert_close(out[:, :3], ref_glb)
        torch.testing.assert_close(out[:, 3:], ref_img.reshape(2, -1, 12))
    assert all(m.bias is None for m in (merge.reduction, merge.proj, merge.res_proj))


def test_stem_shapes_layout_and_norm_eval():
    stem = LightViTStem(3, 64, norm_eval=True)
    tokens, hw = stem(torch.randn(1, 3, 97, 130))
    assert hw == (13, 17) and tokens.shape == (1, 13 * 17, 64)
    assert [type(m).__name__ for m in stem.stem] == ['Conv2d', 'BatchNorm2d', 'GELU'] * 4
    assert [m.stride for m in stem.stem if isinstance(m, torch.nn.Conv2d)] == [(2, 2), (1, 1), (1, 1), (2, 2)]
    assert all(m.groups == 32 for m in list(stem.stem)[3::3])
    stem.train()
    assert stem.proj.training and not any(m.training for m in stem.stem if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('training', [False, True])
def test_stem_equals_its_sequential_definition(training):
    """conv -> BN -> GELU four times, proj, LN: in eval mode the BNs are folded into the convs (one fused conv each);
    in training they normalise with the batch statistics and update their running ones, as the layers would."""
    stem = LightViTStem(3, 32)
    for m in stem.stem:
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(.5, 2.)
            m.weight.data.normal_()
            m.bias.data.normal_()
    stem.train(training)
    reference = copy.deepcopy(stem)
    x = torch.randn(2, 3, 37, 50)
    with torch.no_grad():
        tokens, hw = stem(x)
        ref = reference.proj(reference.stem(x))
    assert hw == ref.shape[2:]
    torch.testing.assert_close(tokens, reference.norm(ref.flatten(2).transpose(1, 2)), atol=1e-5, rtol=1e-5)
    for ours, theirs in zip(stem.stem, reference.stem):
        if isinstance(ours, torch.nn.BatchNorm2d):
            torch.testing.assert_close(ours.running_mean, theirs.running_mean)
    if not training:  # the fold is differentiable: gradients reach the conv weights and the BN affine parameters
        stem(x)[0].sum().backward()
        assert all(p.grad is not None for p in stem.stem.parameters())
