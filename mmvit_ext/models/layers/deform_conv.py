"""Deformable convolution (DCNv1) as one registered op, ``torch.ops.mmvit_ext.deform_conv2d``.

The op has mmcv's semantics and offset layout (channel ``2 * (i * kw + j)`` is the y offset and ``2 * (i * kw + j) + 1``
the x offset of kernel tap (i, j); a point samples the map bilinearly with zeros outside, and a point outside the open
box (-1, H) x (-1, W) gives zero and no gradient). Where it runs:

- CUDA: mmcv's kernels (``deform_conv_forward`` / ``deform_conv_backward_*`` of ``mmcv._ext``), as
  ``mmcv.ops.deform_conv2d`` calls them.
- CPU (and any other device): a PyTorch formulation that is several times faster than mmcv's single-threaded CPU
  kernels: the bilinear sampling of all points is one ``embedding_bag`` over the channels-last input (4 corner rows and
  4 weights per point), the convolution one matmul; the backward reuses the same sampling plan
  (``embedding_bag``'s dense and per-sample-weight backward give the input and the offset gradients).
  Its output and input gradient are channels-last tensors in NCHW shape (free to flatten into tokens).
- ``torch.compile`` / ``torch.export``: fake implementations, so the op is one node and breaks no graph.
- ONNX: the standard ``DeformConv`` operator (opset 19; ONNX's offset layout is the same as mmcv's), from
  ``torch.onnx.export`` with either exporter; ``ONNX_TRANSLATION_TABLE`` translates an already exported program.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .onednn import linear

__all__ = ['deform_conv2d', 'ONNX_TRANSLATION_TABLE']

OPSET = 19  # ONNX DeformConv was introduced in opset 19


def _output_hw(height, width, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
               dilation: Sequence[int]) -> Tuple:
    return tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                 for size, k, s, p, d in zip((height, width), kernel, stride, padding, dilation))


def _channels_last_empty(like: torch.Tensor, b, c, h, w) -> torch.Tensor:
    """An empty (b, c, h, w) tensor laid out as (b, h, w, c), built like the CPU kernels build their outputs."""
    return like.new_empty((b, h, w, c)).permute(0, 3, 1, 2)


def _sampling_plan(offset: torch.Tensor, height: int, width: int, kernel: Sequence[int], stride: Sequence[int],
                   padding: Sequence[int], dilation: Sequence[int], with_derivatives: bool = False):
    """Bilinear corners of every sampling point, with mmcv's boundary rule.

    Args:
        offset: (B, 2 * kh * kw, Ho, Wo), per kernel tap (dy, dx).
    Returns:
        index: (B * Ho * Wo * kh * kw, 4) int64 rows of the (B * H * W, C) channels-last input, corners
            (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1), clamped into the map;
        weight: (N, 4) bilinear weights, zero for a corner outside the map and for a point outside (-1, H) x (-1, W);
        and with ``with_derivatives`` the derivatives of ``weight`` with respect to the point's y and x, (N, 4) each.
    """
    b, _, ho, wo = offset.shape
    kh, kw = kernel
    taps = kh * kw
    offset = offset.reshape(b, taps, 2, ho, wo)
    tap = torch.arange(taps, device=offset.device)
    # Integer grid positions first, then the offset added in floating point, as mmcv computes them.
    grid_y = (torch.arange(ho, device=offset.device) * stride[0] - padding[0]).view(ho, 1, 1) + \
        (tap // kw * dilation[0]).view(1, 1, taps)
    grid_x = (torch.arange(wo, device=offset.device) * stride[1] - padding[1]).view(1, wo, 1) + \
        (tap % kw * dilation[1]).view(1, 1, taps)
    y = offset[:, :, 0].permute(0, 2, 3, 1) + grid_y.to(offset.dtype)  # (B, Ho, Wo, taps)
    x = offset[:, :, 1].permute(0, 2, 3, 1) + grid_x.to(offset.dtype)

    inside = (y > -1) & (y < height) & (x > -1) & (x < width)
    y, x = torch.where(inside, y, 0), torch.where(inside, x, 0)  # far-away points stay finite (their weights are 0)
    y0, x0 = y.floor(), x.floor()
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    top, bottom = inside & (y0 >= 0), inside & (y0 <= height - 2)
    left, right = x0 >= 0, x0 <= width - 2
    valid = torch.stack([top & left, top & right, bottom & left, bottom & right], dim=-1).to(offset.dtype)
    weight = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx], dim=-1) * valid

    r0, c0 = y0.clamp(min=0).long(), x0.clamp(min=0).long()
    r1, c1 = (y0 + 1).clamp(max=height - 1).long(), (x0 + 1).clamp(max=width - 1).long()
    image = (torch.arange(b, device=offset.device) * (height * width)).view(b, 1, 1, 1)
    top_row, bottom_row = image + r0 * width, image + r1 * width
    index = torch.stack([top_row + c0, top_row + c1, bottom_row + c0, bottom_row + c1], dim=-1)
    if not with_derivatives:
        return index.view(-1, 4), weight.view(-1, 4)
    d_weight_dy = torch.stack([-hx, -lx, hx, lx], dim=-1) * valid
    d_weight_dx = torch.stack([-hy, hy, -ly, ly], dim=-1) * valid
    return index.view(-1, 4), weight.view(-1, 4), d_weight_dy.view(-1, 4), d_weight_dx.view(-1, 4)


def _weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, kh, kw) -> (C_out, kh * kw * C_in), the column order of the sampled points."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


@torch.library.custom_op('mmvit_ext::deform_conv2d', mutates_args=())
def _deform_conv2d_op(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                      stride: List[int], padding: List[int], dilation: List[int]) -> torch.Tensor:
    """PyTorch kernel (CPU and every device but CUDA): one embedding_bag samples, one matmul convolves."""
    b, c, height, width = input.shape
    c_out, _, kh, kw = weight.shape
    ho, wo = _output_hw(height, width, (kh, kw), stride, padding, dilation)
    index, sample_weight = _sampling_plan(offset, height, width, (kh, kw), stride, padding, dilation)
    table = input.permute(0, 2, 3, 1).reshape(-1, c)
    columns = F.embedding_bag(index, table, per_sample_weights=sample_weight, mode='sum').view(b * ho * wo, -1)
    wmat = _weight_matrix(weight)
    out = linear(columns, wmat, bias)
    return out.view(b, ho, wo, c_out).permute(0, 3, 1, 2)


@_deform_conv2d_op.register_fake
def _(input, offset, weight, bias, stride, padding, dilation):
    b, _, height, width = input.shape
    ho, wo = _output_hw(height, width, weight.shape[2:], stride, padding, dilation)
    if input.device.type == 'cuda':
        return input.new_empty((b, weight.shape[0], ho, wo))
    return _channels_last_empty(input, b, weight.shape[0], ho, wo)


@torch.library.custom_op('mmvit_ext::deform_conv2d_backward', mutates_args=())
def _deform_conv2d_backward_op(grad_output: torch.Tensor, input: torch.Tensor, offset: torch.Tensor,
                               weight: torch.Tensor, stride: List[int], padding: List[int],
                               dilation: List[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (input, offset, weight, bias) of the PyTorch kernel."""
    b, c, height, width = input.shape
    c_out, _, kh, kw = weight.shape
    index, sample_weight, d_weight_dy, d_weight_dx = _sampling_plan(
        offset, height, width, (kh, kw), stride, padding, dilation, with_derivatives=True)
    table = input.permute(0, 2, 3, 1).reshape(-1, c)
    columns = F.embedding_bag(index, table, per_sample_weights=sample_weight, mode='sum')
    # Every sampling point is a bag of its 4 corners (the bookkeeping embedding_bag's backward kernels take).
    points = index.shape[0]
    index, sample_weight = index.view(-1), sample_weight.view(-1)
    bags = torch.arange(0, index.numel(), 4, device=index.device)
    offset2bag = torch.arange(points, device=index.device).repeat_interleave(4)
    bag_size = torch.full((points, ), 4, dtype=index.dtype, device=index.device)

    grad_rows = grad_output.permute(0, 2, 3, 1).reshape(-1, c_out)  # (B * Ho * Wo, C_out)
    grad_weight = (grad_rows.t() @ columns.view(grad_rows.shape[0], -1)).view(c_out, kh, kw, c)
    grad_columns = (grad_rows @ _weight_matrix(weight)).view(-1, c)  # (N, C), one row per sampling point
    grad_table = torch.ops.aten._embedding_bag_dense_backward(
        grad_columns, index, offset2bag, bag_size, bag_size.new_empty(0), table.shape[0], False, 0, sample_weight, -1)
    grad_sample_weight = torch.ops.aten._embedding_bag_per_sample_weights_backward(
        grad_columns, table, index, bags, offset2bag, 0, -1).view(-1, 4)
    grad_y = (grad_sample_weight * d_weight_dy).sum(-1)
    grad_x = (grad_sample_weight * d_weight_dx).sum(-1)
    ho, wo = offset.shape[2:]
    grad_offset = torch.stack([grad_y, grad_x], dim=-1).view(b, ho, wo, -1).permute(0, 3, 1, 2)
    return (grad_table.view(b, height, width, c).permute(0, 3, 1, 2), grad_offset,
            grad_weight.permute(0, 3, 1, 2).contiguous(), grad_rows.sum(0))


@_deform_conv2d_backward_op.register_fake
def _(grad_output, input, offset, weight, stride, padding, dilation):
    if input.device.type == 'cuda':
        grad_input, grad_offset = input.new_empty(input.shape), offset.new_empty(offset.shape)
    else:
        grad_input = _channels_last_empty(input, *input.shape)
        grad_offset = _channels_last_empty(offset, *offset.shape)
    return grad_input, grad_offset, weight.new_empty(weight.shape), weight.new_empty(weight.shape[0])


def _mmcv_geometry(weight: torch.Tensor, stride, padding, dilation, batch: int) -> dict:
    return dict(kW=weight.size(3), kH=weight.size(2), dW=stride[1], dH=stride[0], padW=padding[1], padH=padding[0],
                dilationW=dilation[1], dilationH=dilation[0], group=1, deformable_group=1, im2col_step=max(batch, 1))


def _mmcv_forward(input, offset, weight, bias, stride, padding, dilation):
    """mmcv's kernels, called as ``mmcv.ops.deform_conv2d`` calls them (whole batch in one im2col step)."""
    from mmcv.ops.deform_conv import ext_module
    input, offset, weight = input.contiguous(), offset.contiguous(), weight.contiguous()
    ho, wo = _output_hw(input.shape[2], input.shape[3], weight.shape[2:], stride, padding, dilation)
    out = input.new_empty((input.shape[0], weight.shape[0], ho, wo))
    ext_module.deform_conv_forward(input, weight, offset, out, input.new_empty(0), input.new_empty(0),
                                   **_mmcv_geometry(weight, stride, padding, dilation, input.shape[0]))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _mmcv_backward(grad_output, input, offset, weight, stride, padding, dilation):
    from mmcv.ops.deform_conv import ext_module
    input, offset, weight = input.contiguous(), offset.contiguous(), weight.contiguous()
    grad_output = grad_output.contiguous()
    geometry = _mmcv_geometry(weight, stride, padding, dilation, input.shape[0])
    grad_input, grad_offset, grad_weight = torch.zeros_like(input), torch.zeros_like(offset), torch.zeros_like(weight)
    ext_module.deform_conv_backward_input(input, offset, grad_output, grad_input, grad_offset, weight,
                                          input.new_empty(0), **geometry)
    ext_module.deform_conv_backward_parameters(input, offset, grad_output, grad_weight, input.new_empty(0),
                                               input.new_empty(0), scale=1, **geometry)
    return grad_input, grad_offset, grad_weight, grad_output.sum((0, 2, 3))


_deform_conv2d_op.register_kernel('cuda')(_mmcv_forward)
_deform_conv2d_backward_op.register_kernel('cuda')(_mmcv_backward)


def _setup_context(ctx, inputs, output):
    input, offset, weight, bias, stride, padding, dilation = inputs
    ctx.save_for_backward(input, offset, weight)
    ctx.geometry = (stride, padding, dilation)
    ctx.has_bias = bias is not None


def _backward(ctx, grad_output):
    input, offset, weight = ctx.saved_tensors
    grad_input, grad_offset, grad_weight, grad_bias = _deform_conv2d_backward_op(
        grad_output, input, offset, weight, *ctx.geometry)
    return grad_input, grad_offset, grad_weight, grad_bias if ctx.has_bias else None, None, None, None


_deform_conv2d_op.register_autograd(_backward, setup_context=_setup_context)


def _onnx_attributes(weight: torch.Tensor, stride, padding, dilation) -> dict:
    return dict(dilations=list(dilation), group=1, kernel_shape=list(weight.shape[2:]), offset_group=1,
                pads=[padding[0], padding[1], padding[0], padding[1]], strides=list(stride))


def _onnx_symbolic(input, offset, weight, bias, stride, padding, dilation) -> torch.Tensor:
    """The ONNX ``DeformConv`` node itself, recorded by the ``torch.export``-based exporter."""
    ho, wo = _output_hw(input.shape[2], input.shape[3], weight.shape[2:], stride, padding, dilation)
    inputs = (input, weight, offset) if bias is None else (input, weight, offset, bias)
    return torch.onnx.ops.symbolic('DeformConv', inputs, _onnx_attributes(weight, stride, padding, dilation),
                                   dtype=input.dtype, shape=(input.shape[0], weight.shape[0], ho, wo), version=OPSET)


def _torchscript_symbolic(g, input, offset, weight, bias, stride, padding, dilation):
    """``DeformConv`` for the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``)."""
    from torch.onnx import symbolic_helper
    stride, padding, dilation = (symbolic_helper._parse_arg(v, 'is') for v in (stride, padding, dilation))
    inputs = [input, weight, offset] + ([] if symbolic_helper._is_none(bias) else [bias])
    kernel = symbolic_helper._get_tensor_sizes(weight)[2:]
    return g.op('DeformConv', *inputs, dilations_i=dilation, group_i=1, kernel_shape_i=kernel, offset_group_i=1,
                pads_i=[padding[0], padding[1], padding[0], padding[1]], strides_i=stride)


def _onnxscript_translation(input, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """onnxscript translation of the op node of an exported program (``custom_translation_table``)."""
    from onnxscript import opset19 as op
    inputs = (input, weight, offset) if bias is None else (input, weight, offset, bias)
    return op.DeformConv(*inputs, dilations=list(dilation), group=1, offset_group=1,
                         pads=[padding[0], padding[1], padding[0], padding[1]], strides=list(stride))


# For ``torch.onnx.export(exported_program, custom_translation_table=ONNX_TRANSLATION_TABLE)``: an ExportedProgram
# captured outside ONNX export holds the op node itself.
ONNX_TRANSLATION_TABLE = {torch.ops.mmvit_ext.deform_conv2d.default: _onnxscript_translation}
torch.onnx.register_custom_op_symbolic('mmvit_ext::deform_conv2d', _torchscript_symbolic, OPSET)


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                  stride=1, padding=0, dilation=1) -> torch.Tensor:
    """Deformable convolution (DCNv1, one group, one offset group) with mmcv's offset layout and semantics.

    Args:
        input: (B, C_in, H, W), any memory layout.
        offset: (B, 2 * kh * kw, Ho, Wo), per kernel tap (i, j) in row-major order its (dy, dx).
        weight: (C_out, C_in, kh, kw); bias: (C_out, ) or None.
        stride, padding, dilation: int or (h, w) pair, as ``nn.Conv2d``.
    Returns:
        (B, C_out, Ho, Wo), Ho = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1 (likewise Wo).
    """
    stride, padding, dilation = list(_pair(stride)), list(_pair(padding)), list(_pair(dilation))
    if not torch.jit.is_tracing():  # the traced graph keeps no Python checks
        _check_shapes(input, offset, weight, stride, padding, dilation)
    if torch.onnx.is_in_onnx_export() and not torch.jit.is_tracing():
        return _onnx_symbolic(input, offset, weight, bias, stride, padding, dilation)
    return _deform_conv2d_op(input, offset, weight, bias, stride, padding, dilation)


def _check_shapes(input, offset, weight, stride, padding, dilation):
    if input.dim() != 4 or weight.dim() != 4:
        raise ValueError(f'deform_conv2d expects 4-D input and weight, got {tuple(input.shape)} and '
                         f'{tuple(weight.shape)}')
    if weight.shape[1] != input.shape[1]:
        raise ValueError(f'deform_conv2d supports one group only: weight {tuple(weight.shape)} needs '
                         f'{weight.shape[1]} input channels, the input has {input.shape[1]}')
    kernel = tuple(weight.shape[2:])
    ho, wo = _output_hw(input.shape[2], input.shape[3], kernel, stride, padding, dilation)
    if ho <= 0 or wo <= 0:
        raise ValueError(f'deform_conv2d input {tuple(input.shape)} is too small for kernel {kernel} with stride '
                         f'{stride}, padding {padding}, dilation {dilation}')
    expected_offset = (input.shape[0], 2 * kernel[0] * kernel[1], ho, wo)
    if tuple(offset.shape) != expected_offset:
        raise ValueError(f'deform_conv2d offset must be {expected_offset} (one offset group, (dy, dx) per kernel '
                         f'tap), got {tuple(offset.shape)}')
