"""Every backbone runs under ``torch.inference_mode`` where autograd is off, and hands back ordinary contiguous
tensors: the same numbers as the autograd path, usable in place and in a later backward pass (``base_backbone``)."""
import pytest
import torch
import torch.nn as nn

from mmvit_ext.models.backbones import LIT, LITv2, LVT, LightViT

BACKBONES = [lambda: LITv2('small'), lambda: LIT('tiny'), lambda: LightViT('tiny'), lambda: LVT('mobile')]


def _forward_recording_mode(model, x):
    """model(x) and whether inference mode was on inside the first block-level module that ran."""
    seen = []
    leaf = next(m for m in model.modules() if isinstance(m, nn.LayerNorm))
    handle = leaf.register_forward_hook(lambda *_: seen.append(torch.is_inference_mode_enabled()))
    try:
        outs = model(x)
    finally:
        handle.remove()
    return outs, seen[0]


@pytest.mark.parametrize('build', BACKBONES, ids=['LITv2', 'LIT', 'LightViT', 'LVT'])
def test_forward_without_autograd_runs_in_inference_mode_and_returns_ordinary_tensors(build):
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        fast, inference = _forward_recording_mode(model, x)
    slow, inference_with_grad = _forward_recording_mode(model, x)
    assert inference and not inference_with_grad
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow):
        assert not f.is_inference() and not f.requires_grad
        # NCHW views of the channels-last tokens, laid out in the copy that leaves inference mode
        assert f.is_contiguous() and s.is_contiguous()
        torch.testing.assert_close(f, s.detach(), atol=1e-5, rtol=1e-5)
    # the features of a frozen extractor feed a head that trains, and may be modified in place
    head = nn.Conv2d(fast[-1].shape[1], 2, 1)
    head(fast[-1]).sum().backward()
    assert head.weight.grad.abs().sum() > 0
    fast[0].mul_(2)

    with torch.inference_mode():  # the caller's own inference mode: its tensors stay inference tensors
        assert all(o.is_inference() and o.is_contiguous() for o in model(x))
