"""The ONNX target: an ONNX graph built straight from the IR with the ``onnx`` package.

:func:`to_onnx` lowers a checked network node by node through
:data:`LOWERINGS` (op name -> function) into a ``ModelProto`` whose weights
are initializers; :func:`compile_onnx` writes it to a file whole or not at
all.  Neither TensorFlow nor a converter is involved.

Layout: the graph's inputs and outputs keep the layout the spec declares,
with a symbolic batch dimension ``batch``.  Inside, convolutions and pools
run in NCHW, as ONNX defines them; every tensor is stored in whichever
layout its producer made it in, and a ``Transpose`` is inserted only where
a consumer needs another one (``flatten`` and ``reshape`` of a
channels_last tensor, the graph output, ...), once per tensor and layout.
Axes of ``batchnorm``, ``softmax``, ``concat``, ``zeropad2d`` and global
pools are remapped instead of transposing.  ``batchnorm`` is kept as a
``BatchNormalization`` node (onnxruntime folds it into the convolution
when it loads the graph).

Names: each layer's output value and its main node carry the layer's name;
helper nodes and values are called ``layer/step``.  Doc strings give the
spec's file, line and column.  ``metadata_props['netspec.layouts']`` lists,
as JSON, the layer values stored in another axis order than the spec's
(``{"conv1": [0, 3, 1, 2]}``: value axis i holds spec axis perm[i]).

>>> import netspec
>>> net = netspec.load_source('''
... network tiny {
...     input x: [8, 8, 3]
...     conv2d(4, 3, padding='same', activation='relu', name='conv')
...     flatten()
...     dense(2, activation='softmax')
... }''')
>>> model = to_onnx(net, opset=17)
>>> [n.op_type for n in model.graph.node]
['Transpose', 'Conv', 'Relu', 'Transpose', 'Flatten', 'Gemm', 'Softmax']
>>> [n.name for n in model.graph.node][1:3]
['conv/conv', 'conv']
>>> model.graph.input[0].name, model.graph.output[0].name
('x', 'dense')
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .. import __version__
from ..core.check import NetworkReport, check_graph
from ..core.diagnostics import Diagnostic, NetspecError
from ..core.fileio import atomic_output
from ..core.ir import Graph, Node
from ..core.ops import ACTIVATION_OPS
from ..core.shapes import same_padding

__all__ = ["LOWERINGS", "MIN_OPSET", "compile_onnx", "default_opset", "inferred_shapes", "newest_opset", "to_onnx"]

#: The oldest opset netspec builds (Softmax on one axis, Pad and Clip with tensor inputs).
MIN_OPSET = 13
#: The default opset when onnxruntime is not installed (widely deployed runtimes read it).
FALLBACK_OPSET = 17
#: Largest graph protobuf can serialise in one file (2 GiB, less room for the graph itself).
_MAX_PROTO_BYTES = 2**31 - 2**24

#: Every ONNX op type this module can emit (to find the newest opset a runtime runs).
EMITTED_OPS = (
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Conv", "ConvTranspose", "Div", "Elu", "Erf",
    "Exp", "Flatten", "Gather", "Gelu", "Gemm", "Greater", "HardSigmoid", "Identity", "LeakyRelu", "MatMul",
    "Max", "MaxPool", "Mul", "Neg", "Pad", "ReduceMax", "ReduceMean", "Relu", "Reshape", "Resize", "Selu",
    "Shape", "Sigmoid", "Slice", "Softmax", "Softplus", "Softsign", "Sub", "Sum", "Tanh", "Transpose",
)

#: Weights: a dict ``"layer/weight" -> array`` (Keras layouts), a ``.npz`` or ``.keras`` path, or None.
Weights = Mapping[str, np.ndarray] | str | os.PathLike | None

# Keras's SELU constants (keras.activations.selu), not ONNX's defaults.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


# --- opsets -----------------------------------------------------------------------------------


def newest_opset() -> int:
    """The newest opset the installed ``onnx`` package knows.

    >>> newest_opset() >= MIN_OPSET
    True
    """
    return int(onnx.defs.onnx_opset_version())


def _opset_model(opset: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    ids = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids))


def _cpu_kernels() -> dict[str, list[tuple[int, int]]] | None:
    """onnxruntime's CPU kernels: op type -> version ranges (None if it will not say)."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

        kernels: dict[str, list[tuple[int, int]]] = {}
        for k in ort_c.get_all_opkernel_def():
            if k.provider == "CPUExecutionProvider" and k.domain in ("", "ai.onnx"):
                kernels.setdefault(k.op_name, []).append(tuple(k.version_range))
        return kernels
    except Exception:  # a private API: a runtime without it is judged by loading alone
        return None


def _runtime_runs(ort: Any, opset: int, kernels: dict[str, list[tuple[int, int]]] | None) -> bool:
    try:
        ort.InferenceSession(_opset_model(opset).SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # the runtime refuses the opset
        return False
    if kernels is None:
        return True
    for op in EMITTED_OPS:
        try:
            since = onnx.defs.get_schema(op, opset, "").since_version
        except onnx.defs.SchemaError:  # not in this opset (Gelu before 20): never emitted there
            continue
        if not any(lo <= since <= hi for lo, hi in kernels.get(op, ())):
            return False
    return True


@functools.lru_cache(maxsize=1)
def default_opset() -> int:
    """The newest opset both ``onnx`` and the installed onnxruntime handle, for every op emitted.

    Without onnxruntime it is :data:`FALLBACK_OPSET`.

    >>> MIN_OPSET <= default_opset() <= newest_opset()
    True
    """
    try:
        import onnxruntime as ort
    except ImportError:
        return FALLBACK_OPSET
    kernels = _cpu_kernels()
    for opset in range(newest_opset(), FALLBACK_OPSET - 1, -1):
        if _runtime_runs(ort, opset, kernels):
            return opset
    return FALLBACK_OPSET


def _check_opset(opset: int | None) -> int:
    if opset is None:
        return default_opset()
    newest = newest_opset()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise NetspecError([Diagnostic.error(
            "E605", f"onnx target: opset {opset!r} is not supported; netspec builds opsets {MIN_OPSET} "
            f"to {newest} (the newest the installed onnx {onnx.__version__} knows)")])
    return opset


# --- the builder ------------------------------------------------------------------------------


def _where(span: Any) -> str:
    return f"{span.file}:{span.line}:{span.column}" if span is not None else "?"


def _node_doc(node: Node) -> str:
    """``file:line:col: the source line`` and the block calls that made the node."""
    if node.span is None:
        return f"{node.op} layer {node.name!r}"
    text = node.span.text.strip().splitlines()[0] if node.span.text.strip() else node.op
    doc = f"{_where(node.span)}: {text[:160]}"
    for site in reversed(node.call_sites):
        doc += f"\n  in the block called at {_where(site)}"
    return doc


def _identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def _nchw(rank: int) -> tuple[int, ...]:
    """Channels to axis 1: value axis i holds spec axis perm[i] (NHWC -> NCHW for rank 4)."""
    return (0, rank - 1, *range(1, rank - 1))


def _image_perm(data_format: str, rank: int = 4) -> tuple[int, ...]:
    """The storage an NCHW-only op (conv, pool) needs for a tensor in ``data_format``."""
    return _nchw(rank) if data_format == "channels_last" else _identity(rank)


class _Builder:
    """Collects nodes, initializers and names while the graph is lowered."""

    def __init__(self, net: NetworkReport, weights: Mapping[str, np.ndarray], opset: int):
        self.graph: Graph = net.graph  # type: ignore[assignment]
        self.weights = weights
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.used: set[str] = set()
        # IR tensor -> (value name, perm): value axis i holds spec axis perm[i] (batch included).
        self.stored: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.views: dict[tuple[str, tuple[int, ...]], str] = {}
        self.scalars: dict[tuple[int, float], str] = {}
        self.weight_bytes = 0
        self.letters = "NHWC" if self.graph.input.data_format == "channels_last" else "NCHW"
        self.shapes: dict[str, tuple] = {inp.name: tuple(inp.shape) for inp in self.graph.inputs}
        self.shapes.update({name: tuple(info.shape) for name, info in net.layers.items()})
        self.used.update(inp.name for inp in self.graph.inputs)
        self.used.update(n.name for n in self.graph.nodes)
        for inp in self.graph.inputs:
            self.stored[inp.name] = (inp.name, _identity(len(inp.shape) + 1))

    # names and constants

    def fresh(self, name: str) -> str:
        """A value or node name not used yet, ``name`` itself if possible."""
        candidate, i = name, 1
        while candidate in self.used:
            candidate, i = f"{name}_{i}", i + 1
        self.used.add(candidate)
        return candidate

    def const(self, name: str, array: np.ndarray) -> str:
        """Add an initializer under a fresh name based on ``name``."""
        value = self.fresh(name)
        array = np.ascontiguousarray(array)
        self.weight_bytes += array.nbytes
        self.initializers.append(numpy_helper.from_array(array, value))
        return value

    def ints(self, name: str, values: Any) -> str:
        return self.const(name, np.asarray(list(values), dtype=np.int64))

    def scalar(self, value: float, dtype: Any = np.float32) -> str:
        """A shared scalar constant."""
        key = (np.dtype(dtype).num, float(value))
        if key not in self.scalars:
            self.scalars[key] = self.const(f"const/{value:g}", np.asarray(value, dtype=dtype))
        return self.scalars[key]

    def weight(self, node: Node, name: str) -> np.ndarray:
        return self.weights[f"{node.name}/{name}"]

    def emit(self, op_type: str, inputs: list[str], output: str, doc: str, **attrs: Any) -> str:
        """Add one node; it is named after its output value."""
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, doc_string=doc, **attrs))
        return output

    # layouts

    def rank(self, tensor: str) -> int:
        """Rank with the batch axis."""
        return len(self.shapes[tensor]) + 1

    def perm_of(self, tensor: str) -> tuple[int, ...]:
        return self.stored[tensor][1]

    def tag(self, tensor: str, perm: tuple[int, ...]) -> str:
        if len(perm) == 4:
            return "".join(self.letters[p] for p in perm)
        return "T" + "".join(str(p) for p in perm)

    def get(self, tensor: str, perm: tuple[int, ...]) -> str:
        """The value holding ``tensor`` with axes in ``perm`` order; a Transpose made once if needed."""
        value, have = self.stored[tensor]
        if have == perm:
            return value
        if (tensor, perm) not in self.views:
            out = self.fresh(f"{tensor}/{self.tag(tensor, perm)}")
            doc = f"netspec: {tensor!r} from {self.tag(tensor, have)} to {self.tag(tensor, perm)} layout"
            self.emit("Transpose", [value], out, doc, perm=[have.index(p) for p in perm])
            self.views[(tensor, perm)] = out
        return self.views[(tensor, perm)]

    def done(self, node: Node, perm: tuple[int, ...]) -> None:
        """Record that the value named after ``node`` holds its output in ``perm`` order."""
        self.stored[node.name] = (node.name, perm)
        self.views[(node.name, perm)] = node.name

    def common_perm(self, tensors: tuple[str, ...]) -> tuple[int, ...]:
        """The storage most of ``tensors`` already have (the first one's on a tie)."""
        counts = Counter(self.perm_of(t) for t in tensors)
        best = max(counts.values())
        return next(self.perm_of(t) for t in tensors if counts[self.perm_of(t)] == best)

    # activations

    def activate(self, node: Node, kind: str, x: str, out: str, axis: int, **params: Any) -> str:
        """Apply a Keras activation to value ``x`` into ``out``; ``axis`` is softmax's value axis."""
        doc = _node_doc(node)
        step = functools.partial(self._step, node, doc)
        if kind == "linear":
            return self.emit("Identity", [x], out, doc)
        if kind == "relu" and params:
            return self._relu(node, doc, x, out, **params)
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
                  "softsign": "Softsign", "exponential": "Exp"}
        if kind in simple:
            return self.emit(simple[kind], [x], out, doc)
        if kind == "leaky_relu":  # keras.activations.leaky_relu; the LeakyReLU layer passes its own slope
            return self.emit("LeakyRelu", [x], out, doc, alpha=float(params.get("negative_slope", 0.2)))
        if kind == "elu":
            return self.emit("Elu", [x], out, doc, alpha=float(params.get("alpha", 1.0)))
        if kind == "selu":
            return self.emit("Selu", [x], out, doc, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
        if kind == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
            return self.emit("HardSigmoid", [x], out, doc, alpha=1.0 / 6.0, beta=0.5)
        if kind == "softmax":
            return self.emit("Softmax", [x], out, doc, axis=axis)
        if kind == "swish":
            return self.emit("Mul", [x, step("Sigmoid", [x], "sigmoid")], out, doc)
        if kind == "gelu":  # exact, as keras.activations.gelu(approximate=False)
            if self.opset >= 20:
                return self.emit("Gelu", [x], out, doc, approximate="none")
            erf = step("Erf", [step("Div", [x, self.scalar(math.sqrt(2.0))], "div_sqrt2")], "erf")
            half_x = step("Mul", [x, self.scalar(0.5)], "half_x")
            return self.emit("Mul", [half_x, step("Add", [erf, self.scalar(1.0)], "one_plus_erf")], out, doc)
        raise NetspecError([Diagnostic.error(
            "E605", f"onnx target: layer {node.name!r} has activation {kind!r}, which it cannot express",
            node.span)])

    def _step(self, node: Node, doc: str, op_type: str, inputs: list[str], what: str, **attrs: Any) -> str:
        return self.emit(op_type, inputs, self.fresh(f"{node.name}/{what}"), doc, **attrs)

    def _relu(self, node: Node, doc: str, x: str, out: str, max_value: float | None = None,
              negative_slope: float = 0.0, threshold: float = 0.0) -> str:
        """keras.activations.relu(x, negative_slope, max_value, threshold), step for step."""
        step = functools.partial(self._step, node, doc)
        if max_value is None and negative_slope == 0.0 and threshold == 0.0:
            return self.emit("Relu", [x], out, doc)
        if negative_slope != 0.0 and max_value is None and threshold == 0.0:
            return self.emit("LeakyRelu", [x], out, doc, alpha=float(negative_slope))
        negative = None
        if negative_slope != 0.0:
            shifted = step("Sub", [self.scalar(threshold), x], "shifted") if threshold != 0.0 else step(
                "Neg", [x], "neg")
            negative = step("Relu", [shifted], "negative_part")
        clip_max = max_value is not None
        if threshold != 0.0:
            above = step("Greater", [x, self.scalar(threshold)], "above")
            y = step("Mul", [x, step("Cast", [above], "mask", to=TensorProto.FLOAT)], "thresholded")
        elif max_value == 6:
            y = step("Clip", [x, self.scalar(0.0), self.scalar(6.0)], "relu6")
            clip_max = False
        else:
            y = step("Relu", [x], "relu")
        if clip_max:
            y = step("Clip", [y, self.scalar(0.0), self.scalar(float(max_value))], "clip")  # type: ignore[arg-type]
        if negative is not None:
            y = step("Sub", [y, step("Mul", [negative, self.scalar(negative_slope)], "slope")], "leaky")
        # Rename the last step's output to the layer's value.
        last = self.nodes[-1]
        self.used.discard(last.output[0])
        last.output[0] = out
        last.name = out
        return out

    def finish(self, node: Node, value: str, perm: tuple[int, ...], activation: str) -> None:
        """Apply a layer's fused activation to ``value`` (already the layer's value when linear)."""
        if activation != "linear":
            self.activate(node, activation, value, node.name, perm.index(len(perm) - 1))
        self.done(node, perm)

    # building

    def layer_value(self, node: Node, activation: str, what: str) -> str:
        """Where a layer's main op writes: the layer's value, or ``layer/what`` before an activation."""
        return node.name if activation == "linear" else self.fresh(f"{node.name}/{what}")

    def pads_for(self, tensor: str, data_format: str, size: tuple[int, ...],
                 strides: tuple[int, ...], dilation: tuple[int, ...], padding: Any) -> dict[str, Any]:
        """ONNX pad attributes for a conv or pool window on 1, 2 or 3 axes (channels-first value)."""
        shape = self.shapes[tensor]
        dims = shape[:-1] if data_format == "channels_last" else shape[1:]
        nd = len(size)
        if padding == "valid":
            return {"pads": [0] * (2 * nd)}
        if padding == "causal":  # Conv's pads may differ per side: D*(F-1) at the start, none at the end
            return {"pads": [d * (k - 1) for k, d in zip(size, dilation)] + [0] * nd}
        if padding == "same":
            # With stride 1 the split does not depend on the length, so an unknown one is fine.
            if any(d is None and s != 1 for d, s in zip(dims, strides)):
                # The same split (extra unit at the end); only strided, never dilated (Keras
                # forbids both), which onnxruntime's SAME_UPPER does not support.
                return {"auto_pad": "SAME_UPPER"}
            split = [same_padding(dims[i] if dims[i] is not None else 1, size[i], strides[i], dilation[i])
                     for i in range(nd)]
            return {"pads": [b for b, _ in split] + [e for _, e in split]}
        return {"pads": [b for b, _ in padding] + [e for _, e in padding]}

    def value_info(self, value: str, tensor: str, perm: tuple[int, ...], doc: str) -> onnx.ValueInfoProto:
        """The declared type of ``value``, which holds ``tensor`` in ``perm`` order."""
        logical = ("batch", *self.shapes[tensor])
        return helper.make_tensor_value_info(value, TensorProto.FLOAT, [logical[p] for p in perm], doc_string=doc)


# --- lowerings --------------------------------------------------------------------------------


def _conv2d(b: _Builder, node: Node) -> None:
    a = node.attrs
    nd = _nd(node)
    perm = _image_perm(a.data_format, nd + 2)
    x = b.get(node.inputs[0], perm)
    kernel = b.weight(node, "kernel").transpose(nd + 1, nd, *range(nd))  # (F.., in, out) -> (out, in, F..)
    inputs = [x, b.const(f"{node.name}/kernel", kernel)]
    if a.use_bias:
        inputs.append(b.const(f"{node.name}/bias", b.weight(node, "bias")))
    out = b.layer_value(node, a.activation, "conv")
    b.emit("Conv", inputs, out, _node_doc(node), kernel_shape=list(a.kernel_size), strides=list(a.strides),
           dilations=list(a.dilation_rate), group=a.groups,
           **b.pads_for(node.inputs[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding))
    b.finish(node, out, perm, a.activation)


def _depthwise(b: _Builder, node: Node, x: str, kernel: np.ndarray, bias: str | None, out: str) -> str:
    """A grouped Conv with one group per input channel; Keras orders outputs channel-major."""
    a = node.attrs
    nd = kernel.ndim - 2
    c, m = kernel.shape[-2:]
    weight = kernel.transpose(nd, nd + 1, *range(nd)).reshape(c * m, 1, *kernel.shape[:nd])
    name = "depthwise_kernel" if node.op.startswith("separable") else "kernel"
    inputs = [x, b.const(f"{node.name}/{name}", weight)] + ([bias] if bias else [])
    return b.emit("Conv", inputs, out, _node_doc(node), kernel_shape=list(kernel.shape[:nd]), strides=list(a.strides),
                  dilations=list(a.dilation_rate), group=c,
                  **b.pads_for(node.inputs[0], a.data_format, a.kernel_size, a.strides,
                               a.dilation_rate, a.padding))


def _depthwise_conv2d(b: _Builder, node: Node) -> None:
    a = node.attrs
    perm = _image_perm(a.data_format, _nd(node) + 2)
    bias = b.const(f"{node.name}/bias", b.weight(node, "bias")) if a.use_bias else None
    out = _depthwise(b, node, b.get(node.inputs[0], perm), b.weight(node, "kernel"), bias,
                     b.layer_value(node, a.activation, "conv"))
    b.finish(node, out, perm, a.activation)


def _separable_conv2d(b: _Builder, node: Node) -> None:
    a = node.attrs
    nd = _nd(node)
    perm = _image_perm(a.data_format, nd + 2)
    mid = _depthwise(b, node, b.get(node.inputs[0], perm), b.weight(node, "depthwise_kernel"), None,
                     b.fresh(f"{node.name}/depthwise"))
    pointwise = b.weight(node, "pointwise_kernel").transpose(nd + 1, nd, *range(nd))
    inputs = [mid, b.const(f"{node.name}/pointwise_kernel", pointwise)]
    if a.use_bias:
        inputs.append(b.const(f"{node.name}/bias", b.weight(node, "bias")))
    out = b.layer_value(node, a.activation, "pointwise")
    b.emit("Conv", inputs, out, _node_doc(node), kernel_shape=[1] * nd)
    b.finish(node, out, perm, a.activation)


def _pool(op_type: str) -> Callable[[_Builder, Node], None]:
    def lower(b: _Builder, node: Node) -> None:
        a = node.attrs
        nd = len(a.pool_size)
        perm = _image_perm(a.data_format, nd + 2)
        x = b.get(node.inputs[0], perm)
        doc = _node_doc(node)
        attrs: dict[str, Any] = {"kernel_shape": list(a.pool_size), "strides": list(a.strides)}
        hw = _spatial_dims(b, node.inputs[0], a.data_format)
        if isinstance(a.padding, tuple):
            # Explicit padding is zero padding that the pool sees (ZeroPadding then 'valid'); a
            # Pad node, since onnxruntime refuses pool pads as large as the window.
            pads = b.ints(f"{node.name}/pads", [0, 0, *(p for p, _ in a.padding), 0, 0, *(p for _, p in a.padding)])
            x = b.emit("Pad", [x, pads], b.fresh(f"{node.name}/pad"), doc)
        elif (op_type == "MaxPool" and a.padding == "same"
              and any(d is None and s > k for d, s, k in zip(hw, a.strides, a.pool_size))):
            # onnxruntime's SAME_UPPER computes a negative pad when the stride exceeds the
            # window; compute the 'same' split from the runtime size and pad with -inf.
            x = b.emit("Pad", [x, _same_pads_at_runtime(b, node, x, a.pool_size, a.strides),
                               b.scalar(-np.inf)], b.fresh(f"{node.name}/pad"), doc)
            # Runtime pads hide every size from shape inference; a Reshape that copies sizes
            # (0) and states the channel count gives it back.
            shape = b.shapes[node.inputs[0]]
            channels = shape[-1] if a.data_format == "channels_last" else shape[0]
            x = b.emit("Reshape", [x, b.ints(f"{node.name}/keep", [0, channels or 0] + [0] * nd)],
                       b.fresh(f"{node.name}/padded"), doc)
        else:
            # 'same': max ignores padded cells, average divides by the real ones (Keras).
            attrs.update(b.pads_for(node.inputs[0], a.data_format, a.pool_size, a.strides, (1,) * nd,
                                    a.padding))
            if op_type == "AveragePool":
                attrs["count_include_pad"] = 0
        b.emit(op_type, [x], node.name, doc, **attrs)
        b.done(node, perm)
    return lower


def _same_pads_at_runtime(b: _Builder, node: Node, x: str, size: tuple[int, int],
                          strides: tuple[int, int]) -> str:
    """ONNX ``pads`` for 'same' on an NCHW value whose sizes are known only at run time.

    Per side: ``out = ceil(L / S)``, ``total = max((out - 1) * S + k - L, 0)``, the
    extra unit at the end, as :func:`netspec.core.shapes.same_padding`.
    """
    doc = _node_doc(node)
    shape = b.emit("Shape", [x], b.fresh(f"{node.name}/shape"), doc)
    begins, ends = [], []
    for axis, (k, stride) in zip(range(2, 2 + len(size)), zip(size, strides)):
        length = b.emit("Gather", [shape, b.ints(f"{node.name}/axis", [axis])], b.fresh(f"{node.name}/len"), doc)
        s_ = b.ints(f"{node.name}/stride", [stride])
        out = b.emit("Div", [b.emit("Add", [length, b.ints(f"{node.name}/s1", [stride - 1])],
                                    b.fresh(f"{node.name}/up"), doc), s_], b.fresh(f"{node.name}/out"), doc)
        span = b.emit("Add", [b.emit("Mul", [b.emit("Sub", [out, b.ints(f"{node.name}/one", [1])],
                                                    b.fresh(f"{node.name}/last"), doc), s_],
                                     b.fresh(f"{node.name}/reach"), doc),
                              b.ints(f"{node.name}/k", [k])], b.fresh(f"{node.name}/span"), doc)
        total = b.emit("Max", [b.emit("Sub", [span, length], b.fresh(f"{node.name}/need"), doc),
                               b.ints(f"{node.name}/zero", [0])], b.fresh(f"{node.name}/total"), doc)
        begin = b.emit("Div", [total, b.ints(f"{node.name}/two", [2])], b.fresh(f"{node.name}/begin"), doc)
        begins.append(begin)
        ends.append(b.emit("Sub", [total, begin], b.fresh(f"{node.name}/end"), doc))
    zeros = b.ints(f"{node.name}/nc", [0, 0])
    return b.emit("Concat", [zeros, *begins, zeros, *ends], b.fresh(f"{node.name}/pads"), doc, axis=0)


def _global_pool(op_type: str) -> Callable[[_Builder, Node], None]:
    def lower(b: _Builder, node: Node) -> None:
        a = node.attrs
        value, perm = b.stored[node.inputs[0]]
        rank = len(perm)
        spatial = range(1, rank - 1) if a.data_format == "channels_last" else range(2, rank)
        axes = sorted(perm.index(s) for s in spatial)
        keep = int(a.keepdims)
        if b.opset >= 18:
            b.emit(op_type, [value, b.ints(f"{node.name}/axes", axes)], node.name, _node_doc(node), keepdims=keep)
        else:
            b.emit(op_type, [value], node.name, _node_doc(node), axes=axes, keepdims=keep)
        b.done(node, perm if a.keepdims else (0, 1))
    return lower


def _zeropad2d(b: _Builder, node: Node) -> None:
    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    rank = len(perm)
    spatial = range(1, rank - 1) if a.data_format == "channels_last" else range(2, rank)
    begin, end = [0] * len(perm), [0] * len(perm)
    for axis, (lo, hi) in zip(spatial, a.padding):
        begin[perm.index(axis)], end[perm.index(axis)] = lo, hi
    b.emit("Pad", [value, b.ints(f"{node.name}/pads", begin + end)], node.name, _node_doc(node))
    b.done(node, perm)


def _flatten(b: _Builder, node: Node) -> None:
    rank = b.rank(node.inputs[0])
    # Keras flattens a channels_first tensor in channels_last order.
    want = (0, *range(2, rank), 1) if node.attrs.data_format == "channels_first" and rank > 2 else _identity(rank)
    b.emit("Flatten", [b.get(node.inputs[0], want)], node.name, _node_doc(node), axis=1)
    b.done(node, (0, 1))


def _reshape(b: _Builder, node: Node) -> None:
    x = b.get(node.inputs[0], _identity(b.rank(node.inputs[0])))
    shape = b.ints(f"{node.name}/shape", [0, *node.attrs.target_shape])  # 0 keeps the batch size
    b.emit("Reshape", [x, shape], node.name, _node_doc(node))
    b.done(node, _identity(len(node.attrs.target_shape) + 1))


def _dense(b: _Builder, node: Node) -> None:
    a = node.attrs
    rank = b.rank(node.inputs[0])
    kernel = b.weight(node, "kernel")
    bias = b.const(f"{node.name}/bias", b.weight(node, "bias")) if a.use_bias else None
    doc = _node_doc(node)
    value, perm = b.stored[node.inputs[0]]
    if rank == 2:
        out = b.layer_value(node, a.activation, "gemm")
        b.emit("Gemm", [value, b.const(f"{node.name}/kernel", kernel)] + ([bias] if bias else []), out, doc)
    elif perm[1] == rank - 1:
        # The features sit on axis 1 (an NHWC tensor kept as NCHW): a 1x1 convolution, no transpose.
        weight = kernel.T.reshape(kernel.shape[1], kernel.shape[0], *[1] * (rank - 2))
        out = b.layer_value(node, a.activation, "conv")
        b.emit("Conv", [value, b.const(f"{node.name}/kernel", weight)] + ([bias] if bias else []), out, doc,
               kernel_shape=[1] * (rank - 2))
    else:
        if perm[-1] != rank - 1:
            perm = _identity(rank)
            value = b.get(node.inputs[0], perm)
        w = b.const(f"{node.name}/kernel", kernel)
        if bias is None:
            out = b.emit("MatMul", [value, w], b.layer_value(node, a.activation, "matmul"), doc)
        else:
            product = b.emit("MatMul", [value, w], b.fresh(f"{node.name}/matmul"), doc)
            out = b.emit("Add", [product, bias], b.layer_value(node, a.activation, "add_bias"), doc)
    b.finish(node, out, perm, a.activation)


def _dropout(b: _Builder, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    b.emit("Identity", [value], node.name, _node_doc(node) + "\n  dropout: the identity at inference")
    b.done(node, perm)


def _batchnorm(b: _Builder, node: Node) -> None:
    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    rank = len(perm)
    axis = perm.index(a.axis % rank)
    mean, var = b.weight(node, "moving_mean"), b.weight(node, "moving_variance")
    gamma = b.weight(node, "gamma") if a.scale else np.ones_like(mean)
    beta = b.weight(node, "beta") if a.center else np.zeros_like(mean)
    doc = _node_doc(node)
    if axis == 1:
        inputs = [value] + [b.const(f"{node.name}/{n}", w) for n, w in
                             (("gamma", gamma), ("beta", beta), ("moving_mean", mean), ("moving_variance", var))]
        b.emit("BatchNormalization", inputs, node.name, doc, epsilon=float(a.epsilon))
    else:
        # Not on axis 1, where BatchNormalization wants it: x * scale + shift on the right axis.
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + a.epsilon)
        shift = beta.astype(np.float64) - mean.astype(np.float64) * scale
        shape = (-1, *[1] * (rank - 1 - axis))
        scaled = b.emit("Mul", [value, b.const(f"{node.name}/scale", scale.astype(np.float32).reshape(shape))],
                        b.fresh(f"{node.name}/scaled"), doc)
        b.emit("Add", [scaled, b.const(f"{node.name}/shift", shift.astype(np.float32).reshape(shape))],
               node.name, doc)
    b.done(node, perm)


def _activation_op(kind: str | None) -> Callable[[_Builder, Node], None]:
    """A standalone activation layer; ``kind`` None reads it from the node's attributes."""

    def lower(b: _Builder, node: Node) -> None:
        value, perm = b.stored[node.inputs[0]]
        a = node.attrs
        name = kind if kind is not None else a.activation
        params: dict[str, Any] = {}
        axis = perm.index(len(perm) - 1)
        if node.op == "relu":
            params = {k: getattr(a, k) for k in ("max_value", "negative_slope", "threshold")
                      if getattr(a, k) != {"max_value": None}.get(k, 0.0)}
        elif node.op == "leaky_relu":
            params = {"negative_slope": a.negative_slope}
        elif node.op == "elu":
            params = {"alpha": a.alpha}
        elif node.op == "softmax":
            axis = perm.index(a.axis % len(perm))
        b.activate(node, name, value, node.name, axis, **params)
        b.done(node, perm)

    return lower


def _concat(b: _Builder, node: Node) -> None:
    perm = b.common_perm(node.inputs)
    values = [b.get(t, perm) for t in node.inputs]
    b.emit("Concat", values, node.name, _node_doc(node), axis=perm.index(node.attrs.axis % len(perm)))
    b.done(node, perm)


def _merge(op_type: str) -> Callable[[_Builder, Node], None]:
    def lower(b: _Builder, node: Node) -> None:
        perm = b.common_perm(node.inputs)
        values = [b.get(t, perm) for t in node.inputs]
        doc = _node_doc(node)
        if op_type == "Add" and len(values) > 2:
            b.emit("Sum", values, node.name, doc)
        else:
            acc = values[0]
            for i, v in enumerate(values[1:], start=1):
                out = node.name if i == len(values) - 1 else b.fresh(f"{node.name}/{op_type.lower()}{i}")
                acc = b.emit(op_type, [acc, v], out, doc)
        b.done(node, perm)
    return lower


# --- spatial ops on 1, 2 or 3 axes -------------------------------------------------------------


def _nd(node: Node) -> int:
    from ..core.ops_spatial import spatial_rank

    return spatial_rank(node.attrs)


def _spatial_dims(b: _Builder, tensor: str, data_format: str) -> tuple:
    shape = b.shapes[tensor]
    return tuple(shape[:-1]) if data_format == "channels_last" else tuple(shape[1:])


def _conv_transpose(b: _Builder, node: Node) -> None:
    """``ConvTranspose`` with TensorFlow's crop as explicit pads (they do not depend on the input size)."""
    from ..core.ops_spatial import transpose_pads

    a = node.attrs
    nd = _nd(node)
    perm = _image_perm(a.data_format, nd + 2)
    x = b.get(node.inputs[0], perm)
    kernel = b.weight(node, "kernel").transpose(nd + 1, nd, *range(nd))  # (F.., out, in) -> (in, out, F..)
    inputs = [x, b.const(f"{node.name}/kernel", kernel)]
    if a.use_bias:
        inputs.append(b.const(f"{node.name}/bias", b.weight(node, "bias")))
    pads = [transpose_pads(a.kernel_size[i], a.strides[i], a.dilation_rate[i], a.padding,
                           None if a.output_padding is None else a.output_padding[i]) for i in range(nd)]
    begins, ends, extra = ([p[j] for p in pads] for j in range(3))
    out = b.layer_value(node, a.activation, "conv_transpose")
    b.emit("ConvTranspose", inputs, out, _node_doc(node), kernel_shape=list(a.kernel_size), strides=list(a.strides),
           dilations=list(a.dilation_rate), pads=begins + ends, output_padding=extra)
    b.finish(node, out, perm, a.activation)


def _cropping(b: _Builder, node: Node) -> None:
    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    fmt = getattr(a, "data_format", "channels_last")
    nd = len(a.cropping)
    spatial = range(1, nd + 1) if fmt == "channels_last" else range(2, nd + 2)
    axes = [perm.index(s) for s in spatial]
    starts = [lo for lo, _ in a.cropping]
    ends = [-hi if hi else 2**62 for _, hi in a.cropping]
    b.emit("Slice", [value, b.ints(f"{node.name}/starts", starts), b.ints(f"{node.name}/ends", ends),
                     b.ints(f"{node.name}/axes", axes)], node.name, _node_doc(node))
    b.done(node, perm)


def _gather_axes(b: _Builder, node: Node, value: str, axes: list[int], indices: list[np.ndarray], out: str) -> str:
    """``value`` with each of ``axes`` gathered at ``indices`` (nearest resampling, exact)."""
    doc = _node_doc(node)
    for i, (axis, index) in enumerate(zip(axes, indices)):
        target = out if i == len(axes) - 1 else b.fresh(f"{node.name}/gather{i}")
        value = b.emit("Gather", [value, b.const(f"{node.name}/index{i}", index.astype(np.int64))], target, doc,
                       axis=axis)
    return value


def _matmul_resize(b: _Builder, node: Node, x: str, rows: np.ndarray, cols: np.ndarray, out: str) -> str:
    """NCHW ``x`` resized by the per-axis matrices of :mod:`.resample`: ``rows @ x @ cols.T``."""
    doc = _node_doc(node)
    wide = b.emit("MatMul", [x, b.const(f"{node.name}/cols", np.ascontiguousarray(cols.T))],
                  b.fresh(f"{node.name}/resize_w"), doc)
    return b.emit("MatMul", [b.const(f"{node.name}/rows", rows), wide], out, doc)


def _resize_nchw(b: _Builder, node: Node, x: str, hw: tuple, size: tuple[int, int], method: str,
                 out: str, integer_scales: bool) -> str:
    """Resize NCHW value ``x`` of spatial size ``hw`` to ``size`` exactly as TensorFlow does."""
    from .resample import nearest_index, resize_matrix

    doc = _node_doc(node)
    if method == "nearest" or (method == "area" and integer_scales):
        if None in hw:
            raise _unknown_size(node, method)
        if integer_scales:  # each cell repeated: Resize 'nearest', exact for integer factors
            scales = b.const(f"{node.name}/scales", np.array([1, 1, *node.attrs.size], np.float32))
            return b.emit("Resize", [x, "", scales], out, doc, mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return _gather_axes(b, node, x, [2, 3], [nearest_index(hw[i], size[i]) for i in range(2)], out)
    if method == "bilinear" and integer_scales:
        # Resize 'linear' with half_pixel is TensorFlow's bilinear (antialias off, edges clamped); with
        # integer scales the output size is exact.  Other sizes take the matrices below.
        scales = b.const(f"{node.name}/scales", np.array([1, 1, *node.attrs.size], np.float32))
        return b.emit("Resize", [x, "", scales], out, doc, mode="linear", coordinate_transformation_mode="half_pixel")
    if None in hw:
        raise _unknown_size(node, method)
    return _matmul_resize(b, node, x, resize_matrix(hw[0], size[0], method), resize_matrix(hw[1], size[1], method),
                          out)


def _unknown_size(node: Node, method: str) -> NetspecError:
    return NetspecError([Diagnostic.error(
        "E605", f"onnx target: layer {node.name!r} resamples ({method}) an input of unknown height or width, "
        "which the ONNX graph needs to know", node.span)])


def _upsampling(b: _Builder, node: Node) -> None:
    a = node.attrs
    fmt = getattr(a, "data_format", "channels_last")
    nd = len(a.size)
    method = getattr(a, "interpolation", "nearest")
    doc = _node_doc(node)
    if method == "nearest":
        # Each cell repeated: Resize 'nearest' with integer scales on any layout ('asymmetric' + floor
        # is exact for integer factors).
        value, perm = b.stored[node.inputs[0]]
        spatial = range(1, nd + 1) if fmt == "channels_last" else range(2, nd + 2)
        scales = [1.0] * len(perm)
        for s, factor in zip(spatial, a.size):
            scales[perm.index(s)] = float(factor)
        b.emit("Resize", [value, "", b.const(f"{node.name}/scales", np.array(scales, np.float32))], node.name, doc,
               mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        b.done(node, perm)
        return
    perm = _image_perm(fmt)
    x = b.get(node.inputs[0], perm)
    hw = _spatial_dims(b, node.inputs[0], fmt)
    size = tuple(None if d is None else d * s for d, s in zip(hw, a.size))
    if method != "bilinear" and None in hw:
        raise _unknown_size(node, method)
    _resize_nchw(b, node, x, hw, size, method, node.name, integer_scales=True)  # type: ignore[arg-type]
    b.done(node, perm)


def _crop_nchw(b: _Builder, node: Node, x: str, top: int, left: int, height: int, width: int) -> str:
    return b.emit("Slice", [x, b.ints(f"{node.name}/starts", [top, left]),
                            b.ints(f"{node.name}/ends", [top + height, left + width]),
                            b.ints(f"{node.name}/axes", [2, 3])], b.fresh(f"{node.name}/crop"), _node_doc(node))


def _resizing(b: _Builder, node: Node) -> None:
    from ..core.ops_spatial import resize_crop_box

    a = node.attrs
    perm = _image_perm(a.data_format)
    x = b.get(node.inputs[0], perm)
    hw = _spatial_dims(b, node.inputs[0], a.data_format)
    if a.crop_to_aspect_ratio:
        if None in hw:
            raise _unknown_size(node, "crop_to_aspect_ratio")
        top, left, ch, cw = resize_crop_box(hw[0], hw[1], a.height, a.width)
        x, hw = _crop_nchw(b, node, x, top, left, ch, cw), (ch, cw)
    _resize_nchw(b, node, x, hw, (a.height, a.width), a.interpolation, node.name, integer_scales=False)
    b.done(node, perm)


def _center_crop(b: _Builder, node: Node) -> None:
    from ..core.ops_spatial import resize_crop_box

    a = node.attrs
    perm = _image_perm(a.data_format)
    x = b.get(node.inputs[0], perm)
    h, w = _spatial_dims(b, node.inputs[0], a.data_format)
    if h >= a.height and w >= a.width:
        top, left = (h - a.height) // 2, (w - a.width) // 2
        b.emit("Slice", [x, b.ints(f"{node.name}/starts", [top, left]),
                         b.ints(f"{node.name}/ends", [top + a.height, left + a.width]),
                         b.ints(f"{node.name}/axes", [2, 3])], node.name, _node_doc(node))
    else:  # Keras's smart_resize: the centred box of the target's aspect ratio, then bilinear
        top, left, ch, cw = resize_crop_box(h, w, a.height, a.width)
        x = _crop_nchw(b, node, x, top, left, ch, cw)
        _resize_nchw(b, node, x, (ch, cw), (a.height, a.width), "bilinear", node.name, integer_scales=False)
    b.done(node, perm)


#: op name -> function(builder, node) that emits the node's ONNX nodes.
LOWERINGS: dict[str, Callable[[_Builder, Node], None]] = {
    **{f"conv{n}d": _conv2d for n in (1, 2, 3)},
    **{f"conv{n}d_transpose": _conv_transpose for n in (1, 2, 3)},
    **{f"depthwise_conv{n}d": _depthwise_conv2d for n in (1, 2)},
    **{f"separable_conv{n}d": _separable_conv2d for n in (1, 2)},
    **{f"maxpool{n}d": _pool("MaxPool") for n in (1, 2, 3)},
    **{f"avgpool{n}d": _pool("AveragePool") for n in (1, 2, 3)},
    **{f"global_avgpool{n}d": _global_pool("ReduceMean") for n in (1, 2, 3)},
    **{f"global_maxpool{n}d": _global_pool("ReduceMax") for n in (1, 2, 3)},
    **{f"zeropad{n}d": _zeropad2d for n in (1, 2, 3)},
    **{f"cropping{n}d": _cropping for n in (1, 2, 3)},
    **{f"upsampling{n}d": _upsampling for n in (1, 2, 3)},
    "resizing": _resizing,
    "center_crop": _center_crop,
    "flatten": _flatten,
    "reshape": _reshape,
    "dense": _dense,
    "dropout": _dropout,
    "batchnorm": _batchnorm,
    "activation": _activation_op(None),
    "relu": _activation_op("relu"),
    "leaky_relu": _activation_op("leaky_relu"),
    "elu": _activation_op("elu"),
    "softmax": _activation_op("softmax"),
    **{name: _activation_op(name) for name in ACTIVATION_OPS},
    "add": _merge("Add"),
    "multiply": _merge("Mul"),
    "concat": _concat,
}

# Version 2's layer ops and activations (their own module).
from . import onnx_layers as _onnx_layers  # noqa: E402

_onnx_layers.install(_Builder, LOWERINGS)
EMITTED_OPS = tuple(sorted(set(EMITTED_OPS) | set(_onnx_layers.EMITTED)))


# --- the model --------------------------------------------------------------------------------


def _report(net: NetworkReport | Graph) -> NetworkReport:
    if isinstance(net, Graph):
        net = check_graph(net)
    return net.raise_for_errors()


def _weights(net: NetworkReport, weights: Weights, seed: int) -> Mapping[str, np.ndarray]:
    from .weights import resolve_weights, validate_weights

    if weights is None or isinstance(weights, (str, os.PathLike)):
        return resolve_weights(net, weights, seed)
    return validate_weights(net, weights)


def to_onnx(net: NetworkReport | Graph, weights: Weights = None, opset: int | None = None, seed: int = 0
            ) -> onnx.ModelProto:
    """Build the ONNX model of a checked network.

    ``weights`` is a weights dict (``"layer/weight"`` -> array in Keras
    layout), a ``.npz`` or ``.keras`` path, or None for fresh weights drawn
    with ``seed``.  ``opset`` defaults to :func:`default_opset`; one outside
    :data:`MIN_OPSET` .. :func:`newest_opset` is an E605 error.

    >>> import netspec
    >>> net = netspec.load_source("network n { input x: [?, ?, 3] channels_last\\n global_avgpool2d() }")
    >>> m = to_onnx(net, opset=18)
    >>> [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    ['batch', 'x_d1', 'x_d2', 3]
    """
    from .weights import need_net, need_weights

    need_net("to_onnx(net, weights=None, opset=None, seed=0)", net, graphs=True)
    need_weights("to_onnx(net, weights=None, opset=None, seed=0)", weights, paths=True, optional=True)
    report = _report(net)
    opset = _check_opset(opset)
    b = _Builder(report, _weights(report, weights, seed), opset)
    graph = report.graph
    assert graph is not None
    for node in graph.nodes:
        try:
            lower = LOWERINGS[node.op]
        except KeyError:
            raise NetspecError([Diagnostic.error(
                "E605", f"onnx target: op {node.op!r} has no ONNX lowering", node.span)]) from None
        lower(b, node)
    return _model(b, report, graph)


def _output_value(b: _Builder, output: str, input_names: set[str]) -> str:
    """The graph-output value for the IR tensor ``output``, in the spec's layout.

    An output that is an input gets an ``Identity`` of its own (ONNX values
    have one producer); a layer's value stored in another layout moves aside
    (``layer/NCHW``) and the output value, under the layer's name, is its
    transpose back.
    """
    value, perm = b.stored[output]
    identity = _identity(len(perm))
    if output in input_names:
        out_name = b.fresh(f"{output}/output")
        b.emit("Identity", [b.get(output, identity)], out_name, f"netspec: the input {output!r} is an output too")
        b.shapes[out_name] = b.shapes[output]
        return out_name
    if perm == identity:
        return output
    # The output keeps the spec's layout; the layer's value, stored otherwise, moves aside.
    inner = b.fresh(f"{output}/{b.tag(output, perm)}")
    for n in b.nodes:
        n.input[:] = [inner if v == output else v for v in n.input]
        if n.output[0] == output:
            n.output[0] = n.name = inner
    b.stored[output] = (inner, perm)
    b.views = {k: (inner if v == output else v) for k, v in b.views.items()}
    b.shapes[inner] = b.shapes[output]
    existing = b.views.get((output, identity))
    if existing is not None:
        # A later layer already reads the spec's layout: that transpose becomes the output value.
        for n in b.nodes:
            n.input[:] = [output if v == existing else v for v in n.input]
            if n.output[0] == existing:
                n.output[0] = n.name = output
                n.doc_string = f"netspec: the output {output!r} in the spec's layout"
        b.views[(output, identity)] = output
        return output
    b.get(output, identity)
    b.nodes[-1].output[0] = b.nodes[-1].name = output
    b.nodes[-1].doc_string = f"netspec: the output {output!r} in the spec's layout"
    b.views[(output, identity)] = output
    return output


def _model(b: _Builder, report: NetworkReport, graph: Graph) -> onnx.ModelProto:
    graph_inputs = []
    for inp in graph.inputs:
        in_dims = ["batch"] + [d if d is not None else f"{inp.name}_d{i}" for i, d in enumerate(inp.shape, start=1)]
        in_doc = f"input {inp.name!r} ({inp.data_format}) at {_where(inp.span)}"
        graph_inputs.append(helper.make_tensor_value_info(inp.name, TensorProto.FLOAT, in_dims, doc_string=in_doc))

    input_names = {inp.name for inp in graph.inputs}
    graph_outputs = []
    declared = set()
    for output in graph.outputs:
        out_name = _output_value(b, output, input_names)
        declared.add(out_name)
        out_doc = f"the output of layer {output!r}" if output not in input_names else f"the input {output!r}"
        graph_outputs.append(helper.make_tensor_value_info(
            out_name, TensorProto.FLOAT, ["batch", *b.shapes[output]], doc_string=out_doc))

    layouts = {}
    infos = []
    for node in graph.nodes:
        name, perm = b.stored[node.name]
        if name in declared:  # declared as one of the graph's outputs
            continue
        doc = _node_doc(node)
        if perm != _identity(len(perm)):
            layouts[name] = list(perm)
            doc += f"\n  stored as {b.tag(node.name, perm)} (the spec's axes in order {list(perm)})"
        infos.append(b.value_info(name, node.name, perm, doc))

    if b.weight_bytes > _MAX_PROTO_BYTES:
        raise NetspecError([Diagnostic.error(
            "E605", f"onnx target: the weights take {b.weight_bytes / 2**30:.1f} GiB, more than one ONNX "
            "file can hold (protobuf's 2 GiB limit)", graph.span)])
    source = graph.span.file if graph.span is not None else "<graph>"
    onnx_graph = helper.make_graph(
        b.nodes, graph.name, graph_inputs, graph_outputs, b.initializers, value_info=infos,
        doc_string=f"netspec network {graph.name!r} from {_where(graph.span)}")
    ids = [helper.make_opsetid("", b.opset)]
    model = helper.make_model(
        onnx_graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids),
        producer_name="netspec", producer_version=__version__,
        doc_string=f"{graph.name} from {source}, compiled by netspec {__version__}")
    helper.set_model_props(model, {"netspec.core.source": source, "netspec.network": graph.name,
                                   "netspec.layouts": json.dumps(layouts)})
    return model


def compile_onnx(net: NetworkReport | Graph, output: str | os.PathLike, *, weights: Weights = None, seed: int = 0,
                 opset: int | None = None) -> None:
    """Write the network's ONNX model to ``output``, whole or not at all.

    >>> import netspec, onnx, tempfile, os
    >>> net = netspec.load_source("network n { input x: [4]\\n dense(2) }")
    >>> path = os.path.join(tempfile.mkdtemp(), "n.onnx")
    >>> compile_onnx(net, path, opset=17)
    >>> onnx.load(path).opset_import[0].version
    17
    """
    model = to_onnx(net, weights=weights, opset=opset, seed=seed)
    try:
        data = model.SerializeToString()
        with atomic_output(output) as tmp, open(tmp, "wb") as f:
            f.write(data)
    except OSError as err:
        raise NetspecError([Diagnostic.error("E603", f"cannot write {os.fspath(output)}: {err}")]) from None


def inferred_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Every value's shape as ONNX's own strict shape inference finds it, from the bare graph.

    The declared value shapes are removed first, so nothing is taken on
    trust; unknown sizes (the batch, ``?``) are None.

    >>> import netspec
    >>> net = netspec.load_source("network n {\\n  input x: [4]\\n  dense(2, name='d')\\n}\\n")
    >>> inferred_shapes(to_onnx(net))["d"]
    [None, 2]
    """
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    for o in bare.graph.output:
        o.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(bare, check_type=True, strict_mode=True, data_prop=True)
    dims = {}
    for v in [*inferred.graph.value_info, *inferred.graph.output]:
        if v.type.tensor_type.HasField("shape"):
            dims[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    return dims
