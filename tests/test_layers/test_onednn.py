"""``layers.onednn``: oneDNN linear / conv with fused activations in CPU inference, the plain ops everywhere else,
the same numbers."""
import os
import subprocess

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import profile

from mmvit_ext.models.backbones import LIT, LITv2, LVT, LightViT
from mmvit_ext.models.layers import ConvFFN, Linear, conv2d, linear, use_onednn
from mmvit_ext.models.layers import onednn

ONEDNN_OP = 'mkldnn::_linear_pointwise'
ONEDNN_CONV = 'mkldnn::_convolution_pointwise'
needs_onednn = pytest.mark.skipif(not onednn._available, reason='this PyTorch build has no oneDNN')


@pytest.fixture
def linear_on_onednn(monkeypatch):
    """The oneDNN linear path as on an AVX-512 CPU, whatever this CPU is (the op runs on AVX2 too), for inputs of
    any row count."""
    monkeypatch.setattr(onednn, '_LINEAR_RULE', 'rows')
    monkeypatch.setattr(onednn, '_LINEAR_MIN_ROWS', 0)


def _ops(fn):
    with profile() as prof:
        out = fn()
    return out, {e.name for e in prof.events()}


def _reference(x, weight, bias, activation):
    out = F.linear(x, weight, bias)
    return F.gelu(out) if activation == 'gelu' else out


@needs_onednn
@pytest.mark.parametrize('activation', [None, 'gelu'])
@pytest.mark.parametrize('make_x', [
    lambda: torch.randn(7, 16),
    lambda: torch.randn(2, 3, 5, 16),
    lambda: torch.randn(2, 16, 3, 5).permute(0, 2, 3, 1),  # channels-last view of an NCHW map
    lambda: torch.randn(16, 9).t(),  # transposed
    lambda: torch.randn(4, 32)[:, ::2],  # strided columns
    lambda: torch.randn(0, 16),  # no rows
], ids=['2d', '4d', 'permuted', 'transposed', 'strided', 'empty'])
@pytest.mark.parametrize('with_bias', [True, False])
def test_inference_runs_on_onednn_and_equals_f_linear(make_x, activation, with_bias, linear_on_onednn):
    x = make_x()
    weight, bias = torch.randn(24, 16), torch.randn(24) if with_bias else None
    with torch.no_grad():
        out, ops = _ops(lambda: linear(x, weight, bias, activation))
    assert ONEDNN_OP in ops
    assert out.shape == (*x.shape[:-1], 24)
    torch.testing.assert_close(out, _reference(x, weight, bias, activation), atol=1e-5, rtol=1e-5)


@needs_onednn
def test_autograd_autocast_tracing_and_the_switch_take_f_linear(linear_on_onednn):
    layer = Linear(16, 24, activation='gelu')
    x = torch.randn(5, 16)
    # Autograd through the call (the oneDNN op has no backward): F.linear, and the gradients are PyTorch's.
    out, ops = _ops(lambda: layer(x))
    assert ONEDNN_OP not in ops and out.grad_fn is not None
    out.sum().backward()
    weight = layer.weight.detach().requires_grad_()
    _reference(x, weight, layer.bias.detach(), 'gelu').sum().backward()
    torch.testing.assert_close(layer.weight.grad, weight.grad)
    # Autocast: F.linear casts as it always does.
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out, ops = _ops(lambda: layer(x))
    assert ONEDNN_OP not in ops and out.dtype == torch.bfloat16
    # Other dtypes.
    with torch.no_grad():
        _, ops = _ops(lambda: Linear(16, 24).double()(x.double()))
    assert ONEDNN_OP not in ops
    # A recorded graph holds the portable op.
    with torch.no_grad():
        traced = torch.jit.trace(layer, x)
    graph = str(traced.graph)
    assert 'aten::linear' in graph and 'mkldnn' not in graph
    torch.testing.assert_close(traced(x), layer(x).detach())
    # The switch.
    with torch.no_grad(), use_onednn(False):
        _, ops = _ops(lambda: layer(x))
    assert ONEDNN_OP not in ops
    with torch.no_grad():
        _, ops = _ops(lambda: layer(x))
    assert ONEDNN_OP in ops


@needs_onednn
@pytest.mark.parametrize('activation', [None, 'gelu', 'silu'])
@pytest.mark.parametrize('dilation', [1, 3])
@pytest.mark.parametrize('channels_last', [True, False])
def test_depthwise_conv_inference_runs_on_onednn_and_equals_f_conv2d(activation, dilation, channels_last):
    x = torch.randn(2, 5, 7, 16).permute(0, 3, 1, 2) if channels_last else torch.randn(2, 16, 5, 7)
    weight, bias = torch.randn(16, 1, 3, 3), torch.randn(16)
    with torch.no_grad():
        out, ops = _ops(lambda: conv2d(x, weight, bias, (dilation, dilation), (dilation, dilation), 16, activation))
    assert ONEDNN_CONV in ops
    expected = F.conv2d(x, weight, bias, 1, dilation, dilation, 16)
    expected = {None: expected, 'gelu': F.gelu(expected), 'silu': F.silu(expected)}[activation]
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last


@needs_onednn
def test_conv_ffn_trains_through_pytorch_ops_and_infers_through_onednn(linear_on_onednn):
    ffn = ConvFFN(8, 32)
    x = torch.randn(2, 12, 8)
    out, ops = _ops(lambda: ffn(x, (3, 4)))
    assert not ops & {ONEDNN_OP, ONEDNN_CONV}
    out.sum().backward()
    assert all(p.grad is not None for p in ffn.parameters())
    with torch.no_grad():
        fast, ops = _ops(lambda: ffn(x, (3, 4)))
    assert {ONEDNN_OP, ONEDNN_CONV} <= ops
    torch.testing.assert_close(fast, out.detach(), atol=1e-5, rtol=1e-5)


@needs_onednn
def test_linear_keeps_addmm_where_the_cpu_has_neither_avx2_nor_avx512(monkeypatch):
    monkeypatch.setattr(onednn, '_LINEAR_RULE', None)
    layer, x = Linear(16, 24, activation='gelu'), torch.randn(5, 16)
    with torch.no_grad():
        out, ops = _ops(lambda: layer(x))
        _, conv_ops = _ops(lambda: conv2d(torch.randn(1, 4, 5, 5), torch.randn(4, 1, 3, 3), groups=4))
    assert ONEDNN_OP not in ops and 'aten::addmm' in ops
    torch.testing.assert_close(out, _reference(x, layer.weight, layer.bias, 'gelu'))
    assert ONEDNN_CONV in conv_ops  # the fused convs are faster on AVX2 CPUs too


@needs_onednn
@pytest.mark.parametrize('rule', ['rows', 'macs'])
def test_linear_keeps_addmm_for_small_calls(monkeypatch, rule):
    """AVX-512: inputs of fewer than _LINEAR_MIN_ROWS rows keep addmm; AVX2: calls of fewer multiply-adds than
    _LINEAR_MIN_MACS (rows counted over the leading dimensions)."""
    monkeypatch.setattr(onednn, '_LINEAR_RULE', rule)
    layer = Linear(16, 24, activation='gelu')
    rows = onednn._LINEAR_MIN_ROWS if rule == 'rows' else -(-onednn._LINEAR_MIN_MACS // layer.weight.numel())
    for shape, fused in (((rows - 1, 16), False), ((2, (rows + 1) // 2, 16), True)):
        x = torch.randn(shape)
        with torch.no_grad():
            out, ops = _ops(lambda: layer(x))
        assert (ONEDNN_OP in ops) == fused and ('aten::addmm' in ops) != fused
        torch.testing.assert_close(out, _reference(x, layer.weight, layer.bias, 'gelu'), atol=1e-5, rtol=1e-5)


def test_linear_rule_follows_the_instruction_set_and_the_vendor():
    assert onednn.linear_rule('AVX512', 'AuthenticAMD') == ('rows', 32)
    assert onednn.linear_rule('AVX512', 'GenuineIntel') == ('rows', 1024)
    assert onednn.linear_rule('AVX2', 'AuthenticAMD')[0] == 'macs'
    assert onednn.linear_rule('AVX2', 'GenuineIntel')[0] == 'macs'
    assert onednn.linear_rule('DEFAULT', '')[0] is None
    if os.path.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            vendors = {line.split(':')[1].strip() for line in f if line.startswith('vendor_id')}
        assert onednn._cpu_vendor() in vendors | ({''} if not vendors else set())


MKL_OP = 'mkl::_mkl_linear'
needs_mkl = pytest.mark.skipif(not (torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, '_mkl_linear')),
                               reason='this PyTorch build has no MKL')


@pytest.fixture
def prepack(monkeypatch):
    """The prepacked-weight path as on an Intel CPU, whatever this CPU is (MKL's op runs on any x86), with an empty
    cache."""
    monkeypatch.setattr(onednn, '_PREPACK', True)
    monkeypatch.setattr(onednn, '_PACKED', {})


def _call(layer, x):
    with torch.no_grad():
        out, ops = _ops(lambda: layer(x))
    assert (MKL_OP in ops) != bool({'aten::addmm', 'aten::mm'} & ops)
    torch.testing.assert_close(out, _reference(x, layer.weight, layer.bias, layer.activation), atol=1e-5, rtol=1e-5)
    return MKL_OP in ops


@needs_mkl
@pytest.mark.parametrize('activation', [None, 'gelu'])
@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('make_x', [
    lambda: torch.randn(3, 20, 256),
    lambda: torch.randn(1, 256),
    lambda: torch.randn(256),
    lambda: torch.randn(2, 9, 512)[..., ::2],  # strided columns
    lambda: torch.randn(2, 13, 256)[:, 2:],  # a block of rows of a larger tensor
], ids=['3d', 'one-row', 'vector', 'strided', 'row-slice'])
def test_linear_packs_its_weight_at_the_second_call_of_a_size(make_x, activation, with_bias, prepack):
    layer, x = Linear(256, 512, bias=with_bias, activation=activation).eval(), make_x()
    assert [_call(layer, x) for _ in range(3)] == [False, True, True]


@needs_mkl
def test_packed_weight_follows_the_weight_and_the_size(prepack):
    layer = Linear(256, 768).eval()
    x = torch.randn(2, 30, 256)
    assert [_call(layer, x) for _ in range(2)] == [False, True]
    with torch.no_grad():
        layer.weight.mul_(-2)  # in place: a new version
    assert [_call(layer, x) for _ in range(2)] == [False, True]
    layer.load_state_dict({k: torch.randn_like(v) for k, v in layer.state_dict().items()})
    assert [_call(layer, x) for _ in range(2)] == [False, True]
    layer.weight.data = torch.randn(768, 256)  # new storage, same version
    assert [_call(layer, x) for _ in range(2)] == [False, True]
    # A size that changes at every call is never packed.
    assert not any(_call(layer, x[:, :rows]) for rows in (29, 30, 29, 28, 30))
    weight_id = id(layer.weight)
    del layer
    assert weight_id not in onednn._PACKED


@needs_mkl
def test_prepacking_only_where_it_pays_and_in_plain_inference(prepack, monkeypatch):
    monkeypatch.setattr(onednn, '_LINEAR_RULE', 'rows')  # the Intel AVX-512 rule
    monkeypatch.setattr(onednn, '_LINEAR_MIN_ROWS', 1024)
    cases = [(Linear(16, 24), 40, False),  # a small weight: the op's cost per call outweighs packing
             (Linear(128, 1024), 255, True), (Linear(128, 1024), 256, False),  # narrow inputs from 256 rows
             (Linear(256, 512), 1000, True),
             (Linear(256, 512), 0, False)]  # an empty input: MKL cannot pack for it (it stopped the process)
    for layer, rows, packed in cases:
        x = torch.randn(rows, layer.in_features)
        assert [_call(layer.eval(), x) for _ in range(2)] == [False, packed]
    if onednn._available:
        with torch.no_grad():
            _, ops = _ops(lambda: Linear(256, 512)(torch.randn(1024, 256)))
        assert ONEDNN_OP in ops and MKL_OP not in ops
    layer, x = Linear(256, 512), torch.randn(8, 256)
    for context in (torch.enable_grad, lambda: use_onednn(False),
                    lambda: torch.autocast('cpu', dtype=torch.bfloat16)):
        for _ in range(3):
            with torch.no_grad(), context():
                _, ops = _ops(lambda: layer(x))
            assert MKL_OP not in ops
    with torch.inference_mode():  # an inference-mode weight has no version counter to notice changes by
        layer = Linear(256, 512)
        assert not any(MKL_OP in _ops(lambda: layer(x))[1] for _ in range(3))
    with torch.no_grad():
        layer = Linear(256, 512)
        layer(x)
        traced = torch.jit.trace(layer, x)
    assert 'mkl' not in str(traced.graph)


@needs_mkl
@pytest.mark.parametrize('build', [lambda: LITv2('small'), lambda: LIT('tiny'), lambda: LightViT('tiny'),
                                   lambda: LVT('mobile')], ids=['LITv2', 'LIT', 'LightViT', 'LVT'])
def test_backbone_features_equal_with_prepacked_weights(build, prepack):
    model, x = build().eval(), torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        model(x)
        packed, ops = _ops(lambda: model(x))
        with use_onednn(False):
            plain = model(x)
    assert MKL_OP in ops
    for a, b in zip(packed, plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('addmm_as_fast', [True, False])
def test_concat_linears_writes_column_slices_only_in_inference_where_addmm_is_as_fast(monkeypatch, addmm_as_fast):
    """``concat_linears`` equals ``torch.cat`` of the layers' outputs; with ``_ADDMM_AS_FAST`` (Intel CPUs), in
    inference, every product is an addmm / mm into its column slice and nothing is concatenated; training, a layer
    with an activation and other CPUs concatenate."""
    monkeypatch.setattr(onednn, '_ADDMM_AS_FAST', addmm_as_fast)
    torch.manual_seed(0)
    layers = [Linear(8, 5), Linear(6, 7, bias=False), nn.Linear(8, 3)]
    inputs = [torch.randn(2, 3, 4, 8), torch.randn(2, 3, 4, 6), torch.randn(2, 4, 3, 8).transpose(1, 2)]
    expected = torch.cat([F.linear(x, layer.weight, layer.bias) for x, layer in zip(inputs, layers)], -1)
    with torch.no_grad():
        out, ops = _ops(lambda: onednn.concat_linears(inputs, layers))
    assert out.shape == (2, 3, 4, 15) and out.is_contiguous()
    assert ('aten::cat' not in ops) == addmm_as_fast
    if addmm_as_fast:
        assert {'aten::addmm', 'aten::mm'} <= ops and ONEDNN_OP not in ops
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)

    grad_inputs = [x.clone().requires_grad_() for x in inputs]
    trained, ops = _ops(lambda: onednn.concat_linears(grad_inputs, layers))
    assert 'aten::cat' in ops
    trained.sum().backward()
    assert all(x.grad is not None for x in grad_inputs) and layers[0].weight.grad is not None
    with torch.no_grad():
        _, ops = _ops(lambda: onednn.concat_linears(inputs[:1], [Linear(8, 5, activation='gelu')]))
    assert 'aten::cat' in ops


@pytest.mark.parametrize('activation', ['gelu', 'silu'])
def test_activation_of_a_plain_call_runs_in_place_only_without_autograd(activation):
    """Below the oneDNN rule (or without oneDNN) the activation follows F.linear: in place in inference, out of
    place where autograd needs its input."""
    with use_onednn(False):
        layer, x = Linear(16, 24, activation=activation), torch.randn(5, 16)
        reference = getattr(F, activation)(F.linear(x, layer.weight, layer.bias)).detach()
        with torch.no_grad():
            _, ops = _ops(lambda: layer(x))
            torch.testing.assert_close(layer(x), reference)
        assert f'aten::{activation}_' in ops
        out = layer(x)
        torch.testing.assert_close(out.detach(), reference)
        out.sum().backward()
        assert layer.weight.grad.abs().sum() > 0


def test_linear_module_is_an_nn_linear_with_its_keys_and_checks_the_activation():
    layer = Linear(8, 4, bias=False, activation='gelu')
    assert isinstance(layer, nn.Linear) and list(layer.state_dict()) == ['weight']
    assert 'activation=gelu' in repr(layer)
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        Linear(8, 4, activation='relu')
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        linear(torch.randn(2, 8), torch.randn(4, 8), activation='tanh')
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        conv2d(torch.randn(1, 4, 3, 3), torch.randn(4, 1, 3, 3), groups=4, activation='relu')


@pytest.mark.parametrize('build, shape', [
    (lambda: LITv2('small'), (1, 3, 64, 96)),
    (lambda: LIT('tiny'), (1, 3, 64, 96)),
    (lambda: LightViT('tiny'), (2, 3, 64, 96)),
    (lambda: LVT('mobile'), (1, 3, 64, 96)),
], ids=['LITv2', 'LIT', 'LightViT', 'LVT'])
def test_backbone_features_equal_with_and_without_onednn(build, shape, linear_on_onednn):
    model = build().eval()
    x = torch.randn(shape)
    with torch.no_grad():
        fast = model(x)
        with use_onednn(False):
            plain = model(x)
    for a, b in zip(fast, plain):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_environment_variable_turns_the_path_off(python):
    code = 'import mmvit_ext.models.layers.onednn as m; print(m._enabled)'
    for value, expected in (('0', 'False'), ('1', 'True')):
        out = subprocess.run([python, '-c', code], env={**os.environ, 'MMVIT_EXT_ONEDNN': value},
                             capture_output=True, text=True, check=True).stdout
        assert out.strip().splitlines()[-1] == expected
