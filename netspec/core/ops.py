"""Op definitions: one place per op for its arguments, shape rule and counts.

Each op has a frozen attribute dataclass whose fields are the Keras
layer's arguments in Keras's positional order, with Keras's defaults; the
field's ``kind`` converts a written value into its normal form (see
:mod:`netspec.core.argtypes`).  Its :class:`OpDef` in :data:`OPS` holds the
shape rule, the weights it creates (from which parameter counts follow),
its multiply-accumulates, its window for receptive fields, and its
warnings.

>>> OPS["conv2d"].keras_class, canonical_op("MaxPooling2D")
('Conv2D', 'maxpool2d')
>>> a = OPS["conv2d"].normalize(Conv2D(filters=4, kernel_size=(5, 5)), "channels_last")
>>> [(w.name, w.shape) for w in OPS["conv2d"].weights(a, [(32, 32, 3)])]
[('kernel', (5, 5, 3, 4)), ('bias', (4,))]
>>> OPS["conv2d"].infer(a, [(32, 32, 3)])
(28, 28, 4)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import argtypes as at
from .argtypes import KerasObject, PaddingSpec
from .ir import Shape

__all__ = [
    "ACTIVATION_FLOPS",
    "ACTIVATION_OPS",
    "ALIASES",
    "OPS",
    "REQUIRED",
    "OpDef",
    "ShapeError",
    "WeightSpec",
    "activation_flops",
    "arg_names",
    "canonical_op",
    "make_attrs",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Marks an argument with no default.
REQUIRED: Any = _Required()


def arg(kind: Callable[[Any, str], Any], default: Any = REQUIRED) -> Any:
    """A dataclass field for one Keras argument with its converter."""
    if default is REQUIRED:
        return field(metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})


def _init(name: str) -> KerasObject:
    return at.initializer(name)


GLOROT = _init("glorot_uniform")
ZEROS = _init("zeros")
ONES = _init("ones")


class ShapeError(Exception):
    """An op cannot apply to its inputs; ``arg`` names the argument to point at."""

    def __init__(self, code: str, message: str, arg: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg


@dataclass(frozen=True, slots=True)
class WeightSpec:
    """One weight a layer creates, in Keras's order and layout.

    >>> WeightSpec("bias", (4,), True, ZEROS).size
    4
    """

    name: str
    shape: tuple[int, ...]
    trainable: bool
    initializer: KerasObject
    regularizer: KerasObject | None = None
    constraint: KerasObject | None = None

    @property
    def size(self) -> int:
        """Number of scalars in the weight."""
        return math.prod(self.shape)


# --- attribute classes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conv2D:
    """``conv2d`` / ``Conv2D``."""

    filters: int = arg(at.positive_int)
    kernel_size: tuple[int, int] = arg(at.int_pair)
    strides: tuple[int, int] = arg(at.int_pair, (1, 1))
    padding: PaddingSpec = arg(at.padding, "valid")
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int, int] = arg(at.int_pair, (1, 1))
    groups: int = arg(at.positive_int, 1)
    activation: str = arg(at.activation, "linear")
    use_bias: bool = arg(at.boolean, True)
    kernel_initializer: KerasObject = arg(at.initializer, GLOROT)
    bias_initializer: KerasObject = arg(at.initializer, ZEROS)
    kernel_regularizer: KerasObject | None = arg(at.regularizer, None)
    bias_regularizer: KerasObject | None = arg(at.regularizer, None)
    activity_regularizer: KerasObject | None = arg(at.regularizer, None)
    kernel_constraint: KerasObject | None = arg(at.constraint, None)
    bias_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class DepthwiseConv2D:
    """``depthwise_conv2d`` / ``DepthwiseConv2D``."""

    kernel_size: tuple[int, int] = arg(at.int_pair)
    strides: tuple[int, int] = arg(at.int_pair, (1, 1))
    padding: PaddingSpec = arg(at.padding, "valid")
    depth_multiplier: int = arg(at.positive_int, 1)
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int, int] = arg(at.int_pair, (1, 1))
    activation: str = arg(at.activation, "linear")
    use_bias: bool = arg(at.boolean, True)
    depthwise_initializer: KerasObject = arg(at.initializer, GLOROT)
    bias_initializer: KerasObject = arg(at.initializer, ZEROS)
    depthwise_regularizer: KerasObject | None = arg(at.regularizer, None)
    bias_regularizer: KerasObject | None = arg(at.regularizer, None)
    activity_regularizer: KerasObject | None = arg(at.regularizer, None)
    depthwise_constraint: KerasObject | None = arg(at.constraint, None)
    bias_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class SeparableConv2D:
    """``separable_conv2d`` / ``SeparableConv2D``."""

    filters: int = arg(at.positive_int)
    kernel_size: tuple[int, int] = arg(at.int_pair)
    strides: tuple[int, int] = arg(at.int_pair, (1, 1))
    padding: PaddingSpec = arg(at.padding, "valid")
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int, int] = arg(at.int_pair, (1, 1))
    depth_multiplier: int = arg(at.positive_int, 1)
    activation: str = arg(at.activation, "linear")
    use_bias: bool = arg(at.boolean, True)
    depthwise_initializer: KerasObject = arg(at.initializer, GLOROT)
    pointwise_initializer: KerasObject = arg(at.initializer, GLOROT)
    bias_initializer: KerasObject = arg(at.initializer, ZEROS)
    depthwise_regularizer: KerasObject | None = arg(at.regularizer, None)
    pointwise_regularizer: KerasObject | None = arg(at.regularizer, None)
    bias_regularizer: KerasObject | None = arg(at.regularizer, None)
    activity_regularizer: KerasObject | None = arg(at.regularizer, None)
    depthwise_constraint: KerasObject | None = arg(at.constraint, None)
    pointwise_constraint: KerasObject | None = arg(at.constraint, None)
    bias_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class Pool2D:
    """``maxpool2d`` / ``avgpool2d``; ``strides`` defaults to ``pool_size``."""

    pool_size: tuple[int, int] = arg(at.int_pair, (2, 2))
    strides: tuple[int, int] | None = arg(at.optional_int_pair, None)
    padding: PaddingSpec = arg(at.padding, "valid")
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class GlobalPool2D:
    """``global_avgpool2d`` / ``global_maxpool2d``."""

    data_format: str | None = arg(at.data_format, None)
    keepdims: bool = arg(at.boolean, False)


@dataclass(frozen=True, slots=True)
class ZeroPad2D:
    """``zeropad2d`` / ``ZeroPadding2D``: ``((top, bottom), (left, right))``."""

    padding: tuple[tuple[int, int], tuple[int, int]] = arg(at.explicit_padding, ((1, 1), (1, 1)))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Flatten:
    """``flatten``; a channels_first tensor is flattened in channels_last order, as Keras does."""

    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Reshape:
    """``reshape(target_shape)``; one entry may be -1."""

    target_shape: tuple[int, ...] = arg(at.int_tuple)


@dataclass(frozen=True, slots=True)
class Dense:
    """``dense`` / ``Dense``: acts on the last axis of any rank."""

    units: int = arg(at.positive_int)
    activation: str = arg(at.activation, "linear")
    use_bias: bool = arg(at.boolean, True)
    kernel_initializer: KerasObject = arg(at.initializer, GLOROT)
    bias_initializer: KerasObject = arg(at.initializer, ZEROS)
    kernel_regularizer: KerasObject | None = arg(at.regularizer, None)
    bias_regularizer: KerasObject | None = arg(at.regularizer, None)
    activity_regularizer: KerasObject | None = arg(at.regularizer, None)
    kernel_constraint: KerasObject | None = arg(at.constraint, None)
    bias_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class Dropout:
    """``dropout(rate)``: identity at inference."""

    rate: float = arg(at.rate)
    noise_shape: tuple[int | None, ...] | None = arg(at.optional_int_tuple, None)
    seed: int | None = arg(at.optional_seed, None)


@dataclass(frozen=True, slots=True)
class BatchNorm:
    """``batchnorm`` / ``BatchNormalization`` (inference mode in the executors)."""

    axis: int = arg(at.axis, -1)
    momentum: float = arg(at.number, 0.99)
    epsilon: float = arg(at.number, 0.001)
    center: bool = arg(at.boolean, True)
    scale: bool = arg(at.boolean, True)
    beta_initializer: KerasObject = arg(at.initializer, ZEROS)
    gamma_initializer: KerasObject = arg(at.initializer, ONES)
    moving_mean_initializer: KerasObject = arg(at.initializer, ZEROS)
    moving_variance_initializer: KerasObject = arg(at.initializer, ONES)
    beta_regularizer: KerasObject | None = arg(at.regularizer, None)
    gamma_regularizer: KerasObject | None = arg(at.regularizer, None)
    beta_constraint: KerasObject | None = arg(at.constraint, None)
    gamma_constraint: KerasObject | None = arg(at.constraint, None)


@dataclass(frozen=True, slots=True)
class Activation:
    """``activation('relu')``: any name in :data:`netspec.core.argtypes.ACTIVATIONS`."""

    activation: str = arg(at.activation)


@dataclass(frozen=True, slots=True)
class ReLU:
    """``relu`` / ``ReLU``: ``max_value``, ``negative_slope``, ``threshold`` as Keras."""

    max_value: float | None = arg(at.optional_non_negative, None)
    negative_slope: float = arg(at.non_negative, 0.0)
    threshold: float = arg(at.non_negative, 0.0)


@dataclass(frozen=True, slots=True)
class LeakyReLU:
    """``leaky_relu`` / ``LeakyReLU``."""

    negative_slope: float = arg(at.non_negative, 0.3)


@dataclass(frozen=True, slots=True)
class ELU:
    """``elu`` / ``ELU``."""

    alpha: float = arg(at.number, 1.0)


@dataclass(frozen=True, slots=True)
class Softmax:
    """``softmax`` / ``Softmax`` on any axis."""

    axis: int = arg(at.axis, -1)


@dataclass(frozen=True, slots=True)
class NoArgs:
    """An op without arguments (``sigmoid()``, ``add(a, b)``, ...)."""


@dataclass(frozen=True, slots=True)
class Concat:
    """``concat(a, b, ..., axis=-1)`` / ``Concatenate``."""

    axis: int = arg(at.axis, -1)


def arg_names(attrs_class: type) -> list[str]:
    """The op's argument names in Keras's positional order.

    >>> arg_names(Pool2D)
    ['pool_size', 'strides', 'padding', 'data_format']
    """
    return [f.name for f in dataclasses.fields(attrs_class)]


def make_attrs(attrs_class: type, values: dict[str, Any]) -> Any:
    """Convert written argument values into the op's attribute dataclass.

    Raises :class:`netspec.core.argtypes.ArgError` (with ``.arg`` set to the
    argument's name) for a missing or ill-typed argument.

    >>> make_attrs(Conv2D, {"filters": 8, "kernel_size": 3, "padding": 1}).padding
    ((1, 1), (1, 1))
    """
    kwargs = {}
    for f in dataclasses.fields(attrs_class):
        if f.name in values:
            try:
                kwargs[f.name] = f.metadata["kind"](values[f.name], f.name)
            except at.ArgError as err:
                err.arg = f.name  # type: ignore[attr-defined]
                raise
        elif f.default is dataclasses.MISSING:
            err = at.ArgError("E301", f"missing argument {f.name!r}")
            err.arg = None  # type: ignore[attr-defined]
            raise err
    return attrs_class(**kwargs)


# --- helpers for the rules -------------------------------------------------------


def _known_channels(op: str, c: int | None) -> int:
    if c is None:
        raise ShapeError("E404", f"{op} needs a known channel count, got an unknown size (?)")
    return c


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _prod(dims: Sequence[int | None]) -> int | None:
    total = 1
    for d in dims:
        if d is None:
            return None
        total *= d
    return total


def _mul(*factors: int | None) -> int | None:
    return _prod(factors)


# --- OpDef ---------------------------------------------------------------------------


def _no_weights(attrs: Any, shapes: list[Shape]) -> list[WeightSpec]:
    return []


def _no_macs(attrs: Any, shapes: list[Shape], out: Shape) -> int | None:
    return 0


def _no_warnings(attrs: Any, shapes: list[Shape]) -> list[tuple[str, str, str | None]]:
    return []


def _no_validate(attrs: Any) -> list[tuple[str, str, str | None]]:
    return []


def _identity_shape(attrs: Any, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _dropout_infer(a: Any, shapes: list[Shape]) -> Shape:
    """Identity; a ``noise_shape`` (batch axis first, as Keras) must broadcast to the input.

    >>> _dropout_infer(Dropout(rate=0.5, noise_shape=(None, 1, 1, 4)), [(6, 6, 4)])
    (6, 6, 4)
    >>> _dropout_infer(Dropout(rate=0.5, noise_shape=(1, 7, 1, 4)), [(6, 6, 4)])
    Traceback (most recent call last):
    ...
    netspec.core.ops.ShapeError: dropout noise_shape (1, 7, 1, 4) does not fit the input (None, 6, 6, 4): axis 1 is 7, but it must be 1 or 6 (or none for the input's size)
    """
    shape = shapes[0]
    noise = getattr(a, "noise_shape", None)
    if noise is None:
        return shape
    full = (None, *shape)
    shown = "(" + ", ".join("None" if d is None else str(d) for d in full) + ")"
    given = "(" + ", ".join("none" if d is None else str(d) for d in noise) + ")"
    if len(noise) != len(full):
        raise ShapeError("E407", f"dropout noise_shape {given} has {len(noise)} entries, but the input {shown} has "
                         f"{len(full)} axes (noise_shape counts the batch axis, as in Keras)", "noise_shape")
    for axis, (n, d) in enumerate(zip(noise, full)):
        if n is not None and n != 1 and d is not None and n != d:
            raise ShapeError("E407", f"dropout noise_shape {given} does not fit the input {shown}: axis {axis} is "
                             f"{n}, but it must be 1 or {d} (or none for the input's size)", "noise_shape")
    return shape


@dataclass(frozen=True)
class OpDef:
    """Everything netspec knows about one op.

    ``rf`` says how the op changes a receptive field: ``'window'`` (uses
    :meth:`window`), ``'identity'``, ``'global'`` (every input cell) or
    ``'merge'`` (the widest of the inputs).

    ``flops(attrs, in_shapes, out_shape, macs)`` gives the op's floating-point
    operations per sample (see :data:`ACTIVATION_FLOPS` and docs/language.md,
    "FLOPs"); every op must have one (a test checks), so that no op is
    silently counted as zero.

    >>> d = OPS["dense"]
    >>> d.keras_class, d.auto_name, d.infer(Dense(units=3), [(5,)])
    ('Dense', 'dense', (3,))
    """

    name: str
    attrs: type
    keras_class: str
    auto_name: str
    infer: Callable[[Any, list[Shape]], Shape]
    aliases: tuple[str, ...] = ()
    weights: Callable[[Any, list[Shape]], list[WeightSpec]] = _no_weights
    macs: Callable[[Any, list[Shape], Shape], int | None] = _no_macs
    warnings: Callable[[Any, list[Shape]], list[tuple[str, str, str | None]]] = _no_warnings
    validate: Callable[[Any], list[tuple[str, str, str | None]]] = _no_validate
    window: Callable[[Any], tuple[tuple[Any, ...], tuple[Any, ...]]] | None = None
    rf: str = "identity"
    merge: bool = False
    flops: Callable[[Any, list[Shape], Shape, int | None], int | None] | None = None
    #: ``explain(attrs, in_shapes, out_shape)`` -> :class:`netspec.core.explain.Explanation`: the
    #: arithmetic behind the op's output size and MACs (``check --explain``); optional.
    explain: Callable[[Any, list[Shape], Shape], Any] | None = None

    def normalize(self, attrs: Any, default_format: str) -> Any:
        """Fill in what defaults to the network (``data_format``) or to another argument.

        >>> OPS["maxpool2d"].normalize(Pool2D(pool_size=(3, 3)), "channels_last").strides
        (3, 3)
        """
        changes: dict[str, Any] = {}
        if hasattr(attrs, "data_format") and attrs.data_format is None:
            changes["data_format"] = default_format
        if hasattr(attrs, "pool_size") and attrs.strides is None:
            changes["strides"] = attrs.pool_size
        return dataclasses.replace(attrs, **changes) if changes else attrs


# flatten / reshape / dense ----------------------------------------------------------------


def _flatten_infer(a: Flatten, shapes: list[Shape]) -> Shape:
    if len(shapes[0]) == 0:
        raise ShapeError("E405", "flatten needs an input of rank at least 1")
    return (_prod(shapes[0]),)


def _reshape_infer(a: Reshape, shapes: list[Shape]) -> Shape:
    total = _prod(shapes[0])
    known = math.prod(d for d in a.target_shape if d != -1)
    if -1 in a.target_shape:
        if total is None:
            return tuple(None if d == -1 else d for d in a.target_shape)
        if total % known:
            raise ShapeError(
                "E406", f"cannot reshape {_fmt(shapes[0])} ({total} elements) to {a.target_shape}: "
                f"{total} is not a multiple of {known}", "target_shape",
            )
        return tuple(total // known if d == -1 else d for d in a.target_shape)
    if total is not None and total != known:
        raise ShapeError(
            "E406", f"cannot reshape {_fmt(shapes[0])} ({total} elements) to {a.target_shape} ({known} elements)",
            "target_shape",
        )
    return a.target_shape


def _dense_infer(a: Dense, shapes: list[Shape]) -> Shape:
    shape = shapes[0]
    if not shape:
        raise ShapeError("E405", "dense needs an input of rank at least 1")
    if shape[-1] is None:
        raise ShapeError(
            "E404", f"dense needs a known last size, got {_fmt(shape)}"
            + (" (flatten an input of unknown size first, or fix its size)" if len(shape) > 1 else "")
        )
    return (*shape[:-1], a.units)


def _dense_weights(a: Dense, shapes: list[Shape]) -> list[WeightSpec]:
    n = shapes[0][-1]
    assert n is not None
    out = [WeightSpec("kernel", (n, a.units), True, a.kernel_initializer, a.kernel_regularizer, a.kernel_constraint)]
    if a.use_bias:
        out.append(WeightSpec("bias", (a.units,), True, a.bias_initializer, a.bias_regularizer, a.bias_constraint))
    return out


def _dense_macs(a: Dense, shapes: list[Shape], out: Shape) -> int | None:
    return _mul(_prod(out), shapes[0][-1])


def _flatten_explain(a: Flatten, shapes: list[Shape], out: Shape) -> Any:
    from .explain import Explanation

    dims = shapes[0]
    if any(d is None for d in dims):
        return Explanation((f"flatten: the product of {_fmt(dims)}, unknown while a size is unknown",))
    return Explanation((f"flatten: {'*'.join(map(str, dims))} = {math.prod(dims):,} values per sample",))  # type: ignore[arg-type]


def _dense_explain(a: Dense, shapes: list[Shape], out: Shape) -> Any:
    from .explain import Explanation

    n = shapes[0][-1]
    return Explanation((f"last axis: {n} inputs -> units = {a.units} outputs (every output reads every input)",),
                       str(n))


def _dense_warnings(a: Dense, shapes: list[Shape]):
    if len(shapes[0]) > 1:
        return [(
            "W102",
            f"dense on a tensor of rank {len(shapes[0]) + 1} {_fmt(shapes[0])} acts on the last axis only; "
            "did you forget flatten()?",
            None,
        )]
    return []


# batchnorm / softmax -----------------------------------------------------------------------


def _axis_index(op: str, axis: int, shape: Shape) -> int:
    """Index into a shape without batch for a Keras axis (which counts the batch)."""
    rank = len(shape) + 1
    if not -rank <= axis < rank or axis in (0, -rank):
        raise ShapeError(
            "E306", f"{op} axis {axis} is out of range for an input of rank {rank} {_fmt(shape)} "
            "(axis 0 is the batch axis)", "axis",
        )
    return (axis % rank) - 1


def _batchnorm_infer(a: BatchNorm, shapes: list[Shape]) -> Shape:
    i = _axis_index("batchnorm", a.axis, shapes[0])
    if shapes[0][i] is None:
        raise ShapeError("E404", f"batchnorm needs a known size on axis {a.axis}, got {_fmt(shapes[0])}", "axis")
    return shapes[0]


def _batchnorm_weights(a: BatchNorm, shapes: list[Shape]) -> list[WeightSpec]:
    c = shapes[0][_axis_index("batchnorm", a.axis, shapes[0])]
    assert c is not None
    out = []
    if a.scale:
        out.append(WeightSpec("gamma", (c,), True, a.gamma_initializer, a.gamma_regularizer, a.gamma_constraint))
    if a.center:
        out.append(WeightSpec("beta", (c,), True, a.beta_initializer, a.beta_regularizer, a.beta_constraint))
    out.append(WeightSpec("moving_mean", (c,), False, a.moving_mean_initializer))
    out.append(WeightSpec("moving_variance", (c,), False, a.moving_variance_initializer))
    return out


def _softmax_infer(a: Softmax, shapes: list[Shape]) -> Shape:
    _axis_index("softmax", a.axis, shapes[0])
    return shapes[0]


def _dropout_validate(a: Dropout) -> list[tuple[str, str, str | None]]:
    return []


# merges ----------------------------------------------------------------------------------------


def _concat_infer(a: Concat, shapes: list[Shape]) -> Shape:
    if len(shapes) < 2:
        raise ShapeError("E302", f"concat needs at least two tensors, got {len(shapes)}")
    first = shapes[0]
    i = _axis_index("concat", a.axis, first)
    out = list(first)
    for n, shape in enumerate(shapes[1:], start=1):
        if len(shape) != len(first):
            raise ShapeError(
                "E403", f"concat of mismatched ranks: input 1 has shape {_fmt(first)}, input {n + 1} has shape {_fmt(shape)}",
                str(n),
            )
        for k, (x, y) in enumerate(zip(out, shape)):
            if k == i:
                out[k] = None if x is None or y is None else x + y
            elif x is not None and y is not None and x != y:
                raise ShapeError(
                    "E403", f"concat on axis {a.axis} of mismatched shapes: input 1 has shape {_fmt(first)}, "
                    f"input {n + 1} has shape {_fmt(shape)} (axis {k + 1}: {x} vs {y})", str(n),
                )
            elif x is None:
                out[k] = y
    return tuple(out)


# --- the table ---------------------------------------------------------------------------------

# FLOPs ---------------------------------------------------------------------------------------
# One definition (docs/language.md, "FLOPs"): a multiply-accumulate is 2 FLOPs; a bias add is 1 per
# output value; an activation costs ACTIVATION_FLOPS per value; pooling counts its comparisons or
# additions (and the average's division); batchnorm (inference) is a multiply and an add per value;
# a merge of k tensors costs k-1 per output value; pure data movement (padding, reshapes,
# concatenation, dropout at inference) is 0 by definition.

#: FLOPs per value of each ``keras.activations`` function (exp, log, tanh, erf count as 1).
ACTIVATION_FLOPS: dict[str, int] = {
    "linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "gelu": 8, "selu": 4, "sigmoid": 4,
    "hard_sigmoid": 3, "softmax": 5, "softplus": 3, "softsign": 3, "swish": 5, "tanh": 1, "exponential": 1,
}


def activation_flops(name: str, values: int | None) -> int | None:
    """FLOPs of activation ``name`` on ``values`` values.

    >>> activation_flops("relu", 10), activation_flops("linear", 10)
    (10, 0)
    """
    return _mul(values, ACTIVATION_FLOPS[name])


def _weighted_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    """2 per MAC, plus the bias add and the fused activation on every output value."""
    size = _prod(out)
    total = _mul(macs, 2)
    if getattr(a, "use_bias", False):
        total = None if total is None or size is None else total + size
    act = activation_flops(getattr(a, "activation", "linear"), size)
    return None if total is None or act is None else total + act


def _global_flops(a: GlobalPool2D, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    # Every input value is added (or compared) once into its channel's result.
    return _prod(shapes[0])


def _zero_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    return 0


def _per_value_flops(per: int):
    def flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
        return _mul(_prod(out), per)
    return flops


def _activation_op_flops(name: str | None):
    def flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
        return activation_flops(name or a.activation, _prod(out))
    return flops


def _merge_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    return _mul(_prod(out), len(shapes) + len(getattr(a, "constants", ())) - 1)  # numbers count as operands


# Version 2's layer ops live in their own module; it needs everything above.
from .ops_layers import DEFS as _LAYER_DEFS  # noqa: E402
from .ops_layers import Merge, _merge_infer  # noqa: E402

#: Ops that apply one ``keras.activations`` function and take no arguments.
ACTIVATION_OPS = (
    "gelu", "selu", "sigmoid", "hard_sigmoid", "softplus", "softsign", "swish", "tanh", "exponential", "linear",
)

_DEFS: list[OpDef] = [
    OpDef("flatten", Flatten, "Flatten", "flatten", _flatten_infer, ("Flatten",), rf="global", flops=_zero_flops,
          explain=_flatten_explain),
    OpDef("reshape", Reshape, "Reshape", "reshape", _reshape_infer, ("Reshape",), rf="global", flops=_zero_flops),
    OpDef("dense", Dense, "Dense", "dense", _dense_infer, ("Dense",), _dense_weights, _dense_macs,
          _dense_warnings, flops=_weighted_flops, explain=_dense_explain),
    OpDef("dropout", Dropout, "Dropout", "dropout", _dropout_infer, ("Dropout",), flops=_zero_flops),
    OpDef("batchnorm", BatchNorm, "BatchNormalization", "batch_normalization", _batchnorm_infer,
          ("BatchNormalization", "batch_normalization", "batchnormalization"), _batchnorm_weights,
          flops=_per_value_flops(2)),
    OpDef("activation", Activation, "Activation", "activation", _identity_shape, ("Activation",),
          flops=_activation_op_flops(None)),
    OpDef("relu", ReLU, "ReLU", "re_lu", _identity_shape, ("ReLU",), flops=_per_value_flops(1)),
    OpDef("leaky_relu", LeakyReLU, "LeakyReLU", "leaky_re_lu", _identity_shape, ("LeakyReLU",), flops=_per_value_flops(2)),
    OpDef("elu", ELU, "ELU", "elu", _identity_shape, ("ELU",), flops=_per_value_flops(3)),
    OpDef("softmax", Softmax, "Softmax", "softmax", _softmax_infer, ("Softmax",), flops=_per_value_flops(5)),
    *[OpDef(name, NoArgs, "Activation", "activation", _identity_shape, ("silu",) if name == "swish" else (),
            flops=_activation_op_flops(name))
      for name in ACTIVATION_OPS],
    OpDef("add", Merge, "Add", "add", _merge_infer("add"), ("Add",), rf="merge", merge=True,
          flops=_merge_flops),
    OpDef("multiply", Merge, "Multiply", "multiply", _merge_infer("multiply"), ("Multiply",),
          rf="merge", merge=True, flops=_merge_flops),
    OpDef("concat", Concat, "Concatenate", "concatenate", _concat_infer, ("Concatenate", "concatenate"),
          rf="merge", merge=True, flops=_zero_flops),
    *_LAYER_DEFS,
]

# --- spatial ops (1-D, 2-D, 3-D convolutions, pools, padding, resampling) --------------------------
# They live in ops_spatial.py, whose rules are written once for n spatial axes; it imports this module.
from .ops_spatial import SPATIAL_DEFS  # noqa: E402

#: Every op by its canonical name.
OPS: dict[str, OpDef] = {d.name: d for d in [*SPATIAL_DEFS, *_DEFS]}
#: Every alias (Keras class names and snake-case spellings) to its canonical op name.
ALIASES: dict[str, str] = {alias: d.name for d in OPS.values() for alias in d.aliases if alias != d.name}


def canonical_op(name: str) -> str | None:
    """The canonical op name for a name or alias, or None if it is not an op.

    >>> canonical_op("BatchNormalization"), canonical_op("Conv3DTranspose"), canonical_op("conv4d")
    ('batchnorm', 'conv3d_transpose', None)
    """
    if name in OPS:
        return name
    return ALIASES.get(name)
