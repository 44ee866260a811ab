"""mmvit_ext.benchmark.targets: each target's ratio and verdict from hand-made rows."""
import pytest

from mmvit_ext.benchmark import targets
from mmvit_ext.benchmark.targets import (attention_targets, backbone_targets, config_targets, efficiency_targets,
                                         official_targets, training_targets)


def _backbone(model, setting, batch, precision, throughput, flops=1e9):
    return dict(mode='backbone', model=model, setting=setting, batch=batch, precision=precision,
                throughput=throughput, flops=flops, gflops_per_s=flops * throughput / 1e9)


def test_backbone_targets_use_fp32_at_the_largest_batch():
    rows = [_backbone('LVT-mobile', 'seg', 1, 'fp32', 8.), _backbone('MiT-B0', 'seg', 1, 'fp32', 10.),
            _backbone('LITv2-small', 'cls', 1, 'fp32', 1.), _backbone('LITv2-small', 'cls', 8, 'fp32', 20.),
            _backbone('LITv2-small', 'cls', 8, 'amp', 99.), _backbone('Swin-T', 'cls', 8, 'fp32', 25.)]
    found = {t['target']: t for t in backbone_targets(rows)}
    lvt = found['LVT vs MiT-B0 backbone, 512x512']
    assert lvt['measured'] == pytest.approx(.8) and lvt['met'] and lvt['need'] == .8
    swin = found['LITv2-S vs Swin-T, 224x224']
    assert swin['measured'] == pytest.approx(.8) and swin['met'] is False and swin['batch'] == 8
    assert found['LITv2-S vs LIT-S, 224x224']['met'] is None  # LIT-S not measured


def test_attention_targets_against_explicit_msa_and_the_flop_bound():
    rows = [dict(layer='HiLo', resolution=224, precision='fp32', throughput=300., flops=3e8, batch=64),
            dict(layer='MSA', resolution=224, precision='fp32', throughput=180., flops=5.25e8, batch=64),
            dict(layer='MSA explicit', resolution=224, precision='fp32', throughput=140., flops=5.25e8, batch=64),
            dict(layer='HiLo', resolution=384, precision='fp32', throughput=1., flops=1., batch=8)]
    explicit, bound = attention_targets(rows)
    assert explicit['measured'] == pytest.approx(300 / 140) and explicit['met']
    assert bound["measured"] == pytest.approx((300 / 180) / 1.75) and bound["met"]  # 0.952 >= 0.95
    assert bound['layers'] == ('HiLo', 'MSA')


def test_efficiency_targets(monkeypatch):
    rows = [_backbone('LITv2-small', 'cls', 8, 'fp32', 20., flops=3.7e9),
            _backbone('LITv2-small', 'cls', 8, 'amp', 30., flops=3.7e9)]
    gemm = {'fp32': dict(gmacs=100.)}
    monkeypatch.setattr(targets, 'cpu_features', lambda: {'avx512_bf16': True, 'amx_bf16': False})
    share, amp = efficiency_targets(rows, gemm)
    assert share['measured'] == pytest.approx(.74) and share['met']
    assert amp['measured'] == pytest.approx(1.5) and amp['need'] == 1.3 and 'avx512_bf16' in amp['target']
    monkeypatch.setattr(targets, 'cpu_features', lambda: {'avx512_bf16': False, 'amx_bf16': False})
    assert efficiency_targets(rows, gemm)[1]['need'] is None  # reported only without bf16 instructions


def test_config_and_official_targets():
    configs = [dict(model='segformer_lvt_8xb2', precision='fp32', fps=4.5),
               dict(model='segformer_mit-b0_8xb2', precision='fp32', fps=5.)]
    assert config_targets(configs)[0]['measured'] == pytest.approx(.9)
    official = [dict(model='LIT-tiny', setting='cls', input='224x224', batch=8, speedup=1.1, ours_ms=10.,
                     official_ms=11., max_abs_diff=1e-6),
                dict(model='LIT-tiny', setting='dense', input='800x1216', batch=1, speedup=1.4, ours_ms=1.,
                     official_ms=1.4, max_abs_diff=1e-6),
                dict(model='LVT-mobile', setting='cls', input='224x224', batch=1, error='AssertionError: differ')]
    cls, dense, failed = official_targets(official)
    assert cls['met'] and dense['met'] is False and dense['need'] == 1.5
    assert failed['met'] is None and 'differ' in failed['detail']


def test_training_target_from_both_sides_or_the_error():
    rows = [dict(mode='training', dtm='op', latency_ms=150., dtm_share=.14, speedup=1.5),
            dict(mode='training', dtm='mmcv', latency_ms=225., dtm_share=.45)]
    (target, ) = training_targets(rows)
    assert target['met'] and target['measured'] == 1.5 and target['need'] == 1.25
    assert '150 vs 225 ms' in target['detail'] and '14% vs 45%' in target['detail']
    (failed, ) = training_targets([dict(mode='training', error='RuntimeError: no mmcv ops')])
    assert failed['met'] is None and 'no mmcv ops' in failed['detail']
