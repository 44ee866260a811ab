"""Bad arguments and bad inputs of the four backbones give a ValueError that names the problem, never a silent
wrong result (a wrapped stage index, a stage without attention, a NaN that vanishes in DTM)."""
import pytest
import torch

import mmvit_ext  # noqa: F401
from mmvit_ext.models.base_backbone import check_images
from mmvit_ext.models.backbones.lightvit import LightViT
from mmvit_ext.models.backbones.lit import LIT
from mmvit_ext.models.backbones.litv2 import LITv2
from mmvit_ext.models.backbones.lvt import LVT

TINY = {
    'LITv2': lambda **kw: LITv2(arch=dict(embed_dims=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1]), **kw),
    'LIT': lambda **kw: LIT(arch=dict(embed_dims=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                                      mlp_ratios=[2, 2, 2, 2], pos_embed='relative', norm_eps=1e-5), **kw),
    'LightViT': lambda **kw: LightViT(arch=dict(embed_dims=[16, 32, 64], depths=[1, 1, 1], num_heads=[1, 2, 4],
                                                mlp_ratios=[2, 2, 2], num_global_tokens=2), **kw),
    'LVT': lambda **kw: LVT(**kw),
}
NUM_STAGES = {'LITv2': 4, 'LIT': 4, 'LightViT': 3, 'LVT': 4}


@pytest.mark.parametrize('family', sorted(TINY))
def test_out_indices_outside_the_stages_or_repeated_are_refused(family):
    n = NUM_STAGES[family]
    for bad in ((n, ), (1, n + 1), (-n - 1, ), (1, 1), (0, -n), ()):
        with pytest.raises(ValueError, match=rf'{family}: out_indices .*(\[-{n}, {n}\)|same stage twice)'):
            TINY[family](out_indices=bad)


@pytest.mark.parametrize('family', sorted(TINY))
def test_negative_out_indices_count_from_the_last_stage(family):
    n = NUM_STAGES[family]
    assert TINY[family](out_indices=(-1, )).out_indices == (n - 1, )
    assert TINY[family](out_indices=(0, -2)).out_indices == (0, n - 2)


def test_litv2_stage_settings_are_validated_up_front():
    with pytest.raises(ValueError, match=r'LITv2: local_ws entries must be integers >= 0, got \[0, 0, -2, 1\]'):
        TINY['LITv2'](local_ws=(0, 0, -2, 1))
    with pytest.raises(ValueError, match='LITv2: local_ws needs 4 entries'):
        TINY['LITv2'](local_ws=(0, 2, 1))
    with pytest.raises(ValueError, match='LITv2: depths entries must be integers >= 1'):
        LITv2(arch=dict(embed_dims=8, depths=[1, 0, 1, 1], num_heads=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r'LITv2: alpha .* \[0, 1\]'):
        TINY['LITv2'](alpha=1.5)


@pytest.mark.parametrize('family', sorted(TINY))
@pytest.mark.parametrize('mode', ['train', 'eval'])
@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_non_finite_pixels_are_refused(family, mode, value):
    model = TINY[family]().train(mode == 'train')
    x = torch.randn(2, 3, 64, 64)
    x[1, 0, 10, 20] = value
    with pytest.raises(ValueError, match=f'{family}: the input images hold NaN or Inf'):
        model(x)


def test_finiteness_check_is_exact_where_the_fast_sum_is_not():
    """The check sums the input first: finite pixels whose sum overflows still pass, and +Inf / -Inf pixels
    (whose sum is NaN) and a single NaN are still refused."""
    x = torch.full((1, 3, 32, 32), 3e38)
    assert not torch.isfinite(x.sum())
    check_images(x, 3, 32, 'LIT')
    for values in ((float('inf'), -float('inf')), (float('nan'), 0.)):
        x = torch.zeros(1, 3, 32, 32)
        x[0, 0, 0, :2] = torch.tensor(values)
        with pytest.raises(ValueError, match='NaN or Inf'):
            check_images(x, 3, 32, 'LIT')


@pytest.mark.parametrize('family', sorted(TINY))
def test_one_unbatched_image_is_refused_with_a_hint(family):
    with pytest.raises(ValueError, match=r'expects a batch of images \(B, 3, H, W\), got .*\(3, 64, 64\).*x\[None\]'):
        TINY[family]()(torch.randn(3, 64, 64))


@pytest.mark.parametrize('family,size', [('LITv2', 32), ('LIT', 32), ('LightViT', 4)])
def test_training_batch_of_one_at_the_smallest_size_names_the_rule(family, size):
    model = TINY[family]().train()
    with pytest.raises(ValueError, match='BatchNorm needs more than one value per channel.*batch size >= 2'):
        model(torch.randn(1, 3, size, size))
    assert all(torch.isfinite(out).all() for out in model(torch.randn(2, 3, size, size)))
    model.eval()(torch.randn(1, 3, size, size))  # inference with one image is fine


@pytest.mark.parametrize('family', ['LITv2', 'LIT'])
def test_dtm_norm_cfg_offers_syncbn(family):
    model = TINY[family](norm_cfg=dict(type='SyncBN'))
    norms = [m.norm_layer for m in model.modules() if type(m).__name__ == 'DeformableTokenMerging']
    assert len(norms) == 3 and all(isinstance(n, torch.nn.SyncBatchNorm) for n in norms)
    assert all(k in TINY[family]().state_dict() for k in model.state_dict())  # same checkpoint keys as BN
