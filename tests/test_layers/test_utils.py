"""``layers.utils.is_tracing``: True under every way of recording a graph (each exporter of ``torch.onnx.export``
included), False in eager runs. The module below takes another branch while tracing, so each recorded graph
shows which branch it saw."""
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from mmvit_ext.models.layers.utils import add_residual, is_tracing


class BranchesOnTracing(nn.Module):
    def forward(self, x):
        return x + 1 if is_tracing() else x - 1


def _onnx(dynamo):
    def run(module, x, tmp_path):
        path = str(tmp_path / 'm.onnx')
        torch.onnx.export(module, (x, ), path, input_names=['x'], dynamo=dynamo)
        return torch.from_numpy(ort.InferenceSession(path).run(None, {'x': x.numpy()})[0])
    return run


@pytest.mark.parametrize('record_and_run', [
    lambda m, x, _: torch.jit.trace(m, x)(x),
    lambda m, x, _: torch.export.export(m, (x, )).module()(x),
    _onnx(dynamo=False),
    _onnx(dynamo=True),
    lambda m, x, _: torch.compile(m, backend='eager')(x),
], ids=['jit.trace', 'export', 'onnx-torchscript', 'onnx-dynamo', 'compile'])
def test_is_tracing_while_a_graph_is_recorded(record_and_run, tmp_path):
    module, x = BranchesOnTracing(), torch.randn(2, 3)
    torch.testing.assert_close(module(x), x - 1)
    torch.testing.assert_close(record_and_run(module, x, tmp_path), x + 1)


def test_add_residual_writes_into_the_branch_only_where_nothing_needs_it():
    x, branch = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    expected = x + branch
    with torch.no_grad():
        out = add_residual(x, branch.clone())
    torch.testing.assert_close(out, expected)
    fresh = branch.clone()
    with torch.no_grad():
        assert add_residual(x, fresh) is fresh  # inference: no new buffer
    leaf = branch.clone().requires_grad_()
    out = add_residual(x, leaf * 1)
    assert out.grad_fn is not None
    out.sum().backward()
    assert torch.equal(leaf.grad, torch.ones_like(leaf))
    with torch.no_grad():  # a broadcast and a lower-precision branch keep the out-of-place sum
        small = torch.randn(1, 5, 4)
        torch.testing.assert_close(add_residual(x, small), x + small)
        half = branch.bfloat16()
        out = add_residual(x, half)
        assert out.dtype == torch.float32 and out is not half
