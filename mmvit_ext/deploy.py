"""Deployment: ONNX export with dynamic shapes and onnxruntime inference, TorchScript tracing and ``torch.compile``,
with the equality checks and latency measurements that ``tools/deployment/`` print (and a benchmark can call).

What is exported (``NetworkForward``) is the network forward up to its raw outputs:

- a backbone: its feature maps;
- an mmdet detector: the head's outputs before decoding, e.g. RetinaNet's per-level classification scores and box
  deltas (anchor generation, box decoding, score thresholds and NMS stay in PyTorch: ``bbox_head.predict_by_feat``);
- an mmseg segmentor: the decode head's logits at the head's stride (resizing to the image and argmax stay outside);
- an mmpretrain classifier: the head's logits (before softmax).

ONNX export uses the ``torch.export``-based exporter (``torch.onnx.export(dynamo=True)``, torch's default) at opset
19, the first with the standard ``DeformConv`` operator that LIT / LITv2's deformable token merging becomes
(``mmvit_ext/models/layers/deform_conv.py``): the files need no custom-op library. With ``dynamic=True`` the batch,
height and width are symbolic: the backbones compute padding, windows and resized position tables from the symbolic
size while a graph is recorded (``models/layers/utils.is_tracing``), so one file serves every input size, which
``verify_onnx`` checks by running it at several sizes.
"""
import contextlib
import inspect
import os
import os.path as osp
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .benchmark.timing import time_interleaved

__all__ = [
    'OPSET', 'NetworkForward', 'as_network', 'size_generic_layers', 'flatten_outputs', 'output_names',
    'export_onnx', 'OnnxRuntimeModel', 'max_abs_diff',
    'latencies_ms', 'SizeCheck', 'verify_onnx', 'trace', 'verify_traced', 'graph_breaks', 'compile_model',
    'compare_runtimes', 'ConfigExport', 'build_deploy_model', 'config_batch', 'export_config', 'DetectionCheck',
    'compare_detections', 'verify_config',
    'backbone_variants', 'BackboneReport', 'DEFAULT_SIZES', 'check_backbone', 'ModelReport', 'check_config',
    'backbone_table', 'model_table', 'BENCHMARK_MODELS', 'BENCHMARK_INPUTS', 'benchmark_deployment'
]

OPSET = 19  # ONNX DeformConv (LIT, LITv2) needs opset 19; onnxruntime implements it on CPU


def flatten_outputs(outputs: Any) -> List[torch.Tensor]:
    """Tensors of a (nested) tuple / list / dict output, depth first, in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in flatten_outputs(item)]
    raise TypeError(f'cannot export an output of type {type(outputs).__name__}: expected tensors in tuples, lists '
                    'or dicts')


def _is_openmmlab_model(model: nn.Module) -> bool:
    from mmengine.model import BaseModel
    return isinstance(model, BaseModel)


class NetworkForward(nn.Module):
    """A backbone or an mmdet / mmseg / mmpretrain model as a module of one image batch (B, 3, H, W) that returns a
    flat tuple of tensors: what export, tracing and onnxruntime see.

    OpenMMLab models run ``model(inputs, mode='tensor')`` (backbone, neck and head, no post-processing); other
    modules run ``model(inputs)``. Nested outputs (a detector's per-level lists) are flattened in order.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.openmmlab = _is_openmmlab_model(model)

    def raw(self, inputs: torch.Tensor) -> Any:
        """The model's outputs as it returns them (nested for a detector)."""
        return self.model(inputs, mode='tensor') if self.openmmlab else self.model(inputs)

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(flatten_outputs(self.raw(inputs)))


def as_network(model: nn.Module) -> NetworkForward:
    """``model`` as a ``NetworkForward`` (itself if it is one), in eval mode."""
    net = model if isinstance(model, NetworkForward) else NetworkForward(model)
    return net.eval()


def output_names(model: nn.Module, example: torch.Tensor) -> List[str]:
    """Names for the flat outputs of ``NetworkForward(model)``, from one eager run on ``example``.

    Detectors: the argument names of the head's ``predict_by_feat`` with the level, e.g. ``cls_scores_0`` ...
    ``bbox_preds_4`` for RetinaNet; segmentors: ``seg_logits``; classifiers: ``cls_score``; otherwise ``feat_i``.
    """
    net = as_network(model)
    with torch.no_grad():
        raw = net.raw(example)
    inner = net.model
    head = getattr(inner, 'bbox_head', None)
    if head is not None and isinstance(raw, (tuple, list)) and hasattr(head, 'predict_by_feat'):
        params = [p for p in inspect.signature(head.predict_by_feat).parameters if p != 'self']
        names = []
        for i, group in enumerate(raw):
            prefix = params[i] if i < len(params) else f'output{i}'
            group = flatten_outputs(group)
            names += [f'{prefix}_{level}' for level in range(len(group))] if len(group) > 1 else [prefix]
        return names
    flat = flatten_outputs(raw)
    if hasattr(inner, 'decode_head') and len(flat) == 1:
        return ['seg_logits']
    if net.openmmlab and hasattr(inner, 'head') and len(flat) == 1:
        return ['cls_score']
    return [f'feat_{i}' for i in range(len(flat))]


@contextlib.contextmanager
def size_generic_layers():
    """While a graph is recorded: size-generic forms of OpenMMLab layers whose forward turns a size into a Python
    number, which the graph would keep as a constant.

    mmseg's ``Upsample`` (the scale heads of Semantic FPN's ``FPNHead``) computes its output size as
    ``int(size * float(factor))``: recorded at 512x512, every other input size got the 512x512 map sizes inside the
    head, resized back at its end (right shape, wrong values). With an integral factor the size is ``size * factor``
    instead: the same numbers in eager mode, symbolic in the graph.
    """
    try:
        from mmseg.models.utils import Upsample, resize
    except ImportError:
        yield
        return
    original = Upsample.forward

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        factor = self.scale_factor
        if self.size or not isinstance(factor, float) or not factor.is_integer():
            return original(self, x)
        return resize(x, [t * int(factor) for t in x.shape[-2:]], None, self.mode, self.align_corners)

    Upsample.forward = upsample
    try:
        yield
    finally:
        Upsample.forward = original


def export_onnx(model: nn.Module, example: torch.Tensor, path: str, dynamic: bool = True, opset: int = OPSET,
                input_name: str = 'input', names: Optional[Sequence[str]] = None) -> str:
    """Export ``NetworkForward(model)`` to the ONNX file ``path`` (one file, weights inside) and return the path.

    Args:
        example: an input batch (B, 3, H, W). With ``dynamic`` the batch, height and width are symbolic, so use a
            batch of at least 2 (a size-1 axis would be taken as constant) and a size the model accepts.
        opset: ONNX opset (19 or later for LIT / LITv2).
        names: output names (default ``output_names``).
    """
    net = as_network(model)
    if dynamic and example.shape[0] < 2:
        raise ValueError(f'a dynamic-batch export needs an example batch of at least 2 images, got {example.shape[0]}'
                         ' (torch.export takes a size-1 axis as a constant)')
    names = list(names) if names is not None else output_names(net, example)
    dynamic_shapes = None
    if dynamic:
        axis = torch.export.Dim.DYNAMIC
        dynamic_shapes = ({0: axis, 2: axis, 3: axis}, )
    # Size-oblivious reasoning: no guards that a symbolic size differs from 1 (fewer spurious range limits on the
    # input size, and a faster export).
    with torch.fx.experimental._config.patch(backed_size_oblivious=True), torch.no_grad(), size_generic_layers():
        program = torch.onnx.export(net, (example, ), None, dynamo=True, opset_version=opset,
                                    dynamic_shapes=dynamic_shapes, input_names=[input_name], output_names=names,
                                    verbose=False)
    if dynamic:
        _name_axes(program.model.graph, ('batch', None, 'height', 'width'))
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    program.save(path, external_data=False)
    return path


def _name_axes(graph, names: Sequence[Optional[str]]):
    """Rename the exporter's symbols of the input axes (``s0``, ``s77`` ...) to ``names`` in every shape of the
    graph, so that the file reads ``batch``, ``height``, ``width`` and the outputs' sizes as expressions of them
    (e.g. ``((height - 1)//32) + 1``)."""
    import onnx_ir as ir
    mapping = {dim.value: name for dim, name in zip(graph.inputs[0].shape, names)
               if name is not None and isinstance(dim, ir.SymbolicDim) and dim.value}
    if not mapping:
        return
    symbol = re.compile(r'\b(' + '|'.join(map(re.escape, mapping)) + r')\b')
    for value in [*graph.inputs, *graph.outputs, *(out for node in graph.all_nodes() for out in node.outputs)]:
        if value.shape is not None:
            value.shape = ir.Shape([ir.SymbolicDim(symbol.sub(lambda m: mapping[m.group(1)], dim.value))
                                    if isinstance(dim, ir.SymbolicDim) and dim.value else dim for dim in value.shape])


class OnnxRuntimeModel:
    """An onnxruntime session of an exported file, called like the PyTorch module: tensors in, tensors out.

    Args:
        path: the ``.onnx`` file.
        num_threads: intra-op threads (default: ``torch.get_num_threads()``, so that both runtimes get the same).
        providers: onnxruntime execution providers (default: CPU).
    """

    def __init__(self, path: str, num_threads: Optional[int] = None,
                 providers: Sequence[str] = ('CPUExecutionProvider', )):
        import onnxruntime as ort
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX file not found: {path}')
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No busy-waiting of idle onnxruntime threads after a run: it would take the cores from PyTorch (or any other
        # work) running in between, as when both runtimes are timed in alternation.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.path = path
        self.session = ort.InferenceSession(path, options, providers=list(providers))
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outputs = self.session.run(None, {self.input_name: inputs.detach().cpu().numpy()})
        return tuple(torch.from_numpy(np.asarray(o)) for o in outputs)


def max_abs_diff(reference: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference over all outputs; a different number or shape of outputs raises, naming them."""
    reference, outputs = flatten_outputs(reference), flatten_outputs(outputs)
    if len(reference) != len(outputs):
        raise ValueError(f'{len(outputs)} outputs, expected {len(reference)}')
    diff = 0.
    for i, (ref, out) in enumerate(zip(reference, outputs)):
        if tuple(ref.shape) != tuple(out.shape):
            raise ValueError(f'output {i} has shape {tuple(out.shape)}, PyTorch gives {tuple(ref.shape)}')
        if ref.numel():
            diff = max(diff, (ref.detach().float().cpu() - out.float().cpu()).abs().max().item())
    return diff


@dataclass
class SizeCheck:
    """One input size of a verification: the max absolute difference and the median latencies in ms."""
    shape: Tuple[int, ...]
    max_diff: float
    pytorch_ms: Optional[float] = None
    other_ms: Optional[float] = None


def latencies_ms(fns: Dict[str, Callable[[], Any]], repeat: int = 10, max_seconds: float = 10.,
                 warmup: int = 3) -> Dict[str, float]:
    """Median latency in ms of each callable, timed in alternation (one call of each per round, after ``warmup``
    rounds: PyTorch's first calls at a new size are several times slower), so that a load change on a shared
    machine hits every runtime alike."""
    timings = time_interleaved(list(fns.values()), torch.device('cpu'), warmup=warmup, repeat=repeat,
                               max_seconds=max_seconds, min_repeat=1)
    return {name: timing.median * 1e3 for name, timing in zip(fns, timings)}


def verify_onnx(model: nn.Module, path: str, shapes: Sequence[Sequence[int]], seed: int = 0,
                inputs: Optional[Sequence[torch.Tensor]] = None, timing_repeat: int = 0,
                max_seconds: float = 10.) -> List[SizeCheck]:
    """Run the file in onnxruntime and the model in PyTorch on random inputs of each (B, C, H, W) in ``shapes``
    (or on the given ``inputs``); with ``timing_repeat`` > 0 also both median latencies (``latencies_ms``)."""
    net = as_network(model)
    runtime = OnnxRuntimeModel(path)
    gen = torch.Generator().manual_seed(seed)
    batches = list(inputs) if inputs is not None else [torch.randn(*shape, generator=gen) for shape in shapes]
    checks = []
    with torch.no_grad():
        for x in batches:
            check = SizeCheck(tuple(x.shape), max_abs_diff(net(x), runtime(x)))
            if timing_repeat:
                times = latencies_ms(dict(pytorch=lambda: net(x), onnxruntime=lambda: runtime(x)), timing_repeat,
                                     max_seconds)
                check.pytorch_ms, check.other_ms = times['pytorch'], times['onnxruntime']
            checks.append(check)
    return checks


def trace(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of ``NetworkForward(model)`` (no gradients). The backbones' graphs hold for every input
    size (see the module docstring), not only the traced one."""
    net = as_network(model)
    with torch.no_grad(), size_generic_layers():
        return torch.jit.trace(net, (example, ), check_trace=False)


def verify_traced(model: nn.Module, traced: Callable, shapes: Sequence[Sequence[int]],
                  seed: int = 0) -> List[SizeCheck]:
    """Max absolute difference between ``traced`` (a traced or compiled module) and the eager model per size."""
    net = as_network(model)
    gen = torch.Generator().manual_seed(seed)
    checks = []
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(*shape, generator=gen)
            checks.append(SizeCheck(tuple(shape), max_abs_diff(net(x), traced(x))))
    return checks


def graph_breaks(model: nn.Module, example: torch.Tensor) -> List[str]:
    """The graph breaks ``torch.compile`` meets in ``model(example)``: one line per break, its reason and where in
    the user code it happened (empty: the forward is one graph). Uses ``torch._dynamo.explain`` (no compilation)."""
    import torch._dynamo
    net = as_network(model)
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(net)(example)
    torch._dynamo.reset()
    lines = []
    for reason in explanation.break_reasons:
        where = reason.user_stack[-1] if reason.user_stack else None
        location = f' ({osp.relpath(where.filename)}:{where.lineno})' if where is not None else ''
        lines.append(reason.reason.strip().splitlines()[0] + location)
    return lines


def compile_model(model: nn.Module, **compile_kwargs) -> Callable:
    """``torch.compile`` (default: the inductor backend) of ``NetworkForward(model)`` in eval mode."""
    net = as_network(model)
    return torch.compile(net, **compile_kwargs)


def compare_runtimes(model: nn.Module, inputs: torch.Tensor, runtimes: Sequence[str] = ('eager', 'compile', 'onnx'),
                     onnx_path: Optional[str] = None, warmup: int = 2, repeat: int = 10, max_seconds: float = 10.,
                     compile_kwargs: Optional[dict] = None) -> Dict[str, dict]:
    """Latency of one input batch in several runtimes, each checked against eager PyTorch: the measurement behind
    the deployment table, for a benchmark to call (e.g. eager vs compiled at 224 batch 8 and at 800x1216).

    Args:
        runtimes: any of ``'eager'`` (PyTorch, ``torch.no_grad``), ``'compile'`` (``torch.compile``, inductor by
            default; the first call, which compiles, is timed apart as ``compile_s``), ``'jit'``
            (``torch.jit.trace``), ``'onnx'`` (onnxruntime on CPU with as many threads as torch; exported with
            dynamic shapes to a temporary file, ``export_s``, unless ``onnx_path`` is given).
        warmup, repeat, max_seconds: as ``mmvit_ext.benchmark.timing.time_interleaved``: the runtimes are timed in
            alternation, so that a load change on a shared machine hits all of them alike.
    Returns:
        ``{runtime: dict(latency_ms, latency_p25_ms, latency_p75_ms, runs, throughput, max_diff[, compile_s]
        [, export_s])}`` (``Timing.summary`` with the batch size, plus the max absolute difference to eager).
    """
    import tempfile
    unknown = [r for r in runtimes if r not in ('eager', 'compile', 'jit', 'onnx')]
    if unknown:
        raise ValueError(f'unknown runtime "{unknown[0]}": expected eager, compile, jit or onnx')
    net = as_network(model)
    fns, extras = {}, {}
    with torch.no_grad():
        reference = net(inputs)
        for runtime in runtimes:
            extra = extras[runtime] = {}
            if runtime == 'eager':
                fn = net
            elif runtime == 'compile':
                fn = compile_model(net, **(compile_kwargs or {}))
                start = time.perf_counter()
                fn(inputs)
                extra['compile_s'] = time.perf_counter() - start
            elif runtime == 'jit':
                fn = trace(net, inputs)
            else:  # onnx
                path = onnx_path
                if path is None:
                    with tempfile.TemporaryDirectory() as tmp:
                        path = osp.join(tmp, 'model.onnx')
                        start = time.perf_counter()
                        export_onnx(net, inputs if inputs.shape[0] > 1 else inputs.repeat(2, 1, 1, 1), path)
                        extra['export_s'] = time.perf_counter() - start
                        fn = OnnxRuntimeModel(path)  # the session keeps the model in memory
                else:
                    fn = OnnxRuntimeModel(path)
            extra['max_diff'] = 0. if runtime == 'eager' else max_abs_diff(reference, fn(inputs))
            fns[runtime] = fn
        timings = time_interleaved([lambda fn=fn: fn(inputs) for fn in fns.values()], inputs.device, warmup=warmup,
                                   repeat=repeat, max_seconds=max_seconds)
    return {runtime: dict(timing.summary(inputs.shape[0]), **extras[runtime])
            for runtime, timing in zip(fns, timings)}


# ------------------------------------------------------------------------------------------------ config models
@dataclass
class ConfigExport:
    """An exported config model: the eval-mode OpenMMLab model, its scope, the example it was exported with."""
    model: nn.Module
    scope: str
    example_shape: Tuple[int, ...]
    output_names: List[str]
    export_s: float


def build_deploy_model(config: str, checkpoint: Optional[str] = None, cfg_options: Optional[dict] = None,
                       trust_checkpoint: bool = False) -> Tuple[nn.Module, str]:
    """The eval-mode model of a config file (its ``default_scope`` picks mmdet / mmseg / mmpretrain) and the scope.

    Without a checkpoint the weights are the model's own random initialisation (pretrained ``init_cfg`` dropped).
    A checkpoint loads strictly: any missing, unexpected or wrongly shaped key fails with the full list. It is read
    with the safe loader unless ``trust_checkpoint``.
    """
    from .analysis import build_config_model
    from .checkpoint import CheckpointMismatchError, load_checkpoint_file, trust_checkpoints
    from .engine import load_config
    from .engine.runner import checkpoint_mismatches, model_state
    cfg = load_config(config, cfg_options)
    model = build_config_model(cfg)
    if checkpoint is not None:
        if trust_checkpoint:
            trust_checkpoints()
        state = model_state(load_checkpoint_file(checkpoint))
        problems = checkpoint_mismatches(model, state)
        if problems:
            raise CheckpointMismatchError('\n'.join([f'{checkpoint} does not fit the model of {config}:', *problems]))
        model.load_state_dict(state, strict=True)
    return model.eval(), cfg.get('default_scope')


def config_batch(model: nn.Module, scope: str, shape: Sequence[int], batch: int = 1, image: Optional[str] = None,
                 seed: int = 0) -> Tuple[torch.Tensor, list]:
    """``(inputs, data_samples)``: a (B, 3, H', W') batch through the model's own data preprocessor (normalised,
    padded as in testing) with its samples' metainfo; random pixels, or ``batch`` copies of ``image`` resized to
    ``shape`` = (H, W)."""
    from .analysis import config_inputs
    inputs, samples = config_inputs(model, scope, shape, batch=batch, seed=seed)
    if image is None:
        return inputs, samples
    import mmcv
    if not osp.isfile(image):
        raise FileNotFoundError(f'image file not found: {image}')
    pixels = mmcv.imresize(mmcv.imread(image), (shape[1], shape[0]))  # BGR, as the test pipelines load it
    tensor = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[tensor] * batch, data_samples=samples), False)
    return data['inputs'], data['data_samples']


def export_config(config: str, path: str, shape: Sequence[int], checkpoint: Optional[str] = None,
                  dynamic: bool = False, opset: int = OPSET, batch: int = 1, cfg_options: Optional[dict] = None,
                  trust_checkpoint: bool = False, seed: int = 0) -> ConfigExport:
    """Build a config's model (``build_deploy_model``; random weights from ``seed`` without a checkpoint) and export
    its network forward at ``shape`` = (H, W); ``dynamic`` exports with symbolic batch, height and width (from a
    batch of 2)."""
    torch.manual_seed(seed)
    model, scope = build_deploy_model(config, checkpoint, cfg_options, trust_checkpoint)
    example, _ = config_batch(model, scope, shape, batch=max(batch, 2) if dynamic else batch)
    net = NetworkForward(model)
    names = output_names(net, example)
    start = time.perf_counter()
    export_onnx(net, example, path, dynamic=dynamic, opset=opset, names=names)
    return ConfigExport(model, scope, tuple(example.shape), names, time.perf_counter() - start)


@dataclass
class DetectionCheck:
    """mmdet's post-processing of onnxruntime's head outputs against the same post-processing of PyTorch's."""
    num_onnx: int
    num_pytorch: int
    same_labels: bool
    max_box_diff: Optional[float]
    max_score_diff: Optional[float]


def _grouped(names: Sequence[str], outputs: Sequence[torch.Tensor]) -> List[List[torch.Tensor]]:
    """Flat outputs named ``<group>_<level>`` back into the head's per-group lists."""
    groups: Dict[str, List[torch.Tensor]] = {}
    for name, out in zip(names, outputs):
        groups.setdefault(re.sub(r'_\d+$', '', name), []).append(out)
    return list(groups.values())


def compare_detections(exported: ConfigExport, onnx_outputs: Sequence[torch.Tensor], data_samples: list,
                       inputs: torch.Tensor) -> DetectionCheck:
    """Run the detector head's ``predict_by_feat`` (anchors, box decoding, score threshold, NMS: the part that
    stays in PyTorch) on onnxruntime's outputs and on PyTorch's for ``inputs``, and compare the detections."""
    head = exported.model.bbox_head
    metas = [sample.metainfo for sample in data_samples]
    with torch.no_grad():
        reference = NetworkForward(exported.model)(inputs)
        results = [head.predict_by_feat(*_grouped(exported.output_names, outs), batch_img_metas=metas, rescale=True)
                   for outs in (onnx_outputs, reference)]
    ours, theirs = (torch.cat([r.labels for r in res]) for res in results)
    same = ours.shape == theirs.shape and bool((ours == theirs).all())
    box_diff = score_diff = None
    if same and ours.numel():
        box_diff = max((a.bboxes - b.bboxes).abs().max().item() for a, b in zip(*results) if len(a))
        score_diff = max((a.scores - b.scores).abs().max().item() for a, b in zip(*results) if len(a))
    return DetectionCheck(len(ours), len(theirs), same, box_diff, score_diff)


def verify_config(exported: ConfigExport, path: str, shapes: Sequence[Sequence[int]], batch: int = 1,
                  image: Optional[str] = None, repeat: int = 10,
                  max_seconds: float = 10.) -> List[Tuple[SizeCheck, Optional[DetectionCheck]]]:
    """``verify_onnx`` of an exported config model on preprocessed batches of every (H, W) in ``shapes``, with
    latencies (``latencies_ms``, up to ``repeat`` runs each); for an mmdet detector also ``compare_detections``.
    Returns ``(SizeCheck, DetectionCheck or None)`` per size."""
    batches = [config_batch(exported.model, exported.scope, shape, batch=batch, image=image, seed=i)
               for i, shape in enumerate(shapes)]
    checks = verify_onnx(exported.model, path, [], inputs=[inputs for inputs, _ in batches], timing_repeat=repeat,
                         max_seconds=max_seconds)
    detector = exported.scope == 'mmdet' and hasattr(getattr(exported.model, 'bbox_head', None), 'predict_by_feat')
    runtime = OnnxRuntimeModel(path) if detector else None
    return [(check, compare_detections(exported, runtime(inputs), samples, inputs) if detector else None)
            for check, (inputs, samples) in zip(checks, batches)]


# ------------------------------------------------------------------------------------------------ backbone table
def backbone_variants() -> Dict[str, Callable[[], nn.Module]]:
    """Every backbone variant: ``{'LIT-tiny': build, ...}`` (the benchmark's list: every ``arch_zoo`` entry and the
    LITv2 ``ws4`` detection variants), each built in eval mode with random weights."""
    from .benchmark.models import mmvit_backbones
    return {spec.name: spec.build for spec in mmvit_backbones()}


@dataclass
class BackboneReport:
    """Deployment checks of one backbone: max differences per size and latencies (ms) at the first size."""
    name: str
    onnx: List[SizeCheck] = field(default_factory=list)
    jit: List[SizeCheck] = field(default_factory=list)
    compile: List[SizeCheck] = field(default_factory=list)
    graph_breaks: List[str] = field(default_factory=list)
    latency_ms: Dict[str, float] = field(default_factory=dict)
    export_s: Optional[float] = None
    compile_s: Optional[float] = None
    error: Optional[str] = None


DEFAULT_SIZES = ((1, 3, 224, 224), (1, 3, 97, 130), (2, 3, 320, 480))


def check_backbone(name: str, model: nn.Module, onnx_dir: str, sizes: Sequence[Sequence[int]] = DEFAULT_SIZES,
                   example_shape: Sequence[int] = (2, 3, 160, 192), checks: Sequence[str] = ('onnx', 'jit', 'compile'),
                   timing_repeat: int = 5, max_seconds: float = 10.) -> BackboneReport:
    """Deployment checks of one backbone, each against eager PyTorch at every size in ``sizes``:

    - ``onnx``: one export with dynamic shapes (from a batch of ``example_shape``), run in onnxruntime;
    - ``jit``: ``torch.jit.trace`` at ``example_shape``;
    - ``compile``: the graph breaks, then ``torch.compile`` (inductor) with dynamic shapes.
    Latencies: medians of up to ``timing_repeat`` interleaved runs per runtime at ``sizes[0]``.
    """
    report = BackboneReport(name)
    net = as_network(model)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(*example_shape, generator=gen)
    first = torch.randn(*sizes[0], generator=gen)
    runtimes = dict(pytorch=lambda: net(first))
    if 'onnx' in checks:
        path = osp.join(onnx_dir, f'{name}.onnx')
        start = time.perf_counter()
        export_onnx(net, example, path)
        report.export_s = time.perf_counter() - start
        report.onnx = verify_onnx(net, path, sizes)
        runtimes['onnxruntime'] = OnnxRuntimeModel(path)
    if 'jit' in checks:
        runtimes['jit'] = trace(net, example)
        report.jit = verify_traced(net, runtimes['jit'], sizes)
    if 'compile' in checks:
        report.graph_breaks = graph_breaks(net, first)
        compiled = compile_model(net, dynamic=True)  # one compile for every size (else one per new size)
        start = time.perf_counter()
        with torch.no_grad():
            compiled(first)
        report.compile_s = time.perf_counter() - start
        report.compile = verify_traced(net, compiled, sizes)
        runtimes['compile'] = compiled
    with torch.no_grad():
        report.latency_ms = latencies_ms({k: (v if k == 'pytorch' else (lambda fn=v: fn(first)))
                                          for k, v in runtimes.items()}, timing_repeat, max_seconds)
    if 'compile' in checks:
        torch._dynamo.reset()
    return report


@dataclass
class ModelReport:
    """ONNX checks of one config's whole model: max differences and latencies (ms) per input size."""
    config: str
    scope: str
    output_names: List[str]
    checks: List[SizeCheck]
    export_s: float


def check_config(config: str, onnx_dir: str, shapes: Sequence[Sequence[int]], repeat: int = 3,
                 max_seconds: float = 30.) -> ModelReport:
    """Export a config's model once with dynamic shapes and check it in onnxruntime at every (H, W) in ``shapes``
    (one image each, through the model's preprocessor), with interleaved latencies of both runtimes."""
    path = osp.join(onnx_dir, osp.splitext(osp.basename(config))[0] + '.onnx')
    exported = export_config(config, path, shape=shapes[0], dynamic=True)
    checks = [check for check, _ in verify_config(exported, path, shapes, repeat=repeat, max_seconds=max_seconds)]
    return ModelReport(config, exported.scope, exported.output_names, checks, exported.export_s)


def _diffs(checks: Sequence[SizeCheck]) -> str:
    return ' / '.join(f'{c.max_diff:.1e}' for c in checks) if checks else '-'


def backbone_table(reports: Sequence[BackboneReport], sizes: Sequence[Sequence[int]] = DEFAULT_SIZES) -> str:
    """Markdown table of ``check_backbone`` reports: max differences against eager PyTorch at every size, graph
    breaks, export / first-compile times and the latencies at the first size."""
    size_names = ' / '.join(f'{s[2]}x{s[3]}' + (f' b{s[0]}' if s[0] > 1 else '') for s in sizes)
    lines = [f'| variant | ONNX max diff ({size_names}) | jit.trace max diff | torch.compile max diff | graph breaks '
             f'| export s | compile s | PyTorch ms | onnxruntime ms | jit ms | compiled ms |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in reports:
        if r.error:
            lines.append(f'| {r.name} | failed: {r.error} |' + ' |' * 9)
            continue
        seconds = ['-' if t is None else f'{t:.0f}' for t in (r.export_s, r.compile_s)]
        cells = [r.name, _diffs(r.onnx), _diffs(r.jit), _diffs(r.compile),
                 str(len(r.graph_breaks)) if r.compile else '-', *seconds]
        cells += [f'{r.latency_ms[k]:.1f}' if k in r.latency_ms else '-'
                  for k in ('pytorch', 'onnxruntime', 'jit', 'compile')]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def model_table(reports: Sequence[ModelReport]) -> str:
    """Markdown table of ``check_config`` reports, one row per config and input size."""
    lines = ['| config | input | outputs | max diff | PyTorch ms | onnxruntime ms | export s |',
             '|---|---|---|---|---|---|---|']
    for r in reports:
        for check in r.checks:
            lines.append(f'| {osp.basename(r.config)} | {check.shape[2]}x{check.shape[3]} | {len(r.output_names)} | '
                         f'{check.max_diff:.1e} | {check.pytorch_ms:.0f} | {check.other_ms:.0f} | {r.export_s:.0f} |')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------------ benchmark rows
# The benchmark's deployment section: one backbone per family, at the classification and the detection setting.
BENCHMARK_MODELS = ('LIT-small', 'LITv2-small', 'LightViT-tiny', 'LVT-mobile')
BENCHMARK_INPUTS = (('cls', (8, 3, 224, 224)), ('det', (1, 3, 800, 1216)))
QUICK_INPUTS = (('quick', (2, 3, 64, 96)), )


def benchmark_deployment(specs: Sequence[Any], opts: Any, quick: bool = False) -> List[dict]:
    """Rows of ``docs/benchmark.md``'s deployment section: eager PyTorch, ``torch.compile`` (inductor),
    ``torch.jit.trace`` and onnxruntime (CPU only) timed in alternation on one batch (``compare_runtimes``) for each
    backbone of ``specs`` (``benchmark.models.ModelSpec``), at 224x224 batch 8 and 800x1216 batch 1 (``quick``: the
    first backbone at 64x96 batch 2).

    Each row: ``{runtime}_ms`` (median latency), ``{runtime}_speedup`` (eager / runtime), the max absolute difference
    to eager over the runtimes, and the first compile's and the export's seconds.
    """
    runtimes = ('eager', 'compile', 'jit') + (('onnx', ) if opts.device.type == 'cpu' else ())
    rows = []
    for spec in specs[:1] if quick else specs:
        for setting, shape in QUICK_INPUTS if quick else BENCHMARK_INPUTS:
            inputs = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(opts.device)
            model = spec.build().to(opts.device)
            results = compare_runtimes(model, inputs, runtimes, warmup=opts.warmup, repeat=opts.repeat,
                                       max_seconds=opts.max_seconds)
            torch._dynamo.reset()
            eager_ms = results['eager']['latency_ms']
            row = dict(mode='deployment', model=spec.name, setting=setting, input='x'.join(map(str, shape)),
                       eager_ms=eager_ms)
            for runtime in runtimes[1:]:
                row[f'{runtime}_ms'] = results[runtime]['latency_ms']
                row[f'{runtime}_speedup'] = eager_ms / results[runtime]['latency_ms']
            row['max_diff'] = max(r['max_diff'] for r in results.values())
            row['compile_s'] = results['compile']['compile_s']
            row['export_s'] = results['onnx']['export_s'] if 'onnx' in results else None
            rows.append(row)
    return rows
