"""Deployment of every backbone family: ONNX export with dynamic batch / height / width into onnxruntime,
``torch.jit.trace`` and ``torch.compile`` give PyTorch's outputs at input sizes other than the one recorded.

Narrow, one-block-per-stage archs keep the cost down while keeping every op of the family (export time depends on
the number of ops, not on the widths); the full variants at 224x224, 97x130 and 320x480 are
``tools/deployment/deploy_report.py --all``. Measured on 2 shared cores: ONNX export + onnxruntime 4-12 s per
family (about 35 s for the four), jit.trace under 2 s per family, graph-break check about 3 s per family, one inductor
compile about 30 s.
"""
import pytest
import torch

from mmvit_ext import deploy
from mmvit_ext.models.backbones import LIT, LITv2, LVT, LightViT
from mmvit_ext.models.layers import ConvolutionalSelfAttention, use_onednn

FAMILIES = {
    # LIT-S layout: MLP stages, global MSA with the relative position table resized to the map, DTM.
    'LIT': lambda: LIT(dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
                            mlp_ratios=[2, 2, 2, 2], pos_embed='relative', norm_eps=1e-5)),
    # LIT-Ti layout: learned absolute embeddings resized bilinearly to the map.
    'LIT-Ti': lambda: LIT(dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4],
                               mlp_ratios=[2, 2, 2, 2], pos_embed='absolute', norm_eps=1e-6)),
    # HiLo with windows of 2 (padding to a multiple of 2) and global MSA, DTM.
    'LITv2': lambda: LITv2(dict(embed_dims=16, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])),
    # Windows of 7 with padding and cropping, global tokens, residual patch merging.
    'LightViT': lambda: LightViT(dict(embed_dims=[16, 32, 64], depths=[1, 1, 1], num_heads=[1, 2, 4],
                                      mlp_ratios=[2, 2, 2], num_global_tokens=4)),
    # CSA overlap-add and RASA's spatial reduction.
    'LVT': lambda: LVT(dict(embed_dims=[16, 16, 32, 32], depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                            mlp_ratios=[2, 2, 2, 2], sr_ratios=[8, 4, 2, 1])),
}
# Recorded at one size; checked at sizes that need other paddings (not multiples of 4, 7, 8 or 32), other batches.
EXAMPLE = (2, 3, 64, 96)
SIZES = [(1, 3, 61, 83), (3, 3, 100, 70)]


def _build(family):
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    # Non-trivial DTM offsets (zero at initialisation) and BatchNorm statistics, so that they matter.
    for name, param in model.named_parameters():
        if 'conv_offset' in name:
            torch.nn.init.normal_(param, std=0.5)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_()
            module.running_var.uniform_(.5, 2.)
    return model


@pytest.mark.parametrize('family', ['LIT', 'LITv2', 'LightViT', 'LVT'])
def test_onnx_export_with_dynamic_shapes_matches_pytorch_in_onnxruntime(family, tmp_path):
    """One file, exported at one size, runs at two others (batch 1 and 3) with PyTorch's outputs."""
    import onnx
    model = _build(family)
    path = deploy.export_onnx(model, torch.randn(*EXAMPLE), str(tmp_path / f'{family}.onnx'))
    graph = onnx.load(path).graph
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == \
        ['batch', 3, 'height', 'width']
    assert {node.domain for node in graph.node} <= {'', 'ai.onnx'}  # standard operators only: no custom-op library
    # LIT / LITv2: each deformable token merging is one standard DeformConv node.
    assert [node.op_type for node in graph.node].count('DeformConv') == (3 if family.startswith('LIT') else 0)
    checks = deploy.verify_onnx(model, path, SIZES)
    assert [c.shape for c in checks] == SIZES
    for check in checks:
        assert check.max_diff < 1e-4, check


@pytest.mark.parametrize('family', list(FAMILIES))
def test_jit_trace_holds_for_other_input_sizes(family):
    model = _build(family)
    traced = deploy.trace(model, torch.randn(*EXAMPLE))
    for check in deploy.verify_traced(model, traced, SIZES):
        assert check.max_diff < 1e-4, check


def test_csa_traced_overlap_add_equals_the_eager_one():
    """The size-independent overlap-add used while tracing gives the eager per-size slices' sums exactly (eager on
    the plain linear ops, as the traced graph: the fused oneDNN ones round differently)."""
    torch.manual_seed(0)
    csa = ConvolutionalSelfAttention(8, 2).eval()
    example = torch.randn(1, 6, 8, 8)
    with torch.no_grad(), use_onednn(False):
        traced = torch.jit.trace(csa, example, check_trace=False)
        for shape in [(2, 7, 9, 8), (1, 1, 1, 8), (1, 2, 5, 8), (3, 13, 4, 8)]:
            x = torch.randn(*shape)
            torch.testing.assert_close(traced(x), csa(x), rtol=0, atol=0)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_forward_is_one_graph_for_torch_compile(family):
    """No graph break anywhere in the forward (the DTM's op is registered; the size caches are bypassed)."""
    assert deploy.graph_breaks(_build(family), torch.randn(*EXAMPLE)) == []


def test_torch_compile_inductor_matches_eager():
    """The inductor backend on CPU (C++ code generation), one static compile; the LIT layout has the DTM op inside.
    Dynamic-shape recompiles of every variant: ``tools/deployment/deploy_report.py``."""
    model = _build('LIT')
    compiled = deploy.compile_model(model, dynamic=False)
    try:
        check, = deploy.verify_traced(model, compiled, SIZES[:1])
        assert check.max_diff < 1e-4, check
    finally:
        torch._dynamo.reset()


def test_compare_runtimes_reports_latency_and_difference_per_runtime():
    """The measurement a benchmark calls: every runtime timed on one batch and checked against eager."""
    model = _build('LVT')
    results = deploy.compare_runtimes(model, torch.randn(2, 3, 64, 64), runtimes=('eager', 'jit'), warmup=1,
                                      repeat=2)
    assert list(results) == ['eager', 'jit']
    assert results['eager']['max_diff'] == 0 and results['jit']['max_diff'] < 1e-4
    for result in results.values():
        assert result['runs'] == 2 and result['latency_ms'] > 0 and result['throughput'] > 0
    with pytest.raises(ValueError, match='unknown runtime "tensorrt"'):
        deploy.compare_runtimes(model, torch.randn(1, 3, 64, 64), runtimes=('tensorrt', ))
