"""LITv2 backbone against BACKBONE_CONTRACT.md and the official release (reference doc section 2)."""
import pytest
import torch

from mmvit_ext.checkpoint import CheckpointMismatchError, load_converted
from mmvit_ext.checkpoint.litv2 import convert_litv2, convert_litv2_classifier
from mmvit_ext.models.backbones import LITv2, litv2_classifier_cfg
from mmvit_ext.testing import (check_autocast, check_batch_independence, check_frozen_stages,
                               check_gradients_reach_all, check_norm_eval, check_output_shapes, check_with_cp,
                               count_params, random_state_dict)

# Official variants (reference doc 2.2): stage-1 width, depths, heads (head dim 32).
OFFICIAL = dict(small=(96, [2, 2, 6, 2], [3, 6, 12, 24]),
                medium=(96, [2, 2, 18, 2], [3, 6, 12, 24]),
                base=(128, [2, 2, 18, 2], [4, 8, 16, 32]))


def official_shapes(arch, kind='classification', local_ws=(0, 0, 2, 1), alpha=0.9):
    """Keys and shapes of the official checkpoints, written from the reference doc's state-dict table (2.5).

    kind: 'classification' (final ``norm`` + ``head``), 'detection' (``norm1..3``), 'segmentation' (``norm0..3``).
    """
    width, depths, heads = OFFICIAL[arch]
    shapes = {'patch_embed.proj.weight': (width, 3, 4, 4), 'patch_embed.proj.bias': (width, ),
              'patch_embed.norm.weight': (width, ), 'patch_embed.norm.bias': (width, )}
    for i in range(4):
        dim, hidden = width * 2**i, 4 * width * 2**i
        for j in range(depths[i]):
            p = f'layers.{i}.blocks.{j}.'
            if local_ws[i]:
                shapes.update({p + 'norm1.weight': (dim, ), p + 'norm1.bias': (dim, )})
                lofi = heads[i] if local_ws[i] == 1 else int(heads[i] * alpha)
                l_dim, h_dim = 32 * lofi, 32 * (heads[i] - lofi)
                if l_dim:
                    shapes.update({p + 'attn.l_q.weight': (l_dim, dim), p + 'attn.l_q.bias': (l_dim, ),
                                   p + 'attn.l_kv.weight': (2 * l_dim, dim), p + 'attn.l_kv.bias': (2 * l_dim, ),
                                   p + 'attn.l_proj.weight': (l_dim, l_dim), p + 'attn.l_proj.bias': (l_dim, )})
                if h_dim:
                    shapes.update({p + 'attn.h_qkv.weight': (3 * h_dim, dim), p + 'attn.h_qkv.bias': (3 * h_dim, ),
                                   p + 'attn.h_proj.weight': (h_dim, h_dim), p + 'attn.h_proj.bias': (h_dim, )})
            shapes.update({p + 'norm2.weight': (dim, ), p + 'norm2.bias': (dim, ),
                           p + 'mlp.fc1.weight': (hidden, dim), p + 'mlp.fc1.bias': (hidden, ),
                           p + 'mlp.dwconv.dwconv.weight': (hidden, 1, 3, 3), p + 'mlp.dwconv.dwconv.bias': (hidden, ),
                           p + 'mlp.fc2.weight': (dim, hidden), p + 'mlp.fc2.bias': (dim, )})
        if i < 3:
            p = f'layers.{i}.downsample.'
            shapes.update({p + 'dconv.weight': (2 * dim, dim, 2, 2), p + 'dconv.bias': (2 * dim, ),
                           p + 'dconv.conv_offset.weight': (8, dim, 2, 2), p + 'dconv.conv_offset.bias': (8, ),
                           p + 'norm_layer.num_batches_tracked': ()})
            shapes.update({p + f'norm_layer.{n}': (2 * dim, ) for n in ('weight', 'bias', 'running_mean',
                                                                        'running_var')})
    if kind == 'classification':
        shapes.update({'norm.weight': (8 * width, ), 'norm.bias': (8 * width, ), 'head.weight': (1000, 8 * width),
                       'head.bias': (1000, )})
    else:
        for i in range(0 if kind == 'segmentation' else 1, 4):
            shapes.update({f'norm{i}.weight': (width * 2**i, ), f'norm{i}.bias': (width * 2**i, )})
    return shapes


TINY = dict(embed_dims=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8])  # stage 3: 3 Lo-Fi + 1 Hi-Fi heads


@pytest.fixture(scope='module')
def classifiers():
    """The official classifiers, built once per variant (mmpretrain ImageClassifier)."""
    from mmpretrain.registry import MODELS
    cache = {}

    def get(arch):
        if arch not in cache:
            torch.manual_seed(0)
            cache[arch] = MODELS.build(litv2_classifier_cfg(arch))
        return cache[arch]
    return get


@pytest.fixture(scope='module')
def small():
    torch.manual_seed(0)
    return LITv2('small', drop_path_rate=0.)


@pytest.fixture(scope='module')
def official_small():
    """Random tensors under the official LITv2-S classification keys and shapes."""
    shapes = official_shapes('small')
    assert len(shapes) == 219  # reference doc: LITv2-S has 219 tensors
    return random_state_dict(shapes)


@pytest.mark.parametrize('arch, dims, millions', [('small', 96, 27.84), ('medium', 96, 48.83), ('base', 128, 86.52)])
def test_classifier_params_and_shapes(classifiers, arch, dims, millions):
    # Parameter count of the official classifier (1000 classes), the reference doc's instantiated numbers.
    classifier = classifiers(arch)
    assert count_params(classifier) / 1e6 == pytest.approx(millions, abs=0.005)
    check_output_shapes(classifier.backbone, torch.randn(1, 3, 97, 130), [(1, 8 * dims, 3, 4)])
    with torch.no_grad():
        assert classifier(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_small_flops_at_224(classifiers):
    from mmvit_ext.analysis import count_complexity
    classifier, x = classifiers('small').eval(), torch.randn(1, 3, 224, 224)
    # mmengine's FlopAnalyzer (the counter behind get_model_complexity_info) plus handles for the fused attention
    # and the deformable convs: the README's 3.7 G (3.73 G in the official alpha study).
    result = count_complexity(classifier, (x, ), by_operator=True)
    assert result['flops'] / 1e9 == pytest.approx(3.73, rel=0.01)
    # What get_model_complexity_info reports (those two ops uncounted, ~6% of the model) is still within 5%.
    extra = sum(v for k, v in result['flops_by_operator'].items() if 'scaled_dot_product' in k or 'Deform' in k)
    assert extra > 0
    assert (result['flops'] - extra) / 1e9 == pytest.approx(3.7, rel=0.05)


@pytest.mark.parametrize('local_ws', [(0, 0, 2, 1), (0, 0, 4, 1)])
def test_dense_shapes_at_odd_sizes(small, local_ws):
    # Stage 1 = ceil(H/4) x ceil(W/4), then floor halvings; HiLo pads to its window and crops back.
    model = LITv2('small', local_ws=local_ws) if local_ws != (0, 0, 2, 1) else small
    check_output_shapes(model, torch.randn(1, 3, 97, 130),
                        [(1, 96, 25, 33), (1, 192, 12, 16), (1, 384, 6, 8), (1, 768, 3, 4)])
    check_output_shapes(model, torch.randn(2, 3, 225, 333),
                        [(2, 96, 57, 84), (2, 192, 28, 42), (2, 384, 14, 21), (2, 768, 7, 10)])


def test_stage0_out_norm_flag():
    torch.manual_seed(0)
    det = LITv2(TINY, out_indices=(0, 2, 3))
    seg = LITv2(TINY, out_indices=(0, 2, 3), stage0_out_norm=True)
    assert not hasattr(det, 'norm0') and not hasattr(det, 'norm1') and hasattr(det, 'norm2')
    seg.load_state_dict(det.state_dict(), strict=False)
    with torch.no_grad():
        seg.norm0.weight.uniform_(0.5, 1.5)
        x = torch.randn(1, 3, 64, 64)
        det_outs, seg_outs = det.eval()(x), seg.eval()(x)
        expected = seg.norm0(det_outs[0].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert [o.shape[1] for o in seg_outs] == [32, 128, 256]
    torch.testing.assert_close(seg_outs[0], expected)
    for a, b in zip(det_outs[1:], seg_outs[1:]):
        torch.testing.assert_close(a, b)


def test_gradients_reach_every_parameter_incl_offsets(small):
    check_gradients_reach_all(small, torch.randn(2, 3, 64, 96))
    assert len([n for n, p in small.named_parameters() if 'conv_offset' in n]) == 6


def test_batch_independence(small):
    # At least 16 tokens per image in every GEMM: MKL switches kernels (and rounding) for tiny row counts.
    check_batch_independence(small, torch.randn(3, 3, 128, 136))


def test_autocast_bf16(small):
    check_autocast(small, torch.randn(2, 3, 64, 64))


def test_with_cp_same_outputs_and_gradients():
    check_with_cp(lambda with_cp: LITv2(TINY, drop_path_rate=0.1, with_cp=with_cp), torch.randn(2, 3, 64, 64))


def test_frozen_stages_and_norm_eval():
    model = LITv2(TINY, frozen_stages=2, norm_eval=True)
    check_frozen_stages(model, ['patch_embed', 'layers.0', 'layers.1', 'norm1'], ['layers.2', 'layers.3', 'norm2'])
    check_norm_eval(model)
    assert all(p.requires_grad for p in LITv2(TINY).parameters())
    with pytest.raises(ValueError, match='frozen_stages'):
        LITv2(TINY, frozen_stages=5)


def test_bad_inputs_raise_clear_errors(small):
    with pytest.raises(ValueError, match='unknown arch'):
        LITv2('tiny')
    with pytest.raises(ValueError, match='lacks the keys'):
        LITv2(dict(embed_dims=32, depths=[1, 1, 1, 1]))
    with pytest.raises(ValueError, match='4 entries'):
        LITv2(TINY, local_ws=(0, 2, 1))
    with pytest.raises(ValueError, match='expects'):
        small(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match='at least'):
        small(torch.randn(1, 3, 16, 64))


def _save(tmp_path, name, checkpoint):
    path = tmp_path / name
    torch.save(checkpoint, path)
    return str(path)


def test_official_classification_checkpoint_loads(tmp_path, classifiers, official_small):
    path = _save(tmp_path, 'litv2_s.pth', {'model': official_small, 'epoch': 300})
    model = LITv2('small', init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    loaded = model.state_dict()
    for key, value in official_small.items():
        if not key.startswith(('norm.', 'head.')):
            torch.testing.assert_close(loaded[key], value, msg=key)
    # The classifier takes every tensor, the final norm and the head included.
    classifier = classifiers('small')
    classifier.load_state_dict(convert_litv2_classifier(official_small), strict=True)
    torch.testing.assert_close(classifier.backbone.norm3.weight, official_small['norm.weight'])
    torch.testing.assert_close(classifier.head.fc.weight, official_small['head.weight'])


@pytest.mark.parametrize('kind', ['detection', 'segmentation'])
def test_official_dense_checkpoint_loads(tmp_path, kind):
    # The window size does not change any shape: the "*" (ws 4) files have the same layout.
    official = random_state_dict(official_shapes('small', kind))
    detector = {'backbone.' + k: v for k, v in official.items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 96, 1, 1)
    path = _save(tmp_path, 'dense.pth', {'state_dict': detector, 'meta': {}})
    model = LITv2('small', local_ws=(0, 0, 4, 1), stage0_out_norm=kind == 'segmentation',
                  init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    loaded = model.state_dict()
    assert set(loaded) == set(official)
    for key, value in official.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    # Our own layout converts to itself.
    assert set(convert_litv2(loaded, model).state_dict) == set(loaded)
    if kind == 'segmentation':  # norm0 of a segmentation file is skipped (with the reason) by a detection backbone
        converted = convert_litv2(official, LITv2(TINY))
        assert 'norm0.weight' in converted.skipped and 'norm0.weight' not in converted.state_dict


def test_wrong_checkpoints_raise(tmp_path, small, official_small):
    truncated = {k: v for k, v in official_small.items() if not k.startswith('layers.2.blocks.5.')}
    with pytest.raises(CheckpointMismatchError, match='missing keys.*layers.2.blocks.5'):
        small.load_pretrained(_save(tmp_path, 'm.pth', {'model': truncated}))
    alpha_half = random_state_dict(official_shapes('small', alpha=0.5))
    with pytest.raises(CheckpointMismatchError, match='shape mismatches.*l_q.weight'):
        load_converted(small, convert_litv2(alpha_half, small))
    medium = dict(official_small, **{'layers.2.blocks.6.attn.l_q.weight': torch.ones(320, 384)})
    with pytest.raises(CheckpointMismatchError, match='unexpected keys.*blocks.6'):
        load_converted(small, convert_litv2(medium, small))
    lit_v1 = dict(official_small, **{'layers.2.blocks.0.attn.qkv.weight': torch.ones(3)})
    with pytest.raises(CheckpointMismatchError, match='unexpected keys.*attn.qkv'):
        load_converted(small, convert_litv2(lit_v1, small))


def test_offline_converter(tmp_path, classifiers, official_small):
    import importlib.util
    spec = importlib.util.spec_from_file_location('litv2_to_mmvit', 'tools/model_converters/litv2_to_mmvit.py')
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    src = _save(tmp_path, 'litv2_s.pth', {'model': official_small})
    backbone_dst, classifier_dst = str(tmp_path / 'backbone.pth'), str(tmp_path / 'classifier.pth')
    converter.main([src, backbone_dst])  # arch inferred from the shapes
    converter.main([src, classifier_dst, '--arch', 'small', '--classifier'])
    backbone = torch.load(backbone_dst)['state_dict']
    assert set(backbone) == {k for k in official_small if not k.startswith(('norm.', 'head.'))}
    torch.testing.assert_close(backbone['layers.2.blocks.5.attn.h_qkv.weight'],
                               official_small['layers.2.blocks.5.attn.h_qkv.weight'])
    classifiers('small').load_state_dict(torch.load(classifier_dst)['state_dict'], strict=True)
    with pytest.raises(SystemExit, match='(?s)LITv2 cannot load .*shape mismatches'):  # the message, no traceback
        converter.main([src, backbone_dst, '--alpha', '0.5'])
