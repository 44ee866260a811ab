"""The registered deformable conv ``torch.ops.mmvit_ext.deform_conv2d``: mmcv's semantics on CPU (output and every
gradient), mmcv's kernels as the CUDA path, the offset layout of torchvision / ONNX, and the compile / export / ONNX
paths. About 20 s in all on 2 shared cores: the dynamo ONNX export (6 s) and opcheck (4 s) take most of it."""
import warnings

import numpy as np
import pytest
import torch
import torchvision
from mmcv.ops import deform_conv2d as mmcv_deform_conv2d
from torch.export import Dim

from mmvit_ext.models.layers import DeformableTokenMerging, deform_conv2d
from mmvit_ext.models.layers.deform_conv import ONNX_TRANSLATION_TABLE, _mmcv_backward, _mmcv_forward

# (kernel, stride, padding, dilation): DTM's merge window, and a general geometry
GEOMETRIES = [(2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 2, 2)]


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _positions(offset, geometry):
    """Absolute sampling positions (y, x), each (B, taps, Ho, Wo), of mmcv-layout offsets."""
    k, s, p, d = geometry
    b, _, ho, wo = offset.shape
    tap = torch.arange(k * k, dtype=offset.dtype)
    base_y = (torch.arange(ho, dtype=offset.dtype) * s - p).view(1, 1, ho, 1) + (tap // k * d).view(1, -1, 1, 1)
    base_x = (torch.arange(wo, dtype=offset.dtype) * s - p).view(1, 1, 1, wo) + (tap % k * d).view(1, -1, 1, 1)
    return offset[:, 0::2] + base_y, offset[:, 1::2] + base_x


def _case(geometry, offsets, dtype, seed=0, batch=3, channels=5, height=9, width=11, out_channels=7):
    """Input, offsets, weight and bias of one comparison. ``offsets``: 'random' (up to ~8 px, many samples outside
    the map), 'integer' (whole-pixel offsets: samples exactly on pixels, on the last row / column and exactly at -1,
    where the bilinear rule is one-sided) or 'zero' (the DTM's initial state)."""
    k, s, p, d = geometry
    gen = torch.Generator().manual_seed(seed)
    ho, wo = _out_size(height, k, s, p, d), _out_size(width, k, s, p, d)
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=dtype)
    weight = torch.randn(out_channels, channels, k, k, generator=gen, dtype=dtype)
    bias = torch.randn(out_channels, generator=gen, dtype=dtype)
    offset = torch.zeros(batch, 2 * k * k, ho, wo, dtype=dtype)
    if offsets == 'random':
        offset = torch.randn(offset.shape, generator=gen, dtype=dtype) * 4
    elif offsets == 'integer':
        offset = torch.randint(-height, height, offset.shape, generator=gen).to(dtype)
        offset[0, 0, 0, 0] = -1 + p  # tap (0, 0) of output (0, 0) lands exactly on y = -1
        offset[0, 1, 0, 0] = width - 1 + p  # ... and on the last column
    return x, offset, weight, bias


def _grads(fn, x, offset, weight, bias, grad_out=None):
    x, offset, weight, bias = (t.detach().clone().requires_grad_() for t in (x, offset, weight, bias))
    out = fn(x, offset, weight, bias)
    if grad_out is None:
        grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    return (out, *torch.autograd.grad(out, (x, offset, weight, bias), grad_out)), grad_out


def _mmcv_reference(geometry):
    k, s, p, d = geometry

    def fn(x, offset, weight, bias):
        return mmcv_deform_conv2d(x, offset, weight, s, p, d, 1, 1, False, x.shape[0]) + bias.view(1, -1, 1, 1)
    return fn


def _ours(geometry):
    k, s, p, d = geometry
    return lambda x, offset, weight, bias: deform_conv2d(x, offset, weight, bias, s, p, d)


@pytest.mark.parametrize('geometry', GEOMETRIES)
@pytest.mark.parametrize('offsets', ['random', 'integer', 'zero'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_equals_mmcv_output_and_every_gradient(geometry, offsets, dtype):
    """Output and the gradients of input, offsets, weight and bias equal mmcv's CPU op: within 1e-5 in fp32, within
    1e-10 in fp64 (the same arithmetic up to summation order)."""
    case = _case(geometry, offsets, dtype)
    expected, grad_out = _grads(_mmcv_reference(geometry), *case)
    got, _ = _grads(_ours(geometry), *case, grad_out=grad_out)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    for name, a, b in zip(('output', 'input', 'offset', 'weight', 'bias'), got, expected):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m: f'{name}: {m}')
    if offsets != 'zero':  # samples outside the map and on its border really happen: the boundary rule is tested
        y, x = _positions(case[1], geometry)
        height, width = case[0].shape[2:]
        assert ((y <= -1) | (y >= height) | (x <= -1) | (x >= width)).any()
        assert ((y > -1) & (y < 0) | (y > height - 1) & (y < height)).any() or offsets == 'integer'
        assert offsets == 'random' or ((y == -1).any() and (x == width - 1).any())


def test_points_outside_the_map_give_zero_and_no_gradient():
    """Every sample exactly at -1 or H (or beyond): the output is the bias alone, input and offsets get no gradient."""
    x, offset, weight, bias = _case(GEOMETRIES[0], 'zero', torch.float32)
    base_y, base_x = _positions(offset, GEOMETRIES[0])
    height, width = x.shape[2:]
    for target_y, target_x in ((-1., 3.), (height, 2.5), (-3.5, 40.), (4., -1.), (1., width), (1e30, 1e30)):
        far = torch.stack([target_y - base_y, target_x - base_x], dim=2).flatten(1, 2)
        got, _ = _grads(_ours(GEOMETRIES[0]), x, far, weight, bias)
        torch.testing.assert_close(got[0], bias.view(1, -1, 1, 1).expand_as(got[0]), atol=0, rtol=0)
        assert not got[1].any() and not got[2].any(), (target_y, target_x)


def test_mmcv_kernel_path_equals_mmcv_op():
    """The CUDA registration calls mmcv's kernels directly; they are device-generic, so on CPU this path must give
    mmcv's autograd function's numbers exactly (forward, input / offset / weight gradients)."""
    geometry = GEOMETRIES[0]
    x, offset, weight, bias = _case(geometry, 'random', torch.float32, batch=2)
    (out, gx, goff, gw, gb), grad_out = _grads(_mmcv_reference(geometry), x, offset, weight, bias)
    args = ([2, 2], [0, 0], [1, 1])
    assert torch.equal(_mmcv_forward(x, offset, weight, bias, *args), out)
    for a, b in zip(_mmcv_backward(grad_out, x, offset, weight, *args), (gx, goff, gw, gb)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_offset_layout_is_torchvision_and_onnx_layout():
    """mmcv's offset channels (dy, dx per kernel tap, taps row-major) are torchvision's, and so ONNX DeformConv's
    (whose reference is torchvision's): the same tensor gives the same output with no reordering."""
    for geometry in GEOMETRIES:
        k, s, p, d = geometry
        x, offset, weight, bias = _case(geometry, 'random', torch.float64)
        for b in (bias, None):
            expected = torchvision.ops.deform_conv2d(x, offset, weight, b, stride=s, padding=p, dilation=d)
            torch.testing.assert_close(deform_conv2d(x, offset, weight, b, s, p, d), expected, atol=1e-10, rtol=1e-10)
    # swapping dy and dx of every tap changes the result: the test can tell the layouts apart
    x, offset, weight, bias = _case(GEOMETRIES[0], 'random', torch.float64)
    swapped = offset.view(offset.shape[0], -1, 2, *offset.shape[2:]).flip(2).reshape(offset.shape)
    assert not torch.allclose(deform_conv2d(x, swapped, weight, bias, 2), deform_conv2d(x, offset, weight, bias, 2))


def test_gradcheck_fp64():
    x, offset, weight, bias = _case(GEOMETRIES[1], 'random', torch.float64, batch=1, channels=2, height=5, width=4,
                                    out_channels=3)
    inputs = tuple(t.requires_grad_() for t in (x, offset * 0.3 + 0.2, weight, bias))
    assert torch.autograd.gradcheck(lambda *a: deform_conv2d(*a, 1, 1, 1), inputs)


def test_opcheck_fake_and_autograd_registrations():
    """torch.library.opcheck: schema, fake (meta) implementation, autograd registration and AOT dispatch."""
    x, offset, weight, bias = _case(GEOMETRIES[0], 'random', torch.float32, batch=2, height=6, width=8)
    args = (x.requires_grad_(), offset.requires_grad_(), weight.requires_grad_(), bias.requires_grad_(),
            [2, 2], [0, 0], [1, 1])
    torch.library.opcheck(torch.ops.mmvit_ext.deform_conv2d.default, args)


def test_bad_shapes_raise_clear_errors():
    x, offset, weight, bias = _case(GEOMETRIES[0], 'zero', torch.float32)
    with pytest.raises(ValueError, match='one group only'):
        deform_conv2d(x, offset, weight[:, :2], bias, 2)
    with pytest.raises(ValueError, match='offset must be'):
        deform_conv2d(x, offset[:, :4], weight, bias, 2)
    with pytest.raises(ValueError, match='too small'):
        deform_conv2d(x[:, :, :1], offset[:, :, :0], weight, bias, 2)


def _trained_dtm(in_channels=4, out_channels=8, seed=0):
    """An eval-mode DTM whose offsets reach a few pixels (some samples fall outside the map) and non-trivial BN."""
    torch.manual_seed(seed)
    dtm = DeformableTokenMerging(in_channels, out_channels)
    with torch.no_grad():
        dtm.dconv.conv_offset.weight.normal_(std=0.5)
        dtm.dconv.conv_offset.bias.normal_(std=2.0)
        dtm.norm_layer.running_mean.normal_()
        dtm.norm_layer.running_var.uniform_(0.5, 2)
    return dtm.eval()


def test_torch_compile_fullgraph_forward_and_backward():
    """One graph (fullgraph: the op breaks none) through dynamo and AOT autograd with the fake implementations;
    outputs and gradients equal eager. The ``aot_eager`` backend keeps it at 2 s (inductor would compile C++ for
    20 s; opcheck above checks the fake outputs' layouts against the real ones, which is what inductor relies on)."""
    dtm = _trained_dtm().train()
    x = torch.randn(2, 4, 10, 14, requires_grad=True)
    compiled = torch.compile(dtm, fullgraph=True, backend='aot_eager')
    for module in (dtm, compiled):
        out = module(x)
        out.square().sum().backward()
        if module is dtm:
            expected = (out.detach(), x.grad.clone(), dtm.dconv.conv_offset.weight.grad.clone())
            x.grad = None
            dtm.zero_grad()
    for a, b in zip((out.detach(), x.grad, dtm.dconv.conv_offset.weight.grad), expected):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_torch_export_is_shape_generic():
    """torch.export with dynamic batch / height / width keeps the op as one node and runs other sizes."""
    dtm = _trained_dtm()
    program = torch.export.export(dtm, (torch.randn(2, 4, 10, 14), ), dynamic_shapes=(
        {0: Dim('batch'), 2: Dim('height', min=4, max=4096), 3: Dim('width', min=4, max=4096)}, ))
    targets = [node.target for node in program.graph.nodes if node.op == 'call_function']
    assert torch.ops.mmvit_ext.deform_conv2d.default in targets
    for shape in ((1, 4, 17, 9), (3, 4, 32, 24)):
        x = torch.randn(shape)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), dtm(x), atol=1e-5, rtol=1e-5)


def test_jit_trace_is_shape_generic():
    dtm = _trained_dtm()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(dtm, torch.randn(2, 4, 10, 14))
        x = torch.randn(1, 4, 17, 9)
        torch.testing.assert_close(traced(x), dtm(x), atol=1e-6, rtol=1e-6)


def _export_dtm_onnx(dtm, path, route):
    x = torch.randn(2, 4, 10, 14)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if route == 'dynamo':
            torch.onnx.export(dtm, (x, ), path, dynamo=True, input_names=['x'], verbose=False,
                              dynamic_shapes=({0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}, ))
        elif route == 'torchscript':
            torch.onnx.export(dtm, (x, ), path, dynamo=False, opset_version=19, input_names=['x'],
                              dynamic_axes={'x': {0: 'batch', 2: 'height', 3: 'width'}})
        else:  # an ExportedProgram captured outside ONNX export holds the op node: the translation table maps it
            program = torch.export.export(dtm, (x, ), dynamic_shapes=(
                {0: Dim('batch'), 2: Dim('height', min=4, max=4096), 3: Dim('width', min=4, max=4096)}, ))
            torch.onnx.export(program, (x, ), path, dynamo=True, verbose=False,
                              custom_translation_table=ONNX_TRANSLATION_TABLE)


@pytest.mark.parametrize('route', ['dynamo', 'torchscript', 'exported_program'])
def test_onnx_export_to_standard_deform_conv_runs_in_onnxruntime(tmp_path, route):
    """The DTM alone exports to the standard ONNX DeformConv (opset >= 19, no custom domain) and onnxruntime's
    output equals PyTorch's within 1e-4 at two sizes from one file, with offsets that sample outside the map.
    About 6 s for the first export (the exporter's registry), 1-2 s for the others."""
    import onnx
    import onnxruntime
    dtm = _trained_dtm()
    path = str(tmp_path / 'dtm.onnx')
    _export_dtm_onnx(dtm, path, route)
    model = onnx.load(path)
    deform = [node for node in model.graph.node if node.op_type == 'DeformConv']
    assert len(deform) == 1 and deform[0].domain == ''
    assert {o.domain: o.version for o in model.opset_import}[''] >= 19
    assert {node.domain for node in model.graph.node} == {''}  # no custom-op library needed
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    for shape in ((2, 4, 10, 14), (1, 4, 17, 9)):
        x = torch.randn(shape)
        with torch.no_grad():
            offset = dtm.dconv.conv_offset(x)
            expected = dtm(x).numpy()
        y, x_pos = _positions(offset, GEOMETRIES[0])
        assert ((y <= -1) | (y >= shape[2]) | (x_pos <= -1) | (x_pos >= shape[3])).any(), 'samples outside the map'
        got = session.run(None, {name: x.numpy()})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
