"""mmvit_ext.benchmark.report / tables: the Markdown report from hand-made rows, configs of installed packages."""
from mmvit_ext.benchmark.report import render_report, resolve_config
from mmvit_ext.benchmark.tables import table
from mmvit_ext.benchmark.targets import OFFICIAL_NOTES

META = dict(command='benchmark.py report', warmup=1, repeat=5, max_seconds=1., minutes=3.,
            machine=dict(cpu='CPU', cpu_count=2, torch='2', torch_threads=2, device='cpu', date='today',
                         load_1min=.1),
            official_repos={'/src/LIT': dict(path='/src/LIT', family='LIT', commit='742e961')})
GROUPS = dict.fromkeys(['matmul (linear layers, explicit attention)', 'fused attention (SDPA)',
                        'deformable conv (DTM)', 'depthwise conv', 'dense conv', 'copies and layout',
                        'norm, activation, elementwise'], 0.)


def test_report_renders_official_efficiency_training_and_deployment_sections():
    official = [dict(mode='official', model='LIT-tiny', family='LIT', official_model='lit.py lit_ti', setting='cls',
                     input='224x224', batch=8, max_abs_diff=2e-6, ours_ms=90., ours_p25_ms=89., ours_p75_ms=91.,
                     official_ms=81., official_p25_ms=80., official_p75_ms=82., speedup=.9,
                     op_groups={'mmvit_ext': dict(GROUPS, **{'dense conv': 5.}), 'official': GROUPS})]
    backbone = [dict(mode='backbone', model='LITv2-small', setting='cls', input='224x224', batch=8,
                     precision=p, params=1, flops=3.7e9, throughput=t, gflops_per_s=3.7 * t, latency_ms=1.,
                     latency_p25_ms=1., latency_p75_ms=1., peak_mem_mb=1.) for p, t in (('fp32', 20.), ('amp', 30.))]
    gemm = {'fp32': dict(dtype='float32', size=2048, latency_ms=90., gmacs=100., gflops_2x=200.)}
    deployment = [dict(mode='deployment', model='LITv2-small', setting='cls', input='8x3x224x224', eager_ms=400.,
                       compile_ms=320., compile_speedup=1.25, jit_ms=390., jit_speedup=400 / 390, onnx_ms=250.,
                       onnx_speedup=1.6, max_diff=6e-6, compile_s=41.2, export_s=12.6)]
    training = [dict(mode='training', model='RetinaNet LITv2-demo', dtm='op', input='4x3x256x256', latency_ms=150.,
                     latency_p25_ms=149., latency_p75_ms=152., dtm_share=.14, speedup=1.5, max_loss_diff=2e-7),
                dict(mode='training', model='RetinaNet LITv2-demo', dtm='mmcv', input='4x3x256x256',
                     latency_ms=225., latency_p25_ms=224., latency_p75_ms=226., dtm_share=.45, max_loss_diff=2e-7)]
    text = render_report(META, [], [], backbone, [], [], [], [], [], [], {}, official, gemm, deployment, training)
    assert '## Against the official code' in text and '| `/src/LIT` | 742e961 | LIT |' in text
    assert '| LIT-tiny | lit.py lit_ti | 224x224 | 8 | 2.0e-06 | 90.0 [89.0-91.0] | 81.0 [80.0-82.0] | 0.90 |' in text
    assert '### LIT-tiny vs official, 224x224 b8: where the time goes' in text
    assert '| dense conv | 5.0 | 0.0 | +5.0 |' in text and OFFICIAL_NOTES[('LIT', 'cls')] in text
    assert '| LITv2-small | 3.70G | 20.0 | 74.0 | 74% | 30.0 | 1.50 |' in text
    assert '## Deployment runtimes' in text and (
        '| LITv2-small | 8x3x224x224 | 400.0 | 320.0 (1.25x) | 390.0 (1.03x) | 250.0 (1.60x) | 6.0e-06 | 41 | 13 |'
        in text)
    assert '## Training: the deformable conv of DTM' in text
    assert '| RetinaNet LITv2-demo | op | 4x3x256x256 | 150.0 [149.0-152.0] | 14% | 1.50 | 2.0e-07 |' in text
    assert '| RetinaNet LITv2-demo | mmcv | 4x3x256x256 | 225.0 [224.0-226.0] | 45% | - | 2.0e-07 |' in text
    assert '1-minute load 0.1' in text


def test_error_rows_show_their_error():
    rows = [dict(model='LVT-mobile', official_model='lvt_cls', input='224x224', batch=1,
                 error='AssertionError: outputs differ by 1e-2')]
    assert 'ERROR: AssertionError: outputs differ' in table(rows, 'official', markdown=True)


def test_configs_of_installed_packages_resolve():
    assert resolve_config('mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py')
    assert resolve_config('configs/lvt/segformer_lvt*ade20k*.py')
    assert resolve_config('nosuchpackage::x.py') == []


def test_fresh_process_worker_ends_when_the_benchmark_is_killed(tmp_path):
    """A killed comparison must not leave its worker measuring: the worker exits within seconds of its parent."""
    import os
    import signal
    import subprocess
    import sys
    import time
    pid_file = tmp_path / 'worker.pid'
    script = ('import os, time\n'
              'from mmvit_ext.benchmark.report import fresh_process_pool\n'
              f'def work():\n    open({str(pid_file)!r}, "w").write(str(os.getpid()))\n    time.sleep(120)\n'
              'if __name__ == "__main__":\n    fresh_process_pool().submit(work).result()\n')
    (tmp_path / 'bench.py').write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / 'bench.py')], cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
            time.sleep(.1)
        worker = int(pid_file.read_text())
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f'/proc/{pid}/stat') as f:  # a zombie waiting for its new parent to reap it has ended
            return f.read().split(')')[-1].split()[0] != 'Z'

    deadline = time.time() + 10
    while alive(worker) and time.time() < deadline:
        time.sleep(.1)
    assert not alive(worker), 'the worker outlived the killed benchmark'
