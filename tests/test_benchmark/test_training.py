"""mmvit_ext.benchmark.training: the demo RetinaNet's training iteration with DTM on our deformable-conv op and on
mmcv's op (the ``training`` mode and the report's Training section)."""
import mmcv.ops
import pytest
import torch

from mmvit_ext.benchmark.report import REPO_ROOT
from mmvit_ext.benchmark.training import bench_demo_training, demo_training_batch, mmcv_deformable_merging
from mmvit_ext.benchmark.timing import RunOptions
from mmvit_ext.models.layers import DeformableTokenMerging
from mmvit_ext.models.layers.deformable_merging import BiasedDeformConv2d


def test_mmcv_deformable_merging_runs_mmcv_with_the_same_result_and_restores(monkeypatch):
    calls = []
    mmcv_op = mmcv.ops.deform_conv2d

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return mmcv_op(*args, **kwargs)

    monkeypatch.setattr(mmcv.ops, 'deform_conv2d', counted)
    torch.manual_seed(0)
    dtm = DeformableTokenMerging(8, 16).eval()
    torch.nn.init.normal_(dtm.dconv.conv_offset.weight, std=.5)  # offsets between pixels, some outside the map
    x = torch.randn(2, 8, 10, 14)
    ours = dtm(x)
    original = BiasedDeformConv2d._forward
    with mmcv_deformable_merging():
        on_mmcv = dtm(x)
    assert calls == [x.shape] and BiasedDeformConv2d._forward is original
    torch.testing.assert_close(on_mmcv, ours, rtol=0, atol=1e-5)


def test_training_batch_has_boxes_inside_the_images():
    data = demo_training_batch(3, 64, num_classes=5)
    assert len(data['inputs']) == 3 and data['inputs'][0].shape == (3, 64, 64)
    for sample in data['data_samples']:
        boxes = sample.gt_instances.bboxes
        assert 2 <= len(boxes) <= 6 and (boxes >= 0).all() and (boxes <= 64).all()
        assert (boxes[:, 2:] - boxes[:, :2] >= 12).all() and sample.gt_instances.labels.max() < 5


def test_demo_training_times_both_sides_with_equal_losses():
    rows = bench_demo_training(RunOptions(torch.device('cpu'), warmup=0, repeat=3, max_seconds=.1), REPO_ROOT,
                               quick=True)
    op, mmcv = rows
    assert (op['dtm'], mmcv['dtm']) == ('op', 'mmcv') and op['input'] == mmcv['input'] == '2x3x64x64'
    assert op['runs'] == mmcv['runs'] == 3
    assert op['speedup'] == pytest.approx(mmcv['latency_ms'] / op['latency_ms'])
    assert 0 < op['dtm_share'] < 1 and 0 < mmcv['dtm_share'] < 1
    assert op['max_loss_diff'] < 1e-4
