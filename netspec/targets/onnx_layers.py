"""ONNX lowerings of version 2's layer ops (see :mod:`netspec.core.ops_layers`).

ONNX has no single op for most of them, so they are composed from basic
ones (docs/onnx.md lists each): ``layernorm`` and ``groupnorm`` from
``ReduceMean`` / ``Sqrt`` / ``Mul`` / ``Add`` on any axes and layout
(``groupnorm`` reshapes into groups and back), ``normalization`` as
``(x - mean) / max(sqrt(variance), 1e-7)`` with both folded into constants,
``unit_normalization`` as ``x * min(1 / sqrt(sum x**2), 1e12)``,
``layer_scale`` and ``rescaling`` as ``Mul`` (+ ``Add``), ``prelu`` as
``PRelu``, ``permute`` as a relabelling of the stored layout (an
``Identity``), the dropouts and noises as ``Identity``.  Merges fold their
operands left as Keras does (numbers become scalar constants; a lower-rank
operand is ``Unsqueeze``-d after the batch axis).  Activations: ``Celu``,
``LogSoftmax``, ``Shrink`` where ONNX has them, compositions otherwise
(``sparsemax`` through ``TopK`` and ``CumSum``, in Keras's formula).

>>> import netspec
>>> from netspec.targets.onnx_model import to_onnx
>>> net = netspec.load_source("network n { input x: [4]\\n y = relu6()\\n add(y, 3, name='p') }")
>>> [n.op_type for n in to_onnx(net, opset=17).graph.node]
['Clip', 'Add']
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.ir import Node
from ..core.ops_layers import MERGE_OPS, NEW_ACTIVATION_OPS, merge_operands

__all__ = ["EMITTED", "LOWERINGS", "install"]

#: ONNX op types this module may emit besides those of :mod:`netspec.targets.onnx_model`.
EMITTED = ("Celu", "CumSum", "Gather", "Shape", "Less", "LessOrEqual", "LogSoftmax", "Min", "PRelu", "Reciprocal", "ReduceMean", "ReduceSum",
           "Shrink", "Slice", "Sqrt", "TopK", "Unsqueeze", "Where")

F32 = np.float32


def _doc(node: Node) -> str:
    from .onnx_model import _node_doc

    return _node_doc(node)


def _identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def _to_value(array: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """An array laid out like the spec (batch axis included) in a value's axis order."""
    return np.ascontiguousarray(np.transpose(array, perm)).astype(F32)


def _spec_axes(axis: Any, rank: int) -> list[int]:
    items = axis if isinstance(axis, tuple) else (axis,)
    return sorted(a % rank for a in items)


# --- activations -----------------------------------------------------------------------------------


def activate(builder: Any, node: Node, kind: str, x: str, out: str, axis: int, **params: Any) -> str | None:
    """Emit a version-2 activation on value ``x`` into ``out``; None if ``kind`` is not one of them."""
    b = builder
    doc = _doc(node)

    def step(op_type: str, inputs: list[str], what: str, **attrs: Any) -> str:
        return b.emit(op_type, inputs, b.fresh(f"{node.name}/{what}"), doc, **attrs)

    s = b.scalar
    if kind == "relu6":
        return b.emit("Clip", [x, s(0.0), s(6.0)], out, doc)
    if kind == "hard_tanh":
        return b.emit("Clip", [x, s(-1.0), s(1.0)], out, doc)
    if kind == "hard_silu":
        h = step("Clip", [step("Add", [x, s(3.0)], "plus3"), s(0.0), s(6.0)], "relu6")
        return b.emit("Mul", [x, step("Div", [h, s(6.0)], "hard_sigmoid")], out, doc)
    if kind == "mish":
        return b.emit("Mul", [x, step("Tanh", [step("Softplus", [x], "softplus")], "tanh")], out, doc)
    if kind == "log_softmax":
        return b.emit("LogSoftmax", [x], out, doc, axis=axis)
    if kind == "celu":
        return b.emit("Celu", [x], out, doc, alpha=float(params.get("alpha", 1.0)))
    if kind == "log_sigmoid":
        return b.emit("Neg", [step("Softplus", [step("Neg", [x], "neg")], "softplus")], out, doc)
    if kind == "soft_shrink":
        t = float(params.get("threshold", 0.5))
        return b.emit("Shrink", [x], out, doc, bias=t, lambd=t)
    if kind == "hard_shrink":
        return b.emit("Shrink", [x], out, doc, bias=0.0, lambd=float(params.get("threshold", 0.5)))
    if kind == "tanh_shrink":
        return b.emit("Sub", [x, step("Tanh", [x], "tanh")], out, doc)
    if kind == "squareplus":
        root = step("Sqrt", [step("Add", [step("Mul", [x, x], "square"), s(float(params.get("b", 4.0)))],
                                   "plus_b")], "sqrt")
        return b.emit("Div", [step("Add", [x, root], "sum"), s(2.0)], out, doc)
    if kind == "sparse_plus":
        t = step("Add", [x, s(1.0)], "plus1")
        mid = step("Mul", [s(0.25), step("Mul", [t, t], "square")], "mid")
        upper = step("Where", [step("Less", [x, s(1.0)], "below1"), mid, x], "upper")
        return b.emit("Where", [step("LessOrEqual", [x, s(-1.0)], "below_m1"), s(0.0), upper], out, doc)
    if kind == "sparse_sigmoid":
        mid = step("Mul", [step("Add", [x, s(1.0)], "plus1"), s(0.5)], "mid")
        return b.emit("Clip", [mid, s(0.0), s(1.0)], out, doc)
    if kind == "threshold":
        above = step("Greater", [x, s(float(params["threshold"]))], "above")
        return b.emit("Where", [above, x, s(float(params["default_value"]))], out, doc)
    if kind == "glu":
        half = int(params["half"] if "half" in params else b.shapes[node.name][-1])
        ax = b.ints(f"{node.name}/axis", [axis])
        first = step("Slice", [x, b.ints(f"{node.name}/zero", [0]), b.ints(f"{node.name}/half", [half]), ax],
                     "first_half")
        second = step("Slice", [x, b.ints(f"{node.name}/half", [half]), b.ints(f"{node.name}/full", [2 * half]),
                                ax], "second_half")
        return b.emit("Mul", [first, step("Sigmoid", [second], "gate")], out, doc)
    if kind == "sparsemax":
        n = params["size"] if "size" in params else b.shapes[node.name][-1]  # None: known only at run time
        return _sparsemax(b, node, x, out, axis, n, step)
    return None


def _sparsemax(b: Any, node: Node, x: str, out: str, axis: int, n: int | None, step: Callable[..., str]) -> str:
    """Keras 3's sparsemax: ``tau = (sum of the cumulative sums on the support - 1) / k``."""
    doc = _doc(node)
    if n:
        k = b.ints(f"{node.name}/k", [n])
    else:  # an unknown size: the runtime's
        k = step("Gather", [step("Shape", [x], "shape"), b.ints(f"{node.name}/axis_index", [axis])], "k")
    srt = b.emit("TopK", [x, k], b.fresh(f"{node.name}/sorted"), doc, axis=axis, largest=1, sorted=1)
    b.nodes[-1].output.append(b.fresh(f"{node.name}/sorted_indices"))
    cum = step("CumSum", [srt, b.ints(f"{node.name}/axis", [axis])], "cumsum")
    if n:
        shape = [1] * (len(b.shapes[node.name]) + 1)
        shape[axis] = n
        r = b.const(f"{node.name}/r", np.arange(1, n + 1, dtype=F32).reshape(shape))
    else:  # 1, 2, ..., n along the axis: the cumulative sum of ones
        ones = step("Add", [step("Mul", [srt, b.scalar(0.0)], "zeros"), b.scalar(1.0)], "ones")
        r = step("CumSum", [ones, b.ints(f"{node.name}/axis", [axis])], "r")
    bound = step("Div", [step("Sub", [cum, b.scalar(1.0)], "cum_minus1"), r], "bound")
    support = step("Greater", [step("Sub", [srt, bound], "margin"), b.scalar(0.0)], "support")
    axes = b.ints(f"{node.name}/axes", [axis])
    count = step("ReduceSum", [step("Cast", [support], "support_f", to=1), axes], "count", keepdims=1)
    safe = step("Where", [support, cum, b.scalar(0.0)], "cum_safe")
    total = step("ReduceSum", [safe, axes], "cum_total", keepdims=1)
    tau = step("Div", [step("Sub", [total, b.scalar(1.0)], "total_minus1"), count], "tau")
    return b.emit("Relu", [step("Sub", [x, tau], "shifted")], out, doc)


def _activation_op(kind: str, *fields: str) -> Callable[[Any, Node], None]:
    def lower(b: Any, node: Node) -> None:
        value, perm = b.stored[node.inputs[0]]
        a = node.attrs
        params = {f: getattr(a, f) for f in fields if f != "axis"}
        axis = perm.index(len(perm) - 1)
        if "axis" in fields:
            spec_axis = a.axis % len(perm)
            axis = perm.index(spec_axis)
            size = b.shapes[node.name][spec_axis - 1]
            params["half" if kind == "glu" else "size"] = size
        b.activate(node, kind, value, node.name, axis, **params)
        b.done(node, perm)
    return lower


# --- normalisations ------------------------------------------------------------------------------


def _reduce_mean(b: Any, node: Node, x: str, axes: list[int], what: str) -> str:
    doc = _doc(node)
    out = b.fresh(f"{node.name}/{what}")
    if b.opset >= 18:
        return b.emit("ReduceMean", [x, b.ints(f"{node.name}/axes", axes)], out, doc, keepdims=1)
    return b.emit("ReduceMean", [x], out, doc, axes=axes, keepdims=1)


def _moments(b: Any, node: Node, x: str, axes: list[int]) -> tuple[str, str]:
    doc = _doc(node)
    mean = _reduce_mean(b, node, x, axes, "mean")
    centered = b.emit("Sub", [x, mean], b.fresh(f"{node.name}/centered"), doc)
    var = _reduce_mean(b, node, b.emit("Mul", [centered, centered], b.fresh(f"{node.name}/square"), doc),
                       axes, "variance")
    return centered, var


def _layernorm(b: Any, node: Node) -> None:
    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    rank = len(perm)
    shape = (1, *b.shapes[node.inputs[0]])
    spec_axes = _spec_axes(a.axis, rank)
    axes = sorted(perm.index(d) for d in spec_axes)
    doc = _doc(node)
    centered, var = _moments(b, node, value, axes)
    inv = b.emit("Reciprocal", [b.emit("Sqrt", [b.emit("Add", [var, b.scalar(float(a.epsilon))],
                                                      b.fresh(f"{node.name}/var_eps"), doc)],
                                       b.fresh(f"{node.name}/std"), doc)], b.fresh(f"{node.name}/inv"), doc)
    bshape = [shape[d] if d in spec_axes else 1 for d in range(rank)]
    if a.rms_scaling:  # Keras's (deprecated) rms_scaling divides x itself by the standard deviation
        y = b.emit("Mul", [value, inv], b.fresh(f"{node.name}/scaled") if a.scale or a.rms_scaling else node.name,
                   doc)
        gamma = b.const(f"{node.name}/gamma", _to_value(b.weight(node, "gamma").reshape(bshape), perm))
        b.emit("Mul", [y, gamma], node.name, doc)
        b.done(node, perm)
        return
    y = b.emit("Mul", [centered, inv], b.fresh(f"{node.name}/normalized") if (a.scale or a.center) else node.name,
               doc)
    if a.scale:
        gamma = b.const(f"{node.name}/gamma", _to_value(b.weight(node, "gamma").reshape(bshape), perm))
        y = b.emit("Mul", [y, gamma], b.fresh(f"{node.name}/scaled") if a.center else node.name, doc)
    if a.center:
        beta = b.const(f"{node.name}/beta", _to_value(b.weight(node, "beta").reshape(bshape), perm))
        b.emit("Add", [y, beta], node.name, doc)
    b.done(node, perm)


def _groupnorm(b: Any, node: Node) -> None:
    a = node.attrs
    rank = len(b.shapes[node.inputs[0]]) + 1
    perm = _identity(rank)
    x = b.get(node.inputs[0], perm)
    shape = (None, *b.shapes[node.inputs[0]])
    ax = a.axis % rank
    c = shape[ax]
    doc = _doc(node)

    def sizes(dims: list[Any]) -> list[int]:
        out, unknown = [], False
        for d in dims:
            if d is None and not unknown:
                out.append(-1)
                unknown = True
            elif d is None:
                from ..core.diagnostics import Diagnostic, NetspecError

                raise NetspecError([Diagnostic.error(
                    "E605", f"onnx target: groupnorm {node.name!r} needs at most one unknown size after its "
                    "channel axis", node.span)])
            else:
                out.append(d)
        return out

    grouped_shape = [0] * ax + [a.groups, c // a.groups] + sizes(list(shape[ax + 1:]))
    grouped = b.emit("Reshape", [x, b.ints(f"{node.name}/grouped_shape", grouped_shape)],
                     b.fresh(f"{node.name}/grouped"), doc)
    axes = [i for i in range(1, rank + 1) if i != ax]
    centered, var = _moments(b, node, grouped, axes)
    std = b.emit("Sqrt", [b.emit("Add", [var, b.scalar(float(a.epsilon))], b.fresh(f"{node.name}/var_eps"), doc)],
                 b.fresh(f"{node.name}/std"), doc)
    normalized = b.emit("Div", [centered, std], b.fresh(f"{node.name}/normalized_groups"), doc)
    back = [0] * ax + [c] + sizes(list(shape[ax + 1:]))
    last = not (a.scale or a.center)
    y = b.emit("Reshape", [normalized, b.ints(f"{node.name}/shape", back)],
               node.name if last else b.fresh(f"{node.name}/normalized"), doc)
    bshape = [1] * rank
    bshape[ax] = c
    if a.scale:
        gamma = b.const(f"{node.name}/gamma", b.weight(node, "gamma").reshape(bshape).astype(F32))
        y = b.emit("Mul", [y, gamma], b.fresh(f"{node.name}/scaled") if a.center else node.name, doc)
    if a.center:
        beta = b.const(f"{node.name}/beta", b.weight(node, "beta").reshape(bshape).astype(F32))
        b.emit("Add", [y, beta], node.name, doc)
    b.done(node, perm)


def _normalization(b: Any, node: Node) -> None:
    from .numpy_layers import normalization_stats

    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    shape = (1, *b.shapes[node.inputs[0]])
    w = {} if a.mean is not None else {"mean": b.weight(node, "mean"), "variance": b.weight(node, "variance")}
    mean, var = normalization_stats(a, w, shape)
    denom = np.maximum(np.sqrt(var), F32(1e-7)).astype(F32)
    doc = _doc(node)
    mean_c = b.const(f"{node.name}/mean", _to_value(mean, perm))
    denom_c = b.const(f"{node.name}/denominator", _to_value(denom, perm))
    if a.invert:
        scaled = b.emit("Mul", [value, denom_c], b.fresh(f"{node.name}/scaled"), doc)
        b.emit("Add", [mean_c, scaled], node.name, doc)
    else:
        centered = b.emit("Sub", [value, mean_c], b.fresh(f"{node.name}/centered"), doc)
        b.emit("Div", [centered, denom_c], node.name, doc)
    b.done(node, perm)


def _last_axis_const(b: Any, node: Node, name: str, values: Any, perm: tuple[int, ...]) -> str:
    arr = np.asarray(values, F32)
    if arr.ndim == 0:
        return b.scalar(float(arr))
    shape = [1] * len(perm)
    shape[-1] = arr.size
    return b.const(f"{node.name}/{name}", _to_value(arr.reshape(shape), perm))


def _rescaling(b: Any, node: Node) -> None:
    a = node.attrs
    value, perm = b.stored[node.inputs[0]]
    doc = _doc(node)
    scaled = b.emit("Mul", [value, _last_axis_const(b, node, "scale", a.scale, perm)],
                    b.fresh(f"{node.name}/scaled"), doc)
    b.emit("Add", [scaled, _last_axis_const(b, node, "offset", a.offset, perm)], node.name, doc)
    b.done(node, perm)


def _unit_norm(b: Any, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    doc = _doc(node)
    axes = sorted(perm.index(d) for d in _spec_axes(node.attrs.axis, len(perm)))
    sq = b.emit("Mul", [value, value], b.fresh(f"{node.name}/square"), doc)
    total = b.emit("ReduceSum", [sq, b.ints(f"{node.name}/axes", axes)], b.fresh(f"{node.name}/sum"), doc,
                   keepdims=1)
    inv = b.emit("Reciprocal", [b.emit("Sqrt", [total], b.fresh(f"{node.name}/norm"), doc)],
                 b.fresh(f"{node.name}/inv"), doc)
    inv = b.emit("Min", [inv, b.scalar(1e12)], b.fresh(f"{node.name}/inv_capped"), doc)
    b.emit("Mul", [value, inv], node.name, doc)
    b.done(node, perm)


def _layer_scale(b: Any, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    gamma = _last_axis_const(b, node, "gamma", b.weight(node, "gamma"), perm)
    b.emit("Mul", [value, gamma], node.name, _doc(node))
    b.done(node, perm)


def _prelu(b: Any, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    alpha = b.weight(node, "alpha").reshape((1, *b.weight(node, "alpha").shape))
    b.emit("PRelu", [value, b.const(f"{node.name}/alpha", _to_value(alpha, perm))], node.name, _doc(node))
    b.done(node, perm)


# --- merges, noise, permute --------------------------------------------------------------------------

_ONNX_MERGE = {"add": "Add", "average": "Add", "subtract": "Sub", "multiply": "Mul", "maximum": "Max",
               "minimum": "Min"}


def _merge(op: str) -> Callable[[Any, Node], None]:
    def lower(b: Any, node: Node) -> None:
        ranks = {b.rank(t) for t in node.inputs}
        doc = _doc(node)
        if len(ranks) == 1:
            perm = b.common_perm(node.inputs)
            values = [b.get(t, perm) for t in node.inputs]
        else:
            rank = max(ranks)
            perm = _identity(rank)
            values = []
            for t in node.inputs:
                v = b.get(t, _identity(b.rank(t)))
                missing = rank - b.rank(t)
                if missing:
                    v = b.emit("Unsqueeze", [v, b.ints(f"{node.name}/expand", list(range(1, missing + 1)))],
                               b.fresh(f"{node.name}/{t}_expanded"), doc)
                values.append(v)
        it = iter(values)
        operands = [next(it) if kind == "tensor" else b.scalar(float(v))
                    for kind, v in merge_operands(node.inputs, node.attrs)]
        op_type = _ONNX_MERGE[op]
        if op == "add" and len(operands) > 2 and len(operands) == len(values):
            b.emit("Sum", operands, node.name, doc)
        else:
            acc = operands[0]
            for i, v in enumerate(operands[1:], start=1):
                out = node.name if i == len(operands) - 1 and op != "average" else b.fresh(
                    f"{node.name}/{op_type.lower()}{i}")
                acc = b.emit(op_type, [acc, v], out, doc)
            if op == "average":
                b.emit("Div", [acc, b.scalar(float(len(operands)))], node.name, doc)
        b.done(node, perm)
    return lower


def _identity_op(b: Any, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    b.emit("Identity", [value], node.name, _doc(node) + f"\n  {node.op}: the identity at inference")
    b.done(node, perm)


def _permute(b: Any, node: Node) -> None:
    value, perm = b.stored[node.inputs[0]]
    # Output spec axis j holds input spec axis dims[j-1]: relabel the stored layout, move no data.
    to_out = {0: 0, **{d: j for j, d in enumerate(node.attrs.dims, start=1)}}
    b.emit("Identity", [value], node.name, _doc(node) + "\n  permute: the same data, relabelled axes")
    b.done(node, tuple(to_out[p] for p in perm))


#: Op name -> lowering, for version 2's layer ops (and the merges, now with numbers and broadcasting).
LOWERINGS: dict[str, Callable[[Any, Node], None]] = {
    "layernorm": _layernorm,
    "groupnorm": _groupnorm,
    "normalization": _normalization,
    "rescaling": _rescaling,
    "unit_normalization": _unit_norm,
    "layer_scale": _layer_scale,
    "prelu": _prelu,
    **{op: _merge(op) for op in MERGE_OPS},
    **{op: _identity_op for op in ("spatial_dropout1d", "spatial_dropout2d", "spatial_dropout3d",
                                   "gaussian_noise", "gaussian_dropout", "alpha_dropout")},
    "permute": _permute,
    "log_softmax": _activation_op("log_softmax", "axis"),
    "sparsemax": _activation_op("sparsemax", "axis"),
    "glu": _activation_op("glu", "axis"),
    "celu": _activation_op("celu", "alpha"),
    "soft_shrink": _activation_op("soft_shrink", "threshold"),
    "hard_shrink": _activation_op("hard_shrink", "threshold"),
    "squareplus": _activation_op("squareplus", "b"),
    "threshold": _activation_op("threshold", "threshold", "default_value"),
    **{name: _activation_op(name) for name in NEW_ACTIVATION_OPS},
}


def install(builder: type, lowerings: dict) -> None:
    """Teach the ONNX builder the new activations and add the lowerings (called by :mod:`netspec.targets.onnx_model`)."""
    original = builder.activate

    @functools.wraps(original)
    def activate_any(self: Any, node: Node, kind: str, x: str, out: str, axis: int, **params: Any) -> str:
        done = activate(self, node, kind, x, out, axis, **params)
        return done if done is not None else original(self, node, kind, x, out, axis, **params)

    builder.activate = activate_any  # type: ignore[method-assign]
    lowerings.update(LOWERINGS)
