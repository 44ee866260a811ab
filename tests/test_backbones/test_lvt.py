"""LVT backbone against the backbone contract, the official state-dict layout (reference doc §4.5) and an
official-layout forward written here with functional ops on the official tensors (§4.3)."""
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from mmvit_ext.checkpoint import CheckpointMismatchError
from mmvit_ext.checkpoint.lvt import convert_lvt, convert_lvt_classifier
from mmvit_ext.models.backbones import LVT, lvt_classifier_cfg
from mmvit_ext.testing import (check_autocast, check_batch_independence, check_frozen_stages,
                               check_gradients_reach_all, check_output_shapes, check_with_cp, count_params)

DIMS, HEADS, MLP_RATIOS, SR_RATIOS = (64, 64, 160, 256), (2, 2, 5, 8), (4, 8, 4, 4), (8, 4, 2, 1)


def official_shapes(classifier: bool = False) -> 'OrderedDict[str, tuple]':
    """Keys and shapes of ``lvt_imagenet_pretrained.pth.tar`` (148 tensors) or ``lvt_imagenet.pth.tar`` (179)."""
    shapes = OrderedDict()
    dims_in = 3
    for i, (d, sr, ratio) in enumerate(zip(DIMS, SR_RATIOS, MLP_RATIOS)):
        k = 7 if i == 0 else 3
        shapes.update({f'backbone.{i}.0.proj.weight': (d, dims_in, k, k), f'backbone.{i}.0.proj.bias': (d, ),
                       f'backbone.{i}.0.norm.weight': (d, ), f'backbone.{i}.0.norm.bias': (d, )})
        hidden = d * ratio
        for j in range(2):
            p = f'backbone.{i}.1.{j}.'
            for norm in ('norm1', 'norm2'):
                shapes.update({p + norm + '.weight': (d, ), p + norm + '.bias': (d, )})
            if i == 0:
                shapes.update({p + 'attn.attn.weight': (81 * HEADS[0], d), p + 'attn.attn.bias': (81 * HEADS[0], ),
                               p + 'attn.weight.weight': (9 * d, d, 1, 1), p + 'attn.proj.weight': (d, d),
                               p + 'attn.proj.bias': (d, ), p + 'mlp.fc1.weight': (hidden, d),
                               p + 'mlp.fc1.bias': (hidden, ), p + 'mlp.fc2.weight': (d, hidden),
                               p + 'mlp.fc2.bias': (d, )})
                continue
            shapes.update({p + 'attn.q.weight': (d, d), p + 'attn.kv.weight': (2 * d, d),
                           p + 'attn.proj.weight': (d, d), p + 'attn.proj.bias': (d, ),
                           p + 'attn.ds.weight': (d, 1, 3, 3)})
            if sr > 1:
                shapes.update({p + 'attn.sr.weight': (d, d, sr, sr), p + 'attn.sr.bias': (d, ),
                               p + 'attn.norm.weight': (d, ), p + 'attn.norm.bias': (d, )})
            shapes.update({p + 'mlp.fc1.weight': (hidden, d, 1, 1), p + 'mlp.fc1.bias': (hidden, ),
                           p + 'mlp.depconv.weight': (hidden, 1, 3, 3), p + 'mlp.depconv.bias': (hidden, ),
                           p + 'mlp.fc2.weight': (d, hidden, 1, 1), p + 'mlp.fc2.bias': (d, )})
        dims_in = d
    if classifier:
        shapes['cls_token'] = (1, 1, 256)
        for j in range(2):
            p = f'post_network.{j}.'
            shapes.update({p + 'norm1.weight': (256, ), p + 'norm1.bias': (256, ), p + 'attn.kv.weight': (512, 256),
                           p + 'attn.q.weight': (256, 256), p + 'attn.proj.weight': (256, 256),
                           p + 'attn.proj.bias': (256, ), p + 'norm2.weight': (256, ), p + 'norm2.bias': (256, ),
                           p + 'mlp.fc1.weight': (1024, 256), p + 'mlp.fc1.bias': (1024, ),
                           p + 'mlp.fc2.weight': (256, 1024), p + 'mlp.fc2.bias': (256, )})
        shapes.update({'norm.weight': (256, ), 'norm.bias': (256, ), 'head.weight': (1000, 256),
                       'head.bias': (1000, ), 'aux_head.weight': (1000, 256), 'aux_head.bias': (1000, )})
    return shapes


def official_state(classifier: bool = False, seed: int = 0):
    """Random official-layout weights at a scale that keeps activations moderate (norm weights around 1)."""
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in official_shapes(classifier).items():
        value = torch.randn(shape, generator=gen)
        if 'norm' in key and key.endswith('weight'):
            value = 1 + 0.1 * value
        elif len(shape) > 1:
            value = value / math.sqrt(math.prod(shape[1:]))
        else:
            value = 0.1 * value
        state[key] = value
    return state


# ---- the official forward, on official tensors (reference doc §4.3) ----
def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + '.weight'], sd[p + '.bias'])


def _official_csa(sd, p, x, heads):
    b, height, width, c = x.shape
    hd = c // heads
    pooled = F.avg_pool2d(x.permute(0, 3, 1, 2), 2, 2, ceil_mode=True).permute(0, 2, 3, 1)
    h, w = pooled.shape[1:3]
    attn = F.linear(pooled, sd[p + 'attn.attn.weight'], sd[p + 'attn.attn.bias'])
    attn = (attn.reshape(b, h * w, heads, 9, 9).permute(0, 2, 1, 3, 4) * hd**-0.5).softmax(-1)
    cols = F.unfold(x.permute(0, 3, 1, 2), 3, padding=1, stride=2).reshape(b, c, 9, h * w)
    cols = cols.permute(0, 3, 2, 1).reshape(b * h * w, 9 * c, 1, 1)
    v = F.conv2d(cols, sd[p + 'attn.weight.weight'], groups=9).reshape(b, h * w, 9, heads, hd).permute(0, 3, 1, 2, 4)
    out = (attn @ v).permute(0, 1, 4, 3, 2).reshape(b, 9 * c, h * w)
    out = F.fold(out, (height, width), 3, padding=1, stride=2).permute(0, 2, 3, 1)
    return F.linear(out, sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])


def _official_asa(sd, p, x, heads, sr):
    b, h, w, c = x.shape
    hd = c // heads
    q = F.linear(x, sd[p + 'attn.q.weight']).permute(0, 3, 1, 2)
    q = sum(F.silu(F.conv2d(q, sd[p + 'attn.ds.weight'], padding=d, dilation=d, groups=c)) for d in (1, 3, 5))
    q = q.flatten(2).transpose(1, 2).reshape(b, h * w, heads, hd).transpose(1, 2)
    src = x
    if sr > 1:
        src = F.conv2d(x.permute(0, 3, 1, 2), sd[p + 'attn.sr.weight'], sd[p + 'attn.sr.bias'], stride=sr)
        src = _ln(src.permute(0, 2, 3, 1), sd, p + 'attn.norm')
    kv = F.linear(src.reshape(b, -1, c), sd[p + 'attn.kv.weight']).reshape(b, -1, 2, heads, hd).permute(2, 0, 3, 1, 4)
    attn = (q @ kv[0].transpose(-2, -1) * hd**-0.5).softmax(-1)
    out = (attn @ kv[1]).transpose(1, 2).reshape(b, h, w, c)
    return F.linear(out, sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'])


def _official_conv_mlp(sd, p, x):
    y = F.conv2d(x.permute(0, 3, 1, 2), sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias'])
    y = F.gelu(F.conv2d(y, sd[p + 'mlp.depconv.weight'], sd[p + 'mlp.depconv.bias'], padding=1, groups=y.shape[1]))
    return F.conv2d(y, sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias']).permute(0, 2, 3, 1)


def official_forward(sd, x):
    outs = []
    for i in range(4):
        k, s = (7, 4) if i == 0 else (3, 2)
        x = F.conv2d(x, sd[f'backbone.{i}.0.proj.weight'], sd[f'backbone.{i}.0.proj.bias'], stride=s, padding=k // 2)
        x = _ln(x.permute(0, 2, 3, 1), sd, f'backbone.{i}.0.norm')
        for j in range(2):
            p = f'backbone.{i}.1.{j}.'
            y = _ln(x, sd, p + 'norm1')
            if i == 0:
                x = x + _official_csa(sd, p, y, HEADS[0])
                y = _ln(x, sd, p + 'norm2')
                y = F.linear(F.gelu(F.linear(y, sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias'])),
                             sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'])
                x = x + y
                continue
            a1 = F.silu(_official_asa(sd, p, y, HEADS[i], SR_RATIOS[i]))
            x = x + F.silu(_official_asa(sd, p, a1 + y, HEADS[i], SR_RATIOS[i]))
            x = x + _official_conv_mlp(sd, p, _ln(x, sd, p + 'norm2'))
        outs.append(x.permute(0, 3, 1, 2))
        x = x.permute(0, 3, 1, 2)
    return outs


# ---- tests ----
def test_param_counts_match_official():
    backbone = LVT()
    assert count_params(backbone) == sum(math.prod(s) for s in official_shapes().values())
    assert round(count_params(backbone) / 1e6, 2) == 3.43
    from mmpretrain.registry import MODELS
    classifier = MODELS.build(lvt_classifier_cfg())
    assert count_params(classifier) == sum(math.prod(s) for s in official_shapes(classifier=True).values())
    assert round(count_params(classifier) / 1e6, 2) == 5.52


@pytest.mark.parametrize('shape,expected', [
    ((1, 3, 64, 96), [(1, 64, 16, 24), (1, 64, 8, 12), (1, 160, 4, 6), (1, 256, 2, 3)]),
    ((1, 3, 97, 130), [(1, 64, 25, 33), (1, 64, 13, 17), (1, 160, 7, 9), (1, 256, 4, 5)]),
    ((2, 3, 225, 333), [(2, 64, 57, 84), (2, 64, 29, 42), (2, 160, 15, 21), (2, 256, 8, 11)]),
    ((1, 3, 20, 9), [(1, 64, 5, 3), (1, 64, 3, 2), (1, 160, 2, 1), (1, 256, 1, 1)]),
])
def test_output_shapes(shape, expected):
    check_output_shapes(LVT(), torch.randn(shape), expected)


def test_out_indices_and_out_norm():
    model = LVT(out_indices=(1, 3), out_norm=True)
    check_output_shapes(model, torch.randn(1, 3, 64, 64), [(1, 64, 8, 8), (1, 256, 2, 2)])
    assert hasattr(model, 'norm1') and hasattr(model, 'norm3') and not hasattr(model, 'norm0')


def test_batch_independence():
    check_batch_independence(LVT(), torch.randn(3, 3, 64, 96))


def test_gradients_reach_every_parameter():
    check_gradients_reach_all(LVT(), torch.randn(2, 3, 64, 96))


def test_with_cp_same_outputs_and_gradients():
    check_with_cp(lambda with_cp: LVT(with_cp=with_cp, drop_path_rate=0.1), torch.randn(2, 3, 64, 96))


@pytest.mark.parametrize('frozen_stages', [0, 2])
def test_frozen_stages(frozen_stages):
    model = LVT(frozen_stages=frozen_stages)
    frozen = ['stages.0.patch_embed.'] + [f'stages.{i}.' for i in range(frozen_stages)]
    trainable = [f'stages.{i}.' for i in range(max(frozen_stages, 1), 4)]
    if frozen_stages == 0:
        trainable.append('stages.0.blocks.')
    check_frozen_stages(model, frozen, trainable)
    with pytest.raises(ValueError, match='frozen_stages'):
        LVT(frozen_stages=5)


def test_norm_eval_is_accepted_and_lvt_has_no_batchnorm():
    model = LVT(norm_eval=True).train()
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_drop_path_rate_works():
    model = LVT(drop_path_rate=0.5)
    rates = [blk.drop_path.drop_prob for stage in model.stages for blk in stage.blocks[1:]]
    assert rates == pytest.approx([0.5 * i / 7 for i in (1, 3, 5, 7)])
    x = torch.randn(2, 3, 64, 64)
    model.train()
    torch.manual_seed(0)
    a = model(x)[-1]
    torch.manual_seed(1)
    b = model(x)[-1]
    assert not torch.allclose(a, b), 'drop path has no effect in training'
    model.eval()
    torch.testing.assert_close(model(x)[-1], model(x)[-1])


def test_autocast_bf16():
    check_autocast(LVT(), torch.randn(1, 3, 64, 96))


def test_jit_trace():
    model = LVT().eval()
    x = torch.randn(1, 3, 64, 96)
    traced = torch.jit.trace(model, x, check_trace=False)
    for a, b in zip(traced(x), model(x)):
        torch.testing.assert_close(a, b)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='unknown arch'):
        LVT(arch='huge')
    with pytest.raises(ValueError, match='lacks the keys'):
        LVT(arch=dict(embed_dims=[8] * 4))
    with pytest.raises(ValueError, match='expects'):
        LVT()(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='unknown attention'):
        LVT(arch=dict(embed_dims=[8, 8, 8, 8], depths=[1] * 4, num_heads=[1] * 4, mlp_ratios=[2] * 4,
                      sr_ratios=[1] * 4, attentions=['csa', 'msa', 'rasa', 'rasa']))


def test_custom_arch_and_recursions():
    arch = dict(embed_dims=[16, 32, 32, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], mlp_ratios=[2] * 4,
                sr_ratios=[8, 2, 1, 1])
    model = LVT(arch=arch, num_recursions=3)
    check_output_shapes(model, torch.randn(1, 3, 64, 64), [(1, 16, 16, 16), (1, 32, 8, 8), (1, 32, 4, 4),
                                                            (1, 64, 2, 2)])
    assert model.stages[1].blocks[0].attn.num_recursions == 3


def _save(tmp_path, obj, name):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def test_official_backbone_file_loads_and_reproduces_official_outputs(tmp_path):
    state = official_state()
    assert len(state) == 148
    path = _save(tmp_path, state, 'lvt_imagenet_pretrained.pth.tar')
    model = LVT(init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    x = torch.randn(1, 3, 61, 75)
    with torch.no_grad():
        ours, ref = model.eval()(x), official_forward(state, x)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_official_classification_file_loads(tmp_path):
    state = official_state(classifier=True)
    assert len(state) == 179
    path = _save(tmp_path, {'state_dict': state, 'epoch': 300}, 'lvt_imagenet.pth.tar')
    backbone = LVT(init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone.init_weights()  # head keys are skipped with a warning
    torch.testing.assert_close(backbone.stages[0].blocks[0].attn.tap_proj.reshape(576, 64, 1, 1),
                               state['backbone.0.1.0.attn.weight.weight'])

    from mmpretrain.registry import MODELS
    cfg = lvt_classifier_cfg()
    cfg['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    cfg['head']['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    classifier = MODELS.build(cfg)
    classifier.init_weights()
    converted = convert_lvt_classifier(state)
    own = classifier.state_dict()
    assert set(converted) == set(own)
    for key, value in converted.items():
        torch.testing.assert_close(own[key], value, msg=key)
    # the converter is idempotent on our layout
    assert set(convert_lvt_classifier(converted)) == set(converted)
    with torch.no_grad():
        logits = classifier.eval()(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()


def test_dense_and_own_checkpoints_load(tmp_path):
    official_dense = {'backbone.' + k: v for k, v in official_state().items()}
    official_dense['decode_head.conv_seg.weight'] = torch.zeros(150, 256, 1, 1)
    model = LVT(init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, official_dense, 'dense.pth')))
    model.init_weights()
    ours = {'state_dict': {'backbone.' + k: v for k, v in model.state_dict().items()}}
    again = LVT(init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, ours, 'ours.pth')))
    again.init_weights()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)
    converted = convert_lvt(model.state_dict(), model)
    assert set(converted.state_dict) == set(model.state_dict()) and not converted.skipped


def test_plain_classifier_takes_downstream_norms():
    state = official_state()
    state.update({f'downstream_norms.{i}.weight': torch.ones(d) for i, d in enumerate(DIMS)})
    state.update({f'downstream_norms.{i}.bias': torch.zeros(d) for i, d in enumerate(DIMS)})
    converted = convert_lvt(state, LVT(out_norm=True))
    assert {f'norm{i}.weight' for i in range(4)} <= set(converted.state_dict)
    converted = convert_lvt(state, LVT())
    assert set(converted.skipped) == {k for k in state if k.startswith('downstream_norms.')}


def test_wrong_checkpoint_raises(tmp_path):
    state = official_state()
    state['backbone.2.1.0.attn.q.weight'] = torch.zeros(128, 160)
    with pytest.raises(CheckpointMismatchError, match='attn.q.weight'):
        LVT(init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, state, 'bad.pth'))).init_weights()
    foreign = {'patch_embed.proj.weight': torch.zeros(96, 3, 4, 4), 'layers.0.blocks.0.mlp.fc1.weight': torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        LVT(init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, foreign, 'litv2.pth'))).init_weights()


def _load_converter_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location('lvt_to_mmvit', 'tools/model_converters/lvt_to_mmvit.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_offline_converter_tool(tmp_path):
    tool = _load_converter_tool()
    src = _save(tmp_path, {'model': official_state(classifier=True)}, 'lvt_imagenet.pth.tar')
    assert tool.convert_file(src, str(tmp_path / 'cls.pth')) == 'class_attention'
    converted = torch.load(tmp_path / 'cls.pth')['state_dict']
    from mmpretrain.registry import MODELS
    MODELS.build(lvt_classifier_cfg()).load_state_dict(converted, strict=True)
    assert tool.convert_file(str(tmp_path / 'cls.pth'), str(tmp_path / 'again.pth')) == 'class_attention'
    again = torch.load(tmp_path / 'again.pth')['state_dict']
    assert set(again) == set(converted) and all(torch.equal(again[k], converted[k]) for k in converted)

    backbone_src = _save(tmp_path, official_state(), 'lvt_imagenet_pretrained.pth.tar')
    assert tool.convert_file(backbone_src, str(tmp_path / 'backbone.pth')) == 'backbone'
    model = LVT(init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'backbone.pth')))
    model.init_weights()
    torch.testing.assert_close(model.stages[3].blocks[1].mlp.fc1.weight,
                               official_state()['backbone.3.1.1.mlp.fc1.weight'].flatten(1))


def test_plain_classifier_final_norm_goes_to_norm3():
    state = official_state()
    state.update({'norm.weight': torch.full((256, ), 2.), 'norm.bias': torch.zeros(256),
                  'head.weight': torch.zeros(1000, 256), 'head.bias': torch.zeros(1000)})
    converted = convert_lvt(state, LVT(out_indices=(3, ), out_norm=True))
    assert torch.equal(converted.state_dict['norm3.weight'], state['norm.weight'])
    assert set(converted.skipped) == {'head.weight', 'head.bias'}


def test_plain_head_classifier_converts_and_loads_strictly_into_the_imagenet_config(tmp_path):
    """Official ``lvt(with_cls_head=True)`` (timm checkpoint: ``backbone.*``, ``norm``, ``head``): the tool maps
    ``norm -> backbone.norm3``, ``head -> head.fc``; the logits equal the official head written here (LN over the
    stage-4 map, mean over positions, Linear). About 1 s."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    state = official_state()
    gen = torch.Generator().manual_seed(1)
    state.update({'norm.weight': 1 + 0.1 * torch.randn(256, generator=gen),
                  'norm.bias': 0.1 * torch.randn(256, generator=gen),
                  'head.weight': torch.randn(1000, 256, generator=gen) / 16,
                  'head.bias': 0.1 * torch.randn(1000, generator=gen)})
    timm_file = {'epoch': 299, 'arch': 'lvt', 'state_dict': state, 'version': 2, 'metric': 74.0}
    tool = _load_converter_tool()
    assert tool.convert_file(_save(tmp_path, timm_file, 'lvt_plain.pth.tar'), str(tmp_path / 'plain.pth')) == 'linear'
    converted = torch.load(tmp_path / 'plain.pth')['state_dict']
    classifier = MODELS.build(Config.fromfile('configs/lvt/lvt_8xb128_in1k.py').model)
    classifier.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 61, 75)
    with torch.no_grad():
        logits = classifier.eval()(x, mode='tensor')
        stage4 = official_forward(state, x)[-1].permute(0, 2, 3, 1)
        expected = F.linear(_ln(stage4, state, 'norm').mean(dim=(1, 2)), state['head.weight'], state['head.bias'])
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert tool.convert_file(str(tmp_path / 'plain.pth'), str(tmp_path / 'again.pth')) == 'linear'
    again = torch.load(tmp_path / 'again.pth')['state_dict']
    assert set(again) == set(converted) and all(torch.equal(again[k], converted[k]) for k in converted)
    del state['norm.bias']  # a truncated file fails the strict load, naming the key
    with pytest.raises(CheckpointMismatchError, match='backbone.norm3.bias'):
        tool.convert_file(_save(tmp_path, timm_file, 'broken.pth.tar'), str(tmp_path / 'broken.pth'))
