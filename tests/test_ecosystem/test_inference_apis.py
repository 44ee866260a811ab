"""Checkpoints written by our tools/train.py load in the codebases' own APIs under torch's default safe loading:
mmdet's ``DetInferencer`` / ``init_detector`` and its own ``tools/test.py``, mmseg's ``MMSegInferencer`` /
``init_model``, mmpretrain's ``get_model(..., pretrained=CKPT)`` / ``ImageClassificationInferencer``.

Three demo models (RetinaNet, Semantic FPN and a classifier, each with the demo-sized LITv2) train 2 iterations on a
tiny generated scene set with tools/train.py (whose output, and that of our tools/test.py on the detector, holds
neither setuptools' pkg_resources warnings nor mmengine's "Loads checkpoint by ... backend" line); a fresh
interpreter that only imports the codebases (the configs' ``custom_imports`` bring in mmvit_ext) runs every API on
them with matplotlib's sample photograph, and mmdet's tools/test.py evaluates the detector. About 60 s on 2 cores
(three interpreters, most of it imports).
"""
import os.path as osp
import re
import subprocess
import sys

import mmdet
import pytest
from mmengine.config import Config

from mmvit_ext.datasets import SceneConfig, generate_demo_dataset
from mmvit_ext.testing import repoint_demo_data

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(det='retinanet_litv2-demo_fpn_12e_demo-scenes.py', seg='fpn_litv2-demo_4xb4-1k_demo-scenes-256x256.py',
               cls='litv2-demo_30e_demo-scenes-crops.py')
IMG = 96


def tiny_config(name, data_root, work_dir) -> Config:
    """The shipped demo config on the tiny set: 2 iterations of batch 2 at 96 px, one checkpoint at the end."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'demo', CONFIGS[name]))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator'):
        cfg[key] = repoint_demo_data(cfg[key].to_dict() if hasattr(cfg[key], 'to_dict') else cfg[key], data_root)
        if key.endswith('dataloader'):
            cfg[key].update(batch_size=2, num_workers=0, persistent_workers=False)
            for step in cfg[key]['dataset']['pipeline']:
                if step['type'] in ('Resize', 'RandomResize') and cfg.default_scope == 'mmdet':
                    step['scale'] = (IMG, IMG)
                if step['type'] == 'RandomCrop':
                    step['crop_size'] = (IMG, IMG)
    if cfg.default_scope == 'mmseg':
        cfg.model.data_preprocessor.size = (IMG, IMG)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook', by_epoch=False, interval=2, max_keep_ckpts=1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=100)
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = work_dir
    return cfg


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """``{name: (config file, checkpoint)}`` for the three demo models, trained by tools/train.py."""
    root = tmp_path_factory.mktemp('inference_apis')
    data = str(root / 'data')
    generate_demo_dataset(data, num_train=4, num_val=2, seed=0, cfg=SceneConfig(height=IMG, width=IMG, min_objects=2),
                          crop_size=48)
    runs = {}
    for name in CONFIGS:
        work = str(root / name)
        config = str(root / f'{name}.py')
        tiny_config(name, data, work).dump(config)
        runs[name] = (config, osp.join(work, 'iter_2.pth'))
    # one interpreter runs tools/train.py's main for the three, then tools/test.py's on the detector
    train = ''.join(f"train(['{config}', '--work-dir', '{osp.dirname(ckpt)}'])\n" for config, ckpt in runs.values())
    code = ('import importlib.util\n'
            'def tool(name):\n'
            f"    spec = importlib.util.spec_from_file_location(name, '{REPO}/tools/' + name + '.py')\n"
            '    module = importlib.util.module_from_spec(spec)\n'
            '    spec.loader.exec_module(module)\n'
            '    return module.main\n'
            "train = tool('train')\n" + train +
            f"tool('test')(['{runs['det'][0]}', '{runs['det'][1]}', '--work-dir', '{root / 'det_test'}'])\n")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-4000:]
    for config, ckpt in runs.values():
        assert osp.isfile(ckpt), ckpt
    # our tools drop setuptools' pkg_resources warnings and mmengine's "Loads checkpoint by ... backend" line
    log = result.stdout + result.stderr
    assert 'coco/bbox_mAP' in log and 'Load checkpoint from' in log, log[-3000:]
    assert 'pkg_resources' not in log and 'Loads checkpoint by' not in log, log[-3000:]
    return runs


APIS = r'''
import sys
import matplotlib.cbook
import numpy as np
from PIL import Image

det_cfg, det_ckpt, seg_cfg, seg_ckpt, cls_cfg, cls_ckpt = sys.argv[1:]
photo = np.asarray(Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg')).convert('RGB'))[..., ::-1].copy()
# mmpretrain first: its inferencer builds transforms in whatever default scope an earlier API left behind
from mmpretrain import ImageClassificationInferencer, get_model
classifier = get_model(cls_cfg, pretrained=cls_ckpt, device='cpu')
print('\n@@ get_model', type(classifier).__name__)
result = ImageClassificationInferencer(model=cls_cfg, pretrained=cls_ckpt, device='cpu')(photo)[0]
print('\n@@ ImageClassificationInferencer', 0 <= result['pred_label'] < 5)

from mmdet.apis import DetInferencer, inference_detector, init_detector
result = DetInferencer(model=det_cfg, weights=det_ckpt, device='cpu', show_progress=False)(photo)
print('\n@@ DetInferencer', len(result['predictions'][0]['bboxes']) >= 0)
detector = init_detector(det_cfg, det_ckpt, device='cpu')
print('\n@@ init_detector', type(inference_detector(detector, photo)).__name__)

from mmseg.apis import MMSegInferencer, inference_model, init_model
result = MMSegInferencer(model=seg_cfg, weights=seg_ckpt, device='cpu')(photo)
print('\n@@ MMSegInferencer', result['predictions'].shape == photo.shape[:2])
segmentor = init_model(seg_cfg, seg_ckpt, device='cpu')
print('\n@@ init_model', tuple(inference_model(segmentor, photo).pred_sem_seg.shape) == photo.shape[:2])
'''


def test_the_codebases_apis_load_our_checkpoints(trained):
    args = [path for name in ('det', 'seg', 'cls') for path in trained[name]]
    result = subprocess.run([sys.executable, '-c', APIS, *args], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    lines = dict(re.findall(r'^@@ (\w+) (.*)$', result.stdout, re.M))
    assert lines.get('DetInferencer') == 'True' and lines.get('init_detector') == 'DetDataSample', result.stdout
    assert lines.get('MMSegInferencer') == 'True' and lines.get('init_model') == 'True', result.stdout
    assert lines.get('get_model') == 'ImageClassifier', result.stdout
    assert lines.get('ImageClassificationInferencer') == 'True', result.stdout


def test_mmdet_own_test_tool_loads_our_checkpoint(trained, tmp_path):
    config, checkpoint = trained['det']
    tool = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'test.py')
    result = subprocess.run([sys.executable, tool, config, checkpoint, '--work-dir', str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert 'coco/bbox_mAP' in result.stdout + result.stderr


def test_readme_inference_block_runs_on_a_trained_checkpoint(trained, tmp_path):
    """README.md's "Inference in Python" block, with the tiny detector's config and checkpoint in place of the
    demo's, draws its predictions on the photograph."""
    with open(osp.join(REPO, 'README.md')) as f:
        blocks = re.findall(r'^```python\n(# after `make demo`\n.*?)^```', f.read(), re.S | re.M)
    assert len(blocks) == 1
    config, checkpoint = trained['det']
    code = re.sub(r"^config = '.*'$", f"config = '{config}'", blocks[0], flags=re.M)
    code = re.sub(r"^checkpoint = '.*'$", f"checkpoint = '{checkpoint}'", code, flags=re.M)
    assert code.count(config) == 1 and code.count(checkpoint) == 1
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / 'work_dirs' / 'inference' / 'vis' / 'grace_hopper.jpg').is_file()
