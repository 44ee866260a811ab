"""mmvit_ext.benchmark.models / baselines: which backbones the benchmark measures, baseline layers."""
import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.benchmark.baselines import ExplicitMultiheadAttention
from mmvit_ext.benchmark.models import select_models, unique_archs


def test_unique_archs_collapses_aliases():
    small, base = dict(d=1), dict(d=2)
    assert unique_archs({'s': small, 'small': small, 'b': base, 'base': dict(d=2)}) == ['small', 'base']


def test_every_family_and_baseline_is_discovered():
    names = {s.name for s in select_models(None)}
    expected = {'LIT-tiny', 'LIT-small', 'LIT-medium', 'LIT-base', 'LITv2-small', 'LITv2-medium', 'LITv2-base',
                'LITv2-small-ws4', 'LightViT-tiny', 'LightViT-small', 'LightViT-base', 'LVT-mobile',
                'Swin-T', 'PVTv2-B0', 'PVTv2-B2', 'MiT-B0', 'ResNet-50'}
    assert expected <= names, expected - names
    assert {s.name for s in select_models(['litv2-s*'], with_baselines=False)} == {'LITv2-small', 'LITv2-small-ws4'}
    with pytest.raises(SystemExit, match='no model matches'):
        select_models(['NoSuchNet-*'])


def test_explicit_msa_equals_attention_by_its_definition():
    layer = ExplicitMultiheadAttention(16, 4)
    x = torch.randn(2, 12, 16)
    q, k, v = layer.qkv(x).view(2, 12, 3, 4, 4).permute(2, 0, 3, 1, 4)
    reference = layer.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 12, 16))
    torch.testing.assert_close(layer(x, (3, 4)), reference)
