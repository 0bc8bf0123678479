"""Read an ONNX graph (from PyTorch, tf2onnx or netspec itself) as netspec layers.

The graph is read with the ``onnx`` package as data: initializers are
checked against their declared sizes before they are loaded (a graph that
claims a 2 GB initializer is refused, and so are external data files), and
the graph is walked in topological order (a cycle is an error).

Layout.  ONNX convolutions and pools work on NCHW tensors.  A graph whose
image input is NCHW imports as a ``channels_first`` network; one whose input
is NHWC and is transposed to NCHW before its first convolution (what tf2onnx
and netspec's own ONNX target write) imports as a ``channels_last`` network.
Each tensor carries the permutation from its physical axes to the network's
logical ones, so layout ``Transpose`` nodes disappear, and axis attributes
(``Concat``, ``Softmax``) are mapped to the network's axes.  Shape arithmetic
(``Shape`` -> ``Gather`` -> ``Concat`` -> ``Reshape``, as tf2onnx writes a
flatten) is folded with the batch size left symbolic.

>>> import onnx
>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np
>>> w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
>>> g = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [w])
>>> m = model_from_onnx(helper.make_model(g))
>>> [(layer.name, layer.op, layer.args) for layer in m.layers]
[('fc', 'dense', {'units': 4, 'use_bias': False})]
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.ops import OPS
from ..core.ops_spatial import conv_transpose_length, transpose_pads
from ..core.shapes import SizeError, same_padding, window_output
from .keras_layers import shortest
from .model import ImportedInput, ImportedLayer, ImportedModel, ImportProblem

__all__ = ["MAX_INITIALIZER_BYTES", "model_from_onnx", "read_onnx"]

#: Largest single initializer read.
MAX_INITIALIZER_BYTES = 2**31 - 1
#: Largest ONNX file read.
MAX_FILE_BYTES = 4 * 2**30

_ACTIVATIONS = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus",
                "Softsign": "softsign", "Elu": "elu", "Selu": "selu", "Exp": "exponential",
                "Gelu": "gelu", "Mish": "mish", "HardSwish": "hard_silu"}
_MERGES = {"Add": "add", "Sum": "add", "Mul": "multiply", "Sub": "subtract", "Max": "maximum", "Min": "minimum",
           "Mean": "average"}


def read_onnx(path: str | os.PathLike) -> ImportedModel:
    """The layers of an ``.onnx`` file, with its weights (ONNX keeps them in the graph)."""
    path = os.fspath(path)
    try:
        import onnx
    except ImportError:
        raise ImportProblem(path, [("onnx", "importing ONNX graphs needs the onnx package: "
                                    "pip install 'netspec[import]'")], "E605") from None
    if not os.path.isfile(path):
        raise ImportProblem(path, [("file", "no such file")], "E603")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ImportProblem(path, [("file", f"{size:,} bytes (limit {MAX_FILE_BYTES:,})")], "E603")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and others for a damaged file
        raise ImportProblem(path, [("file", f"not a readable ONNX model: {type(err).__name__}: {err}")],
                            "E603") from None
    return model_from_onnx(model, path)


class _Tensor:
    """What the reader knows of one ONNX value: a layer's output (with its layout) or a constant."""

    __slots__ = ("name", "perm", "const", "shape")

    def __init__(self, name: str, perm: tuple[int, ...] | None = None, const: Any = None,
                 shape: tuple | None = None):
        self.name = name          # netspec tensor (layer or input name); "" for constants
        self.perm = perm          # physical axis i holds logical axis perm[i]
        self.const = const        # a NumPy array for constants and folded shape arithmetic
        self.shape = shape        # physical shape, batch as None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _initializer(path: str, t: Any) -> np.ndarray:
    from onnx import numpy_helper

    if t.data_location == 1:  # EXTERNAL
        raise ImportProblem(path, [(f"initializer {t.name!r}", "keeps its data in an external file, which netspec "
                                    "does not read")], "E603")
    count = int(np.prod(t.dims, dtype=np.int64)) if t.dims else 1
    itemsize = 8 if t.data_type in (7, 11) else 4
    claimed = count * itemsize
    if claimed > MAX_INITIALIZER_BYTES:
        raise ImportProblem(path, [(f"initializer {t.name!r}", f"claims {claimed:,} bytes "
                                    f"(limit {MAX_INITIALIZER_BYTES:,})")], "E603")
    if t.raw_data and len(t.raw_data) != count * np.dtype(_NP_TYPES.get(t.data_type, np.float32)).itemsize:
        raise ImportProblem(path, [(f"initializer {t.name!r}", f"declares {count:,} elements but holds "
                                    f"{len(t.raw_data):,} bytes")], "E603")
    try:
        return numpy_helper.to_array(t)
    except Exception as err:
        raise ImportProblem(path, [(f"initializer {t.name!r}", f"cannot read it: {err}")], "E603") from None


_NP_TYPES = {1: np.float32, 6: np.int32, 7: np.int64, 10: np.float16, 11: np.float64, 9: np.bool_}


def _name(text: str) -> str:
    """An ONNX node or value name as a layer name (no '/', no ':0' suffixes)."""
    text = re.sub(r":\d+$", "", text).strip("/")
    return text.replace("/", ".") or "layer"


class _Reader:
    def __init__(self, model: Any, path: str):
        self.path = path
        self.graph = model.graph
        self.values: dict[str, _Tensor] = {}
        self.layers: list[ImportedLayer] = []
        self.weights: dict[str, list[np.ndarray]] = {}
        self.problems: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self.inputs: list[ImportedInput] = []
        self.fmt = "channels_last"
        self.absorbed: set[str] = set()  # nodes (by first output) already folded into a layer (a MatMul's bias Add)

    # --- helpers -----------------------------------------------------------------

    def layer_name(self, node: Any, fallback: str) -> str:
        # netspec's export names a layer's value before its layout transpose 'LAYER/NCHW'.
        raw = re.sub(r"/(NCHW|NHWC|NCW|NWC|NCDHW|NDHWC)$", "", node.name or "")
        name = _name(raw or (node.output[0] if node.output else fallback))
        base, n = name, 1
        while name in self.names:
            name, n = f"{base}_{n}", n + 1
        self.names.add(name)
        return name

    def add(self, node: Any, op: str, args: dict[str, Any], inputs: list[str], perm: tuple[int, ...],
            shape: tuple, weights: list[np.ndarray] | None = None, name: str | None = None) -> None:
        name = name or self.layer_name(node, op)
        args = {k: shortest(op, k, v) for k, v in args.items()}
        self.layers.append(ImportedLayer(name, op, args, tuple(inputs), weights=weights or [], origin=node.op_type))
        self.values[node.output[0]] = _Tensor(name, perm, shape=shape)

    def producer(self, t: _Tensor) -> ImportedLayer | None:
        """The layer whose output ``t`` is (None for inputs and constants)."""
        for layer in reversed(self.layers):
            if layer.name == t.name:
                return layer
        return None

    def tensor(self, node: Any, value: str) -> _Tensor:
        t = self.values.get(value)
        if t is None:
            raise _Skip(f"reads {value!r}, which nothing before it produces")
        return t

    def const(self, node: Any, value: str, what: str) -> np.ndarray:
        t = self.values.get(value)
        if t is None or t.const is None:
            raise _Skip(f"needs {what} as a constant (an initializer), got a computed tensor")
        return t.const

    def logical_axis(self, t: _Tensor, axis: int) -> int:
        """A physical ONNX axis of ``t`` as the network's axis (Keras numbering, batch 0), negative."""
        rank = len(t.perm or ())
        axis = axis % rank
        logical = t.perm[axis] if t.perm else axis
        return logical - rank

    def image(self, t: _Tensor) -> None:
        """Refuse an NCHW op on a tensor that is not physically NCHW for this network."""
        rank = len(t.perm or ())
        want = tuple(range(rank)) if self.fmt == "channels_first" else (0, rank - 1, *range(1, rank - 1))
        if t.perm != want:
            raise _Skip("works on a tensor in a layout netspec cannot express here (a Transpose netspec cannot follow)")

    def spatial(self, t: _Tensor) -> tuple:
        return tuple(t.shape[2:]) if t.shape else ()

    # --- the walk -----------------------------------------------------------------

    def run(self) -> ImportedModel:
        for init in self.graph.initializer:
            self.values[init.name] = _Tensor("", const=_initializer(self.path, init))
        init_names = {i.name for i in self.graph.initializer}
        graph_inputs = [i for i in self.graph.input if i.name not in init_names]
        self.decide_layout(graph_inputs)
        for inp in graph_inputs:
            dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
            if not dims:
                self.problems.append((f"input {inp.name!r}", "has no shape"))
                continue
            rank = len(dims)
            logical = list(dims)
            perm = tuple(range(rank))  # the input is in the network's own layout
            name = _name(inp.name)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                name = "input_" + re.sub(r"\W", "_", name)
            self.names.add(name)
            self.inputs.append(ImportedInput(name, tuple(logical[1:]), self.fmt))
            self.values[inp.name] = _Tensor(name, perm, shape=(None, *logical[1:]))
        self.find_hard_sigmoids()
        self.find_layernorms()
        poisoned: set[str] = set()
        for node in self.ordered():
            if any(i in poisoned for i in node.input):
                poisoned.update(node.output)  # reported where it started
                continue
            try:
                self.node(node)
            except _Skip as err:
                self.problems.append((f"node {node.name or node.output[0]!r} ({node.op_type})", str(err)))
                poisoned.update(node.output)
        outputs = []
        for out in self.graph.output:
            t = self.values.get(out.name)
            if out.name in poisoned:
                continue
            if t is None or not t.name:
                self.problems.append((f"output {out.name!r}", "is not computed by a layer"))
                continue
            identity = tuple(range(len(t.perm or ())))
            if t.perm and t.perm != identity and len(t.perm) > 2:
                self.problems.append((f"output {out.name!r}", "is left in a transposed layout"))
            outputs.append(t.name)
        if self.problems:
            raise ImportProblem(self.path, self.problems)
        name = _name(self.graph.name or "onnx_model")
        name = re.sub(r"\W", "_", name)
        if not re.match(r"[A-Za-z_]", name):
            name = "m_" + name
        model = ImportedModel(name, self.inputs, self.layers, outputs)
        for layer in model.layers:
            layer.weights = layer.weights or []
        model.load_weights = lambda m: None  # the weights came with the graph
        return model

    def scalar(self, value: str) -> float | None:
        t = self.values.get(value)
        if t is None or t.const is None or np.asarray(t.const).size != 1:
            return None
        return float(np.asarray(t.const).reshape(-1)[0])

    def find_hard_sigmoids(self) -> None:
        """``relu6(x + 3) / 6`` (Add, Clip, Div by constants) is ``hard_sigmoid(x)``; times ``x``, ``hard_silu(x)``."""
        producer = {o: n for n in self.graph.node for o in n.output}
        readers: dict[str, list] = {}
        for n in self.graph.node:
            for i in n.input:
                readers.setdefault(i, []).append(n)
        self.hard: dict[str, tuple[str, str, str]] = {}  # output -> (activation, input, layer node name)
        for div in self.graph.node:
            if div.op_type != "Div" or len(div.input) != 2 or self.scalar(div.input[1]) != 6.0:
                continue
            clip = producer.get(div.input[0])
            if clip is None or clip.op_type != "Clip" or len(readers.get(clip.output[0], [])) != 1:
                continue
            bounds = [self.scalar(i) for i in clip.input[1:3]]
            if bounds != [0.0, 6.0]:
                continue
            add = producer.get(clip.input[0])
            if add is None or add.op_type != "Add" or len(readers.get(add.output[0], [])) != 1:
                continue
            consts = [self.scalar(i) for i in add.input]
            if 3.0 not in consts:
                continue
            x = add.input[1 - consts.index(3.0)]
            self.absorbed.update((add.output[0], clip.output[0]))
            users = readers.get(div.output[0], [])
            mul = users[0] if len(users) == 1 and users[0].op_type == "Mul" and x in users[0].input else None
            if mul is not None:
                self.absorbed.add(div.output[0])
                self.hard[mul.output[0]] = ("hard_silu", x, mul.name)
            else:
                self.hard[div.output[0]] = ("hard_sigmoid", x, div.name)

    def find_layernorms(self) -> None:
        """netspec's export writes ``layernorm`` as ReduceMean 'L/mean', ..., 'L/var_eps', 'L/std', ... 'L': one layer."""
        by_name = {n.name: n for n in self.graph.node if n.name}
        self.layernorms: dict[str, dict[str, Any]] = {}
        for mean in self.graph.node:
            if mean.op_type != "ReduceMean" or not mean.name.endswith("/mean"):
                continue
            base = mean.name[: -len("/mean")]
            parts = {k: by_name.get(f"{base}/{k}") for k in ("centered", "square", "variance", "var_eps", "std",
                                                                "inv", "normalized", "scaled")}
            last = by_name.get(base)
            if last is None or any(parts[k] is None for k in ("centered", "variance", "var_eps", "std", "normalized")):
                continue
            eps = self.scalar(parts["var_eps"].input[1])
            axes = self.values.get(mean.input[1]) if len(mean.input) > 1 else None
            if eps is None or axes is None or axes.const is None:
                continue
            gamma = beta = None
            if parts["scaled"] is not None:
                g = self.values.get(parts["scaled"].input[1])
                gamma = None if g is None else g.const
            if last.op_type == "Add" and last is not parts["var_eps"]:
                b = self.values.get(last.input[1])
                beta = None if b is None else b.const
            group = [mean] + [n for n in parts.values() if n is not None] + [last]
            self.absorbed.update(n.output[0] for n in group[:-1])
            self.layernorms[last.output[0]] = {"x": mean.input[0], "axes": [int(a) for a in axes.const.reshape(-1)],
                                              "eps": eps, "gamma": gamma, "beta": beta, "name": base}

    def layernorm(self, node: Any, spec: dict[str, Any]) -> None:
        t = self.tensor(node, spec["x"])
        rank = len(t.perm or ())
        logical = sorted(self.logical_axis(t, a) for a in spec["axes"])
        args: dict[str, Any] = {}
        if logical != [-1]:
            args["axis"] = logical[0] if len(logical) == 1 else tuple(logical)
        eps = _f32(spec["eps"])
        if eps != 0.001:
            args["epsilon"] = eps
        weights = []
        if spec["gamma"] is not None:
            weights.append(np.asarray(spec["gamma"], np.float32).reshape(-1))
        else:
            args["scale"] = False
        if spec["beta"] is not None:
            weights.append(np.asarray(spec["beta"], np.float32).reshape(-1))
        else:
            args["center"] = False
        del rank
        self.add(node, "layernorm", args, [t.name], t.perm, t.shape, weights,
                 name=self.layer_name(type("N", (), {"name": spec["name"], "output": node.output})(), "layernorm"))

    def decide_layout(self, graph_inputs: list) -> None:
        """channels_first, unless the image input is transposed NHWC -> NCHW before its first NCHW op."""
        self.fmt = "channels_first"
        for inp in graph_inputs:
            rank = len(inp.type.tensor_type.shape.dim)
            if rank < 3:
                continue
            nchw = (0, rank - 1, *range(1, rank - 1))
            frontier, seen = [inp.name], set()
            while frontier:
                value = frontier.pop()
                for n in self.graph.node:
                    if value not in n.input or n.output[0] in seen:
                        continue
                    seen.add(n.output[0])
                    if n.op_type == "Transpose" and tuple(_attrs(n).get("perm", ())) == nchw:
                        self.fmt = "channels_last"
                        return
                    if n.op_type in ("Conv", "MaxPool", "AveragePool", "BatchNormalization", "GlobalAveragePool",
                                     "GlobalMaxPool", "ConvTranspose"):
                        return
                    frontier.extend(n.output)
            return

    def ordered(self) -> list:
        """The nodes in dependency order (ONNX requires it; a cycle is refused)."""
        produced = set(self.values) | {i.name for i in self.graph.input}
        pending = list(self.graph.node)
        out = []
        while pending:
            ready = [n for n in pending if all(not i or i in produced for i in n.input)]
            if not ready:
                names = ", ".join(repr(n.name or n.op_type) for n in pending[:5])
                raise ImportProblem(self.path, [("graph", f"has a cycle or reads undefined values (at {names})")])
            for n in ready:
                produced.update(n.output)
            done = {n.output[0] for n in ready}
            pending = [n for n in pending if n.output[0] not in done]
            out.extend(ready)
        return out

    def node(self, node: Any) -> None:
        if node.output and node.output[0] in self.absorbed:
            return
        if node.output and node.output[0] in getattr(self, "layernorms", {}):
            return self.layernorm(node, self.layernorms[node.output[0]])
        if node.output and node.output[0] in getattr(self, "hard", {}):
            activation, x, name = self.hard[node.output[0]]
            t = self.tensor(node, x)
            if activation not in _known_activations():
                raise _Skip(f"netspec has no activation {activation!r}")
            base = re.sub(r"/(hard_sigmoid|hard_silu)$", "", name) if name.endswith("/hard_sigmoid") else name
            self.add(node, "activation", {"activation": activation}, [t.name], t.perm, t.shape,
                     name=self.layer_name(type("N", (), {"name": base, "output": node.output})(), "activation"))
            return
        handler: Callable[[Any], None] | None = getattr(self, f"on_{node.op_type}", None)
        if node.op_type in _ACTIVATIONS:
            return self.activation(node)
        if node.op_type in _MERGES:
            return self.merge(node)
        if handler is None:
            raise _Skip(f"netspec has no layer for the ONNX op {node.op_type}")
        handler(node)

    # --- constants and shape arithmetic ------------------------------------------------

    def fold(self, node: Any, value: Any) -> None:
        self.values[node.output[0]] = _Tensor("", const=np.asarray(value))

    def on_Constant(self, node: Any) -> None:
        from onnx import numpy_helper

        a = _attrs(node)
        if "value" not in a:
            raise _Skip("only tensor constants are read")
        self.fold(node, numpy_helper.to_array(a["value"]))

    def on_Shape(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        if t.shape is None:
            raise _Skip("the shape of its input is not known")
        self.fold(node, np.array([-1 if d is None else d for d in t.shape], dtype=np.int64))

    def _const_inputs(self, node: Any) -> list[np.ndarray]:
        return [self.const(node, i, "every input") for i in node.input if i]

    def on_Gather(self, node: Any) -> None:
        data, idx = self._const_inputs(node)
        self.fold(node, np.take(data, idx, axis=_attrs(node).get("axis", 0)))

    def on_Cast(self, node: Any) -> None:
        (data,) = self._const_inputs(node)
        self.fold(node, data)

    def on_Concat(self, node: Any) -> None:
        if all(self.values.get(i) is not None and self.values[i].const is not None for i in node.input):
            arrays = self._const_inputs(node)
            self.fold(node, np.concatenate([np.atleast_1d(a) for a in arrays], axis=_attrs(node).get("axis", 0)))
            return
        tensors = [self.tensor(node, i) for i in node.input]
        axis = self.logical_axis(tensors[0], _attrs(node).get("axis", 1))
        self.same_layout(tensors)
        shape = list(tensors[0].shape or ())
        if shape:
            ax = _attrs(node).get("axis", 1) % len(shape)
            shape[ax] = sum(t.shape[ax] for t in tensors) if all(t.shape and t.shape[ax] for t in tensors) else None
        args = {} if axis == -1 else {"axis": axis}
        self.add(node, "concat", args, [t.name for t in tensors], tensors[0].perm, tuple(shape))

    def on_Slice(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        if t.const is None:
            return self.crop(node, t)
        data, starts, ends, *rest = self._const_inputs(node)
        axes = rest[0] if rest else np.arange(len(starts))
        steps = rest[1] if len(rest) > 1 else np.ones(len(starts), dtype=np.int64)
        index = [slice(None)] * data.ndim
        for a, s, e, st in zip(axes, starts, ends, steps):
            index[int(a)] = slice(int(s), int(min(e, 2**62)), int(st))
        self.fold(node, data[tuple(index)])

    def crop(self, node: Any, t: _Tensor) -> None:
        """A Slice of the spatial axes of a layer's output: ``cropping2d`` (what netspec's own export writes)."""
        starts, ends = (self.const(node, i, "the slice bounds") for i in node.input[1:3])
        rank = len(t.perm or ())
        axes = self.const(node, node.input[3], "the axes") if len(node.input) > 3 and node.input[3] else range(rank)
        if len(node.input) > 4 and node.input[4] and any(int(s) != 1 for s in self.const(node, node.input[4], "steps")):
            raise _Skip("a strided Slice")
        channel = 1 if self.fmt == "channels_first" else rank - 1
        spatial = [ax for ax in range(1, rank) if ax != channel]
        crops = {ax: (0, 0) for ax in spatial}
        shape = list(t.shape or [None] * rank)
        for a, s, e in zip(axes, starts, ends):
            phys = int(a) % rank
            logical = t.perm[phys] if t.perm else phys
            size = shape[phys]
            if size is None:
                raise _Skip("a Slice of an axis of unknown size")
            s, e = int(s), int(e)
            s = max(0, s + size if s < 0 else s)
            e = min(size, e + size if e < 0 else e)
            if logical not in crops:
                if (s, e) != (0, size):
                    raise _Skip("a Slice of the batch or channel axis")
                continue
            crops[logical] = (s, size - e)
            shape[phys] = e - s
        n = len(spatial)
        op = f"cropping{n}d"
        if op not in OPS:
            raise _Skip(f"netspec has no {op}")
        pairs = tuple(crops[ax] for ax in spatial)
        self.add(node, op, {"cropping": pairs if n > 1 else pairs[0]}, [t.name], t.perm, tuple(shape))

    def on_Unsqueeze(self, node: Any) -> None:
        data, *axes = self._const_inputs(node)
        axes = list(axes[0]) if axes else list(_attrs(node).get("axes", []))
        self.fold(node, np.expand_dims(data, [int(a) for a in axes]))

    def on_Squeeze(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        if t.const is None:
            return self.squeeze_pool(node, t)
        data, *axes = self._const_inputs(node)
        self.fold(node, np.squeeze(data, tuple(int(a) for a in axes[0]) if axes else None))

    def squeeze_pool(self, node: Any, t: _Tensor) -> None:
        """tf2onnx's global pool is ReduceMean(keepdims) + Squeeze: one ``global_avgpool2d()``."""
        layer = self.producer(t)
        rank = len(t.perm or ())
        axes = (list(self.const(node, node.input[1], "axes")) if len(node.input) > 1 and node.input[1]
                else list(_attrs(node).get("axes", [])))
        channel_phys = t.perm.index(1 if self.fmt == "channels_first" else rank - 1) if t.perm else 1
        spatial = sorted(i for i in range(1, rank) if i != channel_phys)
        if (layer is None or layer.name != t.name or not layer.op.startswith("global_")
                or sorted(int(a) % rank for a in axes) != spatial):
            raise _Skip("Squeeze of a computed tensor other than a global pool's")
        layer.args.pop("keepdims", None)
        self.values[node.output[0]] = _Tensor(layer.name, (0, 1), shape=(None, t.shape[channel_phys] if t.shape else None))

    # --- layout -------------------------------------------------------------------------

    def on_Transpose(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        perm = tuple(_attrs(node).get("perm", ()))
        if t.const is not None:
            self.fold(node, np.transpose(t.const, perm))
            return
        new_perm = tuple(t.perm[p] for p in perm) if t.perm else perm
        shape = tuple(t.shape[p] for p in perm) if t.shape else None
        self.values[node.output[0]] = _Tensor(t.name, new_perm, shape=shape)

    def on_Identity(self, node: Any) -> None:
        self.values[node.output[0]] = self.tensor(node, node.input[0])

    on_Dropout = on_Identity

    def same_layout(self, tensors: list[_Tensor]) -> None:
        if len({t.perm for t in tensors}) > 1:
            raise _Skip("merges tensors in different layouts")

    # --- layers ---------------------------------------------------------------------------

    def window(self, node: Any, t: _Tensor, kernel: list[int], strides: list[int], dilations: list[int]
               ) -> Any:
        """netspec's padding for an ONNX window: 'valid', 'same', or explicit pairs."""
        a = _attrs(node)
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        n = len(kernel)
        if auto == "SAME_UPPER":
            return "same"
        if auto == "VALID":
            return "valid"
        if auto == "SAME_LOWER":
            raise _Skip("auto_pad SAME_LOWER puts the extra padding first, which netspec's 'same' does not")
        pads = list(a.get("pads", [0] * (2 * n)))
        if not any(pads):
            return "valid"
        pairs = tuple((pads[i], pads[i + n]) for i in range(n))
        sizes = self.spatial(t)
        if sizes and all(s is not None for s in sizes):
            same = tuple(same_padding(sizes[i], kernel[i], strides[i], dilations[i]) for i in range(n))
            if same == pairs:
                return "same"
        return pairs

    def out_sizes(self, node: Any, t: _Tensor, kernel: list[int], strides: list[int], dilations: list[int],
                  padding: Any) -> list[int | None]:
        """The window's output sizes, by netspec's own rule (:func:`netspec.core.shapes.window_output`)."""
        try:
            return [window_output(s, kernel[i], strides[i], dilations[i],
                                  padding if isinstance(padding, str) else padding[i])
                    for i, s in enumerate(self.spatial(t))]
        except SizeError as err:
            raise _Skip(f"its output size would be {err.size}: {err.arithmetic}") from None

    def on_Conv(self, node: Any) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        self.image(t)
        w = self.const(node, node.input[1], "the kernel")
        bias = self.const(node, node.input[2], "the bias") if len(node.input) > 2 and node.input[2] else None
        n = w.ndim - 2
        kernel = list(a.get("kernel_shape", w.shape[2:]))
        strides = list(a.get("strides", [1] * n))
        dilations = list(a.get("dilations", [1] * n))
        group = int(a.get("group", 1))
        padding = self.window(node, t, kernel, strides, dilations)
        cin = t.shape[1] if t.shape else None
        cout = w.shape[0]
        sizes = self.out_sizes(node, t, kernel, strides, dilations, padding)
        # Explicit padding stays on the conv (netspec pads with zeros, as ONNX does).
        pad_arg = padding if not isinstance(padding, tuple) or len(padding) > 1 else padding[0]
        args: dict[str, Any] = {}
        depthwise = group > 1 and cin == group and w.shape[1] == 1
        if depthwise:
            op = f"depthwise_conv{n}d"
            mult = cout // group
            args = {"kernel_size": _one(kernel)}
            if mult != 1:
                args["depth_multiplier"] = mult
            kernel_keras = w.reshape(group, mult, *kernel).transpose(*range(2, 2 + n), 0, 1)
        else:
            op = f"conv{n}d"
            args = {"filters": int(cout), "kernel_size": _one(kernel)}
            kernel_keras = w.transpose(*range(2, 2 + n), 1, 0)
            if group != 1:
                args["groups"] = group
        if op not in OPS:
            raise _Skip(f"netspec has no {op}")
        if self.separable(node, t, w, bias, kernel, group):
            return
        if any(s != 1 for s in strides):
            args["strides"] = _one(strides)
        if pad_arg != "valid":
            args["padding"] = pad_arg
        if any(d != 1 for d in dilations):
            args["dilation_rate"] = _one(dilations)
        if bias is None:
            args["use_bias"] = False
        weights = [kernel_keras.astype(np.float32)] + ([bias.astype(np.float32)] if bias is not None else [])
        shape = (None, int(cout), *sizes)
        self.add(node, op, args, [t.name], t.perm, shape, weights)

    def separable(self, node: Any, t: _Tensor, w: np.ndarray, bias: np.ndarray | None, kernel: list[int],
                  group: int) -> bool:
        """netspec's export writes ``separable_conv2d`` as a depthwise Conv 'x/depthwise' and a 1x1 Conv: one layer."""
        layer = self.producer(t)
        own = _name(node.name or node.output[0])
        base = own[: -len(".pointwise")] if own.endswith(".pointwise") else own
        if (layer is None or layer.name != f"{base}.depthwise" or t.name != layer.name or group != 1
                or any(k != 1 for k in kernel) or not layer.op.startswith("depthwise_conv")
                or len(layer.weights or []) != 1):
            return False
        readers = [n for n in self.graph.node if node.input[0] in n.input]
        if len(readers) != 1:
            return False
        n = w.ndim - 2
        op = f"separable_conv{n}d"
        if op not in OPS:
            return False
        self.layers.remove(layer)
        self.names.discard(layer.name)
        args = {"filters": int(w.shape[0]), **{k: v for k, v in layer.args.items() if k != "use_bias"}}
        if bias is None:
            args["use_bias"] = False
        pointwise = w.transpose(*range(2, 2 + n), 1, 0).astype(np.float32)
        weights = [layer.weights[0], pointwise] + ([bias.astype(np.float32)] if bias is not None else [])
        name = own  # 'x.pointwise' becomes 'x' when its activation is fused (see fuse)
        self.names.add(name)
        shape = (None, int(w.shape[0]), *(t.shape[2:] if t.shape else ()))
        self.layers.append(ImportedLayer(name, op, {k: shortest(op, k, v) for k, v in args.items()},
                                         layer.inputs, weights=weights, origin="Conv"))
        self.values[node.output[0]] = _Tensor(name, t.perm, shape=shape)
        return True

    def on_ConvTranspose(self, node: Any) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        self.image(t)
        w = self.const(node, node.input[1], "the kernel")
        bias = self.const(node, node.input[2], "the bias") if len(node.input) > 2 and node.input[2] else None
        n = w.ndim - 2
        op = f"conv{n}d_transpose"
        if op not in OPS or int(a.get("group", 1)) != 1 or "output_shape" in a:
            raise _Skip("a grouped ConvTranspose, or one with output_shape" if op in OPS else f"netspec has no {op}")
        kernel = list(a.get("kernel_shape", w.shape[2:]))
        strides = list(a.get("strides", [1] * n))
        dilations = list(a.get("dilations", [1] * n))
        pads = list(a.get("pads", [0] * (2 * n)))
        extra = list(a.get("output_padding", [0] * n))
        found = None
        for padding in ("valid", "same"):
            for out_pad in [None, *itertools.product(*[range(s) for s in strides])]:
                want = [transpose_pads(kernel[i], strides[i], dilations[i], padding,
                                        None if out_pad is None else out_pad[i]) for i in range(n)]
                if [w_[0] for w_ in want] + [w_[1] for w_ in want] == pads and [w_[2] for w_ in want] == extra:
                    found = (padding, out_pad)
                    break
            if found:
                break
        if found is None:
            raise _Skip(f"pads {pads} and output_padding {extra} match no Keras padding")
        padding, out_pad = found
        args: dict[str, Any] = {"filters": int(w.shape[1]), "kernel_size": _one(kernel)}
        if any(s != 1 for s in strides):
            args["strides"] = _one(strides)
        if padding != "valid":
            args["padding"] = padding
        if out_pad is not None:
            args["output_padding"] = _one(list(out_pad))
        if any(d != 1 for d in dilations):
            args["dilation_rate"] = _one(dilations)
        if bias is None:
            args["use_bias"] = False
        sizes = [conv_transpose_length(s, kernel[i], strides[i], dilations[i], padding,
                                       None if out_pad is None else out_pad[i]) for i, s in enumerate(self.spatial(t))]
        kernel_keras = w.transpose(*range(2, 2 + n), 1, 0)  # (in, out, F..) -> (F.., out, in)
        weights = [kernel_keras.astype(np.float32)] + ([bias.astype(np.float32)] if bias is not None else [])
        self.add(node, op, args, [t.name], t.perm, (None, int(w.shape[1]), *sizes), weights)

    def on_BatchNormalization(self, node: Any) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        scale, beta, mean, var = (self.const(node, i, "batchnorm statistics") for i in node.input[1:5])
        args: dict[str, Any] = {}
        axis = self.logical_axis(t, 1)
        if axis != -1:
            args["axis"] = axis
        eps = _f32(float(a.get("epsilon", 1e-5)))
        if eps != 0.001:
            args["epsilon"] = eps
        if "momentum" in a and _f32(float(a["momentum"])) != 0.99:  # ONNX's default 0.9 says nothing
            args["momentum"] = _f32(float(a["momentum"]))
        weights = [scale, beta, mean, var]
        self.add(node, "batchnorm", args, [t.name], t.perm, t.shape, [w.astype(np.float32) for w in weights])

    def pool(self, node: Any, op: str) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        self.image(t)
        kernel = list(a["kernel_shape"])
        n = len(kernel)
        strides = list(a.get("strides", [1] * n))
        if a.get("ceil_mode", 0):
            raise _Skip("ceil_mode pools have no Keras or netspec counterpart")
        padding = self.window(node, t, kernel, strides, [1] * n)
        if isinstance(padding, tuple) and op == "max":
            if not self.non_negative(node.input[0]):
                raise _Skip("explicit max-pool padding pads with -inf; netspec pads with zeros, which differs "
                            "unless the input is non-negative")
        if isinstance(padding, tuple) and op == "avg" and not a.get("count_include_pad", 0):
            raise _Skip("explicit average-pool padding that excludes the padded cells has no netspec counterpart")
        name = f"{op}pool{n}d"
        if name not in OPS:
            raise _Skip(f"netspec has no {name}")
        args: dict[str, Any] = {"pool_size": _one(kernel)}
        if strides != kernel:
            args["strides"] = _one(strides)
        if padding != "valid":
            args["padding"] = padding if not isinstance(padding, tuple) else (padding if n > 1 else padding[0])
        sizes = self.out_sizes(node, t, kernel, strides, [1] * n, padding)
        self.add(node, name, args, [t.name], t.perm, (None, t.shape[1] if t.shape else None, *sizes))

    def non_negative(self, value: str) -> bool:
        for layer_node in self.graph.node:
            if value in layer_node.output:
                return layer_node.op_type in ("Relu", "Sigmoid", "Softmax", "Clip")
        return False

    def on_MaxPool(self, node: Any) -> None:
        self.pool(node, "max")

    def on_AveragePool(self, node: Any) -> None:
        self.pool(node, "avg")

    def global_pool(self, node: Any, op: str) -> None:
        t = self.tensor(node, node.input[0])
        self.image(t)
        n = len(t.perm or ()) - 2
        name = f"global_{op}pool{n}d"
        if name not in OPS:
            raise _Skip(f"netspec has no {name}")
        shape = (None, t.shape[1] if t.shape else None, *([1] * n))
        self.add(node, name, {"keepdims": True}, [t.name], t.perm, shape)

    def on_GlobalAveragePool(self, node: Any) -> None:
        self.global_pool(node, "avg")

    def on_GlobalMaxPool(self, node: Any) -> None:
        self.global_pool(node, "max")

    def on_ReduceMean(self, node: Any) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        axes = a.get("axes") or (list(self.const(node, node.input[1], "axes")) if len(node.input) > 1 else [])
        rank = len(t.perm or ())
        if sorted(int(x) % rank for x in axes) != list(range(2, rank)):
            raise _Skip("a mean over other axes than the spatial ones")
        if a.get("keepdims", 1):
            return self.global_pool(node, "avg")
        self.image(t)
        name = f"global_avgpool{rank - 2}d"
        self.add(node, name, {}, [t.name], (0, 1), (None, t.shape[1] if t.shape else None))

    def on_Flatten(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        if _attrs(node).get("axis", 1) != 1:
            raise _Skip("flatten on another axis than 1")
        self.flatten(node, t)

    def flatten(self, node: Any, t: _Tensor) -> None:
        rank = len(t.perm or ())
        identity = tuple(range(rank))
        args: dict[str, Any] = {}
        x = t.name
        if t.perm != identity:
            # The graph flattens its physical order; a channels_first network flattens that order
            # with flatten(data_format='channels_last') (Keras's channels_first flatten reorders).
            if self.fmt == "channels_first" or t.perm is None:
                raise _Skip("flattens a tensor in a layout netspec cannot express")
            raise _Skip("flattens channel-major data in a channels_last network (needs permute)")
        elif self.fmt == "channels_first" and rank > 2:
            args["data_format"] = "channels_last"  # memory order, as ONNX flattens
        size = int(np.prod([d for d in t.shape[1:]])) if t.shape and None not in t.shape[1:] else None
        self.add(node, "flatten", args, [x], (0, 1), (None, size))

    def on_Reshape(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        target = [int(v) for v in self.const(node, node.input[1], "the target shape")]
        known = t.shape[1:] if t.shape else ()
        if target and target[0] in (-1, 0) and len(target) == 2 and None not in known:
            if target[1] in (-1, int(np.prod(known))):
                return self.flatten(node, t)
        if t.perm != tuple(range(len(t.perm or ()))):
            raise _Skip("reshapes a tensor in a layout netspec cannot express")
        if not target or target[0] not in (-1, 0):
            raise _Skip("reshape that changes the batch axis")
        rest = tuple(target[1:])
        shape = (None, *rest)
        self.add(node, "reshape", {"target_shape": rest}, [t.name], tuple(range(len(shape))), shape)

    def on_Gemm(self, node: Any) -> None:
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        w = self.const(node, node.input[1], "the weights")
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            raise _Skip("a Gemm other than x @ W + b")
        kernel = w.T if a.get("transB", 0) else w
        bias = self.const(node, node.input[2], "the bias") if len(node.input) > 2 and node.input[2] else None
        self.dense(node, t, kernel, bias)

    def dense(self, node: Any, t: _Tensor, kernel: np.ndarray, bias: np.ndarray | None,
              name: str | None = None) -> None:
        args: dict[str, Any] = {"units": int(kernel.shape[1])}
        if bias is None:
            args["use_bias"] = False
        weights = [kernel.astype(np.float32)] + ([np.asarray(bias, np.float32).reshape(-1)] if bias is not None else [])
        shape = (*(t.shape[:-1] if t.shape else (None,)), int(kernel.shape[1]))
        self.add(node, "dense", args, [t.name], t.perm or (0, 1), shape, weights, name)

    def on_MatMul(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        w = self.const(node, node.input[1], "the weights")
        if w.ndim != 2:
            raise _Skip("MatMul with a weight of rank other than 2")
        # A following Add of a constant vector is the bias (tf2onnx's Dense).
        readers = [n for n in self.graph.node if node.output[0] in n.input]
        if len(readers) == 1 and readers[0].op_type == "Add":
            other = [i for i in readers[0].input if i != node.output[0]]
            b = self.values.get(other[0]) if other else None
            if b is not None and b.const is not None and b.const.size == w.shape[1]:
                self.dense(node, t, w, b.const, self.layer_name(readers[0], "dense"))
                self.values[readers[0].output[0]] = self.values[node.output[0]]
                self.absorbed.add(readers[0].output[0])
                return
        self.dense(node, t, w, None)

    def activation(self, node: Any) -> None:
        if node.output[0] in self.absorbed:
            return
        t = self.tensor(node, node.input[0])
        name = _ACTIVATIONS[node.op_type]
        a = _attrs(node)
        if name == "elu" and float(a.get("alpha", 1.0)) != 1.0:
            op, args = "elu", {"alpha": float(a["alpha"])}
        else:
            op, args = "activation", {"activation": name}
        if op == "activation" and name not in _known_activations():
            raise _Skip(f"netspec has no activation {name!r}")
        if self.fuse(node, t, name):
            return
        self.add(node, op, args, [t.name], t.perm, t.shape)

    def fuse(self, node: Any, t: _Tensor, activation: str) -> bool:
        """netspec's own export writes ``conv2d(..., activation='relu')`` as Conv 'c/conv' + Relu 'c': one layer again."""
        layer = self.producer(t)
        if layer is None or not node.name:
            return False
        base = re.sub(r"/(NCHW|NHWC|NCW|NWC|NCDHW|NDHWC)$", "", node.name)  # the layer's value before a layout transpose
        fused = {f"{_name(base)}.{part}" for part in ("conv", "gemm", "pointwise", "matmul", "conv_transpose")}
        readers = [n for n in self.graph.node if node.input[0] in n.input]
        if (layer.name not in fused or t.name != layer.name or len(readers) != 1
                or "activation" in layer.args or "activation" not in _arg_names(layer.op)):
            return False
        self.names.discard(layer.name)
        self.names.discard(_name(base))
        layer.name = _name(base)
        self.names.add(layer.name)
        layer.args["activation"] = activation
        self.values[node.output[0]] = _Tensor(layer.name, t.perm, shape=t.shape)
        return True

    def on_LeakyRelu(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        self.add(node, "leaky_relu", {"negative_slope": float(_attrs(node).get("alpha", 0.01))}, [t.name],
                 t.perm, t.shape)

    def on_Clip(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        a = _attrs(node)
        def bound(key: str, index: int) -> float | None:
            if key in a:
                return float(a[key])
            if len(node.input) > index and node.input[index]:
                return float(np.asarray(self.const(node, node.input[index], key)).reshape(-1)[0])
            return None

        lo, hi = bound("min", 1), bound("max", 2)
        if lo not in (0, 0.0):
            raise _Skip("a Clip whose lower bound is not 0 (only ReLU-like clips are layers)")
        self.add(node, "relu", {} if hi is None else {"max_value": float(hi)}, [t.name], t.perm, t.shape)

    def on_Softmax(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        axis = self.logical_axis(t, _attrs(node).get("axis", -1))
        if axis == -1 and self.fuse(node, t, "softmax"):
            return
        self.add(node, "softmax", {} if axis == -1 else {"axis": axis}, [t.name], t.perm, t.shape)

    def on_Add(self, node: Any) -> None:  # pragma: no cover - dispatched through _MERGES
        self.merge(node)

    def merge(self, node: Any) -> None:
        if node.output[0] in self.absorbed:
            return
        tensors = [self.values.get(i) for i in node.input]
        if any(t is None for t in tensors):
            raise _Skip("reads a value that nothing before it produces")
        if any(t.const is not None for t in tensors):
            return self.affine(node, tensors)
        self.same_layout(tensors)
        shape = tensors[0].shape
        self.add(node, _MERGES[node.op_type], {}, [t.name for t in tensors], tensors[0].perm, shape)

    def channel_vector(self, t: _Tensor, const: np.ndarray) -> np.ndarray | None:
        """A constant that broadcasts along ``t``'s channel axis only, as a vector (else None)."""
        rank = len(t.perm or ())
        channel = 1 if self.fmt == "channels_first" else rank - 1
        axis = t.perm.index(channel) if t.perm else channel
        shape = [1] * rank
        c = t.shape[axis] if t.shape else None
        if c is None or const.size not in (1, c):
            return None
        shape[axis] = const.size
        try:
            return np.broadcast_to(const.reshape(shape[rank - const.ndim:] if const.ndim < rank else shape), shape).reshape(-1)\
                if const.size == c else np.full(c, const.reshape(-1)[0], np.float32)
        except ValueError:
            return None

    def affine(self, node: Any, tensors: list[_Tensor]) -> None:
        """``x * s + b`` with per-channel constants (tf2onnx's batchnorm) as a batchnorm with neutral statistics."""
        xs = [t for t in tensors if t.const is None]
        consts = [t.const for t in tensors if t.const is not None]
        if len(xs) != 1 or len(consts) != 1 or node.op_type not in ("Mul", "Add", "Sub"):
            raise _Skip(f"{node.op_type} with a constant tensor operand (netspec merges take tensors or numbers)")
        x = xs[0]
        if self.rescaling(node, x, np.asarray(consts[0], np.float32)):
            return
        if self.normalization(node, x, np.asarray(consts[0], np.float32)):
            return
        if np.asarray(consts[0]).size == 1:  # a number operand: add(x, 3), multiply(x, 1 / 6)
            position = [i for i, t_ in enumerate(tensors) if t_.const is not None][0]
            value = float(np.asarray(consts[0]).reshape(-1)[0])
            self.add(node, _MERGES[node.op_type], {"constants": ((position, value),)}, [x.name], x.perm, x.shape)
            return
        vec = self.channel_vector(x, np.asarray(consts[0], np.float32))
        if vec is None:
            raise _Skip(f"{node.op_type} with a constant that is not per channel")
        c = vec.size
        scale, shift = np.ones(c, np.float32), np.zeros(c, np.float32)
        if node.op_type == "Mul":
            scale = vec
            readers = [n for n in self.graph.node if node.output[0] in n.input]
            if len(readers) == 1 and readers[0].op_type == "Add":
                other = [self.values.get(i) for i in readers[0].input if i != node.output[0]]
                if other and other[0] is not None and other[0].const is not None:
                    b = self.channel_vector(x, np.asarray(other[0].const, np.float32))
                    if b is not None:
                        shift = b
                        self.absorbed.add(readers[0].output[0])
                        self.add(node, "batchnorm", self.bn_axis(x), [x.name], x.perm, x.shape,
                                 [scale, shift, np.zeros(c, np.float32), np.full(c, 1 - 0.001, np.float32)],
                                 self.layer_name(readers[0], "batchnorm"))
                        self.values[readers[0].output[0]] = self.values[node.output[0]]
                        return
        elif node.op_type == "Add":
            shift = vec
        else:
            if tensors[0].const is not None:
                raise _Skip("a constant minus a tensor")
            shift = -vec
        self.add(node, "batchnorm", self.bn_axis(x), [x.name], x.perm, x.shape,
                 [scale, shift, np.zeros(c, np.float32), np.full(c, 1 - 0.001, np.float32)])

    def rescaling(self, node: Any, x: _Tensor, scale: np.ndarray) -> bool:
        """netspec's export writes ``rescaling`` as Mul 'L/scaled' and Add 'L': one layer again."""
        if node.op_type != "Mul" or not node.name.endswith("/scaled"):
            return False
        readers = [n for n in self.graph.node if node.output[0] in n.input]
        if len(readers) != 1 or readers[0].op_type != "Add" or readers[0].name != node.name[: -len("/scaled")]:
            return False
        other = [self.values.get(i) for i in readers[0].input if i != node.output[0]]
        if not other or other[0] is None or other[0].const is None:
            return False

        def value(a: np.ndarray) -> Any:
            flat = [_f32(float(v)) for v in np.asarray(a).reshape(-1)]
            return flat[0] if len(flat) == 1 else tuple(flat)

        args: dict[str, Any] = {"scale": value(scale)}
        offset = value(other[0].const)
        if offset != 0.0:
            args["offset"] = offset
        self.absorbed.add(readers[0].output[0])
        self.add(node, "rescaling", args, [x.name], x.perm, x.shape, name=self.layer_name(readers[0], "rescaling"))
        self.values[readers[0].output[0]] = self.values[node.output[0]]
        return True

    def normalization(self, node: Any, x: _Tensor, mean: np.ndarray) -> bool:
        """netspec's export writes ``normalization`` as Sub 'L/centered' and Div 'L': one layer again.

        The node's doc string (the spec's call) tells a layer with fixed
        ``mean=``/``variance=`` arguments from one that holds them as weights.
        """
        if node.op_type != "Sub" or not node.name.endswith("/centered"):
            return False
        readers = [n for n in self.graph.node if node.output[0] in n.input]
        if len(readers) != 1 or readers[0].op_type != "Div" or readers[0].name != node.name[: -len("/centered")]:
            return False
        den = self.values.get(readers[0].input[1])
        vec_m = self.channel_vector(x, mean)
        vec_d = self.channel_vector(x, np.asarray(den.const, np.float32)) if den is not None and den.const is not None \
            else None
        if vec_m is None or vec_d is None:
            return False
        variance = (vec_d.astype(np.float64) ** 2).astype(np.float32)
        call = node.doc_string.split(": ", 1)[-1]
        self.absorbed.add(readers[0].output[0])
        name = self.layer_name(readers[0], "normalization")
        args = self.bn_axis(x)
        if "mean=" in call:
            args.update(mean=tuple(_f32(float(v)) for v in vec_m), variance=tuple(_f32(float(v)) for v in variance))
            self.add(node, "normalization", args, [x.name], x.perm, x.shape, name=name)
        else:
            weights = [vec_m, variance, np.zeros((), np.float32)]
            self.add(node, "normalization", args, [x.name], x.perm, x.shape, weights, name=name)
        self.values[readers[0].output[0]] = self.values[node.output[0]]
        return True

    def bn_axis(self, t: _Tensor) -> dict[str, Any]:
        axis = self.logical_axis(t, t.perm.index(1 if self.fmt == "channels_first" else len(t.perm) - 1)) \
            if t.perm else -1
        return {} if axis == -1 else {"axis": axis}

    def on_Resize(self, node: Any) -> None:
        """Integer-scale ``Resize`` of the spatial axes: ``upsampling{1,2,3}d`` (nearest as Keras repeats, bilinear)."""
        a = _attrs(node)
        t = self.tensor(node, node.input[0])
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        ctm = a.get("coordinate_transformation_mode", b"half_pixel")
        ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
        if len(node.input) < 3 or not node.input[2]:
            raise _Skip("a Resize by output sizes (netspec reads scales)")
        scales = [float(s) for s in self.const(node, node.input[2], "the scales")]
        rank = len(t.perm or ())
        channel = 1 if self.fmt == "channels_first" else rank - 1
        size = {}
        for phys, s in enumerate(scales):
            logical = t.perm[phys] if t.perm else phys
            if logical in (0, channel):
                if s != 1.0:
                    raise _Skip("a Resize of the batch or channel axis")
                continue
            if not s.is_integer() or s < 1:
                raise _Skip(f"a Resize by a non-integer scale {s}")
            size[logical] = int(s)
        if mode == "linear" and ctm == "half_pixel":
            interpolation = "bilinear"
        elif mode == "nearest" and ctm == "asymmetric" and a.get("nearest_mode", b"floor") in (b"floor", "floor"):
            interpolation = "nearest"
        else:
            raise _Skip(f"Resize mode {mode!r} with {ctm!r} coordinates has no Keras upsampling counterpart")
        n = len(size)
        op = f"upsampling{n}d"
        if op not in OPS:
            raise _Skip(f"netspec has no {op}")
        sizes = tuple(size[k] for k in sorted(size))
        args: dict[str, Any] = {"size": sizes if n > 1 else sizes[0]}
        if interpolation != "nearest":
            if n != 2:
                raise _Skip("bilinear upsampling of other than two axes")
            args["interpolation"] = interpolation
        shape = tuple(None if d is None else int(d * s) for d, s in zip(t.shape or (), scales))
        self.add(node, op, args, [t.name], t.perm, shape)

    def on_Pad(self, node: Any) -> None:
        t = self.tensor(node, node.input[0])
        a = _attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = list(a["pads"]) if "pads" in a else [int(v) for v in self.const(node, node.input[1], "pads")]
        if mode != "constant" or (len(node.input) > 2 and node.input[2]
                                  and float(np.asarray(self.const(node, node.input[2], "the value"))) != 0):
            raise _Skip("only zero padding is a layer")
        rank = len(pads) // 2
        perm = t.perm or tuple(range(rank))
        channel = 1 if self.fmt == "channels_first" else rank - 1
        logical = {perm[i]: (pads[i], pads[rank + i]) for i in range(rank)}
        if any(logical[ax] != (0, 0) for ax in (0, channel)):
            raise _Skip("padding of the batch or channel axis")
        spatial = [ax for ax in range(1, rank) if ax != channel]
        n = len(spatial)
        pairs = tuple(logical[ax] for ax in spatial)
        op = f"zeropad{n}d"
        if op not in OPS:
            raise _Skip(f"netspec has no {op}")
        shape = tuple(None if s is None else s + pads[i] + pads[rank + i] for i, s in enumerate(t.shape or ()))
        self.add(node, op, {"padding": pairs if n > 1 else pairs[0]}, [t.name], t.perm, shape)


def _arg_names(op: str) -> list[str]:
    from ..core.ops import arg_names

    return arg_names(OPS[op].attrs)


def _known_activations() -> tuple[str, ...]:
    from ..core.argtypes import ACTIVATIONS

    return ACTIVATIONS


def _f32(value: float) -> float:
    """The shortest decimal that is the same float32 (ONNX stores 1e-3 as 0.0010000000474974513).

    >>> _f32(0.0010000000474974513)
    0.001
    """
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def _one(values: list[int]) -> Any:
    """One size for equal sizes, else a tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


class _Skip(Exception):
    """One node cannot be imported; the reader notes why and goes on, to name every such node."""


def model_from_onnx(model: Any, path: str = "<onnx>") -> ImportedModel:
    """An :class:`ImportedModel` (weights included, in Keras layouts) from an ``onnx.ModelProto``."""
    return _Reader(model, path).run()
