"""The model index: model-index.yml lists the four family metafiles, every entry names a config that exists,
official weights are documented as official files that need our converter, and after ``import mmvit_ext``
mmpretrain's model hub knows the classification models (``list_models``, ``get_model``). About 10 s (mmpretrain
reads its own index once; one LITv2-S classifier is built)."""
import glob
import os.path as osp

import mmpretrain
import pytest
import yaml
from mmengine.config import Config

import mmvit_ext

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = ('lit', 'litv2', 'lightvit', 'lvt')
CONVERTERS = dict(lit='lit_to_mmvit.py', litv2='litv2_to_mmvit.py', lightvit='lightvit_to_mmvit.py',
                  lvt='lvt_to_mmvit.py')


def load(path):
    with open(osp.join(REPO, path)) as f:
        return yaml.safe_load(f)


def entries(family):
    return load(f'configs/{family}/metafile.yml')['Models']


def test_model_index_lists_the_four_metafiles():
    assert load('model-index.yml') == {'Import': [f'configs/{family}/metafile.yml' for family in FAMILIES]}
    assert sorted(glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml'))) == \
        sorted(osp.join(REPO, 'configs', family, 'metafile.yml') for family in FAMILIES)


@pytest.mark.parametrize('family', FAMILIES)
def test_every_entry_names_its_config(family):
    collections = {c['Name'] for c in load(f'configs/{family}/metafile.yml')['Collections']}
    for entry in entries(family):
        assert entry['In Collection'] in collections, entry['Name']
        assert osp.isfile(osp.join(REPO, entry['Config'])), entry['Config']
        assert osp.splitext(osp.basename(entry['Config']))[0] == entry['Name']
    configs = {osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', family, '*.py'))}
    assert configs == {entry['Config'] for entry in entries(family)}, 'a config without a metafile entry'


@pytest.mark.parametrize('family', FAMILIES)
def test_official_weights_are_documented_with_the_converter(family):
    """We host no converted weights, so no entry has top-level ``Weights`` (mmpretrain's ``get_model(name,
    pretrained=True)`` would load an official file without converting it); the official files are listed under
    ``Converted From`` and the family README says how to convert each."""
    with open(osp.join(REPO, 'configs', family, 'README.md')) as f:
        readme = f.read()
    section = readme[readme.index('## Coming from the official repositories'):]
    assert f'tools/model_converters/{CONVERTERS[family]}' in section
    for entry in entries(family):
        assert 'Weights' not in entry, f'{entry["Name"]}: an official file as top-level Weights'
        official = (entry.get('Converted From') or {}).get('Weights')
        if official:
            assert osp.basename(official) in readme, f'{entry["Name"]}: {osp.basename(official)} not in the README'


def test_mmpretrain_hub_knows_the_classifiers():
    assert mmpretrain.list_models('*litv2*') == ['litv2-b_8xb128_in1k', 'litv2-m_8xb128_in1k', 'litv2-s_8xb128_in1k']
    # every ImageNet entry (the plain-head LVT has no published result), and nothing get_model could not build
    imagenet = sorted(e['Name'] for family in FAMILIES for e in entries(family) if e['Name'].endswith('_in1k'))
    registered = sorted(name for family in FAMILIES for name in mmpretrain.list_models(f'{family}[-_]*'))
    assert registered == imagenet and len(imagenet) == 12
    model = mmpretrain.get_model('litv2-s_8xb128_in1k')
    assert type(model.backbone).__name__ == 'LITv2' and model.head.fc.out_features == 1000
    assert sum(p.numel() for p in model.parameters()) == 27_844_000


def test_get_config_path():
    path = mmvit_ext.get_config_path('litv2/retinanet_litv2-s_fpn_1x_coco.py')
    assert path == osp.join(REPO, 'configs', 'litv2', 'retinanet_litv2-s_fpn_1x_coco.py')
    assert Config.fromfile(path).model.backbone.type == 'LITv2'
    with pytest.raises(FileNotFoundError, match='did you mean litv2/retinanet_litv2-s_fpn_1x_coco.py'):
        mmvit_ext.get_config_path('litv2/retinanet_litv2-s_fpn_1x_cocoo.py')
