"""LightViT backbone: the backbone contract, official layouts, parameter counts and FLOPs."""
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from mmvit_ext.checkpoint import CheckpointMismatchError
from mmvit_ext.checkpoint.lightvit import convert_lightvit, convert_lightvit_classifier
from mmvit_ext.models.backbones import LightViT
from mmvit_ext.models.heads import LightViTClsNeck
from mmvit_ext.testing import (check_autocast, check_batch_independence, check_frozen_stages,
                               check_gradients_reach_all, check_norm_eval, check_output_shapes, check_with_cp,
                               count_params, random_state_dict)

ARCHS = {
    'tiny': dict(dims=[64, 128, 256], depths=[2, 6, 6], heads=[2, 4, 8], ratios=[8, 4, 4], tokens=8),
    'small': dict(dims=[96, 192, 384], depths=[2, 6, 6], heads=[3, 6, 12], ratios=[8, 4, 4], tokens=16),
    'base': dict(dims=[128, 256, 512], depths=[3, 8, 6], heads=[4, 8, 16], ratios=[8, 4, 4], tokens=24),
}
# Official numbers (reference doc §3.2): classification model (1000 classes) and dense backbone (official tokens).
CLS_PARAMS_M = {'tiny': 9.38, 'small': 19.20, 'base': 35.20}
DENSE_PARAMS_M = {'tiny': (7.80, 512), 'small': (17.42, 16), 'base': (33.26, 24)}


def official_shapes(arch: str, head: bool = True, out_norms=()) -> 'OrderedDict[str, tuple]':
    """Key -> shape of an official LightViT state dict (reference doc §3.5; 415 tensors for LightViT-T)."""
    a = ARCHS[arch]
    c0, half = a['dims'][0], a['dims'][0] // 2
    shapes = OrderedDict(global_token=(1, a['tokens'], c0))
    shapes['patch_embed.stem.0.weight'] = (half, 3, 3, 3)
    for bn, conv in ((1, 3), (4, 6), (7, 9), (10, None)):
        for p in ('weight', 'bias', 'running_mean', 'running_var'):
            shapes[f'patch_embed.stem.{bn}.{p}'] = (half, )
        shapes[f'patch_embed.stem.{bn}.num_batches_tracked'] = ()
        if conv:
            shapes[f'patch_embed.stem.{conv}.weight'] = (half, 1, 3, 3)
    shapes.update({'patch_embed.proj.weight': (c0, half, 3, 3), 'patch_embed.proj.bias': (c0, ),
                   'patch_embed.norm.weight': (c0, ), 'patch_embed.norm.bias': (c0, )})
    for i, (c, depth, heads, r) in enumerate(zip(a['dims'], a['depths'], a['heads'], a['ratios'])):
        if i:
            p, cp = f'stages.{i}.0.', a['dims'][i - 1]
            shapes.update({p + 'norm.weight': (4 * cp, ), p + 'norm.bias': (4 * cp, ),
                           p + 'reduction.weight': (c, 4 * cp), p + 'norm2.weight': (cp, ), p + 'norm2.bias': (cp, ),
                           p + 'proj.weight': (c, cp), p + 'res_proj.weight': (c, cp)})
        for j in range(i > 0, depth + (i > 0)):
            p = f'stages.{i}.{j}.'
            for name, shape in [('norm1.weight', (c, )), ('norm1.bias', (c, )),
                                ('attn.relative_position_bias_table', (169, heads)),
                                ('attn.relative_position_index', (2401, )),
                                ('attn.qkv.weight', (3 * c, c)), ('attn.qkv.bias', (3 * c, )),
                                ('attn.kv_global.weight', (2 * c, c)), ('attn.kv_global.bias', (2 * c, )),
                                ('attn.proj.weight', (c, c)), ('attn.proj.bias', (c, )),
                                ('norm2.weight', (c, )), ('norm2.bias', (c, )),
                                ('mlp.fc1.weight', (r * c, c)), ('mlp.fc1.bias', (r * c, )),
                                ('mlp.fc2.weight', (c, r * c)), ('mlp.fc2.bias', (c, )),
                                ('mlp.attn.norm.weight', (c, )), ('mlp.attn.norm.bias', (c, )),
                                ('mlp.attn.global_reduce.weight', (c // 4, c)),
                                ('mlp.attn.global_reduce.bias', (c // 4, )),
                                ('mlp.attn.local_reduce.weight', (c // 4, c)),
                                ('mlp.attn.local_reduce.bias', (c // 4, )),
                                ('mlp.attn.channel_select.weight', (c, c // 4)),
                                ('mlp.attn.channel_select.bias', (c, )),
                                ('mlp.attn.spatial_select.weight', (1, c // 2)),
                                ('mlp.attn.spatial_select.bias', (1, ))]:
                shapes[p + name] = shape
    for i in out_norms:
        shapes[f'norm{i}.weight'] = shapes[f'norm{i}.bias'] = (a['dims'][i], )
    if head:
        c = a['dims'][-1]
        shapes.update({'norm.weight': (c, ), 'norm.bias': (c, ), 'neck.0.weight': (1280, c), 'neck.0.bias': (1280, ),
                       'neck.1.weight': (1280, ), 'neck.1.bias': (1280, ), 'head.weight': (1000, 1280),
                       'head.bias': (1000, )})
    return shapes


class Classifier(nn.Module):
    """The mmpretrain ImageClassifier's feature path: LightViT(tokens) -> LightViTClsNeck -> Linear head."""

    def __init__(self, arch: str, **kwargs):
        super().__init__()
        self.backbone = LightViT(arch, out_type='tokens', out_indices=(2, ), **kwargs)
        self.neck = LightViTClsNeck(ARCHS[arch]['dims'][-1], 1280)
        self.head = nn.Module()
        self.head.fc = nn.Linear(1280, 1000)

    def forward(self, x):
        return self.head.fc(self.neck(self.backbone(x))[-1])


def expected_shapes(arch, b, h, w):
    sizes = [(math.ceil(h / 8), math.ceil(w / 8))]
    for _ in range(2):
        sizes.append(tuple(math.ceil(s / 2) for s in sizes[-1]))
    return [(b, c, *s) for c, s in zip(ARCHS[arch]['dims'], sizes)]


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    model = LightViT('tiny', drop_path_rate=0.)
    model.init_weights()
    return model


# ----------------------------------------------------------------------------------------------- shapes, contract
@pytest.mark.parametrize('arch', ['t', 's', 'b'])
def test_output_shapes_every_variant(arch):
    name = {'t': 'tiny', 's': 'small', 'b': 'base'}[arch]
    model = LightViT(arch)
    check_output_shapes(model, torch.randn(1, 3, 64, 96), expected_shapes(name, 1, 64, 96))


@pytest.mark.parametrize('size', [(1, 97, 130), (2, 225, 333)])
def test_odd_input_sizes(tiny, size):
    b, h, w = size
    check_output_shapes(tiny, torch.randn(b, 3, h, w), expected_shapes('tiny', b, h, w))
    if size == (1, 97, 130):
        assert expected_shapes('tiny', b, h, w) == [(1, 64, 13, 17), (1, 128, 7, 9), (1, 256, 4, 5)]


def test_out_indices_and_tokens_output():
    model = LightViT('tiny', out_indices=(1, -1))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape for o in outs] == [(1, 128, 4, 4), (1, 256, 2, 2)]
    assert not hasattr(model, 'norm0')
    tokens = LightViT('tiny', out_type='tokens', out_indices=(0, 2))(torch.randn(1, 3, 64, 64))
    assert [t.shape for t in tokens] == [(1, 8 + 64, 64), (1, 8 + 4, 256)]


def test_dense_last_block_drops_global_tokens_before_ffn():
    """Dense mode: the last block's FFN (and its BiAttn mean) sees image tokens only, as the official dense code;
    the classification mode keeps the global tokens to the end."""
    seen = {}
    x = torch.randn(1, 3, 64, 64)  # last stage: 2x2 image tokens + 8 global tokens
    for out_type in ('featmap', 'tokens'):
        model = LightViT('tiny', out_type=out_type).eval()
        last_ffn = model.stages[2].blocks[-1].mlp
        hook = last_ffn.register_forward_hook(lambda m, args, out, key=out_type: seen.update({key: args[0].shape}))
        with torch.no_grad():
            model(x)
        hook.remove()
        assert sum(block.drop_global_tokens for stage in model.stages for block in stage.blocks) == \
            (out_type == 'featmap')
    assert seen == {'featmap': (1, 4, 256), 'tokens': (1, 8 + 4, 256)}


def test_batch_independence(tiny):
    check_batch_independence(tiny, torch.randn(2, 3, 64, 90))


def test_gradients_reach_every_parameter():
    model = LightViT('tiny', drop_path_rate=0.)
    model.init_weights()
    check_gradients_reach_all(model, torch.randn(2, 3, 64, 64))


def test_with_cp_same_outputs_and_gradients():
    check_with_cp(lambda with_cp: LightViT('tiny', drop_path_rate=0.1, with_cp=with_cp), torch.randn(1, 3, 64, 64))


def test_frozen_stages():
    model = LightViT('tiny', frozen_stages=1)
    check_frozen_stages(model, ['patch_embed', 'stages.0', 'norm0', 'global_token'], ['stages.1', 'stages.2', 'norm1'])
    with pytest.raises(ValueError, match='frozen_stages'):
        LightViT('tiny', frozen_stages=4)


@pytest.mark.parametrize('flag', ['norm_eval', 'stem_norm_eval'])
def test_norm_eval(flag):
    model = LightViT('tiny', **{flag: True})
    check_norm_eval(model)
    model.train()
    assert model.stages[0].training


def test_autocast(tiny):
    check_autocast(tiny, torch.randn(1, 3, 64, 64), torch.bfloat16)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='unknown arch'):
        LightViT('huge')
    with pytest.raises(ValueError, match='lacks the keys'):
        LightViT(dict(embed_dims=[8, 16, 32]))
    with pytest.raises(ValueError, match='input channels'):
        LightViT('tiny')(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='out_type'):
        LightViT('tiny', out_type='cls')
    with pytest.raises(ValueError, match='out_indices'):
        LightViT('tiny', out_indices=(3, ))


def test_custom_arch_and_token_count():
    arch = dict(embed_dims=[32, 64], depths=[1, 1], num_heads=[1, 2], mlp_ratios=[2, 2], num_global_tokens=0)
    model = LightViT(arch, out_indices=(0, 1))
    assert [o.shape for o in model(torch.randn(1, 3, 40, 40))] == [(1, 32, 5, 5), (1, 64, 3, 3)]
    assert LightViT('tiny', num_global_tokens=512).global_token.shape == (1, 512, 64)


def test_torch_jit_trace(tiny):
    x = torch.randn(1, 3, 64, 96)
    traced = torch.jit.trace(tiny.eval(), x, check_trace=False)
    for a, b in zip(traced(x), tiny(x)):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------- official checkpoints
def test_official_layout_has_415_tensors_for_tiny():
    assert len(official_shapes('tiny')) == 415


@pytest.mark.parametrize('container', ['state_dict', 'model', None])
def test_official_classification_checkpoint_loads_via_init_cfg(tmp_path, container):
    state = random_state_dict(official_shapes('tiny'))
    path = tmp_path / 'lightvit_tiny_78.7.ckpt'
    torch.save({container: state} if container else state, path)
    model = LightViT('tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    own = model.state_dict()
    torch.testing.assert_close(own['stages.1.downsample.reduction.weight'], state['stages.1.0.reduction.weight'])
    torch.testing.assert_close(own['stages.1.blocks.0.mlp.gate.spatial_select.weight'],
                               state['stages.1.1.mlp.attn.spatial_select.weight'])
    torch.testing.assert_close(own['stages.0.blocks.1.attn.kv_global.weight'],
                               state['stages.0.1.attn.kv_global.weight'])
    torch.testing.assert_close(own['stages.2.blocks.5.attn.relative_position_bias.relative_position_bias_table'],
                               state['stages.2.6.attn.relative_position_bias_table'])
    torch.testing.assert_close(own['global_token'], state['global_token'])


def test_official_dense_checkpoint_with_backbone_prefix(tmp_path):
    shapes = official_shapes('small', head=False, out_norms=(0, 1, 2))
    state = {'backbone.' + k: v for k, v in random_state_dict(shapes).items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 96, 1, 1)
    path = tmp_path / 'mask_rcnn_lightvit_small.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    model = LightViT('small', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    torch.testing.assert_close(model.norm2.weight, state['backbone.norm2.weight'])


def test_official_512_token_detection_checkpoint():
    shapes = official_shapes('tiny', head=False, out_norms=(0, 1, 2))
    shapes['global_token'] = (1, 512, 64)
    state = random_state_dict(shapes)
    with pytest.raises(CheckpointMismatchError, match='512 zero-initialised'):
        convert_lightvit(state, LightViT('tiny'))
    from mmvit_ext.checkpoint import load_converted
    model = LightViT('tiny', num_global_tokens=512)
    load_converted(model, convert_lightvit(state, model))
    torch.testing.assert_close(model.global_token, state['global_token'])


def test_wrong_checkpoints_raise():
    small = random_state_dict(official_shapes('small'))
    from mmvit_ext.checkpoint import load_converted
    model = LightViT('small', num_global_tokens=16)
    load_converted(model, convert_lightvit(small, model), allow_missing=model.new_keys_on_pretrained)  # fits
    with pytest.raises(CheckpointMismatchError):
        tiny = LightViT('tiny', num_global_tokens=16)
        small['global_token'] = torch.zeros(1, 16, 64)
        load_converted(tiny, convert_lightvit(small, tiny), allow_missing=tiny.new_keys_on_pretrained)
    broken = random_state_dict(official_shapes('tiny'))
    del broken['stages.2.3.attn.qkv.weight']
    model = LightViT('tiny')
    with pytest.raises(CheckpointMismatchError, match='stages.2.blocks.2.attn.qkv.weight'):
        load_converted(model, convert_lightvit(broken, model), allow_missing=model.new_keys_on_pretrained)
    litv2_like = {'patch_embed.proj.weight': torch.zeros(96, 3, 4, 4),
                  'layers.0.blocks.0.mlp.fc1.weight': torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError, match='unexpected'):
        load_converted(model, convert_lightvit(litv2_like, model), allow_missing=model.new_keys_on_pretrained)


def test_converter_is_idempotent():
    state = random_state_dict(official_shapes('tiny', head=False, out_norms=(0, 1, 2)))
    once = convert_lightvit(state).state_dict
    twice = convert_lightvit(once).state_dict
    assert list(once) == list(twice)
    assert set(once) == set(LightViT('tiny').state_dict())
    cls_once = convert_lightvit_classifier(random_state_dict(official_shapes('tiny')))
    assert convert_lightvit_classifier(cls_once).keys() == cls_once.keys()


def test_classifier_checkpoint_converts_to_mmpretrain_layout():
    state = random_state_dict(official_shapes('tiny'))
    converted = convert_lightvit_classifier(state)
    model = Classifier('tiny')
    missing, unexpected = model.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    torch.testing.assert_close(model.neck.expand[0].weight, state['neck.0.weight'])
    torch.testing.assert_close(model.neck.norm.weight, state['norm.weight'])
    torch.testing.assert_close(model.head.fc.weight, state['head.weight'])


# ------------------------------------------------------------------------------------------ params and FLOPs
@pytest.mark.parametrize('arch', ['tiny', 'small', 'base'])
def test_parameter_counts_match_official(arch):
    cls_params = count_params(Classifier(arch)) / 1e6
    assert abs(cls_params - CLS_PARAMS_M[arch]) / CLS_PARAMS_M[arch] < 0.01, cls_params
    official, tokens = DENSE_PARAMS_M[arch]
    dense_params = count_params(LightViT(arch, num_global_tokens=tokens)) / 1e6
    assert abs(dense_params - official) / official < 0.01, dense_params


def test_flops_at_224_match_official():
    """The official FLOPs (paper 0.73 / README 0.7 G for T) count the linear, conv and norm layers, not the attention
    matmuls. mmengine's default counting (no handle for SDPA) of the official classification model gives 0.7387 G
    for T: linear 0.6964, conv 0.0334, layer norm 0.0063 and its stem's batch norms 0.0026, which ours folds into
    the convs in eval mode; the attention matmuls add 0.042 G. Checked for T (S and B take longer to trace)."""
    from mmengine.analysis import FlopAnalyzer

    from mmvit_ext.analysis import sdpa_flop_jit
    official, attention = 0.7387 - 0.0026, 0.0424
    analyzer = FlopAnalyzer(Classifier('tiny').eval(), torch.randn(1, 3, 224, 224))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    by_op = analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).by_operator()
    assert by_op['scaled_dot_product_attention'] / 1e9 == pytest.approx(attention, abs=1e-3)
    gflops = (sum(by_op.values()) - by_op['scaled_dot_product_attention']) / 1e9  # mmengine's default count
    assert abs(gflops - official) / official < 0.005, gflops


def test_offline_converter_tool(tmp_path):
    """tools/model_converters/lightvit_to_mmvit.py: official classification file -> classifier keys (idempotent)."""
    import importlib.util
    import os.path as osp
    path = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'model_converters', 'lightvit_to_mmvit.py')
    spec = importlib.util.spec_from_file_location('lightvit_to_mmvit', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    state = random_state_dict(official_shapes('tiny'))
    torch.save({'model': state}, tmp_path / 'official.ckpt')
    args = tool.convert_file(str(tmp_path / 'official.ckpt'), str(tmp_path / 'ours.pth'))
    assert args == dict(arch='tiny', num_global_tokens=8, out_type='tokens', out_indices=(2, ))
    ours = torch.load(tmp_path / 'ours.pth')['state_dict']
    Classifier('tiny').load_state_dict(ours, strict=True)
    tool.convert_file(str(tmp_path / 'ours.pth'), str(tmp_path / 'again.pth'))
    assert torch.load(tmp_path / 'again.pth')['state_dict'].keys() == ours.keys()
