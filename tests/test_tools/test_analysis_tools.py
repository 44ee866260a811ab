"""tools/analysis_tools/get_flops.py and benchmark.py (the command lines): arguments, FLOP counting against hand
counts and the papers, quick runs of the modes on tiny sizes, the report. The benchmark's modules are tested in
tests/test_benchmark/."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmvit_ext.analysis import build_config_model, config_forward, config_inputs, count_complexity
from mmvit_ext.benchmark.models import select_models
from mmvit_ext.models.layers import BiasedDeformConv2d

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', 'analysis_tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


get_flops = load_tool('get_flops')
benchmark = load_tool('benchmark')

DET_CONFIG = osp.join(ROOT, 'configs/lightvit/retinanet_lightvit-t_fpn_1x_coco.py')
SEG_CONFIG = osp.join(ROOT, 'configs/lit/fpn_lit-ti_8xb2-80k_ade20k-512x512.py')
CLS_CONFIG = osp.join(ROOT, 'configs/litv2/litv2-s_8xb128_in1k.py')


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the tiny timed runs here are dominated by thread wake-ups, and a busy machine makes
    spinning OpenMP threads very slow. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------- arguments

@pytest.mark.parametrize('argv, message', [
    (['missing_config.py'], 'config file not found'),
    ([DET_CONFIG, '--shape', '1', '2', '3'], '--shape takes H W or a single S'),
    ([DET_CONFIG, '--shape', '0', '64'], '--shape must be positive'),
    ([DET_CONFIG, '--batch-size', '0'], '--batch-size must be positive'),
])
def test_get_flops_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        get_flops.parse_args(argv)
    assert message in capsys.readouterr().err


def test_get_flops_parses_cfg_options():
    args = get_flops.parse_args([DET_CONFIG, '--shape', '64', '--cfg-options', 'model.backbone.drop_path_rate=0.'])
    assert args.shape == [64] and args.cfg_options == {'model.backbone.drop_path_rate': 0.}


@pytest.mark.parametrize('argv', [
    ['nonsense'],
    ['backbone', '--precisions', 'fp64'],
    ['backbone', '--batch-sizes', '0'],
    ['backbone', '--settings', 'huge'],
    ['attention', '--resolutions', '-224'],
    ['config'],
    ['official', '--variants', 'LIT-*', '--batch-sizes', '0'],
    ['report', '--skip', 'nothing'],
])
def test_benchmark_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit):
        benchmark.main(argv)


def test_benchmark_names_unknown_models_and_configs():
    with pytest.raises(SystemExit, match='no model matches'):
        benchmark.main(['backbone', '--models', 'NoSuchNet-*'])
    with pytest.raises(SystemExit, match='config file not found'):
        benchmark.main(['config', 'missing.py'])
    with pytest.raises(SystemExit, match='no attention layer matches'):
        benchmark.main(['attention', '--quick', '--layers', 'nope'])
    with pytest.raises(SystemExit, match='needs --repo PATH'):
        benchmark.main(['official'])
    with pytest.raises(SystemExit, match='no such folder'):
        benchmark.main(['official', '--repo', 'no/such/clone'])


def test_benchmark_lists_models(capsys):
    benchmark.main(['backbone', '--list'])
    assert 'LITv2-small-ws4' in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------- FLOP counting

class _SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class _ExplicitAttention(nn.Module):
    def forward(self, q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -.5, dim=-1) @ v


def test_fused_attention_counts_like_the_explicit_matmuls():
    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    fused = count_complexity(_SDPA(), (q, k, v))['flops']
    explicit = count_complexity(_ExplicitAttention(), (q, k, v))['flops']
    assert fused == explicit == 2 * 3 * 10 * 6 * (8 + 5)


def test_deformable_conv_counts_like_a_conv():
    dconv = BiasedDeformConv2d(8, 16, 2, 2)
    x = torch.randn(1, 8, 12, 20)
    out_pixels = 6 * 10
    expected = out_pixels * 16 * 8 * 4 + out_pixels * dconv.conv_offset.out_channels * 8 * 4  # dconv + offset conv
    assert count_complexity(dconv, (x, ))['flops'] == expected


def test_litv2_small_classifier_matches_the_paper():
    """Params within 1% of 27.84 M and FLOPs within 5% of 3.7 G at 224, through get_flops on the ImageNet config."""
    result = get_flops.main([CLS_CONFIG, '--shape', '224'])
    assert result['params'] / 1e6 == pytest.approx(27.84, rel=.01)
    assert result['flops'] / 1e9 == pytest.approx(3.7, rel=.05)


def test_get_flops_on_a_detector_config(tmp_path):
    """Params equal the built model's own count; the input is padded as the data preprocessor does; JSON output."""
    from mmengine.config import Config
    out = tmp_path / 'flops.json'
    result = get_flops.main([DET_CONFIG, '--shape', '90', '120', '--json', str(out)])
    model = build_config_model(Config.fromfile(DET_CONFIG))
    assert result['params'] == sum(p.numel() for p in model.parameters())
    assert result['padded_shape'] == [96, 128]  # mmdet pads to a multiple of 32
    assert json.loads(out.read_text())['flops'] == result['flops'] > 0


def test_flops_of_a_segmentor_scale_with_the_input():
    from mmengine.config import Config
    model = build_config_model(Config.fromfile(SEG_CONFIG))
    flops = []
    for size in (64, 128):
        inputs, samples = config_inputs(model, 'mmseg', (size, size))
        flops.append(count_complexity(config_forward(model, samples), (inputs, ))['flops'])
    assert 3.5 < flops[1] / flops[0] < 4.5


# ----------------------------------------------------------------------------------------------- measuring

def test_backbone_mode_quick(tmp_path, capsys):
    json_path, csv_path = tmp_path / 'rows.json', tmp_path / 'rows.csv'
    rows = benchmark.main(['backbone', '--quick', '--models', 'LVT-mobile', 'PVTv2-B0', 'ResNet-50',
                           '--settings', 'cls', '--batch-sizes', '1', '2', '--json', str(json_path),
                           '--csv', str(csv_path)])
    assert len(rows) == 3 * 2 * 2  # models x batches x precisions
    own = {s.name: sum(p.numel() for p in s.build().parameters())
           for s in select_models(['LVT-mobile', 'PVTv2-B0', 'ResNet-50'])}
    for r in rows:
        assert 'error' not in r, r
        assert r['params'] == own[r['model']]
        assert r['peak_mem_mb'] is not None
        assert r['latency_p25_ms'] <= r['latency_ms'] <= r['latency_p75_ms']
        assert r['throughput'] == pytest.approx(r['batch'] * 1e3 / r['latency_ms'])
        assert r['gflops_per_s'] == pytest.approx(r['flops'] * r['throughput'] / 1e9)
    for model in own:  # FLOPs are per image: the same for every batch and precision
        assert len({r['flops'] for r in rows if r['model'] == model}) == 1
    out = capsys.readouterr()
    # table on stdout, progress on stderr (one step per setting, batch and precision: the models run interleaved)
    assert 'LVT-mobile' in out.out and 'img/s' in out.out and '4/4 cls b2 amp' in out.err
    assert len(json.loads(json_path.read_text())['rows']) == len(rows)
    assert len(csv_path.read_text().strip().splitlines()) == len(rows) + 1


def test_training_mode_quick(capsys):
    rows = benchmark.main(['training', '--quick'])
    assert [r['dtm'] for r in rows] == ['op', 'mmcv'] and rows[0]['speedup'] > 0
    assert 'deformable-conv share' in capsys.readouterr().out


def test_report_quick(tmp_path):
    rows = benchmark.main(['report', '--quick', '--models', 'LVT-mobile', 'MiT-B0', '--precisions', 'fp32',
                           '--out-dir', str(tmp_path), '--skip', 'config', '--cls-configs', 'configs/lvt/*in1k*.py',
                           '--deploy-models', 'LVT-mobile'])
    report = (tmp_path / 'benchmark.md').read_text()
    for text in ('## Speed targets', 'LVT vs MiT-B0', 'HiLo vs MSA explicit', 'HiLo vs fused MSA',
                 'GFLOP/s / fp32 GEMM peak', '## Efficiency', '## Attention layers', '## Profiler',
                 '## Dense models vs the papers', '## Classification models vs the papers', 'no GPU',
                 '## Deployment runtimes', '| LVT-mobile | 2x3x64x96 |', 'Demo RetinaNet training iteration',
                 '## Training: the deformable conv of DTM', '| RetinaNet LITv2-demo | mmcv | 2x3x64x64 |'):
        assert text in report, text
    for png in ('benchmark_throughput_vs_flops.png', 'benchmark_attention_resolution.png'):
        assert (tmp_path / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    saved = json.loads((tmp_path / 'benchmark.json').read_text())
    assert len(saved['rows']) == len(rows) and saved['meta']['machine']['cpu_count'] >= 1
