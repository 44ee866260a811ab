"""mmvit_ext.benchmark.timing: statistics, interleaved timing, peak memory, GEMM peak, CPU features."""
import time

import pytest
import torch

from mmvit_ext.benchmark.timing import (PeakMemory, RunOptions, Timing, autocast_context, cpu_features, gemm_peak,
                                        measure_interleaved, time_forward, time_interleaved)

CPU = torch.device('cpu')


def test_timing_statistics():
    timing = Timing([.4, .1, .3, .2])
    assert timing.median == pytest.approx(.25)
    summary = timing.summary(batch=8)
    assert summary['latency_p25_ms'] == pytest.approx(175) and summary['latency_p75_ms'] == pytest.approx(325)
    assert summary['throughput'] == pytest.approx(32)


def test_time_forward_stops_at_the_budget():
    calls = []
    timing = time_forward(lambda: (calls.append(1), time.sleep(.01)), CPU, warmup=2, repeat=100, max_seconds=.03)
    assert 3 <= len(timing.runs) < 10 and len(calls) == len(timing.runs) + 2


def test_interleaved_timing_alternates_and_separates_the_sides():
    order = []
    fast = lambda: (order.append('a'), time.sleep(.002))  # noqa: E731
    slow = lambda: (order.append('b'), time.sleep(.02))  # noqa: E731
    a, b = time_interleaved([fast, slow], CPU, warmup=1, repeat=4, max_seconds=10.)
    assert order == ['a', 'b'] * 5  # one warm-up round, then four timed rounds in turn
    assert len(a.runs) == len(b.runs) == 4
    assert b.median / a.median > 3
    with pytest.raises(ValueError, match='at least one'):
        time_interleaved([], CPU)


def test_measure_interleaved_alternates_under_the_precision():
    order = []

    def forward(name, seconds):
        def run():
            order.append((name, torch.is_grad_enabled(), torch.is_autocast_enabled('cpu')))
            time.sleep(seconds)
        return run

    rows = measure_interleaved([forward('a', .002), forward('b', .01)], RunOptions(CPU, 1, 3, 10.), 'amp', [2, 4])
    assert [name for name, *_ in order] == ['a', 'b'] * 5  # warm-up, three timed rounds, one memory run each
    assert all(not grad and autocast for _, grad, autocast in order)
    assert [r['runs'] for r in rows] == [3, 3]
    assert rows[1]['latency_ms'] > 3 * rows[0]['latency_ms']
    assert rows[0]['throughput'] == pytest.approx(2e3 / rows[0]['latency_ms'])
    assert rows[1]['throughput'] == pytest.approx(4e3 / rows[1]['latency_ms'])


def test_peak_memory_sees_every_run():
    """CPU: RSS growth of a run that allocates 64 MB, also when an earlier run freed the same amount."""
    for _ in range(2):
        with PeakMemory(CPU) as memory:
            x = torch.ones(16, 1024, 1024)
        del x
        assert 60 * 2 ** 20 < memory.peak < 200 * 2 ** 20


def test_autocast_context_names_bad_precisions():
    with autocast_context(CPU, 'amp'):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match='"fp32" or "amp"'):
        autocast_context(CPU, 'fp16')


def test_gemm_peak_counts_multiply_adds():
    peak = gemm_peak(CPU, size=128, repeat=3, max_seconds=.1)
    assert peak['gmacs'] == pytest.approx(128 ** 3 / (peak['latency_ms'] / 1e3) / 1e9)
    assert peak['gflops_2x'] == pytest.approx(2 * peak['gmacs']) and peak['dtype'] == 'float32'
    assert peak['backend'] in ('torch.mm', 'oneDNN')
    assert gemm_peak(CPU, size=64, dtype=torch.bfloat16, repeat=3, max_seconds=.1)['backend'] == 'torch.mm'


def test_cpu_features_read_the_flags():
    features = cpu_features()
    assert set(features) == {'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16'} or features == {}
    assert all(isinstance(v, bool) for v in features.values())
