"""mmvit_ext.benchmark.suites: the attention layers against the HiLo paper's table, the attention suite."""
import pytest
import torch

from mmvit_ext.analysis import count_complexity
from mmvit_ext.benchmark.references import PAPER_ATTENTION
from mmvit_ext.benchmark.suites import WithSize, add_ratio, attention_layers, bench_attention
from mmvit_ext.benchmark.timing import RunOptions


def test_attention_layers_match_the_hilo_paper_table():
    """HiLo paper Table IV (ViT-B layer, 14x14 tokens): params and FLOPs per layer (both MSA forms alike)."""
    layers = attention_layers(768, 12)
    x = torch.randn(1, 196, 768)
    for name, (params_m, mflops, _) in PAPER_ATTENTION.items():
        counted = count_complexity(WithSize(layers[name](), (14, 14)), (x, ))
        assert counted['params'] / 1e6 == pytest.approx(params_m, rel=.01), name
        assert counted['flops'] / 1e6 == pytest.approx(mflops, rel=.01), name


def test_attention_suite_quick():
    rows = bench_attention([64, 128], 64, 4, 2, None, ['fp32'], RunOptions(torch.device('cpu'), 0, 2, .2),
                           progress=False)
    assert {r['layer'] for r in rows} == set(attention_layers(64, 4))
    for r in rows:
        assert 'error' not in r, r
        if r['layer'] == 'MSA':
            assert r['ratio_to_msa'] == pytest.approx(1.)
    # Same tokens per run at every resolution: batch shrinks as the map grows.
    assert {r['batch'] for r in rows if r['resolution'] == 64} == {2}
    assert {r['batch'] for r in rows if r['resolution'] == 128} == {1}
    flops = {(r['layer'], r['resolution']): r['flops'] for r in rows}
    assert all(flops['HiLo', res] < flops['MSA', res] == flops['MSA explicit', res] for res in (64, 128))


def test_attention_suite_reports_a_broken_layer_and_times_the_others(monkeypatch):
    from mmvit_ext.benchmark import suites
    layers = attention_layers(64, 4)

    def broken():
        raise ValueError('no such layer setting')

    class OneImageOnly(torch.nn.Module):  # runs for the FLOP count (one image), fails in the timed batch
        def forward(self, x, hw):
            if x.shape[0] > 1:
                raise RuntimeError('batch too large')
            return x

    monkeypatch.setattr(suites, 'attention_layers', lambda dim, heads: {
        'MSA': layers['MSA'], 'HiLo': layers['HiLo'], 'Broken': broken, 'OneImageOnly': OneImageOnly})
    rows = bench_attention([64], 64, 4, 2, None, ['fp32'], RunOptions(torch.device('cpu'), 0, 2, .2),
                           progress=False)
    assert [r['layer'] for r in rows] == ['MSA', 'HiLo', 'Broken', 'OneImageOnly']
    assert rows[2]['error'] == 'ValueError: no such layer setting' and 'throughput' not in rows[2]
    assert rows[3]['error'] == 'RuntimeError: batch too large' and 'throughput' not in rows[3]
    assert rows[1]['ratio_to_msa'] == pytest.approx(rows[1]['throughput'] / rows[0]['throughput'])


def test_add_ratio_pairs_rows_by_key():
    rows = [dict(layer='MSA', res=1, throughput=10.), dict(layer='HiLo', res=1, throughput=15.),
            dict(layer='HiLo', res=2, throughput=5.), dict(layer='CSA', res=1, error='x')]
    add_ratio(rows, 'MSA', key=('res', ))
    assert [r['ratio_to_msa'] for r in rows] == [1., 1.5, None, None]
