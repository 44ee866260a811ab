"""Timing primitives: repeated runs with spread, interleaved A/B runs, peak memory, precisions, the GEMM peak.

- ``time_forward``: median latency with the inter-quartile range after warm-up, bounded by a time budget.
- ``time_interleaved``: two or more callables timed in alternation (A B A B ...), so that a load change on a shared
  machine hits every side alike; their ratio is far steadier than two separate measurements.
- ``PeakMemory``: CUDA max-allocated growth on GPU, sampled process-RSS growth on CPU.
- ``measure``: latency, throughput and peak memory of one forward under a precision (``fp32`` / ``amp``);
  ``measure_interleaved`` the same for several forwards timed in alternation.
- ``gemm_peak``: achieved GFLOP/s of a large square matmul, the yardstick of every model's efficiency.
"""
import ctypes
import gc
import math
import os
import statistics
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

__all__ = ['Timing', 'time_forward', 'time_interleaved', 'PeakMemory', 'autocast_context', 'RunOptions',
           'measure', 'measure_interleaved', 'ProgressBar', 'gemm_peak', 'cpu_features']


@dataclass
class Timing:
    """Latencies of repeated runs in seconds; ``median`` and the inter-quartile range ``p25``-``p75``."""
    runs: List[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.runs)
        pos = q * (len(ordered) - 1)
        low = int(math.floor(pos))
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    def summary(self, batch: int = 1) -> Dict[str, float]:
        """Median latency, its spread and ``batch / median`` throughput."""
        return dict(latency_ms=self.median * 1e3, latency_p25_ms=self.quantile(.25) * 1e3,
                    latency_p75_ms=self.quantile(.75) * 1e3, runs=len(self.runs),
                    throughput=batch / self.median)


def _synchronize(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_forward(fn: Callable[[], Any], device: torch.device, warmup: int = 2, repeat: int = 10,
                 max_seconds: float = 10., min_repeat: int = 3) -> Timing:
    """Call ``fn`` ``warmup`` times, then time up to ``repeat`` calls, stopping early (after at least
    ``min_repeat``) once ``max_seconds`` of timed runs have passed."""
    for _ in range(warmup):
        fn()
    _synchronize(device)
    timing = Timing()
    spent = 0.
    while len(timing.runs) < repeat and (len(timing.runs) < min_repeat or spent < max_seconds):
        start = time.perf_counter()
        fn()
        _synchronize(device)
        timing.runs.append(time.perf_counter() - start)
        spent += timing.runs[-1]
    return timing


def time_interleaved(fns: Sequence[Callable[[], Any]], device: torch.device, warmup: int = 1, repeat: int = 10,
                     max_seconds: float = 10., min_repeat: int = 3) -> List[Timing]:
    """Time ``fns`` in alternation: each round calls every function once, in turn, and times each call.

    Stops after ``repeat`` rounds, or after ``min_repeat`` rounds once ``max_seconds`` of timed runs have passed.
    Returns one ``Timing`` per function, in order."""
    if not fns:
        raise ValueError('time_interleaved needs at least one function')
    for _ in range(warmup):
        for fn in fns:
            fn()
    _synchronize(device)
    timings = [Timing() for _ in fns]
    spent = 0.
    while len(timings[0].runs) < repeat and (len(timings[0].runs) < min_repeat or spent < max_seconds):
        for fn, timing in zip(fns, timings):
            start = time.perf_counter()
            fn()
            _synchronize(device)
            timing.runs.append(time.perf_counter() - start)
            spent += timing.runs[-1]
    return timings


try:
    _PAGE_SIZE = os.sysconf('SC_PAGE_SIZE')
except (AttributeError, ValueError):  # no POSIX sysconf: RSS sampling is unavailable, PeakMemory reports None
    _PAGE_SIZE = None


def _release_freed_memory():
    """Return freed heap memory to the OS (glibc ``malloc_trim``), so that RSS growth measures the run itself
    rather than whatever earlier runs left cached in the allocator. A no-op elsewhere."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


class PeakMemory:
    """Peak memory growth inside the ``with`` block, in bytes (``.peak``).

    CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation at entry (tensors only, what the papers call
    test memory). CPU: process resident set size sampled every ``interval`` seconds by a background thread, minus the
    RSS at entry after freed heap memory was returned to the OS (allocator overheads included, so it approximates
    the tensors' needs from above). ``None`` where neither is available.
    """

    def __init__(self, device: torch.device, interval: float = .002):
        self.device = device
        self.interval = interval
        self.peak: Optional[int] = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif _PAGE_SIZE is not None:
            _release_freed_memory()
            self._base = self._max = _rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self._max = max(self._max, _rss_bytes())
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, _rss_bytes())
            self.peak = self._max - self._base
        return False


def autocast_context(device: torch.device, precision: str):
    """``fp32``: no autocast; ``amp``: autocast in bf16 on CPU, fp16 on CUDA (the contract's autocast setting)."""
    if precision == 'fp32':
        return nullcontext()
    if precision != 'amp':
        raise ValueError(f'precision must be "fp32" or "amp", got "{precision}"')
    dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype)


@dataclass
class RunOptions:
    """Where and how long to time: device, untimed warm-up runs, timed runs at most, seconds per measurement."""
    device: torch.device
    warmup: int = 2
    repeat: int = 20
    max_seconds: float = 3.


def measure(forward: Callable[[], object], opts: RunOptions, precision: str, batch: int) -> dict:
    """Latency / throughput and peak memory of one extra run, under ``precision``."""
    return measure_interleaved([forward], opts, precision, [batch])[0]


def measure_interleaved(forwards: Sequence[Callable[[], object]], opts: RunOptions, precision: str,
                        batches: Sequence[int]) -> List[dict]:
    """``measure`` of several forwards timed in alternation (``time_interleaved``), so that their ratios come from
    one run: a machine that slows down for a while slows all of them alike. Each gets ``opts.max_seconds`` of timed
    runs on average. One row per forward, in order."""
    def under_precision(forward):
        def run():
            with torch.no_grad(), autocast_context(opts.device, precision):
                return forward()
        return run

    runs = [under_precision(f) for f in forwards]
    timings = time_interleaved(runs, opts.device, warmup=opts.warmup, repeat=opts.repeat,
                               max_seconds=opts.max_seconds * len(runs))
    rows = []
    for run, timing, batch in zip(runs, timings, batches):
        with PeakMemory(opts.device) as memory:
            run()
        row = timing.summary(batch)
        row['peak_mem_mb'] = None if memory.peak is None else memory.peak / 2 ** 20
        rows.append(row)
    return rows


class ProgressBar:
    """A one-line progress bar on stderr (keeps stdout for the tables)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = max(total, 1), 0, enabled

    def step(self, label: str):
        self.done += 1
        if self.enabled:
            filled = int(30 * self.done / self.total)
            sys.stderr.write(f'\r[{"#" * filled}{"." * (30 - filled)}] {self.done}/{self.total} {label[:60]:<60}')
            if self.done == self.total:
                sys.stderr.write('\n')
            sys.stderr.flush()


def gemm_peak(device: torch.device, size: int = 2048, dtype: torch.dtype = torch.float32, repeat: int = 10,
              max_seconds: float = 3.) -> dict:
    """Achieved GFLOP/s of ``size x size @ size x size`` in ``dtype``, counted like the models' FLOPs
    (one multiply-add = one FLOP, ``size ** 3`` per product), and the same in the usual 2-FLOP convention.

    The faster of the two GEMM libraries our models run on: PyTorch's ``torch.mm`` (MKL for fp32 on a CPU) and
    oneDNN's matmul (``layers.onednn.linear``, which the linear layers use in fp32 CPU inference; ``torch.mm`` runs
    bf16 on oneDNN already); ``backend`` says which.
    """
    from ..models.layers import linear
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device, dtype)
    b = torch.randn(size, size, generator=gen).to(device, dtype)
    candidates = {'torch.mm': lambda: torch.mm(a, b)}
    if device.type == 'cpu' and dtype == torch.float32:
        candidates['oneDNN'] = lambda: linear(a, b)  # a @ b^T: the same FLOPs
    with torch.no_grad():
        timings = {name: time_forward(fn, device, warmup=2, repeat=repeat, max_seconds=max_seconds).median
                   for name, fn in candidates.items()}
    backend = min(timings, key=timings.get)
    macs_per_s = size ** 3 / timings[backend]
    return dict(size=size, dtype=str(dtype).replace('torch.', ''), latency_ms=timings[backend] * 1e3,
                gmacs=macs_per_s / 1e9, gflops_2x=2 * macs_per_s / 1e9, backend=backend)


def cpu_features() -> Dict[str, bool]:
    """The CPU's bf16 / matrix extensions from ``/proc/cpuinfo`` (empty off Linux): what bf16 autocast can use."""
    try:
        with open('/proc/cpuinfo') as f:
            flags = next((line.split(':', 1)[1].split() for line in f if line.startswith('flags')), [])
    except OSError:
        return {}
    return {name: name in flags for name in ('avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16')}
