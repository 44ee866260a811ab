"""mmvit_ext.benchmark.profiling: op groups, profiles without per-window loops, explanations of missed targets."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmvit_ext.benchmark.models import select_models
from mmvit_ext.benchmark.official import TorchvisionDeformConv2dPack
from mmvit_ext.benchmark.profiling import OP_GROUPS, VIEW_OPS, explain_target, profile_backbones, time_by_op_group
from mmvit_ext.benchmark.report import explanation_lines
from mmvit_ext.benchmark.targets import TARGET_NOTES
from mmvit_ext.models.layers import BiasedDeformConv2d

CPU = torch.device('cpu')


def test_op_groups_attribute_time_to_what_ran():
    dwconv, conv, fc = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8, 8)
    x = torch.randn(1, 8, 16, 16)

    def forward():
        q = fc(dwconv(x).flatten(2).transpose(1, 2)).unsqueeze(1)
        return F.scaled_dot_product_attention(q, q, q)

    groups = time_by_op_group(forward, CPU)
    assert list(groups) == list(OP_GROUPS)
    for ran in ('depthwise conv', 'matmul (linear layers, explicit attention)', 'fused attention (SDPA)'):
        assert groups[ran] > 0, ran
    assert groups['dense conv'] == groups['deformable conv (DTM)'] == 0
    groups = time_by_op_group(lambda: conv(x), CPU)
    assert groups['dense conv'] > 0 and groups['depthwise conv'] == 0
    # DTM (mmcv) and the official layout on torchvision: the sampling and the product count as deformable conv.
    for merge in (BiasedDeformConv2d(8, 16, 2, stride=2), TorchvisionDeformConv2dPack(8, 16, 2, 2, 0)):
        groups = time_by_op_group(lambda: merge(x), CPU)
        assert groups['deformable conv (DTM)'] > groups['matmul (linear layers, explicit attention)'] == 0


def test_profile_shows_no_loops_over_windows_or_heads(monkeypatch):
    """Op calls per forward do not grow with the input (4x the tokens and windows): at most a few size-dependent
    ops (padding, position-table resizing, the parts of LightViT's window gather) differ, where a per-window or
    per-head loop would multiply them. The kernels chosen by shape (oneDNN or addmm by row count, explicit or fused
    attention) are pinned to one choice."""
    from mmvit_ext.models.layers import onednn, utils
    monkeypatch.setattr(onednn, '_LINEAR_RULE', 'rows')
    monkeypatch.setattr(onednn, '_LINEAR_MIN_ROWS', 0)
    monkeypatch.setattr(utils, 'EXPLICIT_MAX_KEYS', 0)
    specs = select_models(['LIT-tiny', 'LITv2-small', 'LightViT-tiny', 'LVT-mobile'])
    for row in profile_backbones(specs, (64, 64), CPU, progress=False):
        assert 'error' not in row, row
        # LightViT-tiny: its window gather copies up to four parts per layer, by the map's divisibility (33 more
        # calls of 754 at 2x); a loop over windows would add several calls per window and layer.
        assert abs(row['aten_calls_2x'] - row['aten_calls']) <= .05 * row['aten_calls'], row
        assert row['max_calls_op'] not in VIEW_OPS
        assert any(t['op'] in ('mkldnn::_linear_pointwise', 'aten::addmm', 'aten::mm',
                               'aten::_scaled_dot_product_flash_attention_for_cpu')
                   for t in row['top_ops']), row['top_ops']


def test_missed_target_is_explained_with_both_profiles():
    target = dict(target='LVT vs MiT-B0 backbone, 512x512', models=(('lvt-mobile', ), ('mit-b0', )), setting='seg',
                  batch=1)
    specs = select_models(['LVT-mobile', 'MiT-B0'])
    explanation = explain_target(target, specs, CPU, quick=True)
    assert set(explanation['groups']) == {'LVT-mobile', 'MiT-B0'}
    lines = explanation_lines([explanation], [])
    text = '\n'.join(lines)
    assert '### LVT vs MiT-B0 backbone, 512x512 (1x96x96)' in text and TARGET_NOTES['LVT vs MiT-B0'] in text
    total = next(line for line in lines if line.startswith('| total'))
    lvt, mit = (sum(g.values()) for g in explanation['groups'].values())
    assert total == f'| total | {lvt:.1f} | {mit:.1f} | {lvt - mit:+.1f} |'
    missing = explain_target(dict(target, models=(('nope', ), ('mit-b0', ))), specs, CPU)
    assert 'no model among' in missing['error']
