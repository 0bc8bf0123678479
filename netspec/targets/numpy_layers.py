"""NumPy lowerings of version 2's layer ops (see :mod:`netspec.core.ops_layers`).

Each follows Keras 3's TensorFlow arithmetic step for step: ``LayerNormalization``
(``x * inv + (beta - mean * inv)``, ``rms_scaling`` dividing by the variance as
Keras does), ``GroupNormalization``, ``Normalization`` (``max(sqrt(var), 1e-7)``),
``UnitNormalization`` (``x * min(rsqrt(sum x**2), 1e12)``), PReLU
(``relu(x) - alpha * relu(-x)``), Keras's merges (operands folded left, a
lower-rank operand expanded after the batch axis), and every
``keras.activations`` function.  :mod:`netspec.targets.numpy_exec` adds
:data:`ACTIVATIONS` and :data:`LOWERINGS` to its tables when it loads.

>>> import numpy as np
>>> x = np.array([[-4.0, -1.0, 0.0, 2.0, 5.0]], np.float32)
>>> ACTIVATIONS["relu6"](x, False).tolist()
[[0.0, 0.0, 0.0, 2.0, 5.0]]
>>> ACTIVATIONS["sparsemax"](np.array([[2.0, 0.0]], np.float32), False).tolist()
[[1.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.ir import Node
from ..core.ops_layers import (
    AXIS_ACTIVATIONS,
    INFERENCE_IDENTITY_OPS,
    MERGE_OPS,
    NEW_ACTIVATION_OPS,
    merge_operands,
)

__all__ = ["ACTIVATIONS", "LOWERINGS", "expand_ranks", "install", "normalization_stats"]

F32 = np.float32
Step = Callable[[list, bool], np.ndarray]


# --- activations ------------------------------------------------------------------------------


def _relu6(x: np.ndarray, inplace: bool) -> np.ndarray:
    return np.clip(x, F32(0), F32(6), out=x if inplace else None)


def _hard_silu(x: np.ndarray, inplace: bool) -> np.ndarray:
    h = np.add(x, F32(3))
    np.clip(h, F32(0), F32(6), out=h)
    h /= F32(6)
    return np.multiply(x, h, out=x if inplace else None)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(F32(0), x).astype(F32, copy=False)


def _mish(x: np.ndarray, inplace: bool) -> np.ndarray:
    t = np.tanh(_softplus(x))
    return np.multiply(x, t, out=x if inplace else None)


def _log_softmax(x: np.ndarray, inplace: bool, axis: int = -1) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))).astype(F32, copy=False)


def _celu(x: np.ndarray, inplace: bool, alpha: float = 1.0) -> np.ndarray:
    neg = np.expm1(np.minimum(x, F32(0)) / F32(alpha)) * F32(alpha)
    return (np.maximum(x, F32(0)) + neg).astype(F32, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    pos = F32(1) / (e + F32(1))
    return np.where(x >= 0, pos, e * pos).astype(F32, copy=False)


def _glu(x: np.ndarray, inplace: bool, axis: int = -1) -> np.ndarray:
    a, b = np.split(x, 2, axis=axis)
    return (a * _sigmoid(b)).astype(F32, copy=False)


def _hard_tanh(x: np.ndarray, inplace: bool) -> np.ndarray:
    return np.clip(x, F32(-1), F32(1), out=x if inplace else None)


def _log_sigmoid(x: np.ndarray, inplace: bool) -> np.ndarray:
    return (-_softplus(-x)).astype(F32, copy=False)


def _soft_shrink(x: np.ndarray, inplace: bool, threshold: float = 0.5) -> np.ndarray:
    t = F32(threshold)
    return np.where(x > t, x - t, np.where(x < -t, x + t, F32(0))).astype(F32, copy=False)


def _hard_shrink(x: np.ndarray, inplace: bool, threshold: float = 0.5) -> np.ndarray:
    return np.where(np.abs(x) > F32(threshold), x, F32(0)).astype(F32, copy=False)


def _tanh_shrink(x: np.ndarray, inplace: bool) -> np.ndarray:
    return (x - np.tanh(x)).astype(F32, copy=False)


def _squareplus(x: np.ndarray, inplace: bool, b: float = 4.0) -> np.ndarray:
    return ((x + np.sqrt(np.square(x) + F32(b))) / F32(2)).astype(F32, copy=False)


def _sparse_plus(x: np.ndarray, inplace: bool) -> np.ndarray:
    mid = F32(0.25) * np.square(x + F32(1))
    return np.where(x <= F32(-1), F32(0), np.where(x < F32(1), mid, x)).astype(F32, copy=False)


def _sparse_sigmoid(x: np.ndarray, inplace: bool) -> np.ndarray:
    mid = F32(0.5) * (x + F32(1))
    return np.where(x <= F32(-1), F32(0), np.where(x >= F32(1), F32(1), mid)).astype(F32, copy=False)


def _sparsemax(x: np.ndarray, inplace: bool, axis: int = -1) -> np.ndarray:
    """Keras 3's sparsemax, formula for formula (its threshold sums the cumulative sums on the support)."""
    srt = -np.sort(-x, axis=axis)
    cum = np.cumsum(srt, axis=axis, dtype=F32)
    shape = [1] * x.ndim
    shape[axis] = -1
    r = np.arange(1, x.shape[axis] + 1, dtype=F32).reshape(shape)
    support = srt - (cum - F32(1)) / r > 0
    k = np.sum(support, axis=axis, keepdims=True, dtype=F32)
    tau = (np.sum(np.where(support, cum, F32(0)), axis=axis, keepdims=True, dtype=F32) - F32(1)) / k
    return np.maximum(x - tau, F32(0)).astype(F32, copy=False)


def _threshold(x: np.ndarray, inplace: bool, threshold: float = 0.0, default_value: float = 0.0) -> np.ndarray:
    return np.where(x > F32(threshold), x, F32(default_value)).astype(F32, copy=False)


#: The rest of ``keras.activations`` by name: ``fn(x, inplace, **kwargs) -> y`` with Keras's defaults.
ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "relu6": _relu6,
    "hard_silu": _hard_silu,
    "mish": _mish,
    "log_softmax": _log_softmax,
    "celu": _celu,
    "glu": _glu,
    "hard_tanh": _hard_tanh,
    "log_sigmoid": _log_sigmoid,
    "soft_shrink": _soft_shrink,
    "hard_shrink": _hard_shrink,
    "tanh_shrink": _tanh_shrink,
    "squareplus": _squareplus,
    "sparse_plus": _sparse_plus,
    "sparse_sigmoid": _sparse_sigmoid,
    "sparsemax": _sparsemax,
    "threshold": _threshold,  # only as the op threshold(threshold, default_value)
}


def _whole(fn: Callable[..., np.ndarray], **kwargs: Any) -> Step:
    def step(inputs: list, inplace: bool) -> np.ndarray:
        return fn(inputs[0], False, **kwargs)
    return step


def _lower_activation_layer(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    from . import numpy_exec

    name = node.attrs.activation
    if name in AXIS_ACTIVATIONS and name != "softmax":
        return _whole(numpy_exec.ACTIVATIONS[name])
    return _ORIGINAL_ACTIVATION(node, w)


def _lower_with_args(name: str, *fields: str) -> Callable[[Node, Mapping[str, np.ndarray]], Step]:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        return _whole(ACTIVATIONS[name], **{f: getattr(node.attrs, f) for f in fields})
    return lower


def _lower_named(name: str) -> Callable[[Node, Mapping[str, np.ndarray]], Step]:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        from .numpy_exec import _act_step

        return _act_step(ACTIVATIONS[name])
    return lower


# --- normalisations -----------------------------------------------------------------------------


def _axes(axis: int | tuple[int, ...], ndim: int) -> list[int]:
    return sorted(axis) if isinstance(axis, tuple) else [axis]


def _lower_layernorm(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    gamma, beta = w.get("gamma"), w.get("beta")

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        axes = _axes(a.axis, x.ndim)
        bshape = [1] * x.ndim
        for d in axes:
            bshape[d] = x.shape[d]
        red = tuple(d % x.ndim for d in axes)
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=red, keepdims=True)
        var = np.square(x64 - mean).mean(axis=red, keepdims=True)
        inv = 1.0 / np.sqrt(var + a.epsilon)
        if a.rms_scaling:
            y = x64 * inv
            if gamma is not None:
                y = y * gamma.reshape(bshape)
            return y.astype(F32)
        if gamma is not None:
            inv = inv * gamma.reshape(bshape)
        res = -mean * inv
        if beta is not None:
            res = res + beta.reshape(bshape)
        return (x64 * inv + res).astype(F32)
    return step


def _lower_groupnorm(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    gamma, beta = w.get("gamma"), w.get("beta")

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        ax = a.axis % x.ndim
        shape = list(x.shape)
        shape[ax] //= a.groups
        shape.insert(ax, a.groups)
        xr = x.reshape(shape).astype(np.float64)
        red = tuple(i for i in range(1, len(shape)) if i != ax)
        mean = xr.mean(axis=red, keepdims=True)
        var = np.square(xr - mean).mean(axis=red, keepdims=True)
        inv = 1.0 / np.sqrt(var + a.epsilon)
        bshape = [1] * len(shape)
        bshape[ax], bshape[ax + 1] = a.groups, shape[ax + 1]
        if gamma is not None:
            inv = inv * gamma.reshape(bshape)
        res = -mean * inv
        if beta is not None:
            res = res + beta.reshape(bshape)
        return (xr * inv + res).reshape(x.shape).astype(F32)
    return step


def normalization_stats(a: Any, w: Mapping[str, np.ndarray], shape: tuple[int, ...]
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of a ``normalization`` layer broadcast to ``shape`` (batch included), as Keras builds them.

    >>> from netspec.core.ops_layers import Normalization
    >>> m, v = normalization_stats(Normalization(mean=(1.0, 2.0), variance=(4.0, 9.0)), {}, (1, 3, 2))
    >>> m.shape, v[0, 0].tolist()
    ((1, 1, 2), [4.0, 9.0])
    """
    ndim = len(shape)
    keep = [] if a.axis is None else sorted(d % ndim for d in (a.axis if isinstance(a.axis, tuple) else (a.axis,)))
    bshape = [shape[d] if d in keep else 1 for d in range(ndim)]
    if a.mean is None:
        return w["mean"].reshape(bshape).astype(F32), w["variance"].reshape(bshape).astype(F32)
    out = []
    for value in (a.mean, a.variance):
        arr = np.asarray(value, F32)
        if arr.ndim:
            expanded = [1] * ndim
            for i in range(1, arr.ndim + 1):
                expanded[keep[-i]] = arr.shape[-i]
            arr = arr.reshape(expanded)
        out.append(np.broadcast_to(arr, bshape).astype(F32))
    return out[0], out[1]


def _lower_normalization(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        mean, var = normalization_stats(a, w, (1, *x.shape[1:]))
        denom = np.maximum(np.sqrt(var), F32(1e-7))
        if a.invert:
            return (mean + x * denom).astype(F32)
        return ((x - mean) / denom).astype(F32)
    return step


def _lower_rescaling(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    scale, offset = np.asarray(node.attrs.scale, F32), np.asarray(node.attrs.offset, F32)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        y = np.multiply(inputs[0], scale, out=inputs[0] if inplace and scale.ndim == 0 else None)
        y += offset
        return y.astype(F32, copy=False)
    return step


def _lower_unit_norm(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    axis = node.attrs.axis

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        sq = np.sum(np.square(x, dtype=np.float64), axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):
            inv = np.minimum(1.0 / np.sqrt(sq), 1e12)
        return (x * inv).astype(F32)
    return step


def _lower_layer_scale(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    gamma = w["gamma"]

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return np.multiply(inputs[0], gamma, out=inputs[0] if inplace else None)
    return step


def _lower_prelu(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    alpha = w["alpha"]

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        return (np.maximum(x, F32(0)) - alpha * np.maximum(-x, F32(0))).astype(F32)
    return step


# --- merges, noise, permute -----------------------------------------------------------------------

_UFUNCS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "average": np.add,
           "maximum": np.maximum, "minimum": np.minimum}


def expand_ranks(inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Keras's merges expand a lower-rank operand right after the batch axis.

    >>> [t.shape for t in expand_ranks([np.zeros((2, 3, 3, 4)), np.zeros((2, 4))])]
    [(2, 3, 3, 4), (2, 1, 1, 4)]
    """
    rank = max(t.ndim for t in inputs)
    return [t if t.ndim == rank else t.reshape(t.shape[:1] + (1,) * (rank - t.ndim) + t.shape[1:]) for t in inputs]


def _lower_merge(op: str) -> Callable[[Node, Mapping[str, np.ndarray]], Step]:
    ufunc = _UFUNCS[op]

    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        from . import numpy_exec

        constants = getattr(node.attrs, "constants", ())
        if op in ("add", "multiply") and not constants:
            fast = _ORIGINAL_MERGE[op](node, w)

            def fast_step(inputs: list, inplace: bool) -> np.ndarray:
                if len({t.ndim for t in inputs}) > 1:
                    ranked = expand_ranks(inputs)
                    return fast(ranked, inplace and ranked[0] is inputs[0])
                return fast(inputs, inplace)
            return fast_step
        act = numpy_exec.ACTIVATIONS[getattr(node.attrs, "activation", "linear")]
        kinds = merge_operands(node.inputs, node.attrs)

        def step(inputs: list, inplace: bool) -> np.ndarray:
            tensors = iter(expand_ranks(inputs))
            operands = [F32(v) if kind == "number" else next(tensors) for kind, v in kinds]
            acc = operands[0]
            for v in operands[1:]:
                acc = ufunc(acc, v)
            if op == "average":
                acc = acc / F32(len(operands))
            return act(np.asarray(acc, F32), True)
        return step
    return lower


def _identity(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    def step(inputs: list, inplace: bool) -> np.ndarray:
        return inputs[0]
    return step


def _lower_permute(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    perm = (0, *node.attrs.dims)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return np.ascontiguousarray(inputs[0].transpose(perm))
    return step


_IDENTITY_OPS = tuple(sorted(INFERENCE_IDENTITY_OPS))

#: Op name -> lowering, for version 2's layer ops (and the merges, now with numbers and broadcasting).
LOWERINGS: dict[str, Callable[[Node, Mapping[str, np.ndarray]], Step]] = {
    "layernorm": _lower_layernorm,
    "groupnorm": _lower_groupnorm,
    "normalization": _lower_normalization,
    "rescaling": _lower_rescaling,
    "unit_normalization": _lower_unit_norm,
    "layer_scale": _lower_layer_scale,
    "prelu": _lower_prelu,
    **{op: _lower_merge(op) for op in MERGE_OPS},
    **{op: _identity for op in _IDENTITY_OPS},
    "permute": _lower_permute,
    "activation": _lower_activation_layer,
    "log_softmax": _lower_with_args("log_softmax", "axis"),
    "sparsemax": _lower_with_args("sparsemax", "axis"),
    "glu": _lower_with_args("glu", "axis"),
    "celu": _lower_with_args("celu", "alpha"),
    "soft_shrink": _lower_with_args("soft_shrink", "threshold"),
    "hard_shrink": _lower_with_args("hard_shrink", "threshold"),
    "squareplus": _lower_with_args("squareplus", "b"),
    "threshold": _lower_with_args("threshold", "threshold", "default_value"),
    **{name: _lower_named(name) for name in NEW_ACTIVATION_OPS},
}

_ORIGINAL_ACTIVATION: Callable[[Node, Mapping[str, np.ndarray]], Step]
_ORIGINAL_MERGE: dict[str, Callable[[Node, Mapping[str, np.ndarray]], Step]] = {}


def install(lowerings: dict, activations: dict) -> None:
    """Add this module's tables to the executor's (called once by :mod:`netspec.targets.numpy_exec`)."""
    global _ORIGINAL_ACTIVATION
    _ORIGINAL_ACTIVATION = lowerings["activation"]
    for op in ("add", "multiply"):
        _ORIGINAL_MERGE[op] = lowerings[op]
    activations.update(ACTIVATIONS)
    lowerings.update(LOWERINGS)
