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
from .shapes import (
    SizeError,
    channel_axis,
    dropped_cells,
    effective_window,
    spatial_axes,
    window_output,
)

__all__ = [
    "ACTIVATION_OPS",
    "ALIASES",
    "OPS",
    "REQUIRED",
    "OpDef",
    "ShapeError",
    "WeightSpec",
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


def _image(op: str, shape: Shape, fmt: str) -> tuple[int | None, int | None, int | None]:
    """(H, W, C) of a rank-3 input, whatever the layout."""
    if len(shape) != 3:
        layout = "(H, W, C)" if fmt == "channels_last" else "(C, H, W)"
        raise ShapeError(
            "E405", f"{op} needs a 3-D input {layout} without the batch axis, got shape {_fmt(shape)}"
        )
    h, w = (shape[i] for i in spatial_axes(fmt))
    return h, w, shape[channel_axis(fmt)]


def _compose(fmt: str, h: int | None, w: int | None, c: int | None) -> Shape:
    return (h, w, c) if fmt == "channels_last" else (c, h, w)


def _known_channels(op: str, c: int | None) -> int:
    if c is None:
        raise ShapeError("E404", f"{op} needs a known channel count, got an unknown size (?)")
    return c


def _fmt(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _side_pads(padding: PaddingSpec, side: int) -> str | tuple[int, int]:
    return padding if isinstance(padding, str) else padding[side]


def _windowed(op: str, shape: Shape, fmt: str, size, strides, dilation, padding):
    """Output (H, W) of a sliding window, with the arithmetic in the error."""
    h, w, c = _image(op, shape, fmt)
    out = []
    for side, (length, axis_name) in enumerate(((h, "height"), (w, "width"))):
        try:
            out.append(
                window_output(length, size[side], strides[side], dilation[side], _side_pads(padding, side))
            )
        except SizeError as err:
            raise ShapeError(
                "E401",
                f"{op} output {axis_name} would be {err.size}: {err.arithmetic} "
                f"(input {axis_name} {length}, window {size[side]}, stride {strides[side]}, "
                f"dilation {dilation[side]}, padding {_show_pad(padding, side)})",
                "kernel_size" if op != "maxpool2d" and op != "avgpool2d" else "pool_size",
            ) from None
    return out[0], out[1], c


def _show_pad(padding: PaddingSpec, side: int) -> str:
    return repr(padding) if isinstance(padding, str) else str(padding[side])


def _prod(dims: Sequence[int | None]) -> int | None:
    total = 1
    for d in dims:
        if d is None:
            return None
        total *= d
    return total


def _mul(*factors: int | None) -> int | None:
    return _prod(factors)


def _window_warnings(op: str, shape: Shape, fmt: str, size, strides, dilation, padding, kernel_arg: str):
    if len(shape) != 3:
        return []
    h, w, _ = _image(op, shape, fmt)
    skipped, dropped = [], []
    for side, (length, axis_name) in enumerate(((h, "rows"), (w, "columns"))):
        window = effective_window(size[side], dilation[side])
        if strides[side] > window:
            skipped.append(f"{strides[side] - window} of every {strides[side]} input {axis_name}")
            continue
        lost = dropped_cells(length, size[side], strides[side], dilation[side], _side_pads(padding, side))
        if lost:
            dropped.append(f"the last {lost} of {length} {axis_name}")
    # One warning per kind, naming both axes: both point at the same `strides` argument.
    out = []
    if skipped:
        out.append(("W104", f"{op} stride {_pair(strides)} is larger than its window "
                    f"{_pair(tuple(effective_window(k, d) for k, d in zip(size, dilation)))}: "
                    f"{' and '.join(skipped)} are never read", "strides"))
    if dropped:
        out.append(("W101", f"{op} stride {_pair(strides)} does not tile the input: "
                    f"{' and '.join(dropped)} are silently dropped", "strides"))
    return out


def _pair(values: Sequence[int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"({values[0]}, {values[1]})"


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


@dataclass(frozen=True)
class OpDef:
    """Everything netspec knows about one op.

    ``rf`` says how the op changes a receptive field: ``'window'`` (uses
    :meth:`window`), ``'identity'``, ``'global'`` (every input cell) or
    ``'merge'`` (the widest of the inputs).

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
    window: Callable[[Any], tuple[tuple[int, int], tuple[int, int]]] | None = None
    rf: str = "identity"
    merge: bool = False

    def normalize(self, attrs: Any, default_format: str) -> Any:
        """Fill in what defaults to the network (``data_format``) or to another argument.

        >>> OPS["maxpool2d"].normalize(Pool2D(pool_size=(3, 3)), "channels_last").strides
        (3, 3)
        """
        changes: dict[str, Any] = {}
        if hasattr(attrs, "data_format") and attrs.data_format is None:
            changes["data_format"] = default_format
        if isinstance(attrs, Pool2D) and attrs.strides is None:
            changes["strides"] = attrs.pool_size
        return dataclasses.replace(attrs, **changes) if changes else attrs


# conv2d ------------------------------------------------------------------------


def _conv_validate(attrs: Any) -> list[tuple[str, str, str | None]]:
    if max(attrs.strides) > 1 and max(attrs.dilation_rate) > 1:
        return [(
            "E306",
            f"strides {attrs.strides} > 1 cannot be combined with dilation_rate {attrs.dilation_rate} > 1 "
            "(Keras rejects it)",
            "dilation_rate",
        )]
    return []


def _conv2d_validate(attrs: Conv2D) -> list[tuple[str, str, str | None]]:
    out = _conv_validate(attrs)
    if attrs.filters % attrs.groups:
        out.append(("E402", f"groups={attrs.groups} does not divide filters={attrs.filters}", "groups"))
    return out


def _conv2d_infer(a: Conv2D, shapes: list[Shape]) -> Shape:
    h, w, c = _windowed("conv2d", shapes[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding)
    c = _known_channels("conv2d", c)
    if c % a.groups:
        raise ShapeError(
            "E402", f"groups={a.groups} does not divide the {c} input channels ({c} % {a.groups} = {c % a.groups})",
            "groups",
        )
    return _compose(a.data_format, h, w, a.filters)


def _conv2d_weights(a: Conv2D, shapes: list[Shape]) -> list[WeightSpec]:
    _, _, c = _image("conv2d", shapes[0], a.data_format)
    c = _known_channels("conv2d", c)
    out = [WeightSpec("kernel", (*a.kernel_size, c // a.groups, a.filters), True,
                      a.kernel_initializer, a.kernel_regularizer, a.kernel_constraint)]
    if a.use_bias:
        out.append(WeightSpec("bias", (a.filters,), True, a.bias_initializer, a.bias_regularizer, a.bias_constraint))
    return out


def _conv2d_macs(a: Conv2D, shapes: list[Shape], out: Shape) -> int | None:
    c = _image("conv2d", shapes[0], a.data_format)[2]
    return _mul(_prod(out), a.kernel_size[0] * a.kernel_size[1], None if c is None else c // a.groups)


def _kernel_warnings(op: str, kernel: tuple[int, int]) -> list[tuple[str, str, str | None]]:
    even = [k for k in kernel if k % 2 == 0]
    if even:
        return [("W103", f"{op} has an even kernel size {kernel}: its output is shifted half a pixel", "kernel_size")]
    return []


def _conv_window_warnings(op: str):
    def warnings(a: Any, shapes: list[Shape]):
        return _kernel_warnings(op, a.kernel_size) + _window_warnings(
            op, shapes[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding, "kernel_size"
        )
    return warnings


def _conv_window(a: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    return (
        (effective_window(a.kernel_size[0], a.dilation_rate[0]), effective_window(a.kernel_size[1], a.dilation_rate[1])),
        a.strides,
    )


# depthwise / separable -------------------------------------------------------------


def _depthwise_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        h, w, c = _windowed(op, shapes[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding)
        c = _known_channels(op, c)
        return _compose(a.data_format, h, w, a.filters if op == "separable_conv2d" else c * a.depth_multiplier)
    return infer


def _depthwise_weights(a: DepthwiseConv2D, shapes: list[Shape]) -> list[WeightSpec]:
    c = _known_channels("depthwise_conv2d", _image("depthwise_conv2d", shapes[0], a.data_format)[2])
    out = [WeightSpec("kernel", (*a.kernel_size, c, a.depth_multiplier), True,
                      a.depthwise_initializer, a.depthwise_regularizer, a.depthwise_constraint)]
    if a.use_bias:
        out.append(WeightSpec("bias", (c * a.depth_multiplier,), True,
                              a.bias_initializer, a.bias_regularizer, a.bias_constraint))
    return out


def _depthwise_macs(a: DepthwiseConv2D, shapes: list[Shape], out: Shape) -> int | None:
    return _mul(_prod(out), a.kernel_size[0] * a.kernel_size[1])


def _separable_weights(a: SeparableConv2D, shapes: list[Shape]) -> list[WeightSpec]:
    c = _known_channels("separable_conv2d", _image("separable_conv2d", shapes[0], a.data_format)[2])
    out = [
        WeightSpec("depthwise_kernel", (*a.kernel_size, c, a.depth_multiplier), True,
                   a.depthwise_initializer, a.depthwise_regularizer, a.depthwise_constraint),
        WeightSpec("pointwise_kernel", (1, 1, c * a.depth_multiplier, a.filters), True,
                   a.pointwise_initializer, a.pointwise_regularizer, a.pointwise_constraint),
    ]
    if a.use_bias:
        out.append(WeightSpec("bias", (a.filters,), True, a.bias_initializer, a.bias_regularizer, a.bias_constraint))
    return out


def _separable_macs(a: SeparableConv2D, shapes: list[Shape], out: Shape) -> int | None:
    h, w, c = _image("separable_conv2d", out, a.data_format)
    cin = _image("separable_conv2d", shapes[0], a.data_format)[2]
    mid = None if cin is None else cin * a.depth_multiplier
    return _mul(h, w, mid, a.kernel_size[0] * a.kernel_size[1] + a.filters)


# pooling ---------------------------------------------------------------------------------


def _pool_infer(op: str):
    def infer(a: Pool2D, shapes: list[Shape]) -> Shape:
        h, w, c = _windowed(op, shapes[0], a.data_format, a.pool_size, a.strides, (1, 1), a.padding)
        return _compose(a.data_format, h, w, c)
    return infer


def _pool_warnings(op: str):
    def warnings(a: Pool2D, shapes: list[Shape]):
        return _window_warnings(op, shapes[0], a.data_format, a.pool_size, a.strides, (1, 1), a.padding, "pool_size")
    return warnings


def _pool_window(a: Pool2D) -> tuple[tuple[int, int], tuple[int, int]]:
    return a.pool_size, a.strides  # type: ignore[return-value]


def _global_infer(op: str):
    def infer(a: GlobalPool2D, shapes: list[Shape]) -> Shape:
        _, _, c = _image(op, shapes[0], a.data_format)
        if not a.keepdims:
            return (c,)
        return _compose(a.data_format, 1, 1, c)
    return infer


def _zeropad_infer(a: ZeroPad2D, shapes: list[Shape]) -> Shape:
    h, w, c = _image("zeropad2d", shapes[0], a.data_format)
    (t, b), (left, right) = a.padding
    return _compose(a.data_format, None if h is None else h + t + b, None if w is None else w + left + right, c)


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

# Version 2's layer ops live in their own module; it needs everything above.
from .ops_layers import DEFS as _LAYER_DEFS  # noqa: E402
from .ops_layers import Merge, _merge_infer  # noqa: E402

#: Ops that apply one ``keras.activations`` function and take no arguments.
ACTIVATION_OPS = (
    "gelu", "selu", "sigmoid", "hard_sigmoid", "softplus", "softsign", "swish", "tanh", "exponential", "linear",
)

_DEFS: list[OpDef] = [
    OpDef("conv2d", Conv2D, "Conv2D", "conv2d", _conv2d_infer, ("Conv2D", "Convolution2D", "conv2D"),
          _conv2d_weights, _conv2d_macs, _conv_window_warnings("conv2d"), _conv2d_validate, _conv_window, "window"),
    OpDef("depthwise_conv2d", DepthwiseConv2D, "DepthwiseConv2D", "depthwise_conv2d",
          _depthwise_infer("depthwise_conv2d"), ("DepthwiseConv2D",), _depthwise_weights, _depthwise_macs,
          _conv_window_warnings("depthwise_conv2d"), _conv_validate, _conv_window, "window"),
    OpDef("separable_conv2d", SeparableConv2D, "SeparableConv2D", "separable_conv2d",
          _depthwise_infer("separable_conv2d"), ("SeparableConv2D", "SeparableConvolution2D"),
          _separable_weights, _separable_macs, _conv_window_warnings("separable_conv2d"), _conv_validate,
          _conv_window, "window"),
    OpDef("maxpool2d", Pool2D, "MaxPooling2D", "max_pooling2d", _pool_infer("maxpool2d"),
          ("MaxPooling2D", "MaxPool2D", "max_pooling2d", "max_pool2d"),
          warnings=_pool_warnings("maxpool2d"), window=_pool_window, rf="window"),
    OpDef("avgpool2d", Pool2D, "AveragePooling2D", "average_pooling2d", _pool_infer("avgpool2d"),
          ("AveragePooling2D", "AvgPool2D", "average_pooling2d", "avg_pool2d"),
          warnings=_pool_warnings("avgpool2d"), window=_pool_window, rf="window"),
    OpDef("global_avgpool2d", GlobalPool2D, "GlobalAveragePooling2D", "global_average_pooling2d",
          _global_infer("global_avgpool2d"),
          ("GlobalAveragePooling2D", "GlobalAvgPool2D", "global_average_pooling2d", "global_avg_pool2d"), rf="global"),
    OpDef("global_maxpool2d", GlobalPool2D, "GlobalMaxPooling2D", "global_max_pooling2d",
          _global_infer("global_maxpool2d"),
          ("GlobalMaxPooling2D", "GlobalMaxPool2D", "global_max_pooling2d", "global_max_pool2d"), rf="global"),
    OpDef("zeropad2d", ZeroPad2D, "ZeroPadding2D", "zero_padding2d", _zeropad_infer,
          ("ZeroPadding2D", "zero_padding2d")),
    OpDef("flatten", Flatten, "Flatten", "flatten", _flatten_infer, ("Flatten",), rf="global"),
    OpDef("reshape", Reshape, "Reshape", "reshape", _reshape_infer, ("Reshape",), rf="global"),
    OpDef("dense", Dense, "Dense", "dense", _dense_infer, ("Dense",), _dense_weights, _dense_macs,
          _dense_warnings),
    OpDef("dropout", Dropout, "Dropout", "dropout", _identity_shape, ("Dropout",)),
    OpDef("batchnorm", BatchNorm, "BatchNormalization", "batch_normalization", _batchnorm_infer,
          ("BatchNormalization", "batch_normalization", "batchnormalization"), _batchnorm_weights),
    OpDef("activation", Activation, "Activation", "activation", _identity_shape, ("Activation",)),
    OpDef("relu", ReLU, "ReLU", "re_lu", _identity_shape, ("ReLU",)),
    OpDef("leaky_relu", LeakyReLU, "LeakyReLU", "leaky_re_lu", _identity_shape, ("LeakyReLU",)),
    OpDef("elu", ELU, "ELU", "elu", _identity_shape, ("ELU",)),
    OpDef("softmax", Softmax, "Softmax", "softmax", _softmax_infer, ("Softmax",)),
    *[OpDef(name, NoArgs, "Activation", "activation", _identity_shape, ("silu",) if name == "swish" else ())
      for name in ACTIVATION_OPS],
    OpDef("add", Merge, "Add", "add", _merge_infer("add"), ("Add",), rf="merge", merge=True),
    OpDef("multiply", Merge, "Multiply", "multiply", _merge_infer("multiply"), ("Multiply",),
          rf="merge", merge=True),
    OpDef("concat", Concat, "Concatenate", "concatenate", _concat_infer, ("Concatenate", "concatenate"),
          rf="merge", merge=True),
    *_LAYER_DEFS,
]

#: Every op by its canonical name.
OPS: dict[str, OpDef] = {d.name: d for d in _DEFS}
#: Every alias (Keras class names and snake-case spellings) to its canonical op name.
ALIASES: dict[str, str] = {alias: d.name for d in _DEFS for alias in d.aliases if alias != d.name}


def canonical_op(name: str) -> str | None:
    """The canonical op name for a name or alias, or None if it is not an op.

    >>> canonical_op("BatchNormalization"), canonical_op("conv3d")
    ('batchnorm', None)
    """
    if name in OPS:
        return name
    return ALIASES.get(name)
