"""Rows as text or Markdown tables, JSON / CSV files, and where the numbers come from (the machine)."""
import csv
import datetime
import json
import os
import os.path as osp
import platform
import re
from typing import List, Optional, Sequence

import torch

from ..analysis import format_count

__all__ = ['COLUMNS', 'fmt', 'latency_text', 'cell', 'table', 'write_outputs', 'machine_info']


def fmt(value, digits: int = 1) -> str:
    """``None -> '-'``; floats with ``digits`` decimals; anything else as ``str``."""
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def latency_text(row: dict) -> str:
    """'12.3 [11.9-12.8]': median latency in ms with the inter-quartile range."""
    if 'latency_ms' not in row:
        return '-'
    return f'{row["latency_ms"]:.1f} [{row["latency_p25_ms"]:.1f}-{row["latency_p75_ms"]:.1f}]'


COLUMNS = {
    'backbone': [('model', 'model'), ('setting', 'setting'), ('input', 'input'), ('batch', 'batch'),
                 ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
                 ('throughput', 'img/s'), ('gflops_per_s', 'GFLOP/s'), ('peak_mem_mb', 'mem MB')],
    'config': [('model', 'config'), ('input', 'input'), ('padded', 'padded'), ('batch', 'batch'),
               ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
               ('fps', 'FPS'), ('peak_mem_mb', 'mem MB')],
    'attention': [('layer', 'layer'), ('resolution', 'res'), ('tokens', 'tokens'), ('batch', 'batch'),
                  ('precision', 'prec'), ('params', 'params'), ('flops', 'FLOPs/img'), ('latency', 'latency ms'),
                  ('throughput', 'img/s'), ('ratio_to_msa', 'x MSA'), ('peak_mem_mb', 'mem MB')],
    'profile': [('model', 'model'), ('input', 'input'), ('aten_calls', 'compute-op calls'),
                ('aten_calls_2x', 'at 2x size'), ('max_calls_op', 'most-called compute op'), ('max_calls', 'calls'),
                ('top', 'top ops by self time: share, calls')],
    'official': [('model', 'model'), ('official_model', 'official'), ('input', 'input'), ('batch', 'batch'),
                 ('max_abs_diff', 'max abs diff'), ('ours_latency', 'ours ms'),
                 ('official_latency', 'official ms'), ('speedup', 'ours / official')],
    'training': [('model', 'model'), ('dtm', 'DTM on'), ('input', 'input'), ('latency', 'ms per iteration'),
                 ('dtm_share', 'deformable-conv share'), ('speedup', 'x mmcv'), ('max_loss_diff', 'max loss diff')],
    'deployment': [('model', 'model'), ('input', 'input'), ('eager_ms', 'eager ms'), ('compile_ms', 'compile ms'),
                   ('compile_speedup', 'x eager'), ('jit_ms', 'jit ms'), ('jit_speedup', 'x eager'),
                   ('onnx_ms', 'onnxruntime ms'), ('onnx_speedup', 'x eager'), ('max_diff', 'max diff')],
}


def cell(row: dict, key: str) -> str:
    """The text of one table cell; an error row shows its error in the latency (or top-ops) column."""
    if 'error' in row and key not in row and key not in ('latency', 'top', 'ours_latency'):
        return '-'
    if key in ('params', 'flops'):
        return format_count(row.get(key))
    if key == 'latency':
        return latency_text(row) if 'error' not in row else 'ERROR: ' + row['error'][:60]
    if key in ('ours_latency', 'official_latency'):
        if 'error' in row:
            return 'ERROR: ' + row['error'][:60] if key == 'ours_latency' else '-'
        side = key.split('_')[0]
        return f'{row[side + "_ms"]:.1f} [{row[side + "_p25_ms"]:.1f}-{row[side + "_p75_ms"]:.1f}]'
    if key in ('ratio_to_msa', 'speedup') or key.endswith('_speedup'):
        return '-' if row.get(key) is None else f'{row[key]:.2f}'
    if key == 'dtm_share':
        return '-' if row.get(key) is None else f'{100 * row[key]:.0f}%'
    if key in ('max_diff', 'max_loss_diff'):
        return '-' if row.get(key) is None else f'{row[key]:.1e}'
    if key == 'max_abs_diff':
        if row.get(key) is None:
            return '-'
        fp64 = row.get('max_abs_diff_fp64')
        return f'{row[key]:.1e}' if fp64 is None else f'{row[key]:.1e} (fp64 {fp64:.1e})'
    if key == 'top':
        if 'error' in row:
            return 'ERROR: ' + row['error'][:60]
        return ', '.join(f'{t["op"].replace("aten::", "")} {100 * t["share"]:.0f}% x{t["calls"]}'
                         for t in row['top_ops'])
    return fmt(row.get(key))


def table(rows: Sequence[dict], mode: str, markdown: bool = False) -> str:
    """Rows of one mode as an aligned text table or a Markdown table."""
    cols = COLUMNS[mode]
    body = [[cell(r, k) for k, _ in cols] for r in rows]
    head = [title for _, title in cols]
    if markdown:
        lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
        return '\n'.join(lines + ['| ' + ' | '.join(line) + ' |' for line in body])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line_fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    return '\n'.join([line_fmt.format(*head), line_fmt.format(*('-' * w for w in widths))]
                     + [line_fmt.format(*r) for r in body])


def write_outputs(rows: List[dict], json_path: Optional[str], csv_path: Optional[str], meta: dict):
    """``rows`` (with ``meta``) as JSON and / or CSV (nested values JSON-encoded)."""
    if json_path:
        os.makedirs(osp.dirname(osp.abspath(json_path)), exist_ok=True)
        with open(json_path, 'w') as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
    if csv_path:
        os.makedirs(osp.dirname(osp.abspath(csv_path)), exist_ok=True)
        keys = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        with open(csv_path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})


def machine_info(device: torch.device) -> dict:
    """Where the numbers come from: CPU model, cores, threads, load, GPU, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            names = re.findall(r'model name\s*:\s*(.+)', f.read())
        cpu = names[0].strip() if names else cpu
    except OSError:
        pass
    info = dict(cpu=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), device=str(device),
                date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))
    if hasattr(os, 'getloadavg'):
        info['load_1min'] = round(os.getloadavg()[0], 2)
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info
