"""Feed-forward layers in chunks of their hidden activations (``layers.onednn.chunk_rows``, ``mlp``, ConvFFN's row
bands): in CPU inference, past the size rule, the same numbers as the whole layer; the whole layer everywhere else."""
import itertools
import warnings

import pytest
import torch
import torch.nn as nn

from mmvit_ext.models.backbones import LIT, LITv2, LVT, LightViT
from mmvit_ext.models.layers import ConvFFN, Linear, ffn, onednn, use_onednn
from mmvit_ext.models.layers.onednn import chunk_rows, linear_into, mlp

WHOLE = (1 << 40, 1)  # a chunking rule under which every layer runs whole


@pytest.fixture
def chunks(monkeypatch):
    """The list of chunks written so far: one entry per ``linear_into`` call (each chunk's fc2 product)."""
    written = []

    def spy(x, layer, out):
        written.append(x.shape[0])
        return linear_into(x, layer, out)

    monkeypatch.setattr(onednn, 'linear_into', spy)
    monkeypatch.setattr(ffn, 'linear_into', spy)
    return written


def test_chunk_rows_follows_the_size_rule(monkeypatch):
    assert chunk_rows(100, 1 << 10, (100 << 10, 8 << 10)) == 0  # exactly at the limit: whole
    assert chunk_rows(101, 1 << 10, (100 << 10, 8 << 10)) == 8
    assert chunk_rows(101, 1 << 10, (100 << 10, 1000)) == 1  # a row larger than a chunk: one row at a time
    assert chunk_rows(3, 5, (0, 16)) == 3
    monkeypatch.setattr(onednn, 'is_tracing', lambda: True)  # a graph being recorded: whole, sizes unread
    assert chunk_rows(101, 1 << 10, (100 << 10, 8 << 10)) == 0


@pytest.mark.parametrize('addmm_as_fast', [True, False])
def test_linear_into_writes_a_block_of_rows_or_a_column_slice(monkeypatch, addmm_as_fast):
    monkeypatch.setattr(onednn, '_ADDMM_AS_FAST', addmm_as_fast)
    torch.manual_seed(0)
    x = torch.randn(7, 6)
    for layer in (Linear(6, 4), nn.Linear(6, 4, bias=False), Linear(6, 4, activation=None)):
        out = torch.full((9, 10), 5.)
        with torch.no_grad():
            expected = layer(x)
            assert linear_into(x, layer, out[1:8, 3:7]).data_ptr() == out[1:8, 3:7].data_ptr()
        torch.testing.assert_close(out[1:8, 3:7], expected, atol=1e-6, rtol=1e-6)
        untouched = torch.ones_like(out, dtype=torch.bool)
        untouched[1:8, 3:7] = False
        assert (out[untouched] == 5).all()


# (batch, height, width, channels) x rows per chunk: bands of 1..h-1 rows (a band at one border, at both, in the
# middle, a last band shorter than the others), whole images one or several at a time with a shorter last group.
MAPS = [(3, 7, 5, 8), (2, 1, 4, 8), (1, 2, 3, 4), (2, 9, 6, 4)]
ROWS = [1, 2, 3, 4, 7, 9, 14, 30]


@pytest.mark.parametrize('onednn_on', [True, False])
def test_convffn_in_row_bands_equals_the_whole_layer(monkeypatch, chunks, onednn_on):
    torch.manual_seed(0)
    for (b, h, w, c), rows in itertools.product(MAPS, ROWS):
        layer = ConvFFN(c).eval()
        x = torch.randn(b, h * w, c)
        with torch.no_grad(), use_onednn(onednn_on):
            monkeypatch.setattr(ffn, '_CHUNKING', WHOLE)
            expected = layer(x, (h, w))
            assert not chunks
            # the rule's limit just below this map, chunks of `rows` map rows
            row_bytes = w * 4 * c * 4
            monkeypatch.setattr(ffn, '_CHUNKING', (b * h * row_bytes - 1, rows * row_bytes))
            out = layer(x, (h, w))
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
        assert out.shape == (b, h * w, c) and out.is_contiguous()
        if rows >= h:  # rows // h whole images per chunk
            assert chunks == [min(rows // h, b - i) * h * w for i in range(0, b, rows // h)]
        else:  # bands of `rows` rows, the last one shorter
            assert chunks == b * [(min(h, top + rows) - top) * w for top in range(0, h, rows)]
        chunks.clear()


def test_convffn_runs_whole_under_autograd_and_below_the_size_rule(monkeypatch):
    torch.manual_seed(0)
    layer, x = ConvFFN(8).eval(), torch.randn(2, 30, 8, requires_grad=True)
    monkeypatch.setattr(ffn, '_CHUNKING', (0, 1))  # every map past the limit, one row per chunk
    monkeypatch.setattr(ConvFFN, '_forward_in_chunks', lambda *args: pytest.fail('chunked under autograd'))
    layer(x, (5, 6)).sum().backward()
    assert x.grad is not None and layer.fc1.weight.grad is not None
    monkeypatch.setattr(ffn, '_CHUNKING', (2 * 30 * 32 * 4, 1))  # exactly at the limit
    with torch.no_grad():
        layer(x, (5, 6))


@pytest.mark.parametrize('addmm_as_fast', [True, False])
def test_mlp_in_chunks_of_tokens_equals_the_whole_pair(monkeypatch, chunks, addmm_as_fast):
    monkeypatch.setattr(onednn, '_ADDMM_AS_FAST', addmm_as_fast)
    torch.manual_seed(0)
    fc1, fc2, drop = Linear(6, 16, activation='gelu'), Linear(16, 5), nn.Dropout(0.5).eval()
    x = torch.randn(3, 7, 6)
    expected = fc2(fc1(x)).detach()
    for rows in (1, 4, 7, 21, 50):
        monkeypatch.setattr(onednn, '_MLP_CHUNKING', (21 * 16 * 4 - 1, rows * 16 * 4))
        with torch.no_grad():
            out = mlp(x, fc1, fc2, drop)
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
        assert out.shape == (3, 7, 5)
        assert chunks == [min(rows, 21 - start) for start in range(0, 21, rows)]
        chunks.clear()
    trained = mlp(x.requires_grad_(), fc1, fc2, drop)  # autograd: the whole pair, differentiable
    trained.sum().backward()
    assert x.grad is not None and fc1.weight.grad is not None and not chunks


@pytest.mark.parametrize('model', [
    lambda: LITv2(arch='small', out_indices=(0, 1, 2, 3)),
    lambda: LIT(arch='tiny', out_indices=(0, 1, 2, 3)),
    lambda: LightViT(arch='tiny', out_indices=(0, 1, 2)),
    lambda: LVT(out_indices=(0, 1, 2, 3)),
], ids=['LITv2', 'LIT', 'LightViT', 'LVT'])
def test_backbones_with_every_feed_forward_layer_in_chunks_equal_them_whole(monkeypatch, model):
    """Every family's feed-forward layers (ConvFFN, ``mlp``: LIT's Mlp, LVT's LinearFFN, LightViT's bi-dimensional
    attention FFN) in small chunks, against the same backbone with every layer whole."""
    torch.manual_seed(0)
    net, x = model().eval(), torch.randn(2, 3, 64, 96)
    rules = []  # chunk_rows' answer for each feed-forward layer run

    def spy(*args):
        rules.append(chunk_rows(*args))
        return rules[-1]

    monkeypatch.setattr(onednn, 'chunk_rows', spy)
    monkeypatch.setattr(ffn, 'chunk_rows', spy)
    with torch.no_grad():
        monkeypatch.setattr(ffn, '_CHUNKING', WHOLE)
        monkeypatch.setattr(onednn, '_MLP_CHUNKING', WHOLE)
        expected = net(x)
        layers = len(rules)
        assert layers == sum(hasattr(m, 'fc2') or type(m).__name__ == 'LinearFFN' for m in net.modules())
        assert not any(rules)
        monkeypatch.setattr(ffn, '_CHUNKING', (0, 1 << 14))
        monkeypatch.setattr(onednn, '_MLP_CHUNKING', (0, 1 << 14))
        chunked = net(x)
    assert len(rules) == 2 * layers and all(rules[layers:])
    for out, ref in zip(chunked, expected):
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_a_recorded_graph_keeps_every_feed_forward_layer_whole(monkeypatch):
    """Chunk loops depend on sizes: a traced ConvFFN / mlp records the whole layers, so the graph is right at another
    batch size."""
    monkeypatch.setattr(ffn, '_CHUNKING', (0, 1))
    monkeypatch.setattr(onednn, '_MLP_CHUNKING', (0, 1))
    torch.manual_seed(0)

    class Layers(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_ffn, self.fc1, self.fc2 = ConvFFN(8), Linear(8, 32, activation='gelu'), Linear(32, 8)

        def forward(self, x):
            return mlp(self.conv_ffn(x, (5, 6)), self.fc1, self.fc2)

    layers = Layers().eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)  # the linear rule reads sizes while tracing
        traced = torch.jit.trace(layers, torch.randn(2, 30, 8))
        x = torch.randn(3, 30, 8)
        torch.testing.assert_close(traced(x), layers(x), atol=1e-5, rtol=1e-5)
