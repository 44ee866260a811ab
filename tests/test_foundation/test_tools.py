"""tools/train.py and tools/test.py end to end on a tiny generated classification set (subprocesses, CPU; the set,
its configs and ``run_tool`` come from conftest.py)."""
import glob
import os
import os.path as osp
import pickle
import re
import subprocess


def test_train_resume_test(run_tool, workspace):
    work = str(workspace / 'work')
    code, log = run_tool('train.py', str(workspace / 'cls_4.py'), '--work-dir', work)
    assert code == 0, log[-3000:]
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    assert re.search(r'accuracy/top1: [\d.]+', log), 'no validation metric in the log'

    # Resume from the named checkpoint with a longer schedule: training continues at iteration 5.
    code, log = run_tool('train.py', str(workspace / 'cls_8.py'), '--work-dir', work,
                         '--resume', osp.join(work, 'iter_4.pth'))
    assert code == 0, log[-3000:]
    assert 'resumed epoch: 0, iter: 4' in log, log[-3000:]
    assert re.search(r'Iter\(train\) \[5/8\]', log) and not re.search(r'Iter\(train\) \[1/8\]', log)
    assert osp.isfile(osp.join(work, 'iter_8.pth'))

    # Bare --resume picks the latest checkpoint of the work_dir (already finished: nothing more to train).
    code, log = run_tool('train.py', str(workspace / 'cls_8.py'), '--work-dir', work, '--resume')
    assert code == 0 and 'resumed epoch: 0, iter: 8' in log, log[-3000:]

    out = str(workspace / 'preds.pkl')
    code, log = run_tool('test.py', str(workspace / 'cls_8.py'), osp.join(work, 'iter_8.pth'),
                         '--work-dir', work, '--out', out)
    assert code == 0, log[-3000:]
    top1 = float(re.search(r'accuracy/top1: ([\d.]+)', log).group(1))
    assert top1 >= 75.0, f'the trained classifier should separate dark from bright images, got {top1}%'
    with open(out, 'rb') as f:
        assert len(pickle.load(f)) == 16


def test_show_dir_writes_images(run_tool, workspace):
    work = str(workspace / 'work_show')
    code, log = run_tool('train.py', str(workspace / 'cls_4.py'), '--work-dir', work)
    assert code == 0, log[-3000:]
    code, log = run_tool('test.py', str(workspace / 'cls_4.py'), osp.join(work, 'iter_4.pth'),
                         '--work-dir', work, '--show-dir', 'vis')
    assert code == 0, log[-3000:]
    assert len(glob.glob(osp.join(work, '**', 'vis', '*.png'), recursive=True)) == 16


def test_missing_config_file(run_tool):
    code, log = run_tool('train.py', 'configs/no_such_config.py')
    assert code != 0 and 'config file not found: configs/no_such_config.py' in log


def test_unknown_type_names_the_problem(run_tool, workspace):
    bad = workspace / 'bad_type.py'
    bad.write_text((workspace / 'cls_4.py').read_text().replace("'ResNet_CIFAR'", "'LITv99'"))
    code, log = run_tool('train.py', str(bad), '--work-dir', str(workspace / 'bad'))
    assert code != 0
    assert 'LITv99 is not in the mmpretrain::model registry' in log and 'custom_imports' in log, log[-2000:]
    assert 'Traceback' not in log


def test_missing_dataset_names_the_path(run_tool, workspace):
    bad = workspace / 'bad_data.py'
    bad.write_text((workspace / 'cls_4.py').read_text().replace(str(workspace / 'data'), '/nonexistent/data'))
    code, log = run_tool('train.py', str(bad), '--work-dir', str(workspace / 'bad'))
    assert code != 0 and '/nonexistent/data' in log and 'data_root' in log, log[-2000:]


def test_missing_checkpoint(run_tool, workspace):
    code, log = run_tool('test.py', str(workspace / 'cls_4.py'), '/nonexistent.pth')
    assert code != 0 and 'checkpoint file not found: /nonexistent.pth' in log


def test_distributed_training_on_cpu(python, repo_root, workspace):
    """Two processes under torchrun (gloo): both ranks train, the checkpoint is written once, by rank 0."""
    work = str(workspace / 'work_dist')
    env = dict(os.environ, PYTHON=python, PORT='29517')
    result = subprocess.run(['bash', osp.join(repo_root, 'tools', 'dist_train.sh'), str(workspace / 'cls_4.py'),
                             '2', '--work-dir', work], capture_output=True, text=True, cwd=repo_root, env=env)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # mmengine reports the world size as "GPU number" whatever the device.
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert re.search(r'Iter\(train\) \[4/4\]', log), 'training did not reach its last iteration'
    assert glob.glob(osp.join(work, 'iter_4.pth')) and len(glob.glob(osp.join(work, '*.pth'))) == 1


def test_missing_load_from_talks_about_the_checkpoint(run_tool, workspace):
    code, log = run_tool('train.py', str(workspace / 'cls_4.py'), '--work-dir', str(workspace / 'bad'),
                         '--cfg-options', 'load_from=/nonexistent/weights.pth')
    assert code != 0 and 'checkpoint file not found: /nonexistent/weights.pth' in log, log[-2000:]
    assert 'check data_root' not in log  # the hint for a missing dataset


def test_empty_annotation_list_names_the_dataset(run_tool, workspace):
    (workspace / 'empty.txt').write_text('')
    bad = workspace / 'empty_ann.py'
    bad.write_text((workspace / 'cls_4.py').read_text().replace(
        'pipeline=pipeline)', f"ann_file='{workspace / 'empty.txt'}', pipeline=pipeline)"))
    code, log = run_tool('train.py', str(bad), '--work-dir', str(workspace / 'bad'))
    assert code != 0 and 'dataset CustomDataset' in log and 'has no samples: check ann_file' in log, log[-2000:]
    assert str(workspace / 'empty.txt') in log and 'Traceback' not in log


def test_distributed_teardown_frees_the_wrapped_model_before_the_group(python, tmp_path):
    """The DDP wrapper holds the process group: a wrapper left in a reference cycle (as mmengine's runner keeps it)
    is collected before the group ends, so the group is not destroyed at interpreter exit."""
    script = tmp_path / 'teardown.py'
    script.write_text(f'''
import weakref
import torch
from mmvit_ext.engine import distributed_teardown
torch.distributed.init_process_group('gloo', init_method='file://{tmp_path / "store"}', rank=0, world_size=1)
wrappers = []

def run():
    ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    holder = dict(model=ddp)
    holder['self'] = holder
    wrappers.append(weakref.ref(ddp))

with distributed_teardown():
    run()
assert not torch.distributed.is_initialized()
print('wrapper freed' if wrappers[0]() is None else 'wrapper alive')
''')
    result = subprocess.run([python, str(script)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == 'wrapper freed', result.stdout + result.stderr[-2000:]
