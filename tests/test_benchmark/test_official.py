"""mmvit_ext.benchmark.official: importing model files from a clone with stand-ins, the torchvision deformable conv
in the official layout, and the comparison itself, on a tiny fake "official repository" written here."""
import textwrap

import pytest
import torch
import torch.nn as nn

from mmvit_ext.benchmark.official import (OfficialSource, OfficialVariant, TorchvisionDeformConv2dPack,
                                          compare_official, detect_family, max_abs_diff, perturb_)
from mmvit_ext.benchmark.timing import RunOptions
from mmvit_ext.models.layers import BiasedDeformConv2d

OPTS = RunOptions(torch.device('cpu'), warmup=0, repeat=2, max_seconds=.1)

# The fake official backbone: its imports go through the stand-ins (CUDA-only deformable conv, the mmdet copy's
# registries and logger, a relative import) and a local helper module of the clone.
FAKE_BACKBONE = '''
import torch.nn as nn
from mm_modules.DCN.modules.deform_conv2d import DeformConv2dPack
from mmdet.registry import MODELS
from mmdet.utils import get_root_logger
from ..builder import BACKBONES
from helpers.ops import double


@MODELS.register_module()
@BACKBONES.register_module()
class TinyMerge(nn.Module):
    def __init__(self, dims=8):
        super().__init__()
        self.dconv = DeformConv2dPack(3, dims, kernel_size=2, stride=2, padding=0)
        self.norm_layer = nn.BatchNorm2d(dims)
        get_root_logger().info('built')

    def forward(self, x):
        return (double(self.norm_layer(self.dconv(x))), )
'''


class OurTinyMerge(nn.Module):
    """Our twin of TinyMerge: mmvit_ext's deformable conv (mmcv's kernel), same keys."""

    def __init__(self, dims=8, scale=2.):
        super().__init__()
        self.dconv = BiasedDeformConv2d(3, dims, 2, stride=2)
        self.norm_layer = nn.BatchNorm2d(dims)
        self.scale = scale

    def forward(self, x):
        return [self.scale * self.norm_layer(self.dconv(x))]


@pytest.fixture
def clone(tmp_path):
    files = {'detection/mmdet/models/backbones/tiny.py': FAKE_BACKBONE,
             'detection/helpers/ops.py': 'def double(x):\n    return 2 * x\n',
             'detection/mmdet/models/backbones/bad.py': 'from ..losses import nothing\n',
             'detection/mmdet/models/backbones/plain_import.py': 'import mmdet.utils\n'}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(textwrap.dedent(text))
    return tmp_path


def _variant(scale=2.):
    def build_official(root):
        return OfficialSource(root, 'detection', local=('helpers', )).load('mmdet/models/backbones/tiny.py').TinyMerge()

    return OfficialVariant('Tiny', 'tiny.py TinyMerge', 'dense', build_official, lambda: OurTinyMerge(scale=scale),
                           lambda ours, state: ours.load_state_dict(state, strict=True))


def test_official_files_import_with_stand_ins(clone):
    source = OfficialSource(str(clone), 'detection', local=('helpers', ))
    module = source.load('mmdet/models/backbones/tiny.py')
    assert isinstance(module.TinyMerge().dconv, TorchvisionDeformConv2dPack)
    assert source.load('mmdet/models/backbones/tiny.py') is module  # loaded once
    assert 'helpers.ops' in source.modules and 'tiny' not in __import__('sys').modules
    with pytest.raises(ImportError, match='mmdet.models.losses, which has no stand-in'):
        source.load('mmdet/models/backbones/bad.py')
    with pytest.raises(ImportError, match='not supported'):
        source.load('mmdet/models/backbones/plain_import.py')
    with pytest.raises(FileNotFoundError, match='clone of the official repository'):
        source.load('mmdet/models/backbones/missing.py')


@pytest.mark.parametrize('returns_offset', [False, True])
def test_torchvision_stand_in_equals_our_deformable_conv(returns_offset):
    """Same weights, random offsets reaching outside the map: the official layout on torchvision equals ours."""
    official = TorchvisionDeformConv2dPack(6, 10, 2, 2, 0)
    official.returns_offset = returns_offset
    ours = BiasedDeformConv2d(6, 10, 2, stride=2)
    with torch.no_grad():
        official.conv_offset.weight.normal_(0, 2.)
        official.conv_offset.bias.normal_(0, 2.)
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.randn(2, 6, 9, 12)
    out = official(x, return_offset=True) if returns_offset else official(x)
    if returns_offset:
        out, offset = out
        assert offset.shape == (2, 8, 4, 6) and offset.abs().max() > 2  # samples land outside the 9 x 12 map
    torch.testing.assert_close(out, ours(x), atol=1e-5, rtol=1e-5)
    assert official.weight.shape == (10, 6, 2, 2) and official.conv_offset.weight.abs().sum() > 0


def test_compare_official_checks_outputs_and_times_both(clone):
    sizes = {'dense': (20, 24)}
    row, = compare_official(str(clone), [_variant()], [('dense', 1), ('cls', 8)], OPTS, quick_sizes=sizes,
                            progress=False, profile_below={'dense': 1e9})
    assert 'error' not in row, row
    assert row['max_abs_diff'] <= 1e-4 and row['input'] == '20x24' and row['runs'] == 2
    assert row['speedup'] == pytest.approx(row['official_ms'] / row['ours_ms'])
    assert row['ours_p25_ms'] <= row['ours_ms'] <= row['ours_p75_ms']
    assert row['op_groups']['official']['deformable conv (DTM)'] > 0  # profiled: below the (huge) target
    assert 'max_abs_diff_fp64' not in row  # within the tolerance in fp32: no second check
    wrong, = compare_official(str(clone), [_variant(scale=2.5)], [('dense', 1)], OPTS, quick_sizes=sizes,
                              progress=False)
    assert 'outputs differ' in wrong['error'] and 'speedup' not in wrong and wrong['max_abs_diff'] > 1e-4
    assert wrong['max_abs_diff_fp64'] > 1e-4  # checked again in fp64, still different


def test_fp32_rounding_beyond_the_tolerance_is_checked_in_fp64(clone):
    """The two deformable-conv kernels round differently in fp32 (~1e-7 here), not in fp64: with a tolerance
    between the two, the comparison passes on the fp64 check and times the fp32 models."""
    row, = compare_official(str(clone), [_variant()], [('dense', 2)], OPTS, quick_sizes={'dense': (20, 24)},
                            progress=False, tolerance=1e-10)
    assert 'error' not in row, row
    assert row['max_abs_diff'] > 1e-10 >= row['max_abs_diff_fp64'] and row['speedup'] > 0


def test_perturb_moves_constant_inits_and_keeps_bn_valid():
    model = OurTinyMerge()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    perturb_(model)
    after = model.state_dict()
    for key in ('dconv.conv_offset.weight', 'dconv.conv_offset.bias', 'dconv.bias', 'norm_layer.weight'):
        assert len(after[key].unique()) == after[key].numel() > len(before[key].unique()) == 1, key
    assert torch.equal(after['dconv.weight'], before['dconv.weight'])  # random init: kept
    assert (after['norm_layer.running_var'] >= .5).all() and after['norm_layer.running_mean'].abs().sum() > 0
    assert torch.equal(after['norm_layer.num_batches_tracked'], before['norm_layer.num_batches_tracked'])
    again = perturb_(OurTinyMerge()).state_dict()  # reproducible
    torch.testing.assert_close(again['dconv.conv_offset.weight'], after['dconv.conv_offset.weight'])


def test_max_abs_diff_names_mismatches():
    assert max_abs_diff((torch.zeros(2), [torch.ones(3)]), [torch.zeros(2), torch.full((3, ), 1.5)]) == .5
    with pytest.raises(ValueError, match='in number'):
        max_abs_diff(torch.zeros(1), (torch.zeros(1), torch.zeros(1)))
    with pytest.raises(ValueError, match='in shape'):
        max_abs_diff(torch.zeros(2), torch.zeros(3))


def test_detect_family(tmp_path):
    (tmp_path / 'lvt' / 'classification' / 'models').mkdir(parents=True)
    (tmp_path / 'lvt' / 'classification' / 'models' / 'lvt.py').write_text('')
    assert detect_family(str(tmp_path / 'lvt')) == 'LVT'
    with pytest.raises(SystemExit, match='not a clone of'):
        detect_family(str(tmp_path))
    with pytest.raises(SystemExit, match='no such folder'):
        detect_family(str(tmp_path / 'missing'))


def test_run_official_selects_variants_per_task(tmp_path):
    """Which (variant, setting) pairs a clone yields: --variants for the classifiers, --dense-variants for the
    dense backbones. The fake LVT clone has the official file names but no model code: each pair is a row that
    names its error, and the run goes on. Each task runs in a fresh process and every row reaches the JSON-lines
    file, which the report reads back."""
    from mmvit_ext.benchmark.report import read_official_rows, run_official
    clone = tmp_path / 'LVT'
    for path in ('classification/models/lvt.py', 'classification/models/lvt_cls.py',
                 'segmentation/mmseg/models/backbones/lvt.py'):
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        (clone / path).write_text('')
    rows_file = str(tmp_path / 'rows.jsonl')
    rows, info = run_official([str(clone)], OPTS, quick=False, progress=False, variants=['LVT*'],
                              batch_sizes=(1, 8), dense_variants=['LIT-*'], rows_file=rows_file)
    assert [(r['model'], r['setting'], r['batch']) for r in rows] == [('LVT-mobile', 'cls', 1),
                                                                      ('LVT-mobile', 'cls', 8)]
    assert all('has no attribute' in r['error'] for r in rows)
    assert info[str(clone)] == dict(path=str(clone), family='LVT', commit=None)
    assert read_official_rows(rows_file) == (rows, info)
    rows, _ = run_official([str(clone)], OPTS, quick=False, progress=False, variants=['LVT*'], batch_sizes=(1, ),
                           rows_file=rows_file, fresh_process=False)
    assert [r['setting'] for r in rows] == ['cls', 'dense']
    assert read_official_rows(rows_file)[0] == rows  # a new run starts the file afresh
