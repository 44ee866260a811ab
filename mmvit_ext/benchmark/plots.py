"""The report's plots (PNG, matplotlib's Agg backend): throughput vs FLOPs, attention throughput vs resolution."""
from typing import Sequence

__all__ = ['plot_throughput_vs_flops', 'plot_attention_vs_resolution', 'plot_title']


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_throughput_vs_flops(rows: Sequence[dict], path: str, title: str):
    """Scatter of throughput against FLOPs per image, one point per model (LITv2 Fig. 1 style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    families = sorted({r['family'] for r in rows})
    markers = dict(zip(families, 'osD^vP*X'))
    for fam in families:
        pts = [r for r in rows if r['family'] == fam and r.get('flops') and r.get('throughput')]
        if not pts:
            continue
        ax.scatter([r['flops'] / 1e9 for r in pts], [r['throughput'] for r in pts], label=fam,
                   marker=markers[fam], s=40)
        for r in pts:
            ax.annotate(r['model'].replace(f'{fam}-', ''), (r['flops'] / 1e9, r['throughput']), fontsize=7,
                        xytext=(3, 3), textcoords='offset points')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('GFLOPs per image')
    ax.set_ylabel('throughput (images/s)')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_attention_vs_resolution(rows: Sequence[dict], path: str, title: str):
    """Throughput of each attention layer against the input resolution (LITv2 Fig. 3 / 6 style)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    for layer in dict.fromkeys(r['layer'] for r in rows):
        pts = sorted((r['resolution'], r['throughput']) for r in rows if r['layer'] == layer and 'throughput' in r)
        if pts:
            ax.plot(*zip(*pts), marker='o', label=layer, linewidth=2.5 if layer == 'HiLo' else 1.2)
    ax.set_yscale('log')
    ax.set_xlabel('input resolution (tokens at stride 16)')
    ax.set_ylabel('throughput (images/s)')
    ax.set_title(title, fontsize=9)
    ax.grid(True, which='both', alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_title(meta: dict, rows: Sequence[dict], plot_rows: Sequence[dict] = ()) -> str:
    """'backbones at 224x224, batch 8, fp32 - <machine>' or the attention layers' setting."""
    m = meta['machine']
    where = m.get('gpu') or f'{m["cpu"]}, {m["torch_threads"]} threads'
    if rows and rows[0]['mode'] == 'backbone':
        r = plot_rows
        return f'backbones at {r[0]["input"] if r else "224x224"}, batch {r[0]["batch"] if r else "-"}, fp32 - {where}'
    return f'one attention layer (dim {rows[0]["dim"]}, {rows[0]["heads"]} heads), fp32 - {where}' if rows else where
