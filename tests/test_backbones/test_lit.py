"""LIT backbone against BACKBONE_CONTRACT.md and the official release (reference doc section 1)."""
import importlib.util
import math
import os

import pytest
import torch

from mmvit_ext.analysis import count_complexity
from mmvit_ext.checkpoint import CheckpointMismatchError
from mmvit_ext.checkpoint.lit import convert_lit
from mmvit_ext.models.backbones import LIT, lit_classifier_cfg
from mmvit_ext.testing import (check_autocast, check_batch_independence, check_frozen_stages,
                               check_gradients_reach_all, check_norm_eval, check_output_shapes, check_with_cp,
                               count_params, random_state_dict)

# Official variants (reference doc 1.2): dims, depths, heads, MLP ratios.
OFFICIAL = dict(tiny=([64, 128, 320, 512], [3, 4, 6, 3], [1, 2, 5, 8], [8, 8, 4, 4]),
                small=([96, 192, 384, 768], [2, 2, 6, 2], [3, 6, 12, 24], [4] * 4),
                medium=([96, 192, 384, 768], [2, 2, 18, 2], [3, 6, 12, 24], [4] * 4),
                base=([128, 256, 512, 1024], [2, 2, 18, 2], [4, 8, 16, 32], [4] * 4))
# Instantiated official classification models (reference doc 1.2), 1000 classes.
OFFICIAL_PARAMS = dict(tiny=19.89e6, small=27.97e6, medium=49.37e6, base=87.29e6)
ARCHS = list(OFFICIAL)
# Minimal custom archs with every code path of the two families (relative bias / absolute embeddings + cls token),
# for the mechanism checks that need no real variant (with_cp, autocast, tracing).
MICRO = dict(relative=dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4],
                           mlp_ratios=[2, 2, 2, 2], pos_embed='relative', norm_eps=1e-5),
             absolute=dict(embed_dims=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4],
                           mlp_ratios=[2, 2, 2, 2], pos_embed='absolute', norm_eps=1e-6))


def official_shapes(arch, kind='classification', img_size=224):
    """Keys and shapes of the official checkpoints, written from the reference doc's state-dict tables (1.5, 1.6).

    kind: 'classification' (``norm`` + ``head``; LIT-Ti also ``cls_token``), 'detection' (LIT-S: ``norm1..3``,
    tables for 800x800, no index buffer; LIT-Ti: nothing after the blocks), 'segmentation' (``norm0..3``, 512x512).
    """
    dims, depths, heads, ratios = OFFICIAL[arch]
    shapes = {}

    def dtm(p, cin, cout):
        shapes.update({p + 'dconv.weight': (cout, cin, 2, 2), p + 'dconv.bias': (cout, ),
                       p + 'dconv.conv_offset.weight': (8, cin, 2, 2), p + 'dconv.conv_offset.bias': (8, ),
                       p + 'norm_layer.num_batches_tracked': ()})
        shapes.update({p + f'norm_layer.{n}': (cout, ) for n in ('weight', 'bias', 'running_mean', 'running_var')})

    def block(p, dim, ratio, msa, table=None):
        hidden = dim * ratio
        if msa:
            shapes.update({p + 'norm1.weight': (dim, ), p + 'norm1.bias': (dim, ),
                           p + 'attn.qkv.weight': (3 * dim, dim), p + 'attn.qkv.bias': (3 * dim, ),
                           p + 'attn.proj.weight': (dim, dim), p + 'attn.proj.bias': (dim, )})
            if table is not None:
                side, n_heads, with_index = table
                shapes[p + 'attn.relative_position_bias_table'] = ((2 * side - 1)**2, n_heads)
                if with_index:
                    shapes[p + 'attn.relative_position_index'] = (side * side, side * side)
        shapes.update({p + 'norm2.weight': (dim, ), p + 'norm2.bias': (dim, ),
                       p + 'mlp.fc1.weight': (hidden, dim), p + 'mlp.fc1.bias': (hidden, ),
                       p + 'mlp.fc2.weight': (dim, hidden), p + 'mlp.fc2.bias': (dim, )})

    if arch == 'tiny':
        shapes.update({'patch_embed1.proj.weight': (64, 3, 4, 4), 'patch_embed1.proj.bias': (64, ),
                       'patch_embed1.norm.weight': (64, ), 'patch_embed1.norm.bias': (64, )})
        for i in range(4):
            side = 56 // 2**i
            shapes[f'pos_embed{i + 1}'] = (1, side * side + (i == 3), dims[i])
            if i:
                dtm(f'patch_embed{i + 1}.', dims[i - 1], dims[i])
            for j in range(depths[i]):
                block(f'block{i + 1}.{j}.', dims[i], ratios[i], i >= 2)
        if kind == 'classification':
            shapes['cls_token'] = (1, 1, 512)
    else:
        shapes.update({'patch_embed.proj.weight': (dims[0], 3, 4, 4), 'patch_embed.proj.bias': (dims[0], ),
                       'patch_embed.norm.weight': (dims[0], ), 'patch_embed.norm.bias': (dims[0], )})
        map_side = {'classification': 224, 'detection': 800, 'segmentation': 512}[kind] // 4
        for i in range(4):
            for j in range(depths[i]):
                table = (map_side // 2**i, heads[i], kind == 'classification') if i >= 2 else None
                block(f'layers.{i}.blocks.{j}.', dims[i], ratios[i], i >= 2, table)
            if i < 3:
                dtm(f'layers.{i}.downsample.', dims[i], dims[i + 1])
    if kind == 'classification':
        shapes.update({'norm.weight': (dims[3], ), 'norm.bias': (dims[3], ),
                       'head.weight': (1000, dims[3]), 'head.bias': (1000, )})
    elif arch != 'tiny':
        for i in range(0 if kind == 'segmentation' else 1, 4):
            shapes.update({f'norm{i}.weight': (dims[i], ), f'norm{i}.bias': (dims[i], )})
    return shapes


def classifier_backbone(arch, **kwargs):
    """The backbone as the ImageNet classifier configures it."""
    return LIT(arch, out_indices=(3, ), out_type='cls_token' if arch == 'tiny' else 'featmap', **kwargs)


def expected_shapes(arch, batch, h, w):
    """Output size rule of the official dense code: floor(H/4) for LIT-Ti (no padding), ceil(H/4) for LIT-S/M/B
    (padding), then floor(/2) per DTM."""
    dims = OFFICIAL[arch][0]
    h, w = (h // 4, w // 4) if arch == 'tiny' else (-(-h // 4), -(-w // 4))
    shapes = []
    for i in range(4):
        shapes.append((batch, dims[i], h, w))
        h, w = h // 2, w // 2
    return shapes


def test_official_state_dict_tables_match_the_doc():
    # The doc lists 190 tensors for LIT-Ti and 171 for LIT-S.
    assert len(official_shapes('tiny')) == 190
    assert len(official_shapes('small')) == 171


@pytest.mark.parametrize('arch, alias', [('tiny', 'ti'), ('small', 's'), ('medium', 'm'), ('base', 'b')])
def test_param_counts_and_structure_match_official(arch, alias):
    backbone = classifier_backbone(alias)
    dims, depths, heads, _ = OFFICIAL[arch]
    total = count_params(backbone) + dims[-1] * 1000 + 1000  # + Linear head
    assert abs(total - OFFICIAL_PARAMS[arch]) / OFFICIAL_PARAMS[arch] < 0.01, f'{arch}: {total / 1e6:.2f} M'
    assert backbone.embed_dims == dims and backbone.depths == depths
    for i, stage in enumerate(backbone.stages):
        has_attn = [hasattr(b, 'attn') for b in stage.blocks]
        assert all(has_attn) if i >= 2 else not any(has_attn), f'stage {i}: MSA only in stages 3-4'
        assert (stage.downsample is None) == (i == 0)
        if i >= 2:
            assert all(b.attn.num_heads == heads[i] for b in stage.blocks)
            assert all((b.attn.rel_pos is None) == (arch == 'tiny') for b in stage.blocks)
        assert (stage.pos_embed is not None) == (arch == 'tiny')


def test_flops_lit_ti_match_official():
    model = classifier_backbone('tiny').eval()
    flops = count_complexity(model, (torch.randn(1, 3, 224, 224), ))['flops'] + 512 * 1000
    assert abs(flops - 3.6e9) / 3.6e9 < 0.05, f'{flops / 1e9:.2f} G'


@pytest.mark.parametrize('arch', ARCHS)
def test_output_shapes_odd_size(arch):
    model = LIT(arch)
    check_output_shapes(model, torch.randn(1, 3, 97, 130), expected_shapes(arch, 1, 97, 130))


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_output_shapes_batch_odd_size(arch):
    model = LIT(arch, out_indices=(1, 3))
    shapes = expected_shapes(arch, 2, 225, 333)
    check_output_shapes(model, torch.randn(2, 3, 225, 333), [shapes[1], shapes[3]])


def test_mmpretrain_classifier_builds_and_runs():
    """The official classifiers: LIT-Ti classifies its normed cls token, LIT-S the mean of its normed tokens."""
    from mmpretrain.registry import MODELS
    x = torch.randn(2, 3, 64, 96)
    for arch, feat_shape in (('tiny', (2, 512)), ('small', (2, 768, 2, 3))):
        model = MODELS.build(lit_classifier_cfg(arch, num_classes=10)).eval()
        with torch.no_grad():
            assert model.backbone(x)[-1].shape == feat_shape
            assert model(x, mode='tensor').shape == (2, 10)
    assert model.backbone.stages[3].pos_embed is None
    assert MODELS.build(lit_classifier_cfg('tiny')).backbone.stages[3].pos_embed.weight.shape == (1, 50, 512)


def test_batch_independence():
    check_batch_independence(LIT('tiny'), torch.randn(2, 3, 64, 96))
    check_batch_independence(LIT('small'), torch.randn(2, 3, 64, 96))


def test_gradients_reach_all_parameters():
    # Includes the deformable offsets (zero-initialised) and every relative position table.
    check_gradients_reach_all(LIT('small', drop_path_rate=0.), torch.randn(2, 3, 64, 96))
    check_gradients_reach_all(classifier_backbone('tiny', drop_path_rate=0.), torch.randn(2, 3, 64, 96))


def test_with_cp_same_outputs_and_gradients():
    for arch in MICRO.values():
        check_with_cp(lambda with_cp: LIT(arch, drop_path_rate=0.1, with_cp=with_cp), torch.randn(2, 3, 64, 64))


def test_frozen_stages():
    model = LIT('small', frozen_stages=2, out_norm_indices=(1, 2, 3))
    check_frozen_stages(model, ['patch_embed.', 'stages.0.', 'stages.1.', 'norm1.'],
                        ['stages.2.', 'stages.3.', 'norm2.', 'norm3.'])
    with pytest.raises(ValueError, match='frozen_stages'):
        LIT('tiny', frozen_stages=5)


def test_norm_eval():
    model = LIT('tiny', norm_eval=True)
    check_norm_eval(model)
    bn = model.stages[1].downsample.norm_layer
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64))
    assert torch.equal(bn.running_mean, before)


def test_autocast_bf16():
    check_autocast(LIT(MICRO['relative']), torch.randn(1, 3, 64, 96))
    check_autocast(LIT(MICRO['absolute'], out_type='cls_token'), torch.randn(1, 3, 64, 96))


def test_cached_relative_bias_path_equals_fresh_across_sizes():
    torch.manual_seed(0)
    model = LIT(MICRO['relative'], pretrain_img_size=512).eval()
    inputs = {s: torch.randn(1, 3, *s) for s in [(96, 128), (64, 160)]}
    for size in [(96, 128), (64, 160), (96, 128)]:
        with torch.no_grad():
            cached = model(inputs[size])
        with torch.enable_grad():  # the table requires grad: recomputed from scratch
            fresh = model(inputs[size])
        for a, b in zip(cached, fresh):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    rpb = model.stages[2].blocks[0].attn.rel_pos
    assert rpb.grid_size == (32, 32) and rpb.relative_position_bias_table.shape == (63 * 63, 3)
    assert len(rpb._tables.entries) == 2


def test_absolute_embeddings_identity_at_224():
    model = classifier_backbone('tiny')
    for stage in model.stages:
        side = stage.pos_embed.grid_size[0]
        assert stage.pos_embed.resized((side, side)) is stage.pos_embed.weight


def _save(tmp_path, state, name):
    path = str(tmp_path / name)
    torch.save(state, path)
    return path


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_official_classification_checkpoint_loads(tmp_path, arch):
    official = random_state_dict(official_shapes(arch))
    path = _save(tmp_path, {'model': official, 'epoch': 299}, f'lit_{arch}.pth')
    model = classifier_backbone(arch, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    state = model.state_dict()
    if arch == 'tiny':
        assert torch.equal(state['stages.3.pos_embed.weight'], official['pos_embed4'])
        assert torch.equal(state['cls_token'], official['cls_token'])
        assert torch.equal(state['stages.1.downsample.dconv.conv_offset.weight'],
                           official['patch_embed2.dconv.conv_offset.weight'])
    else:
        assert torch.equal(state['stages.2.blocks.1.attn.rel_pos.relative_position_bias_table'],
                           official['layers.2.blocks.1.attn.relative_position_bias_table'])
        assert torch.equal(state['stages.1.downsample.dconv.weight'], official['layers.0.downsample.dconv.weight'])
    assert torch.equal(state['norm3.weight'], official['norm.weight'])


def test_classification_checkpoint_into_dense_backbones(tmp_path):
    """ImageNet files fine-tune dense models: tables resized to 800, cls slot/token dropped, head skipped."""
    small = random_state_dict(official_shapes('small'))
    model = LIT('small', pretrain_img_size=800, out_norm_indices=(1, 2, 3),
                init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, small, 'lit_s.pth')))
    model.init_weights()
    table = model.stages[2].blocks[0].attn.rel_pos.relative_position_bias_table
    assert table.shape == (99 * 99, 12)
    # Resizing back to the trained 27x27 grid reproduces the trained table closely (smooth bicubic round trip
    # is not exact; check the centre, where the grids coincide exactly).
    assert torch.allclose(table.view(99, 99, 12)[49, 49],
                          small['layers.2.blocks.0.attn.relative_position_bias_table'].view(27, 27, 12)[13, 13],
                          atol=1e-5)
    tiny = random_state_dict(official_shapes('tiny'))
    model = LIT('tiny', out_norm_indices=(), init_cfg=dict(type='Pretrained',
                                                          checkpoint=_save(tmp_path, tiny, 'lit_ti.pth')))
    model.init_weights()
    assert torch.equal(model.stages[3].pos_embed.weight, tiny['pos_embed4'][:, 1:])


@pytest.mark.parametrize('arch, kind, kwargs', [
    ('small', 'detection', dict(pretrain_img_size=800, out_norm_indices=(1, 2, 3))),
    ('small', 'segmentation', dict(pretrain_img_size=512)),
    ('tiny', 'detection', dict(out_norm_indices=())),
])
def test_official_dense_checkpoint_loads(tmp_path, arch, kind, kwargs):
    backbone = random_state_dict(official_shapes(arch, kind))
    neck = {'neck.lateral_convs.0.conv.weight': torch.zeros(256, 128, 1, 1)}
    state = {'state_dict': {**{'backbone.' + k: v for k, v in backbone.items()}, **neck}}
    model = LIT(arch, init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, state, 'dense.pth')), **kwargs)
    model.init_weights()
    if arch == 'small':
        assert torch.equal(model.stages[3].blocks[1].attn.rel_pos.relative_position_bias_table,
                           backbone['layers.3.blocks.1.attn.relative_position_bias_table'])
    else:
        assert torch.equal(model.stages[3].pos_embed.weight, backbone['pos_embed4'][:, 1:])


def _official_weights(arch, kind='classification', seed=0):
    """Random official-layout weights of a sane scale (positive BN variances, small linear weights)."""
    state = random_state_dict(official_shapes(arch, kind), seed=seed)
    for key, value in state.items():
        if key.endswith('running_var'):
            state[key] = value.abs() + 0.5
        elif value.is_floating_point():
            state[key] = value * 0.2
    return state


def official_forward(sd, x, arch, dense=False):
    """The official LIT forward (reference doc 1.3, 1.6) written directly on an official state dict, eval mode.

    LIT-Ti (classification): patch_embed1 -> +pos_embed1 -> block1 -> DTM -> +pos_embed2 ... -> cls token + pos_embed4
    -> block4 -> norm -> cls. LIT-Ti (``dense``, ``LIT_Ti``): the 4x4/4 conv without padding (the last H % 4 rows and
    W % 4 columns drop out), each stage's embeddings resized bilinearly to its map (stage 4 without the cls slot), the
    four raw maps. LIT-S (dense, LIT ``LIT``): patch_embed (zero-padded to multiples of 4) -> layers[i] (blocks;
    attention adds the table resized bicubically to (2H-1, 2W-1) on every call) -> per-layer ``norm{i}``;
    ``layers[i].downsample`` after.
    """
    import torch.nn.functional as F
    from torchvision.ops import deform_conv2d

    def ln(t, p, eps):
        return F.layer_norm(t, t.shape[-1:], sd[p + '.weight'], sd[p + '.bias'], eps)

    def linear(t, p):
        return F.linear(t, sd[p + '.weight'], sd[p + '.bias'])

    def dtm(t, p):  # t: (B, C, H, W)
        offset = F.conv2d(t, sd[p + '.dconv.conv_offset.weight'], sd[p + '.dconv.conv_offset.bias'], stride=2)
        t = deform_conv2d(t, offset, sd[p + '.dconv.weight'], sd[p + '.dconv.bias'], stride=2)
        t = F.batch_norm(t, sd[p + '.norm_layer.running_mean'], sd[p + '.norm_layer.running_var'],
                         sd[p + '.norm_layer.weight'], sd[p + '.norm_layer.bias'], False, 0.1, 1e-5)
        return F.gelu(t)

    def block(t, p, heads, eps, hw=None, table=None):
        if p + '.norm1.weight' in sd:
            b, n, c = t.shape
            qkv = linear(ln(t, p + '.norm1', eps), p + '.attn.qkv').reshape(b, n, 3, heads, c // heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            attn = (q * (c // heads)**-0.5) @ k.transpose(-2, -1)
            if table is not None:
                side = math.isqrt(table.shape[0])
                h, w = hw
                resized = F.interpolate(table.permute(1, 0).view(1, heads, side, side), size=(2 * h - 1, 2 * w - 1),
                                        mode='bicubic').reshape(heads, -1).permute(1, 0)
                coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')).flatten(1)
                rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
                index = (rel[..., 0] + h - 1) * (2 * w - 1) + rel[..., 1] + w - 1
                attn = attn + resized[index.view(-1)].view(n, n, -1).permute(2, 0, 1)
            t = t + linear((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c), p + '.attn.proj')
        return t + linear(F.gelu(linear(ln(t, p + '.norm2', eps), p + '.mlp.fc1')), p + '.mlp.fc2')

    dims, depths, heads, _ = OFFICIAL[arch]
    if arch == 'tiny':
        t = F.conv2d(x, sd['patch_embed1.proj.weight'], sd['patch_embed1.proj.bias'], stride=4)
        outs = []
        for i in range(4):
            if i:
                t = dtm(t, f'patch_embed{i + 1}')
            b, c, h, w = t.shape
            t = ln(t.flatten(2).transpose(1, 2), 'patch_embed1.norm', 1e-5) if i == 0 else t.flatten(2).transpose(1, 2)
            pos = sd[f'pos_embed{i + 1}']
            if not dense and i == 3:
                t = torch.cat([sd['cls_token'].expand(b, -1, -1), t], dim=1)
            elif dense:
                pos = pos[:, 1:] if i == 3 else pos
                side = math.isqrt(pos.shape[1])
                if (side, side) != (h, w):  # (the official code also skips this when h * w == 56 * 56: a bug)
                    pos = F.interpolate(pos.reshape(1, side, side, c).permute(0, 3, 1, 2), size=(h, w),
                                        mode='bilinear').flatten(2).transpose(1, 2)
            t = t + pos
            for j in range(depths[i]):
                t = block(t, f'block{i + 1}.{j}', heads[i], 1e-6)
            if dense:
                outs.append(t.transpose(1, 2).reshape(b, c, h, w))
            if i < 3:
                t = t.transpose(1, 2).reshape(b, c, h, w)
        return tuple(outs) if dense else (ln(t, 'norm', 1e-6)[:, 0], )
    t = F.conv2d(F.pad(x, (0, -x.shape[3] % 4, 0, -x.shape[2] % 4)), sd['patch_embed.proj.weight'],
                 sd['patch_embed.proj.bias'], stride=4)
    b, c, h, w = t.shape
    t = ln(t.flatten(2).transpose(1, 2), 'patch_embed.norm', 1e-5)
    outs = []
    for i in range(4):
        for j in range(depths[i]):
            p = f'layers.{i}.blocks.{j}'
            t = block(t, p, heads[i], 1e-5, (h, w), sd.get(p + '.attn.relative_position_bias_table'))
        out = ln(t, f'norm{i}', 1e-5) if f'norm{i}.weight' in sd else t
        outs.append(out.transpose(1, 2).reshape(b, dims[i], h, w))
        if i < 3:
            t = dtm(t.transpose(1, 2).reshape(b, dims[i], h, w), f'layers.{i}.downsample')
            b, c, h, w = t.shape
            t = t.flatten(2).transpose(1, 2)
    return tuple(outs)


@pytest.mark.parametrize('arch, kind, size, kwargs', [
    ('tiny', 'classification', (224, 224), dict(out_indices=(3, ), out_type='cls_token')),
    ('small', 'detection', (70, 98), dict(pretrain_img_size=800, out_norm_indices=(1, 2, 3))),
])
def test_converted_official_weights_give_official_outputs(arch, kind, size, kwargs):
    official = _official_weights(arch, kind)
    model = LIT(arch, **kwargs)
    converted = convert_lit(official, model)
    model.load_state_dict(converted.state_dict)
    model.eval()
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        expected = official_forward(official, x, arch)
        for _ in range(2):  # the second call runs on the cached tables
            got = model(x)
            assert len(got) == len(expected)
            for a, b in zip(got, expected):
                assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-4), (a - b).abs().max()


@pytest.mark.parametrize('size', [(97, 130), (333, 517)])
def test_lit_ti_dense_drops_the_remainder_like_official(size):
    """Official dense LIT-Ti: its patch embedding does not pad, so the stride-4 map is floor(H/4) x floor(W/4): the
    output equals the run on the input cropped to multiples of 4 and the official forward (stage embeddings resized
    to those maps). About 1.5 s."""
    # float64: the random-weight LIT-Ti amplifies fp32 rounding (1e-7 at the input moves stage 3 by ~1e-3)
    official = {k: v.double() for k, v in _official_weights('tiny', 'detection').items()}
    model = LIT('tiny', out_norm_indices=()).double()
    model.load_state_dict(convert_lit(official, model).state_dict)
    model.eval()
    h, w = size
    x = torch.randn(1, 3, h, w, dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        cropped = model(x[:, :, :h // 4 * 4, :w // 4 * 4])
        expected = official_forward(official, x, 'tiny', dense=True)
    assert [tuple(t.shape) for t in got] == expected_shapes('tiny', 1, h, w)
    assert got[0].shape[2:] == (h // 4, w // 4)
    for ours, crop, ref in zip(got, cropped, expected):
        assert torch.allclose(ours, crop, atol=1e-6, rtol=0)
        assert ours.shape == ref.shape
        torch.testing.assert_close(ours, ref, atol=1e-8, rtol=1e-8)


def test_pad_input_switch_and_arch_defaults():
    assert LIT('tiny').pad_input is False and LIT(MICRO['relative']).pad_input is True
    x = torch.randn(1, 3, 97, 130)
    dims = MICRO['absolute']['embed_dims']
    for pad, (h, w) in ((True, (25, 33)), (False, (24, 32))):
        shapes = [(1, d, h // 2**i, w // 2**i) for i, d in enumerate(dims)]
        check_output_shapes(LIT(MICRO['absolute'], pad_input=pad), x, shapes)


def test_lit_ti_embeddings_resized_for_a_49x64_map():
    """The official ``_get_pos_embed`` skips the resize whenever H*W == 3136 and adds the 56x56 table laid out on a
    49x64 map; here every grid other than the stored one is resized bilinearly."""
    import torch.nn.functional as F
    embed = LIT('tiny', out_norm_indices=()).stages[0].pos_embed
    resized = embed.resized((49, 64))
    grid = embed.weight.detach().reshape(1, 56, 56, 64).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(49, 64), mode='bilinear').flatten(2).transpose(1, 2)
    assert torch.allclose(resized, expected, atol=1e-6) and not torch.allclose(resized, embed.weight)


def test_dense_forms_start_norm3_fresh_from_a_classification_release(tmp_path):
    """The official dense LIT-S loads a classification file non-strictly: the classifier's final ``norm`` is no key of
    the dense model, so ``norm3`` stays at weight 1 / bias 0. The classification form (out_indices=(3,)) loads it.
    The same for our converted classifier file. About 1.5 s (five LIT-S)."""
    official = random_state_dict(official_shapes('small'))
    src = _save(tmp_path, {'model': official}, 'lit_s.pth')
    converted = str(tmp_path / 'lit_s_mmvit.pth')
    _load_tool().convert_file(src, converted)
    dense_forms = {src: dict(pretrain_img_size=800, out_norm_indices=(1, 2, 3)),  # detection
                   converted: dict(pretrain_img_size=512)}  # segmentation (norm0..3)
    for path, kwargs in dense_forms.items():
        model = LIT('small', init_cfg=dict(type='Pretrained', checkpoint=path), **kwargs)
        model.init_weights()
        assert torch.equal(model.norm3.weight, torch.ones(768)) and torch.equal(model.norm3.bias, torch.zeros(768))
        assert torch.equal(model.stages[3].downsample.dconv.weight, official['layers.2.downsample.dconv.weight'])
        assert torch.equal(model.stages[0].blocks[1].mlp.fc2.bias, official['layers.0.blocks.1.mlp.fc2.bias'])
        classification_form = classifier_backbone('small', init_cfg=dict(type='Pretrained', checkpoint=path))
        classification_form.init_weights()
        assert torch.equal(classification_form.norm3.weight, official['norm.weight'])
        assert torch.equal(classification_form.norm3.bias, official['norm.bias'])
    assert 'final norm of the classifier' in convert_lit(official, model).skipped['norm.weight']


def test_wrong_checkpoint_raises(tmp_path):
    small = random_state_dict(official_shapes('small'))
    model = LIT('tiny', init_cfg=dict(type='Pretrained', checkpoint=_save(tmp_path, small, 's.pth')))
    with pytest.raises(CheckpointMismatchError, match='missing keys'):
        model.init_weights()
    del small['layers.2.blocks.5.mlp.fc2.bias']  # a corrupt or truncated file
    truncated = LIT('small', out_indices=(3, ), init_cfg=dict(type='Pretrained',
                                                                checkpoint=_save(tmp_path, small, 's2.pth')))
    with pytest.raises(CheckpointMismatchError, match='1 missing keys: stages.2.blocks.5.mlp.fc2.bias'):
        truncated.init_weights()
    other = {'conv1.weight': torch.zeros(64, 3, 7, 7), 'fc.weight': torch.zeros(1000, 2048)}
    with pytest.raises(CheckpointMismatchError, match='not a LIT checkpoint'):
        convert_lit(other, LIT('tiny'))
    cls_model = classifier_backbone('tiny')
    dense_tiny = random_state_dict(official_shapes('tiny', 'detection'))
    dense_tiny['pos_embed4'] = dense_tiny['pos_embed4'][:, 1:]
    with pytest.raises(CheckpointMismatchError, match='cls slot'):
        convert_lit(dense_tiny, cls_model)


@pytest.mark.parametrize('arch', ['tiny', 'small'])
def test_conversion_is_idempotent_on_own_layout(arch):
    model = classifier_backbone(arch)
    converted = convert_lit(model.state_dict(), model)
    assert not converted.skipped
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict[key], value)
    # official -> ours -> ours gives the same weights
    official = random_state_dict(official_shapes(arch))
    once = convert_lit(official, model).state_dict
    twice = convert_lit(once, model).state_dict
    assert once.keys() == twice.keys() and all(torch.equal(once[k], twice[k]) for k in once)


def _load_tool():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(
        'lit_to_mmvit', os.path.join(root, 'tools', 'model_converters', 'lit_to_mmvit.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_converter_tool(tmp_path):
    tool = _load_tool()
    convert_file = tool.convert_file
    src = _save(tmp_path, {'model': random_state_dict(official_shapes('small'))}, 'lit_s.pth')
    dst = str(tmp_path / 'out.pth')
    args = convert_file(src, dst, pretrain_img_size=800)
    assert args['arch'] == 'small' and args['pretrain_img_size'] == 800
    out = torch.load(dst)['state_dict']
    assert out['head.fc.weight'].shape == (1000, 768)
    model = LIT(**args)
    model.load_state_dict({k[len('backbone.'):]: v for k, v in out.items() if k.startswith('backbone.')})
    dense = random_state_dict(official_shapes('small', 'detection'))
    assert tool.infer_backbone_args(dense) == dict(arch='small', out_norm_indices=(1, 2, 3), pretrain_img_size=800)
    assert tool.infer_backbone_args(random_state_dict(official_shapes('tiny', 'detection'))) == dict(
        arch='tiny', out_norm_indices=())
    tool.main([_save(tmp_path, {'model': random_state_dict(official_shapes('tiny'))}, 'lit_ti.pth'), dst])
    out = torch.load(dst)['state_dict']
    assert out['backbone.cls_token'].shape == (1, 1, 512) and 'backbone.norm3.weight' in out


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown arch'):
        LIT('huge')
    with pytest.raises(ValueError, match='cls_token'):
        LIT('small', out_type='cls_token')
    with pytest.raises(ValueError, match='input channels'):
        LIT('tiny')(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match='at least'):
        LIT('tiny')(torch.randn(1, 3, 16, 64))
    custom = dict(embed_dims=[32, 64, 96, 128], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
                  mlp_ratios=[2, 2, 2, 2], pos_embed='relative', norm_eps=1e-5)
    check_output_shapes(LIT(custom), torch.randn(1, 3, 64, 64), 
                        [(1, 32, 16, 16), (1, 64, 8, 8), (1, 96, 4, 4), (1, 128, 2, 2)])


def test_jit_trace():
    model = LIT(MICRO['relative']).eval()
    x = torch.randn(1, 3, 64, 96)
    traced = torch.jit.trace(model, (x, ), check_trace=False)
    with torch.no_grad():
        for a, b in zip(traced(x), model(x)):
            assert torch.allclose(a, b, atol=1e-5)
