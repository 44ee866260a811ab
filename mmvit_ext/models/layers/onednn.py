"""Linear layers and depthwise convs with a faster CPU inference path: oneDNN with the bias and activation fused.

PyTorch runs an fp32 ``nn.Linear`` on a CPU as ``addmm``: the bias is copied into the output, BLAS (MKL) adds the
product onto it, and an activation after it is one more pass over the output; a conv is oneDNN already, but its
activation is again a pass of its own. oneDNN's matmul and conv with post-ops (``torch.ops.mkldnn._linear_pointwise``
/ ``_convolution_pointwise``, the ops PyTorch's inductor emits for a CPU) write ``act(x W^T + b)`` / ``act(conv(x))``
in one pass. On a 2-core AMD EPYC with AVX-512 (Zen 4) our linear layers run 1.6-2.1x faster than with ``addmm``
(MKL's sgemm is the slower of the two there), a Linear + GELU pair 2x and a depthwise 3x3 conv + GELU 1.1-2.1x. On
AVX2 CPUs the two matmuls are close: on a 2-core Zen 2 oneDNN ran 1.0-1.14x ``addmm`` on the models' layers, 1.3x
with a GELU fused, 1.3-1.6x for ViT-B-wide layers on 49 rows, but 0.9x on calls of a few million multiply-adds,
where its cost per call shows (an earlier Zen 3 measured 0.5-1.1x, slowest on such small batch-1 calls). MKL takes
its fast kernels on Intel CPUs only: on a 2-core Intel Xeon (Sapphire Rapids) ``addmm`` beat oneDNN inside the
models on every call under about a thousand rows, the fused GELU ones included (LightViT-T at batch 1: 28.4 ms with
oneDNN from 32 rows, 24.9 ms from 1024), while oneDNN stayed ahead on the larger calls of batch 8. So linear layers
take oneDNN on AVX-512 from ``_LINEAR_MIN_ROWS`` rows (32 on AMD, 1024 on Intel) and on AVX2 from
``_LINEAR_MIN_MACS`` multiply-adds per call (``torch.backends.cpu.get_cpu_capability()``, ``/proc/cpuinfo``),
nowhere else; convs wherever oneDNN is built. The benchmark's official-code comparison measures the whole models.

On Intel CPUs the calls left to MKL whose weight has at least 2^17 elements run on MKL's packed form of the weight
(``torch.ops.mkl._mkl_linear``, the op inductor emits there), packed at the second call of a row count and kept while
the weight and the row count stay the same (``_prepacked``): ``addmm`` packs the weight anew at every call, which on
few rows costs about as much as the product (2048 -> 512 on 73 rows: 0.43 against 0.59 ms, on 24 rows of 512 -> 1024
0.07 against 0.15). On a 2-core Xeon (Sapphire Rapids) at batch 1: LIT-S 1.11x, LITv2-S 1.08x, LightViT-B 1.05x,
LVT 1.02x, LightViT-T unchanged; LITv2-S at batch 8 1.02x. The price is a second copy of those weights in memory.
From 256 rows, weights of fewer than 256 input features keep ``addmm`` (0.87-0.95x packed at 128 -> 1024).

The fused path is taken only where it gives the same result (within fp32 round-off, tested): CPU fp32 tensors, no
autograd through the call (the ops have no backward), no autocast, no graph being recorded (``torch.export`` /
ONNX / ``torch.jit.trace`` / ``torch.compile`` see ``F.linear`` / ``F.conv2d``, which they export and fuse
themselves), and a PyTorch built with oneDNN. Everything else runs the plain ops and then the activation.
The packed path takes the same conditions. ``MMVIT_EXT_ONEDNN=0`` in the environment, or ``use_onednn(False)`` as a
context manager, turns both paths off.
"""
import contextlib
import os
import weakref
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import is_tracing, no_autograd

__all__ = ['Linear', 'linear', 'linear_into', 'concat_linears', 'chunk_rows', 'cpu_fp32_inference', 'mlp',
           'conv2d', 'use_onednn', 'linear_rule']

# Activation -> (PyTorch function, its in-place form, oneDNN post-op attr, algorithm); GELU's algorithm 'none' is the
# exact (erf) form, nn.GELU's default.
_ACTIVATIONS = {None: (None, None, 'none', ''), 'gelu': (F.gelu, torch.ops.aten.gelu_, 'gelu', 'none'),
                'silu': (F.silu, lambda x: F.silu(x, inplace=True), 'swish', '')}

_available = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_linear_pointwise')
              and hasattr(torch.ops.mkldnn, '_convolution_pointwise'))
_enabled = os.environ.get('MMVIT_EXT_ONEDNN', '1') != '0'


def _cpu_vendor() -> str:
    """``vendor_id`` of ``/proc/cpuinfo`` (``'GenuineIntel'``, ``'AuthenticAMD'``), ``''`` where there is none."""
    try:
        with open('/proc/cpuinfo') as f:
            return next((line.split(':', 1)[1].strip() for line in f if line.startswith('vendor_id')), '')
    except OSError:
        return ''


def linear_rule(capability: str, vendor: str) -> Tuple[Optional[str], int]:
    """Which linear calls take oneDNN on a CPU (see the module docstring): ``('rows', min_rows)`` on AVX-512, inputs
    of at least ``min_rows`` rows; ``('macs', 0)`` on AVX2, calls of at least ``_LINEAR_MIN_MACS`` multiply-adds;
    ``(None, 0)`` elsewhere.

    AMD AVX-512 (Zen 4) from 32 rows: below that oneDNN's cost per call, ~13 us, outweighs its faster kernel (8 x 64
    -> 64 in 17.8 us against addmm's 5.1, 57 x 256 -> 768 1.2x faster than addmm); such inputs are LightViT's global
    tokens and the per-image vectors of its gates. Intel AVX-512 from 1024 rows, where MKL's own kernels are as fast.
    AVX2 (Zen 2): 64 x 384 -> 384 0.89x addmm, 200 x 256 -> 256 0.91x, 400 x 128 -> 512 1.01x, from 784 x 192 -> 768
    on 1.0-1.3x.
    """
    if capability.startswith('AVX512'):
        return 'rows', 1024 if vendor == 'GenuineIntel' else 32
    return ('macs', 0) if capability == 'AVX2' else (None, 0)


_VENDOR = _cpu_vendor()
_LINEAR_RULE, _LINEAR_MIN_ROWS = linear_rule(torch.backends.cpu.get_cpu_capability(), _VENDOR)
# Whether MKL's addmm runs the large linear calls as fast as oneDNN (``concat_linears``): on Intel CPUs.
_ADDMM_AS_FAST = _VENDOR == 'GenuineIntel'
_LINEAR_MIN_MACS = 1 << 25
# Prepacked weights for the linear calls left to MKL on Intel (``_prepacked``): id(weight) -> ((rows, data pointer,
# version) of its last call, MKL's packed weight for it or None), removed with the weight.
_PREPACK = _ADDMM_AS_FAST and torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, '_mkl_linear')
_PACKED: Dict[int, Tuple[tuple, Optional[torch.Tensor]]] = {}
# ``mlp``'s (hidden bytes past which it runs in chunks, bytes per chunk) (``chunk_rows``): it gains only where whole
# it would page-fault, past 32 MiB.
_MLP_CHUNKING = (32 << 20, 4 << 20)


def _prepack_rule(rows: int, out_features: int, in_features: int) -> bool:
    """Whether a call of ``rows`` rows runs on the packed weight (MKL cannot pack for an empty input)."""
    return 0 < rows and out_features * in_features >= 1 << 17 and (rows < 256 or in_features >= 256)


def _prepacked(weight: torch.Tensor, rows: int) -> Optional[torch.Tensor]:
    """MKL's packed form of ``weight`` for calls of ``rows`` rows, packed at the second consecutive call of that
    size (an input size that changes every call, e.g. detection at varying image sizes, never pays for packing:
    0.64 ms for 2048 -> 512, more than the product); None until then, and for an inference-mode weight (it has no
    version counter to notice that it changed)."""
    if weight.is_inference():
        return None
    key = (rows, weight.data_ptr(), weight._version)
    seen, packed = _PACKED.get(id(weight), (None, None))
    if seen is None:  # a weight's first call: its entry goes with it
        weakref.finalize(weight, _PACKED.pop, id(weight), None)
    if seen != key:
        _PACKED[id(weight)] = (key, None)
        return None
    if packed is None:
        packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
        _PACKED[id(weight)] = (key, packed)
    return packed


def _linear_takes_onednn(x: torch.Tensor, weight: torch.Tensor) -> bool:
    if x.dim() < 2 or _LINEAR_RULE is None:
        return False
    rows = x.numel() // x.shape[-1]
    return rows >= _LINEAR_MIN_ROWS if _LINEAR_RULE == 'rows' else rows * weight.numel() >= _LINEAR_MIN_MACS


@contextlib.contextmanager
def use_onednn(enabled: bool):
    """Turn the fused oneDNN path and the packed weights on or off inside a ``with`` block (e.g. to time or compare
    both)."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


def check_activation(activation: Optional[str], where: str):
    if activation not in _ACTIVATIONS:
        raise ValueError(f'{where}: unknown activation {activation!r}, expected None or one of '
                         f'{sorted(a for a in _ACTIVATIONS if a)}')


def cpu_fp32_inference(*tensors: Optional[torch.Tensor]) -> bool:
    """CPU fp32 tensors, no autograd through them, no autocast, no graph being recorded."""
    tensors = [t for t in tensors if t is not None]
    if any(t.device.type != 'cpu' or t.dtype != torch.float32 for t in tensors) or not no_autograd(*tensors):
        return False
    return not (torch.is_autocast_enabled('cpu') or is_tracing())


def _takes_onednn(x: torch.Tensor, *params: Optional[torch.Tensor]) -> bool:
    return _available and _enabled and cpu_fp32_inference(x, *params)


def _activate(x: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    """The activation on x, the fresh output of a linear or conv: in place where no graph records it and autograd
    does not need x (a new output buffer costs more than the pass itself, 1.4 ms of LightViT-T's 24 at batch 1)."""
    if activation is None:
        return x
    function, in_place, _, _ = _ACTIVATIONS[activation]
    return in_place(x) if no_autograd(x) and not is_tracing() else function(x)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
           activation: Optional[str] = None) -> torch.Tensor:
    """``act(x W^T + b)``: x (..., in), weight (out, in), bias (out,) or None -> (..., out).

    ``activation``: None, ``'gelu'`` (exact, erf form) or ``'silu'``. One oneDNN matmul where the module
    docstring allows it and the call is large enough for this CPU (``_LINEAR_RULE``); on Intel, smaller calls with
    a large weight on MKL's packed weight (``_prepack_rule``) then the activation; else ``F.linear`` then the
    activation.
    """
    check_activation(activation, 'linear')
    if _linear_takes_onednn(x, weight):
        if _takes_onednn(x, weight, bias):
            _, _, attr, algorithm = _ACTIVATIONS[activation]
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [], algorithm)
    elif _PREPACK:
        rows = x.numel() // x.shape[-1] if x.dim() and x.shape[-1] else 0
        packed = _prepacked(weight, rows) if _prepack_rule(rows, *weight.shape) and _enabled and \
            cpu_fp32_inference(x, weight, bias) else None
        if packed is not None:
            return _activate(torch.ops.mkl._mkl_linear(x, packed, weight, bias, rows), activation)
    return _activate(F.linear(x, weight, bias), activation)


def linear_into(x: torch.Tensor, layer: nn.Linear, out: torch.Tensor) -> torch.Tensor:
    """Writes ``layer(x)`` (a layer without activation) into ``out``: x (M, in), out (M, out) of row stride >= out,
    e.g. a column slice or a block of rows of a larger output; CPU fp32 inference only (``cpu_fp32_inference``).

    Where addmm is as fast as oneDNN (``_ADDMM_AS_FAST``, Intel CPUs) the product is written there by addmm; elsewhere
    (oneDNN's matmul has no output argument) the layer runs and its output is copied.
    """
    if not _ADDMM_AS_FAST:
        return out.copy_(layer(x))
    if layer.bias is None:
        return torch.mm(x, layer.weight.t(), out=out)
    return torch.addmm(layer.bias, x, layer.weight.t(), out=out)


def concat_linears(inputs: Sequence[torch.Tensor], layers: Sequence[nn.Linear]) -> torch.Tensor:
    """``torch.cat([layer(x) for x, layer in zip(inputs, layers)], -1)``: inputs (..., in_i) of one leading shape,
    layers without activation -> (..., sum of out_i).

    In CPU fp32 inference on CPUs where addmm is as fast as oneDNN (``_ADDMM_AS_FAST``), each product is written by
    addmm straight into its column slice of one output (``linear_into``), which saves the concatenation's pass over
    it: HiLo's two output projections at 64 x 196 tokens of 768 channels, 38.5 MB, took 8% less on a 2-core Xeon
    (Sapphire Rapids). Elsewhere the layers run and their outputs are concatenated.
    """
    params = [p for layer in layers for p in (layer.weight, layer.bias)]
    if not (_ADDMM_AS_FAST and cpu_fp32_inference(*inputs, *params)
            and all(getattr(layer, 'activation', None) is None for layer in layers)):
        return torch.cat([layer(x) for x, layer in zip(inputs, layers)], dim=-1)
    lead = inputs[0].shape[:-1]
    out = inputs[0].new_empty(*lead, sum(layer.out_features for layer in layers))
    columns = out.view(-1, out.shape[-1])
    start = 0
    for x, layer in zip(inputs, layers):
        linear_into(x.reshape(-1, x.shape[-1]), layer, columns[:, start:start + layer.out_features])
        start += layer.out_features
    return out


def chunk_rows(rows: int, row_bytes: int, chunking: Tuple[int, int]) -> int:
    """How many rows of ``row_bytes`` hidden activations one chunk of a feed-forward layer takes in CPU fp32
    inference: 0 (the whole tensor at once) while its ``rows`` rows stay within ``chunking[0]`` bytes or a graph is
    being recorded (its sizes may be traced values; chunk loops would fix them), else as many as fit in
    ``chunking[1]`` (at least one). Cheap (0.5 us), so callers ask it before ``cpu_fp32_inference`` (11 us).

    A feed-forward layer's hidden activations are the largest tensors of a backbone (4x or 8x its width) and live only
    between its two linear layers. At batch 8 or at detection inputs they are tens of MB: past 32 MiB glibc maps
    every allocation fresh from the kernel, so each one page-faults in on its first write (8.9 ms for 38.5 MB
    against 0.7 ms refilling a reused buffer), and each pass over them runs at memory speed. In chunks the ops of the
    layer run on a buffer that the allocator reuses and that is still in cache for the next op. On a 2-core Xeon
    (Sapphire Rapids): LITv2-S's ConvFFN at 224 x 224, batch 8, took 24 ms instead of 43 in stage 1 and 19 instead
    of 25 in stage 2, at 800 x 1216 70-83 instead of 103 and 47 instead of 65 (whole at 9 MiB: 15 ms either way);
    LightViT-B's stage-1 MLP at 800 x 1216 (59 MiB) 40 ms instead of 50, while below 32 MiB the whole MLP was the
    faster (30 MiB: 11.3 against 12.2 ms). Whole backbones: LITv2-S 1.09-1.15x at 224 batch 8 and 1.09x at
    800 x 1216, LightViT-B and LVT 1.02-1.03x at 800 x 1216, LIT-S 1.03x at 224 batch 8.
    """
    if is_tracing() or rows * row_bytes <= chunking[0]:
        return 0
    return max(1, chunking[1] // row_bytes)


def mlp(x: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear, dropout: nn.Module = nn.Identity()) -> torch.Tensor:
    """``fc2(dropout(fc1(x)))``, fc1 with its activation: x (..., in) -> (..., fc2.out_features).

    In CPU fp32 inference with a hidden layer past ``_MLP_CHUNKING[0]`` bytes, ``chunk_rows`` tokens at a time, each
    chunk's fc2 output written into its rows of the output (``linear_into``).
    """
    rows = chunk_rows(x.numel() // x.shape[-1], fc1.out_features * x.element_size(), _MLP_CHUNKING)
    if not (rows and cpu_fp32_inference(x, fc1.weight, fc1.bias, fc2.weight, fc2.bias)):
        return fc2(dropout(fc1(x)))
    tokens = x.reshape(-1, x.shape[-1])
    out = tokens.new_empty(tokens.shape[0], fc2.out_features)
    for start in range(0, tokens.shape[0], rows):
        linear_into(dropout(fc1(tokens[start:start + rows])), fc2, out[start:start + rows])
    return out.view(*x.shape[:-1], fc2.out_features)


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, padding: Sequence[int] = (0, 0),
           dilation: Sequence[int] = (1, 1), groups: int = 1, activation: Optional[str] = None,
           stride: Sequence[int] = (1, 1)) -> torch.Tensor:
    """``act(conv2d(x))``: x (B, C_in, H, W) (any memory format; the output keeps it) -> (B, C_out, H', W').

    One oneDNN conv with the activation as a post-op where the module docstring allows it, else ``F.conv2d`` then
    the activation.
    """
    check_activation(activation, 'conv2d')
    if x.dim() == 4 and _takes_onednn(x, weight, bias):
        _, _, attr, algorithm = _ACTIVATIONS[activation]
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, list(padding), list(stride), list(dilation),
                                                       groups, attr, [], algorithm)
    return _activate(F.conv2d(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups), activation)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, init and state-dict keys) running through ``linear``, optionally with a
    fused activation: ``Linear(c, 4 * c, activation='gelu')`` is ``nn.Sequential(nn.Linear(c, 4 * c), nn.GELU())``.

    Shapes: x (..., in_features) -> (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: Optional[str] = None,
                 **kwargs):
        check_activation(activation, 'Linear')
        super().__init__(in_features, out_features, bias, **kwargs)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias, self.activation)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f', activation={self.activation}' if self.activation else '')
