"""Whole models export to ONNX and match onnxruntime: a RetinaNet through ``tools/deployment/pytorch2onnx.py``
(backbone + FPN + head, raw head outputs) and a SegFormer segmentor (decode-head logits), both with dynamic shapes.

The demo configs' narrow backbones keep it small. Measured on 2 shared cores: the RetinaNet tool run about 45 s
(a subprocess: imports, export, verification), the SegFormer about 30 s, the argument checks under 1 s.
"""
import os.path as osp
import re

import pytest
import torch

from mmvit_ext import deploy

DEMO = 'configs/demo'


def test_pytorch2onnx_exports_and_verifies_a_retinanet(run_tool, repo_root, tmp_path):
    import onnx
    out = str(tmp_path / 'retinanet.onnx')
    config = osp.join(repo_root, DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py')
    code, log = run_tool('deployment/pytorch2onnx.py', config, '--shape', '96', '128', '--dynamic', '--verify',
                         '--verify-shape', '161', '97', '--repeat', '1', '--out', out,
                         # every anchor's box reaches NMS (random weights score below the default threshold)
                         '--cfg-options', 'model.test_cfg.score_thr=0')
    assert code == 0, log[-3000:]
    # Five FPN levels of classification scores and box deltas, named after the head's predict_by_feat arguments.
    names = [f'cls_scores_{i}' for i in range(5)] + [f'bbox_preds_{i}' for i in range(5)]
    assert f'outputs: {", ".join(names)}' in log
    # Both sizes through mmdet's preprocessor (padded to multiples of 32), each within 1e-4, with both latencies.
    checks = re.findall(r'image (\d+)x(\d+) -> input \((\d+), 3, (\d+), (\d+)\): max \|onnxruntime - pytorch\| = '
                        r'(\S+); latency pytorch \S+ ms, onnxruntime \S+ ms', log)
    assert [c[:5] for c in checks] == [('96', '128', '1', '96', '128'), ('161', '97', '1', '192', '128')], log
    assert all(float(c[5]) < 1e-4 for c in checks), log
    # mmdet's post-processing of onnxruntime's outputs gives PyTorch's detections (100 per image after NMS).
    detections = re.findall(r'(\d+) detections from onnxruntime\'s, (\d+) from PyTorch\'s; same labels, max box '
                            r'difference (\S+) px, max score difference (\S+)', log)
    assert len(detections) == 2 and all(d[:2] == ('100', '100') for d in detections), log
    assert all(float(d[2]) < 1e-2 and float(d[3]) < 1e-4 for d in detections), log
    assert 'OK: outputs equal within 0.0001' in log
    graph = onnx.load(out).graph
    assert [o.name for o in graph.output] == names
    assert [node.op_type for node in graph.node].count('DeformConv') == 3  # LITv2's token mergings


def test_segformer_exports_with_dynamic_shapes(repo_root, tmp_path):
    config = osp.join(repo_root, DEMO, 'segformer_lvt-demo_4xb4-1k_demo-scenes-256x256.py')
    path = str(tmp_path / 'segformer.onnx')
    exported = deploy.export_config(config, path, shape=(96, 128), dynamic=True)
    assert exported.scope == 'mmseg' and exported.output_names == ['seg_logits']
    results = deploy.verify_config(exported, path, [(96, 128), (75, 141)], batch=1, repeat=1)
    assert [detections for _, detections in results] == [None, None]
    checks = [check for check, _ in results]
    assert [c.shape for c in checks] == [(1, 3, 96, 128), (1, 3, 75, 141)]  # mmseg's test preprocessor pads nothing
    for check in checks:
        assert check.max_diff < 1e-4, check
        assert check.pytorch_ms > 0 and check.other_ms > 0


def test_a_checkpoint_of_another_model_is_refused_with_the_keys(repo_root, tmp_path):
    config = osp.join(repo_root, DEMO, 'segformer_lvt-demo_4xb4-1k_demo-scenes-256x256.py')
    model, _ = deploy.build_deploy_model(config)
    state = model.state_dict()
    state.pop('decode_head.conv_seg.weight')
    torch.save(dict(state_dict=state), tmp_path / 'partial.pth')
    with pytest.raises(Exception, match='missing keys: decode_head.conv_seg.weight'):
        deploy.build_deploy_model(config, str(tmp_path / 'partial.pth'))


@pytest.mark.parametrize('args, message', [
    (['--verify', '--verify-shape', '64', '64'], '--verify-shape needs --dynamic'),
    (['--dynamic', '--verify-shape', '64', '64'], '--verify-shape needs --verify'),
    (['--verify', '--image', 'no_such_image.png'], 'image file not found'),
])
def test_pytorch2onnx_refuses_inconsistent_arguments(args, message, repo_root):
    import importlib.util
    tool_path = osp.join(repo_root, 'tools', 'deployment', 'pytorch2onnx.py')
    spec = importlib.util.spec_from_file_location('pytorch2onnx', tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = osp.join(repo_root, DEMO, 'retinanet_litv2-demo_fpn_12e_demo-scenes.py')
    with pytest.raises(SystemExit, match=message):
        tool.main([config, '--shape', '64', '64', *args])


class PooledFPNHead(torch.nn.Module):
    """mmseg's Semantic FPN head on average-pooled maps of the input at strides 4-32: x (B, 8, H, W)."""

    def __init__(self):
        super().__init__()
        from mmseg.models.decode_heads import FPNHead
        self.head = FPNHead(in_channels=[8] * 4, in_index=[0, 1, 2, 3], feature_strides=[4, 8, 16, 32], channels=8,
                            num_classes=3, dropout_ratio=0.)

    def forward(self, x):
        return self.head([torch.nn.functional.avg_pool2d(x, s) for s in (4, 8, 16, 32)])


def test_semantic_fpn_head_graphs_hold_for_every_size(tmp_path):
    """FPNHead's upsampling turns sizes into Python numbers (``int(size * 2.0)``): a plain trace keeps the traced
    sizes inside the head; ours (``deploy.size_generic_layers``) and the ONNX file hold at another size."""
    model = PooledFPNHead().eval()
    example, other = torch.randn(2, 8, 128, 128), torch.randn(1, 8, 96, 160)
    with torch.no_grad():
        reference = model(other)
        plain = torch.jit.trace(model, (example, ), check_trace=False)
        assert (plain(other) - reference).abs().max() > 1e-2  # the failure the rewrite removes
        assert deploy.max_abs_diff(reference, deploy.trace(model, example)(other)) < 1e-5
    path = deploy.export_onnx(model, example, str(tmp_path / 'fpn_head.onnx'))
    checks = deploy.verify_onnx(model, path, [(1, 8, 96, 160), (2, 8, 160, 224)])
    assert all(c.max_diff < 1e-4 for c in checks), checks
