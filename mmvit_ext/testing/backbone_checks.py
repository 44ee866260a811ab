"""Checks of the backbone contract (BACKBONE_CONTRACT.md), shared by every family's tests.

Each check raises ``AssertionError`` with the reason when the backbone breaks the contract.
"""
import copy
import fnmatch
from typing import Callable, Iterable, Sequence, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def _features(model: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    outs = model(x)
    assert isinstance(outs, tuple), f'{type(model).__name__}.forward must return a tuple, got {type(outs).__name__}'
    return outs


def check_output_shapes(model: nn.Module, x: torch.Tensor, expected: Sequence[Tuple[int, ...]]):
    """``model(x)`` is a tuple of tensors with exactly the ``expected`` shapes."""
    with torch.no_grad():
        outs = _features(model.eval(), x)
    got = [tuple(o.shape) for o in outs]
    assert got == [tuple(e) for e in expected], f'output shapes {got} != expected {list(expected)}'
    for o in outs:
        assert torch.isfinite(o).all(), 'non-finite values in the output'


def check_batch_independence(model: nn.Module, x: torch.Tensor, rtol: float = 1e-5):
    """Sample i of a batch gives the same features as sample i run alone (eval mode).

    The tolerance is relative to the level's largest feature (at least 1): fp32 round-off of batched and single
    kernels grows with the magnitude, while samples mixed by a bug differ by O(feature) values.
    """
    model.eval()
    with torch.no_grad():
        batched = _features(model, x)
        for i in range(x.shape[0]):
            alone = _features(model, x[i:i + 1])
            for level, (b, a) in enumerate(zip(batched, alone)):
                tol = rtol * max(1.0, b.abs().max().item())
                err = (b[i:i + 1] - a).abs().max().item()
                assert err <= tol, f'sample {i}, level {level}: batched vs alone differ by {err:.3g} > {tol:.3g}'


def check_gradients_reach_all(model: nn.Module, x: torch.Tensor, exempt: Iterable[str] = ()):
    """A loss on every output level gives a non-zero gradient to every trainable parameter.

    ``exempt``: fnmatch patterns of parameter names that legitimately receive no gradient from the features
    (e.g. a classifier head the features do not pass through).
    """
    model.train()
    model.zero_grad(set_to_none=True)
    outs = _features(model, x)
    # A random projection: a plain sum can have exactly-zero gradients through normalisation layers.
    gen = torch.Generator().manual_seed(0)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    dead = [name for name, p in model.named_parameters()
            if p.requires_grad and not any(fnmatch.fnmatchcase(name, pat) for pat in exempt)
            and (p.grad is None or not torch.any(p.grad != 0))]
    assert not dead, f'parameters without gradient: {dead}'


def check_with_cp(build: Callable[..., nn.Module], x: torch.Tensor, atol: float = 1e-5):
    """``build(with_cp=True)`` gives the same outputs and gradients as ``build(with_cp=False)``."""
    torch.manual_seed(0)
    plain = build(with_cp=False)
    cp = build(with_cp=True)
    cp.load_state_dict(plain.state_dict())
    results = []
    for model in (plain, cp):
        model.train()
        # Same dropout/drop-path draws in both runs.
        torch.manual_seed(1)
        outs = _features(model, x)
        sum(o.sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        assert torch.allclose(a, b, atol=atol), f'with_cp changes the output by {(a - b).abs().max():.3g}'
    assert grads_a.keys() == grads_b.keys(), 'with_cp changes which parameters get gradients'
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=atol * 10), f'with_cp changes the gradient of {name}'


def check_frozen_stages(model: nn.Module, frozen_prefixes: Sequence[str], trainable_prefixes: Sequence[str]):
    """After ``model.train()``: parameters under ``frozen_prefixes`` have ``requires_grad=False`` and their modules
    are in eval mode; parameters under ``trainable_prefixes`` still train."""
    model.train()
    params = dict(model.named_parameters())
    modules = dict(model.named_modules())
    for prefix in frozen_prefixes:
        names = [n for n in params if n.startswith(prefix)]
        assert names, f'no parameter under "{prefix}"'
        assert not any(params[n].requires_grad for n in names), f'{prefix} is not frozen'
        assert not any(m.training for n, m in modules.items() if n.startswith(prefix)), \
            f'modules under {prefix} are not in eval mode'
    for prefix in trainable_prefixes:
        names = [n for n in params if n.startswith(prefix)]
        assert names and all(params[n].requires_grad for n in names), f'{prefix} should still train'


def check_norm_eval(model: nn.Module):
    """With ``norm_eval=True``, every BatchNorm stays in eval mode (running stats untouched) in ``train()``."""
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns, 'the model has no BatchNorm layer'
    assert not any(m.training for m in bns), 'norm_eval=True left a BatchNorm layer in training mode'


def check_autocast(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.bfloat16):
    """Forward and backward under CPU autocast give finite values."""
    model = copy.deepcopy(model).train()
    with torch.autocast('cpu', dtype=dtype):
        outs = _features(model, x)
        loss = sum(o.float().mean() for o in outs)
    loss.backward()
    for level, o in enumerate(outs):
        assert torch.isfinite(o.float()).all(), f'non-finite values at level {level} under autocast({dtype})'
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), \
        f'non-finite gradients under autocast({dtype})'


def random_state_dict(shapes: dict, seed: int = 0) -> dict:
    """A state dict with the given ``{key: shape}`` and random values (for official-layout loading tests)."""
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(shape, generator=gen) if len(shape) else torch.tensor(1))
            for k, shape in shapes.items()}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
