"""tools/analysis_tools/get_flops.py and benchmark.py: arguments, FLOP counting against hand counts and the papers,
quick runs of every mode on tiny sizes, the report."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmvit_ext.analysis import PeakMemory, Timing, build_config_model, config_forward, config_inputs, count_complexity
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


# ----------------------------------------------------------------------------------------------- discovery

def test_unique_archs_collapses_aliases():
    small, base = dict(d=1), dict(d=2)
    assert benchmark.unique_archs({'s': small, 'small': small, 'b': base, 'base': dict(d=2)}) == ['small', 'base']


def test_every_family_and_baseline_is_discovered(capsys):
    names = {s.name for s in benchmark.select_models(None)}
    expected = {'LIT-tiny', 'LIT-small', 'LIT-medium', 'LIT-base', 'LITv2-small', 'LITv2-medium', 'LITv2-base',
                'LITv2-small-ws4', 'LightViT-tiny', 'LightViT-small', 'LightViT-base', 'LVT-mobile',
                'Swin-T', 'PVTv2-B0', 'PVTv2-B2', 'MiT-B0', 'ResNet-50'}
    assert expected <= names, expected - names
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


def test_attention_layers_match_the_hilo_paper_table():
    """HiLo paper Table IV (ViT-B layer, 14x14 tokens): params and FLOPs per layer."""
    layers = benchmark.attention_layers(768, 12)
    x = torch.randn(1, 196, 768)
    for name, (params_m, mflops, _) in benchmark.PAPER_ATTENTION.items():
        counted = count_complexity(benchmark._WithSize(layers[name](), (14, 14)), (x, ))
        assert counted['params'] / 1e6 == pytest.approx(params_m, rel=.01), name
        assert counted['flops'] / 1e6 == pytest.approx(mflops, rel=.01), name


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

def test_timing_statistics():
    timing = Timing([.4, .1, .3, .2])
    assert timing.median == pytest.approx(.25)
    summary = timing.summary(batch=8)
    assert summary['latency_p25_ms'] == pytest.approx(175) and summary['latency_p75_ms'] == pytest.approx(325)
    assert summary['throughput'] == pytest.approx(32)


def test_peak_memory_sees_every_run():
    """CPU: RSS growth of a run that allocates 64 MB, also when an earlier run freed the same amount."""
    for _ in range(2):
        with PeakMemory(torch.device('cpu')) as memory:
            x = torch.ones(16, 1024, 1024)
        del x
        assert 60 * 2 ** 20 < memory.peak < 200 * 2 ** 20


def test_backbone_mode_quick(tmp_path, capsys):
    json_path, csv_path = tmp_path / 'rows.json', tmp_path / 'rows.csv'
    rows = benchmark.main(['backbone', '--quick', '--models', 'LVT-mobile', 'PVTv2-B0', 'ResNet-50',
                           '--settings', 'cls', '--batch-sizes', '1', '2', '--json', str(json_path),
                           '--csv', str(csv_path)])
    assert len(rows) == 3 * 2 * 2  # models x batches x precisions
    own = {s.name: sum(p.numel() for p in s.build().parameters())
           for s in benchmark.select_models(['LVT-mobile', 'PVTv2-B0', 'ResNet-50'])}
    for r in rows:
        assert 'error' not in r, r
        assert r['params'] == own[r['model']]
        assert r['peak_mem_mb'] is not None
        assert r['latency_p25_ms'] <= r['latency_ms'] <= r['latency_p75_ms']
        assert r['throughput'] == pytest.approx(r['batch'] * 1e3 / r['latency_ms'])
    for model in own:  # FLOPs are per image: the same for every batch and precision
        assert len({r['flops'] for r in rows if r['model'] == model}) == 1
    out = capsys.readouterr()
    assert 'LVT-mobile' in out.out and 'img/s' in out.out and '12/12' in out.err  # table on stdout, progress on stderr
    assert len(json.loads(json_path.read_text())['rows']) == len(rows)
    assert len(csv_path.read_text().strip().splitlines()) == len(rows) + 1


def test_attention_mode_quick():
    rows = benchmark.main(['attention', '--quick', '--precisions', 'fp32'])
    layers = {r['layer'] for r in rows}
    assert layers == set(benchmark.attention_layers(64, 4)), layers
    for r in rows:
        assert 'error' not in r, r
        if r['layer'] == 'MSA':
            assert r['ratio_to_msa'] == pytest.approx(1.)
    # Same tokens per run at every resolution: batch shrinks as the map grows.
    assert {r['batch'] for r in rows if r['resolution'] == 64} == {2}
    hilo = {r['resolution']: r['flops'] for r in rows if r['layer'] == 'HiLo'}
    msa = {r['resolution']: r['flops'] for r in rows if r['layer'] == 'MSA'}
    assert all(hilo[res] < msa[res] for res in hilo)


def test_profile_shows_no_loops_over_windows_or_heads():
    """Op calls per forward do not grow with the input (4x the tokens and windows): at most a few size-dependent
    ops (padding, position-table resizing) differ, where a per-window or per-head loop would multiply them."""
    specs = benchmark.select_models(['LIT-tiny', 'LITv2-small', 'LightViT-tiny', 'LVT-mobile'])
    for row in benchmark.profile_backbones(specs, (64, 64), torch.device('cpu'), progress=False):
        assert 'error' not in row, row
        assert abs(row['aten_calls_2x'] - row['aten_calls']) <= .02 * row['aten_calls'], row
        assert row['max_calls_op'] not in benchmark.VIEW_OPS
        assert any(t['op'] in ('aten::addmm', 'aten::mm', 'aten::_scaled_dot_product_flash_attention_for_cpu')
                   for t in row['top_ops']), row['top_ops']


def test_report_quick(tmp_path):
    rows = benchmark.main(['report', '--quick', '--models', 'LVT-mobile', 'MiT-B0', '--precisions', 'fp32',
                           '--out-dir', str(tmp_path), '--skip', 'config', '--cls-configs', 'configs/lvt/*in1k*.py'])
    report = (tmp_path / 'benchmark.md').read_text()
    for text in ('## Speed targets', 'LVT vs MiT-B0', 'HiLo vs MSA', '## Attention layers', '## Profiler',
                 '## Dense models vs the papers',
                 '## Classification models vs the papers', 'no GPU'):
        assert text in report, text
    for png in ('benchmark_throughput_vs_flops.png', 'benchmark_attention_resolution.png'):
        assert (tmp_path / png).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    saved = json.loads((tmp_path / 'benchmark.json').read_text())
    assert len(saved['rows']) == len(rows) and saved['meta']['machine']['cpu_count'] >= 1


def test_op_groups_attribute_time_to_what_ran():
    dwconv, conv, fc = nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8, 8)
    merge = BiasedDeformConv2d(8, 16, 2, stride=2)
    x = torch.randn(1, 8, 16, 16)

    def forward():
        q = fc(dwconv(x).flatten(2).transpose(1, 2)).unsqueeze(1)
        return F.scaled_dot_product_attention(q, q, q)

    cpu = torch.device('cpu')
    groups = benchmark.time_by_op_group(forward, cpu)
    assert list(groups) == list(benchmark.OP_GROUPS)
    for ran in ('depthwise conv', 'matmul (linear layers, explicit attention)', 'fused attention (SDPA)'):
        assert groups[ran] > 0, ran
    assert groups['dense conv'] == groups['deformable conv (DTM)'] == 0
    groups = benchmark.time_by_op_group(lambda: conv(x), cpu)
    assert groups['dense conv'] > 0 and groups['depthwise conv'] == 0
    # DTM: its offsets come from a dense conv, the sampling and the product run inside the deformable conv.
    groups = benchmark.time_by_op_group(lambda: merge(x), cpu)
    assert groups['deformable conv (DTM)'] > groups['matmul (linear layers, explicit attention)'] == 0


def test_missed_target_is_explained_with_both_profiles():
    target = dict(target='LVT vs MiT-B0, 512x512', models=(('lvt-mobile', ), ('mit-b0', )), setting='seg', batch=1)
    specs = benchmark.select_models(['LVT-mobile', 'MiT-B0'])
    explanation = benchmark.explain_target(target, specs, torch.device('cpu'), quick=True)
    assert set(explanation['groups']) == {'LVT-mobile', 'MiT-B0'}
    lines = benchmark.explanation_lines([explanation], [])
    text = '\n'.join(lines)
    assert '### LVT vs MiT-B0, 512x512 (1x96x96)' in text and benchmark.TARGET_NOTES['LVT vs MiT-B0, 512x512'] in text
    total = next(line for line in lines if line.startswith('| total'))
    lvt, mit = (sum(g.values()) for g in explanation['groups'].values())
    assert total == f'| total | {lvt:.1f} | {mit:.1f} | {lvt - mit:+.1f} |'
    missing = benchmark.explain_target(dict(target, models=(('nope', ), ('mit-b0', ))), specs, torch.device('cpu'))
    assert 'no model among' in missing['error']
