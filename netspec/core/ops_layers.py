"""Version 2's layer ops: normalisations, rescaling, PReLU, more merges, noise, permute, activations.

Each op keeps its whole story here, as :mod:`netspec.core.ops` does for
version 1's: a frozen attribute dataclass in Keras's argument order with
Keras's defaults, and an :class:`~netspec.core.ops.OpDef` with its shape
rule, weights (exactly Keras ``count_params()``), MACs and warnings.
:data:`DEFS` is added to :data:`netspec.core.ops.OPS` when that module
loads.

>>> from netspec.core.ops import OPS, canonical_op
>>> canonical_op("LayerNormalization"), canonical_op("hard_swish"), canonical_op("silu")
('layernorm', 'hard_silu', 'swish')
>>> from netspec.core.ops import make_attrs
>>> a = make_attrs(LayerNorm, {"rms_scaling": True})
>>> [(w.name, w.shape) for w in OPS["layernorm"].weights(a, [(7, 7, 96)])]
[('gamma', (96,))]
>>> OPS["normalization"].infer(make_attrs(Normalization, {}), [(8, 8, 3)])
(8, 8, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import argtypes as at
from .argtypes import ArgError, KerasObject, format_value, type_name
from .ir import Shape
from .ops import (
    ACTIVATION_FLOPS,
    ONES,
    ZEROS,
    NoArgs,
    OpDef,
    ShapeError,
    WeightSpec,
    _activation_op_flops,
    _axis_index,
    _fmt,
    _identity_shape,
    _merge_flops,
    _mul,
    _per_value_flops,
    _prod,
    _zero_flops,
    arg,
)

__all__ = ["AXIS_ACTIVATIONS", "DEFS", "INFERENCE_IDENTITY_OPS", "MERGE_OPS", "NEW_ACTIVATION_OPS", "broadcast_merge",
           "glu_shape", "merge_operands"]


# --- argument kinds -----------------------------------------------------------------------------


def axes(value: Any, what: str = "axis") -> int | tuple[int, ...]:
    """An axis or a tuple of axes (Keras counts the batch axis as 0).

    >>> axes(-1), axes((1, 2))
    (-1, (1, 2))
    """
    if isinstance(value, tuple):
        if not value:
            raise ArgError("E302", f"{what} must be an integer or a non-empty tuple of integers, got ()")
        out = tuple(at.integer(v, what) for v in value)
        if len(set(out)) != len(out):
            raise ArgError("E306", f"{what} names an axis twice: {format_value(out)}")
        return out
    return at.integer(value, what)


def optional_axes(value: Any, what: str = "axis") -> int | tuple[int, ...] | None:
    """Like :func:`axes`, or ``none`` (every axis reduced, as Keras's ``Normalization(axis=None)``)."""
    return None if value is None else axes(value, what)


def numbers(value: Any, what: str = "value") -> float | tuple[float, ...]:
    """A number or a tuple of numbers (one per channel).

    >>> numbers(0.5), numbers((1, 2.5))
    (0.5, (1.0, 2.5))
    """
    if isinstance(value, tuple):
        if not value:
            raise ArgError("E302", f"{what} must be a number or a non-empty tuple of numbers, got ()")
        return tuple(at.number(v, what) for v in value)
    return at.number(value, what)


def optional_numbers(value: Any, what: str = "value") -> float | tuple[float, ...] | None:
    """Like :func:`numbers`, or ``none``."""
    return None if value is None else numbers(value, what)


def optional_shared_axes(value: Any, what: str = "shared_axes") -> tuple[int, ...] | None:
    """``none``, an axis or a tuple of axes of at least 1 (PReLU's ``shared_axes``).

    >>> optional_shared_axes(1), optional_shared_axes((1, 2))
    ((1,), (1, 2))
    """
    if value is None:
        return None
    items = value if isinstance(value, tuple) else (value,)
    return tuple(at.integer(v, what, 1) for v in items)


def permutation(value: Any, what: str = "dims") -> tuple[int, ...]:
    """A permutation of ``1..n`` (``permute``'s ``dims``, 1-based as in Keras).

    >>> permutation((2, 1))
    (2, 1)
    """
    items = value if isinstance(value, tuple) else (value,)
    out = tuple(at.integer(v, what, 1) for v in items)
    if sorted(out) != list(range(1, len(out) + 1)):
        raise ArgError("E306", f"{what} must be a permutation of 1..{len(out)} (1-based, the batch axis "
                       f"stays), got {format_value(out)}")
    return out


def merge_constants(value: Any, what: str = "constants") -> tuple[tuple[int, float], ...]:
    """A merge's number operands: ``(position, value)`` pairs, set by the elaborator.

    >>> merge_constants(((1, 3),))
    ((1, 3.0),)
    """
    if not isinstance(value, tuple):
        raise ArgError("E302", f"{what} must be a tuple of (position, number) pairs, got {type_name(value)}")
    out = []
    for item in value:
        if not isinstance(item, tuple) or len(item) != 2:
            raise ArgError("E302", f"{what} must be a tuple of (position, number) pairs")
        out.append((at.integer(item[0], what, 0), at.number(item[1], what)))
    return tuple(out)


# --- attribute classes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LayerNorm:
    """``layernorm`` / ``LayerNormalization``; ``rms_scaling`` holds ``gamma`` only."""

    axis: int | tuple[int, ...] = arg(axes, -1)
    epsilon: float = arg(at.number, 0.001)
    center: bool = arg(at.boolean, True)
    scale: bool = arg(at.boolean, True)
    rms_scaling: bool = arg(at.boolean, False)
    beta_initializer: KerasObject = arg(at.initializer, ZEROS)
    gamma_initializer: KerasObject = arg(at.initializer, ONES)
    beta_regularizer: KerasObject | None = arg(at.regularizer, None)
    gamma_regularizer: KerasObject | None = arg(at.regularizer, None)
    beta_constraint: KerasObject | None = arg(at.constraint, None)
    gamma_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class GroupNorm:
    """``groupnorm`` / ``GroupNormalization``; ``groups`` must divide the channels."""

    groups: int = arg(at.positive_int, 32)
    axis: int = arg(at.axis, -1)
    epsilon: float = arg(at.number, 0.001)
    center: bool = arg(at.boolean, True)
    scale: bool = arg(at.boolean, True)
    beta_initializer: KerasObject = arg(at.initializer, ZEROS)
    gamma_initializer: KerasObject = arg(at.initializer, ONES)
    beta_regularizer: KerasObject | None = arg(at.regularizer, None)
    gamma_regularizer: KerasObject | None = arg(at.regularizer, None)
    beta_constraint: KerasObject | None = arg(at.constraint, None)
    gamma_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class Normalization:
    """``normalization`` / ``Normalization``: fixed ``mean`` and ``variance``, or weights that hold them."""

    axis: int | tuple[int, ...] | None = arg(optional_axes, -1)
    mean: float | tuple[float, ...] | None = arg(optional_numbers, None)
    variance: float | tuple[float, ...] | None = arg(optional_numbers, None)
    invert: bool = arg(at.boolean, False)


@dataclass(frozen=True, slots=True)
class Rescaling:
    """``rescaling(scale, offset=0.0)`` / ``Rescaling``: ``x * scale + offset``, per channel if tuples."""

    scale: float | tuple[float, ...] = arg(numbers)
    offset: float | tuple[float, ...] = arg(numbers, 0.0)


@dataclass(frozen=True, slots=True)
class UnitNormalization:
    """``unit_normalization`` / ``UnitNormalization``: L2-normalise over ``axis``."""

    axis: int | tuple[int, ...] = arg(axes, -1)


@dataclass(frozen=True, slots=True)
class LayerScale:
    """``layer_scale(init_values=1e-6)``: ConvNeXt's learned per-channel scale of the last axis."""

    init_values: float = arg(at.number, 1e-6)


@dataclass(frozen=True, slots=True)
class PReLU:
    """``prelu`` / ``PReLU``: ``alpha`` over the axes not in ``shared_axes``."""

    alpha_initializer: KerasObject = arg(at.initializer, ZEROS)
    alpha_regularizer: KerasObject | None = arg(at.regularizer, None)
    alpha_constraint: KerasObject | None = arg(at.constraint, None)
    shared_axes: tuple[int, ...] | None = arg(optional_shared_axes, None)


@dataclass(frozen=True, slots=True)
class Merge:
    """``add``, ``subtract``, ``multiply``, ``average``, ``maximum``, ``minimum``.

    ``constants`` holds the number operands as ``(position, value)``, the
    position counted over all operands (``add(x, 3)``: ``((1, 3.0),)``).
    """

    constants: tuple[tuple[int, float], ...] = arg(merge_constants, ())


@dataclass(frozen=True, slots=True)
class SpatialDropout:
    """``spatial_dropout1d/2d/3d``: identity at inference."""

    rate: float = arg(at.rate)
    data_format: str | None = arg(at.data_format, None)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class SpatialDropout1D:
    """``spatial_dropout1d`` (Keras gives it no ``data_format``)."""

    rate: float = arg(at.rate)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class GaussianNoise:
    """``gaussian_noise(stddev)``: identity at inference."""

    stddev: float = arg(at.non_negative)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class RateSeed:
    """``gaussian_dropout(rate)``: identity at inference."""

    rate: float = arg(at.rate)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class AlphaDropout:
    """``alpha_dropout(rate)``: identity at inference."""

    rate: float = arg(at.rate)
    noise_shape: tuple[int | None, ...] | None = arg(at.optional_int_tuple, None)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class Permute:
    """``permute(dims)`` / ``Permute``: 1-based, the batch axis stays."""

    dims: tuple[int, ...] = arg(permutation)


@dataclass(frozen=True, slots=True)
class AxisActivation:
    """``log_softmax(axis=-1)``, ``sparsemax(axis=-1)``, ``glu(axis=-1)``."""

    axis: int = arg(at.axis, -1)


@dataclass(frozen=True, slots=True)
class CELU:
    """``celu(alpha=1.0)``."""

    alpha: float = arg(at.number, 1.0)


@dataclass(frozen=True, slots=True)
class Shrink:
    """``soft_shrink(threshold=0.5)``, ``hard_shrink(threshold=0.5)``."""

    threshold: float = arg(at.non_negative, 0.5)


@dataclass(frozen=True, slots=True)
class Squareplus:
    """``squareplus(b=4)``."""

    b: float = arg(at.non_negative, 4.0)


@dataclass(frozen=True, slots=True)
class Threshold:
    """``threshold(threshold, default_value)``: ``x`` where ``x > threshold``, else ``default_value``."""

    threshold: float = arg(at.number)
    default_value: float = arg(at.number)


# --- rules -------------------------------------------------------------------------------------------


def _axis_list(op: str, axis: int | tuple[int, ...] | None, shape: Shape) -> list[int]:
    """Indices (without batch) of the axes a normalisation keeps, in Keras's sorted order."""
    if axis is None:
        return []
    items = list(axis) if isinstance(axis, tuple) else [axis]
    out = [_axis_index(op, a, shape) for a in items]
    if len(set(out)) != len(out):
        raise ShapeError("E306", f"{op} axis {format_value(axis)} names one axis twice", "axis")
    return out


def _known(op: str, shape: Shape, idx: list[int], axis: Any) -> list[int]:
    sizes = []
    for i in idx:
        if shape[i] is None:
            raise ShapeError("E404", f"{op} needs a known size on axis {i + 1}, got {_fmt(shape)}", "axis")
        sizes.append(shape[i])
    return sizes


def _keras_sorted(op: str, axis: int | tuple[int, ...], shape: Shape) -> list[int]:
    """LayerNormalization sorts its axes as written (negative ones first) for the weights' shape."""
    items = sorted(axis) if isinstance(axis, tuple) else [axis]
    return [_axis_index(op, a, shape) for a in items]


def _layernorm_infer(a: LayerNorm, shapes: list[Shape]) -> Shape:
    idx = _axis_list("layernorm", a.axis, shapes[0])
    _known("layernorm", shapes[0], idx, a.axis)
    return shapes[0]


def _layernorm_weights(a: LayerNorm, shapes: list[Shape]) -> list[WeightSpec]:
    idx = _keras_sorted("layernorm", a.axis, shapes[0])
    shape = tuple(_known("layernorm", shapes[0], idx, a.axis))
    out = []
    if a.scale or a.rms_scaling:
        out.append(WeightSpec("gamma", shape, True, a.gamma_initializer, a.gamma_regularizer, a.gamma_constraint))
    if a.center and not a.rms_scaling:
        out.append(WeightSpec("beta", shape, True, a.beta_initializer, a.beta_regularizer, a.beta_constraint))
    return out


def _groupnorm_infer(a: GroupNorm, shapes: list[Shape]) -> Shape:
    i = _axis_index("groupnorm", a.axis, shapes[0])
    c = shapes[0][i]
    if c is None:
        raise ShapeError("E404", f"groupnorm needs a known size on axis {a.axis}, got {_fmt(shapes[0])}", "axis")
    if c < a.groups:
        raise ShapeError("E402", f"groupnorm groups={a.groups} is more than the {c} channels", "groups")
    if c % a.groups:
        raise ShapeError("E402", f"groupnorm groups={a.groups} does not divide the {c} channels "
                         f"({c} % {a.groups} = {c % a.groups})", "groups")
    return shapes[0]


def _groupnorm_weights(a: GroupNorm, shapes: list[Shape]) -> list[WeightSpec]:
    c = shapes[0][_axis_index("groupnorm", a.axis, shapes[0])]
    assert c is not None
    out = []
    if a.scale:
        out.append(WeightSpec("gamma", (c,), True, a.gamma_initializer, a.gamma_regularizer, a.gamma_constraint))
    if a.center:
        out.append(WeightSpec("beta", (c,), True, a.beta_initializer, a.beta_regularizer, a.beta_constraint))
    return out


def _normalization_validate(a: Normalization) -> list[tuple[str, str, str | None]]:
    if (a.mean is None) != (a.variance is None):
        given = "mean" if a.mean is not None else "variance"
        return [("E301", "normalization takes mean and variance together, or neither "
                 f"(only {given} is given)", given)]
    return []


def _normalization_kept(a: Normalization, shapes: list[Shape]) -> list[int]:
    idx = sorted(_axis_list("normalization", a.axis, shapes[0]))
    return _known("normalization", shapes[0], idx, a.axis)


def _normalization_infer(a: Normalization, shapes: list[Shape]) -> Shape:
    kept = _normalization_kept(a, shapes)
    for what in ("mean", "variance"):
        value = getattr(a, what)
        if isinstance(value, tuple):
            want = kept[-1] if kept else 1
            if len(value) not in (1, want) or not kept:
                raise ShapeError("E403", f"normalization {what} has {len(value)} values, but the kept axes "
                                 f"have shape {tuple(kept)}: give one number or {want}", what)
    return shapes[0]


def _normalization_weights(a: Normalization, shapes: list[Shape]) -> list[WeightSpec]:
    if a.mean is not None:
        return []
    kept = tuple(_normalization_kept(a, shapes))
    return [WeightSpec("mean", kept, False, ZEROS), WeightSpec("variance", kept, False, ONES),
            WeightSpec("count", (), False, ZEROS)]


def _rescaling_infer(a: Rescaling, shapes: list[Shape]) -> Shape:
    last = shapes[0][-1] if shapes[0] else None
    for what in ("scale", "offset"):
        value = getattr(a, what)
        if isinstance(value, tuple) and len(value) != 1:
            if not shapes[0]:
                raise ShapeError("E403", f"rescaling {what} has {len(value)} values, but the input has no axes", what)
            if last is not None and len(value) != last:
                raise ShapeError("E403", f"rescaling {what} has {len(value)} values, but the last axis of "
                                 f"{_fmt(shapes[0])} has {last}", what)
    return shapes[0]


def _unit_norm_infer(a: UnitNormalization, shapes: list[Shape]) -> Shape:
    _axis_list("unit_normalization", a.axis, shapes[0])
    return shapes[0]


def _layer_scale_infer(a: LayerScale, shapes: list[Shape]) -> Shape:
    if not shapes[0]:
        raise ShapeError("E405", "layer_scale needs an input of rank at least 2 (batch included)")
    if shapes[0][-1] is None:
        raise ShapeError("E404", f"layer_scale needs a known last size, got {_fmt(shapes[0])}")
    return shapes[0]


def _layer_scale_weights(a: LayerScale, shapes: list[Shape]) -> list[WeightSpec]:
    c = shapes[0][-1]
    assert c is not None
    return [WeightSpec("gamma", (c,), True, at.initializer(at.CallValue("constant", (a.init_values,))))]


def _prelu_alpha_shape(a: PReLU, shape: Shape) -> tuple[int, ...]:
    out = list(shape)
    for axis in a.shared_axes or ():
        if axis > len(shape):
            raise ShapeError("E306", f"prelu shared_axes {format_value(a.shared_axes)}: axis {axis} is out of "
                             f"range for an input of rank {len(shape) + 1} {_fmt(shape)} "
                             "(axis 0 is the batch axis)", "shared_axes")
        out[axis - 1] = 1
    for i, d in enumerate(out):
        if d is None:
            raise ShapeError("E404", f"prelu needs a known size on axis {i + 1} of {_fmt(shape)} "
                             "(or share that axis with shared_axes)", "shared_axes")
    return tuple(out)  # type: ignore[arg-type]


def _prelu_infer(a: PReLU, shapes: list[Shape]) -> Shape:
    if not shapes[0]:
        raise ShapeError("E405", "prelu needs an input of rank at least 2 (batch included)")
    _prelu_alpha_shape(a, shapes[0])
    return shapes[0]


def _prelu_weights(a: PReLU, shapes: list[Shape]) -> list[WeightSpec]:
    return [WeightSpec("alpha", _prelu_alpha_shape(a, shapes[0]), True, a.alpha_initializer,
                       a.alpha_regularizer, a.alpha_constraint)]


def merge_operands(inputs: tuple[str, ...] | list, attrs: Any) -> list[tuple[str, Any]]:
    """A merge's operands in order: ``('tensor', name)`` or ``('number', value)``.

    >>> merge_operands(("x",), Merge(((1, 3.0),)))
    [('tensor', 'x'), ('number', 3.0)]
    """
    constants = dict(getattr(attrs, "constants", ()))
    out: list[tuple[str, Any]] = []
    tensors = iter(inputs)
    for i in range(len(inputs) + len(constants)):
        out.append(("number", constants[i]) if i in constants else ("tensor", next(tensors)))
    return out


def broadcast_merge(op: str, shapes: list[Shape], at_least: int = 2) -> Shape:
    """Keras's merge broadcasting: shapes without batch, aligned on the right.

    >>> broadcast_merge("multiply", [(6, 6, 4), (4,)]), broadcast_merge("add", [(6, 6, 4), (1, 1, 4)])
    ((6, 6, 4), (6, 6, 4))
    """
    out = list(shapes[0])
    for i, shape in enumerate(shapes[1:], start=1):
        if len(shape) > len(out):
            out = list(shape[: len(shape) - len(out)]) + out
        offset = len(out) - len(shape)
        for k, y in enumerate(shape):
            x = out[offset + k]
            if x is None or y is None:
                out[offset + k] = None if (x is None and y is None) or 1 in (x, y) else (x if y is None else y)
            elif x == 1:
                out[offset + k] = y
            elif y != 1 and x != y:
                raise ShapeError(
                    "E403", f"{op} of mismatched shapes: input 1 has shape {_fmt(shapes[0])}, "
                    f"input {i + 1} has shape {_fmt(shape)} (axis {offset + k + 1}: {x} vs {y})", str(i),
                )
    return tuple(out)


def _merge_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        constants = getattr(a, "constants", ())
        count = len(shapes) + len(constants)
        if not shapes:
            raise ShapeError("E302", f"{op} needs at least one tensor operand, got only numbers")
        if op == "subtract" and count != 2:
            raise ShapeError("E302", f"subtract takes exactly two operands, got {count}")
        if count < 2:
            raise ShapeError("E302", f"{op} needs at least two operands, got {count}")
        return broadcast_merge(op, shapes)
    return infer


def _spatial_dropout_infer(rank: int):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        if len(shapes[0]) != rank + 1:
            raise ShapeError("E405", f"spatial_dropout{rank}d needs a {rank + 1}-D input without the batch axis, "
                             f"got shape {_fmt(shapes[0])}")
        return shapes[0]
    return infer


def _permute_infer(a: Permute, shapes: list[Shape]) -> Shape:
    if len(a.dims) != len(shapes[0]):
        raise ShapeError("E405", f"permute dims {format_value(a.dims)} has {len(a.dims)} entries, but the input "
                         f"{_fmt(shapes[0])} has {len(shapes[0])} axes besides the batch", "dims")
    return tuple(shapes[0][d - 1] for d in a.dims)


def _axis_act_infer(op: str):
    def infer(a: AxisActivation, shapes: list[Shape]) -> Shape:
        i = _axis_index(op, a.axis, shapes[0])
        if op != "glu":
            return shapes[0]
        return glu_shape(shapes[0], i)
    return infer


def glu_shape(shape: Shape, i: int) -> Shape:
    """``glu`` halves the axis it gates.

    >>> glu_shape((4, 8), 1)
    (4, 4)
    """
    c = shape[i]
    if c is None:
        raise ShapeError("E404", f"glu needs a known size on the axis it halves, got {_fmt(shape)}")
    if c % 2:
        raise ShapeError("E415", f"glu halves its axis, but the size {c} of {_fmt(shape)} is odd")
    return (*shape[:i], c // 2, *shape[i + 1:])


# --- the table ----------------------------------------------------------------------------------------

#: Ops that apply one ``keras.activations`` function and take no arguments (version 2's).
NEW_ACTIVATION_OPS = ("relu6", "hard_silu", "mish", "hard_tanh", "log_sigmoid", "tanh_shrink", "sparse_plus",
                      "sparse_sigmoid")
#: Activations that act along an axis (softmax-like): applied on the last axis of a layer's own layout.
AXIS_ACTIVATIONS = frozenset({"softmax", "log_softmax", "sparsemax", "glu"})
#: Ops that are the identity at inference (noise and dropouts): their output is their input.
INFERENCE_IDENTITY_OPS = frozenset({"spatial_dropout1d", "spatial_dropout2d", "spatial_dropout3d", "gaussian_noise",
                                    "gaussian_dropout", "alpha_dropout"})
#: The merges that combine tensors (and numbers) element by element.
MERGE_OPS = ("add", "subtract", "multiply", "average", "maximum", "minimum")

# FLOPs (docs/language.md, "FLOPs"): per value of the output.
ACTIVATION_FLOPS.update({
    "relu6": 2, "hard_silu": 5, "mish": 6, "log_softmax": 5, "celu": 4, "glu": 5, "hard_tanh": 2,
    "log_sigmoid": 3, "soft_shrink": 3, "hard_shrink": 2, "tanh_shrink": 2, "squareplus": 5, "sparse_plus": 4,
    "sparse_sigmoid": 3, "sparsemax": 8, "threshold": 2,
})


def _norm_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    # mean, centre, square, sum, scale by 1/std: 5 per value; gamma and beta 1 each.
    per = 5 + int(getattr(a, "scale", False) or getattr(a, "rms_scaling", False)) + int(getattr(a, "center", False))
    return _mul(_prod(out), per)


def _average_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    total = _merge_flops(a, shapes, out, macs)
    return None if total is None else total + (_prod(out) or 0)  # and the division


DEFS: list[OpDef] = [
    OpDef("layernorm", LayerNorm, "LayerNormalization", "layer_normalization", _layernorm_infer,
          ("LayerNormalization", "layer_normalization", "LayerNorm"), _layernorm_weights, flops=_norm_flops),
    OpDef("groupnorm", GroupNorm, "GroupNormalization", "group_normalization", _groupnorm_infer,
          ("GroupNormalization", "group_normalization", "GroupNorm"), _groupnorm_weights, flops=_norm_flops),
    OpDef("normalization", Normalization, "Normalization", "normalization", _normalization_infer,
          ("Normalization",), _normalization_weights, validate=_normalization_validate, flops=_per_value_flops(2)),
    OpDef("rescaling", Rescaling, "Rescaling", "rescaling", _rescaling_infer, ("Rescaling",),
          flops=_per_value_flops(2)),
    OpDef("unit_normalization", UnitNormalization, "UnitNormalization", "unit_normalization", _unit_norm_infer,
          ("UnitNormalization",), flops=_per_value_flops(3)),
    OpDef("layer_scale", LayerScale, "LayerScale", "layer_scale", _layer_scale_infer, ("LayerScale",),
          _layer_scale_weights, flops=_per_value_flops(1)),
    OpDef("prelu", PReLU, "PReLU", "p_re_lu", _prelu_infer, ("PReLU",), _prelu_weights, flops=_per_value_flops(2)),
    *[OpDef(name, Merge, cls, name, _merge_infer(name), (cls,), rf="merge", merge=True,
            flops=_average_flops if name == "average" else _merge_flops)
      for name, cls in (("subtract", "Subtract"), ("average", "Average"), ("maximum", "Maximum"),
                        ("minimum", "Minimum"))],
    OpDef("spatial_dropout1d", SpatialDropout1D, "SpatialDropout1D", "spatial_dropout1d",
          _spatial_dropout_infer(1), ("SpatialDropout1D",), flops=_zero_flops),
    OpDef("spatial_dropout2d", SpatialDropout, "SpatialDropout2D", "spatial_dropout2d",
          _spatial_dropout_infer(2), ("SpatialDropout2D",), flops=_zero_flops),
    OpDef("spatial_dropout3d", SpatialDropout, "SpatialDropout3D", "spatial_dropout3d",
          _spatial_dropout_infer(3), ("SpatialDropout3D",), flops=_zero_flops),
    OpDef("gaussian_noise", GaussianNoise, "GaussianNoise", "gaussian_noise", _identity_shape, ("GaussianNoise",),
          flops=_zero_flops),
    OpDef("gaussian_dropout", RateSeed, "GaussianDropout", "gaussian_dropout", _identity_shape,
          ("GaussianDropout",), flops=_zero_flops),
    OpDef("alpha_dropout", AlphaDropout, "AlphaDropout", "alpha_dropout", _identity_shape, ("AlphaDropout",),
          flops=_zero_flops),
    OpDef("permute", Permute, "Permute", "permute", _permute_infer, ("Permute",), rf="global", flops=_zero_flops),
    *[OpDef(name, AxisActivation, "Activation", "activation", _axis_act_infer(name),
            flops=_activation_op_flops(name)) for name in ("log_softmax", "sparsemax", "glu")],
    OpDef("celu", CELU, "Activation", "activation", _identity_shape, flops=_activation_op_flops("celu")),
    *[OpDef(name, Shrink, "Activation", "activation", _identity_shape, flops=_activation_op_flops(name))
      for name in ("soft_shrink", "hard_shrink")],
    OpDef("squareplus", Squareplus, "Activation", "activation", _identity_shape,
          flops=_activation_op_flops("squareplus")),
    OpDef("threshold", Threshold, "Activation", "activation", _identity_shape,
          flops=_activation_op_flops("threshold")),
    *[OpDef(name, NoArgs, "Activation", "activation", _identity_shape, ("hard_swish",) if name == "hard_silu" else (),
            flops=_activation_op_flops(name))
      for name in NEW_ACTIVATION_OPS],
]
