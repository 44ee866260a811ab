"""Every ```python block of README.md and configs/*/README.md runs, so the snippets cannot rot.

A block that needs the checkpoint of ``make demo`` runs in test_inference_apis.py instead. A block that holds a config (``_base_ = ...``) is written to a file and smoke-run like the shipped configs: the
full model is built without pretrained weights, passes the build-time checks of our tools
(``mmvit_ext.model_checks``: a mis-anchored RetinaNet or a wrong neck ``in_channels`` fails) and trains one step at
64x64. Any other block is executed; every backbone it builds (or describes as a ``dict(type=...)``) runs a 64x64
forward. Full-size models at tiny inputs: about 10 s for all blocks.
"""
import glob
import os.path as osp
import re
from collections import OrderedDict

import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.registry import DefaultScope

import mmvit_ext  # noqa: F401
from mmvit_ext.models.base_backbone import VisionBackbone
from mmvit_ext.testing import run_config_smoke

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Blocks that use the checkpoint of `make demo` start with this line; test_inference_apis.py runs them on a freshly
# trained checkpoint.
AFTER_DEMO = '# after `make demo`'
READMES = ['README.md'] + sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))


def python_blocks():
    blocks = []
    for readme in READMES:
        with open(osp.join(REPO, readme)) as f:
            text = f.read()
        for i, match in enumerate(re.finditer(r'^```python\n(.*?)^```', text, re.S | re.M)):
            if not match.group(1).startswith(AFTER_DEMO):  # those run in test_inference_apis.py
                blocks.append(pytest.param(match.group(1), id=f'{readme}#{i}'))
    return blocks


BLOCKS = python_blocks()


def test_the_readmes_have_snippets():
    ids = [block.id for block in BLOCKS]
    assert any(i.startswith('README.md#') for i in ids)
    for family in ('lit', 'litv2', 'lightvit', 'lvt'):
        assert any(i.startswith(f'configs/{family}/README.md#') for i in ids), family


def _run_backbone(backbone):
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    assert len(outs) == len(backbone.out_indices)
    assert [o.shape[1] for o in outs] == list(backbone.out_channels)


@pytest.mark.parametrize('code', BLOCKS)
def test_snippet_runs(code, tmp_path, monkeypatch):
    if re.search(r'^_base_ = ', code, re.M):
        path = tmp_path / 'snippet_config.py'
        path.write_text(code)
        run_config_smoke(str(path), image_size=(64, 64))
        return
    monkeypatch.chdir(tmp_path)
    # as in a fresh interpreter: no default scope left by an earlier build in this process
    monkeypatch.setattr(DefaultScope, '_instance_dict', OrderedDict())
    namespace = {}
    exec(compile(code, 'README snippet', 'exec'), namespace)
    ran = 0
    for value in namespace.values():
        if isinstance(value, dict) and isinstance(value.get('type'), str):
            cls = DET_MODELS.get(value['type'])
            if isinstance(cls, type) and issubclass(cls, VisionBackbone):
                value = DET_MODELS.build(value)
        if isinstance(value, VisionBackbone):
            _run_backbone(value)
            ran += 1
        elif isinstance(getattr(value, 'backbone', None), VisionBackbone):  # a whole model, e.g. a classifier
            value.eval()
            with torch.no_grad():
                assert value(torch.randn(1, 3, 64, 64)).shape[0] == 1
            ran += 1
    assert ran, 'the snippet builds no model of ours that the test could run'
