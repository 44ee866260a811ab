"""The benchmark behind ``tools/analysis_tools/benchmark.py``: speed, memory, params and FLOPs of the backbones,
whole models and attention layers, the comparison with the official code, and ``docs/benchmark.md``.

Modules: ``timing`` (repeated and interleaved timing, peak memory, GEMM peak), ``models`` (the backbones measured),
``baselines`` (upstream models and baseline attention layers), ``suites`` (the measurement loops of the modes),
``profiling`` (top ops, op-group breakdowns), ``references`` (the papers' numbers), ``targets`` (the speed targets
and their verdicts), ``official`` (ours against the official code), ``training`` (a demo training iteration, DTM on
our deformable-conv op against mmcv's), ``tables`` (text / Markdown / JSON / CSV), ``plots`` and ``report`` (the
whole report).
"""
from .models import ModelSpec, select_models, unique_archs
from .timing import PeakMemory, RunOptions, Timing, measure, measure_interleaved, time_forward, time_interleaved

__all__ = ['ModelSpec', 'select_models', 'unique_archs', 'PeakMemory', 'RunOptions', 'Timing', 'measure',
           'measure_interleaved', 'time_forward', 'time_interleaved']
