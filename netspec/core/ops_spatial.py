"""Spatial ops over N axes: convolutions, transposed convolutions, pools, padding, cropping, resampling.

Every rule here is written once for ``n`` spatial axes (1-D signals
``(L, C)``, 2-D images ``(H, W, C)``, 3-D volumes ``(D, H, W, C)``; channels
first too) and each op's :class:`~netspec.core.ops.OpDef` is made from those
rules, so ``conv1d``, ``conv2d`` and ``conv3d`` cannot disagree.
:mod:`netspec.core.ops` registers :data:`SPATIAL_DEFS` into its ``OPS``.

>>> from netspec.core.ops import OPS
>>> a = OPS["conv1d"].normalize(make_attrs(Conv1D, {"filters": 8, "kernel_size": 3, "padding": "causal",
...                                                 "dilation_rate": 2}), "channels_last")
>>> OPS["conv1d"].infer(a, [(100, 4)])
(100, 8)
>>> t = OPS["conv2d_transpose"].normalize(make_attrs(Conv2DTranspose, {"filters": 4, "kernel_size": 3,
...                                                                    "strides": 2}), "channels_last")
>>> OPS["conv2d_transpose"].infer(t, [(16, 16, 8)]), [w.shape for w in OPS["conv2d_transpose"].weights(t, [(16, 16, 8)])]
((33, 33, 4), [(3, 3, 4, 8), (4,)])
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import argtypes as at
from .argtypes import ArgError, KerasObject, format_value
from .explain import explain_resample, explain_transpose, explain_window
from .ir import Shape
from .ops import (
    GLOROT,
    ZEROS,
    Conv2D,
    DepthwiseConv2D,
    GlobalPool2D,
    OpDef,
    Pool2D,
    SeparableConv2D,
    ShapeError,
    WeightSpec,
    ZeroPad2D,
    _fmt,
    _global_flops,
    _known_channels,
    _mul,
    _prod,
    _weighted_flops,
    _zero_flops,
    arg,
    make_attrs,
)
from .shapes import SizeError, dropped_cells, effective_window, window_output

__all__ = [
    "INTERPOLATIONS",
    "SPATIAL_DEFS",
    "CenterCrop",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "DepthwiseConv1D",
    "GlobalPool1D",
    "GlobalPool3D",
    "Pool1D",
    "Pool3D",
    "Resizing",
    "SeparableConv1D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPad1D",
    "ZeroPad3D",
    "conv_transpose_length",
    "resize_crop_box",
    "spatial_rank",
]

#: ``interpolation`` values of ``upsampling2d`` and ``resizing``, as ``keras.ops.image.resize``.
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")

_LAYOUTS = {
    1: ("(L, C)", "(C, L)"),
    2: ("(H, W, C)", "(C, H, W)"),
    3: ("(D, H, W, C)", "(C, D, H, W)"),
}
_AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_CELLS = {1: ("steps",), 2: ("rows", "columns"), 3: ("planes", "rows", "columns")}


# --- argument kinds for n axes ---------------------------------------------------------------------


def int_tuple_n(n: int, minimum: int = 1) -> Callable[[Any, str], tuple[int, ...]]:
    """A converter: an int or a tuple of ``n`` ints (at least ``minimum``), as an ``n``-tuple.

    >>> int_tuple_n(3)(2, "size"), int_tuple_n(1)((4,), "size")
    ((2, 2, 2), (4,))
    """
    def convert(value: Any, what: str) -> tuple[int, ...]:
        if isinstance(value, tuple):
            if len(value) != n:
                raise ArgError("E302", f"{what} must be an integer or a tuple of {n}, got a tuple of {len(value)}")
            return tuple(at.integer(v, what, minimum) for v in value)
        v = at.integer(value, what, minimum)
        return (v,) * n
    return convert


def optional_int_tuple_n(n: int, minimum: int = 1) -> Callable[[Any, str], tuple[int, ...] | None]:
    """Like :func:`int_tuple_n`, or ``none``.

    >>> optional_int_tuple_n(2, 0)(None, "output_padding") is None
    True
    """
    inner = int_tuple_n(n, minimum)

    def convert(value: Any, what: str) -> tuple[int, ...] | None:
        return None if value is None else inner(value, what)
    return convert


def explicit_pads_n(n: int) -> Callable[[Any, str], tuple[tuple[int, int], ...]]:
    """A converter: an int, a tuple per axis or a pair per axis, as ``n`` (begin, end) pairs.

    For one axis a pair is (begin, end), as Keras's ``ZeroPadding1D`` and ``Cropping1D`` read it.

    >>> explicit_pads_n(1)((1, 2), "padding"), explicit_pads_n(3)((1, (0, 2), 3), "padding")
    (((1, 2),), ((1, 1), (0, 2), (3, 3)))
    """
    def side(v: Any, what: str) -> int:
        return at.integer(v, what, 0)

    def convert(value: Any, what: str) -> tuple[tuple[int, int], ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            p = side(value, what)
            return ((p, p),) * n
        if isinstance(value, tuple):
            if n == 1 and len(value) == 2 and all(not isinstance(v, tuple) for v in value):
                return ((side(value[0], what), side(value[1], what)),)
            if len(value) != n:
                shape = "an int or a (begin, end) pair" if n == 1 else f"an int, a tuple of {n} or {n} pairs"
                raise ArgError("E302", f"{what} must be {shape}, got a tuple of {len(value)}")
            out = []
            for part in value:
                if isinstance(part, tuple):
                    if len(part) != 2:
                        raise ArgError("E302", f"{what} pairs must have two entries, got {format_value(part)}")
                    out.append((side(part[0], what), side(part[1], what)))
                else:
                    out.append((side(part, what), side(part, what)))
            return tuple(out)
        raise ArgError("E302", f"{what} must be an int, a tuple per axis or a pair per axis, got "
                       f"{at.type_name(value)} {format_value(value)[:40]}")
    return convert


def padding_n(n: int, modes: tuple[str, ...] = ("valid", "same")) -> Callable[[Any, str], Any]:
    """A converter: one of ``modes``, or explicit padding as :func:`explicit_pads_n`.

    >>> padding_n(1, ("valid", "same", "causal"))("Causal", "padding")
    'causal'
    >>> padding_n(2)(1, "padding")
    ((1, 1), (1, 1))
    """
    explicit = explicit_pads_n(n)

    def convert(value: Any, what: str) -> Any:
        if isinstance(value, str):
            return at._enum(value, what, modes)
        return explicit(value, what)
    return convert


def enum(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    """A converter for one of ``choices`` (case-insensitive).

    >>> enum(INTERPOLATIONS)("Bilinear", "interpolation")
    'bilinear'
    """
    def convert(value: Any, what: str) -> str:
        return at._enum(value, what, choices)
    return convert


# --- attribute classes -------------------------------------------------------------------------------

_T1, _T3 = int_tuple_n(1), int_tuple_n(3)
_O1, _O3 = optional_int_tuple_n(1), optional_int_tuple_n(3)


@dataclass(frozen=True, slots=True)
class Conv1D:
    """``conv1d`` / ``Conv1D``; ``padding='causal'`` pads ``D*(F-1)`` at the start."""

    filters: int = arg(at.positive_int)
    kernel_size: tuple[int] = arg(_T1)
    strides: tuple[int] = arg(_T1, (1,))
    padding: Any = arg(padding_n(1, ("valid", "same", "causal")), "valid")
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int] = arg(_T1, (1,))
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
class Conv3D:
    """``conv3d`` / ``Conv3D``."""

    filters: int = arg(at.positive_int)
    kernel_size: tuple[int, int, int] = arg(_T3)
    strides: tuple[int, int, int] = arg(_T3, (1, 1, 1))
    padding: Any = arg(padding_n(3), "valid")
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int, int, int] = arg(_T3, (1, 1, 1))
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


def _transpose_class(n: int, name: str, format_first: bool) -> type:
    """A ``Conv{n}DTranspose`` attribute class (Keras puts ``data_format`` before ``output_padding`` in 3-D)."""
    tup, opt = int_tuple_n(n), optional_int_tuple_n(n, 0)
    fields: list[tuple[str, Any, Any]] = [
        ("filters", int, arg(at.positive_int)),
        ("kernel_size", tuple, arg(tup)),
        ("strides", tuple, arg(tup, (1,) * n)),
        ("padding", str, arg(enum(("valid", "same")), "valid")),
    ]
    tail = [("output_padding", Any, arg(opt, None)), ("data_format", Any, arg(at.data_format, None))]
    fields += tail[::-1] if format_first else tail
    fields += [
        ("dilation_rate", tuple, arg(tup, (1,) * n)),
        ("activation", str, arg(at.activation, "linear")),
        ("use_bias", bool, arg(at.boolean, True)),
        ("kernel_initializer", KerasObject, arg(at.initializer, GLOROT)),
        ("bias_initializer", KerasObject, arg(at.initializer, ZEROS)),
        ("kernel_regularizer", Any, arg(at.regularizer, None)),
        ("bias_regularizer", Any, arg(at.regularizer, None)),
        ("activity_regularizer", Any, arg(at.regularizer, None)),
        ("kernel_constraint", Any, arg(at.constraint, None)),
        ("bias_constraint", Any, arg(at.constraint, None)),
    ]
    cls = dataclasses.make_dataclass(name, fields, frozen=True, slots=True)
    cls.__module__ = __name__
    cls.__doc__ = f"``conv{n}d_transpose`` / ``Conv{n}DTranspose``: kernel ``(F..., filters, C_in)``."
    return cls


Conv1DTranspose = _transpose_class(1, "Conv1DTranspose", False)
Conv2DTranspose = _transpose_class(2, "Conv2DTranspose", False)
Conv3DTranspose = _transpose_class(3, "Conv3DTranspose", True)


@dataclass(frozen=True, slots=True)
class DepthwiseConv1D:
    """``depthwise_conv1d`` / ``DepthwiseConv1D``: kernel ``(F, C, depth_multiplier)``."""

    kernel_size: tuple[int] = arg(_T1)
    strides: tuple[int] = arg(_T1, (1,))
    padding: Any = arg(padding_n(1), "valid")
    depth_multiplier: int = arg(at.positive_int, 1)
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int] = arg(_T1, (1,))
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
class SeparableConv1D:
    """``separable_conv1d`` / ``SeparableConv1D``."""

    filters: int = arg(at.positive_int)
    kernel_size: tuple[int] = arg(_T1)
    strides: tuple[int] = arg(_T1, (1,))
    padding: Any = arg(padding_n(1), "valid")
    data_format: str | None = arg(at.data_format, None)
    dilation_rate: tuple[int] = arg(_T1, (1,))
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
class Pool1D:
    """``maxpool1d`` / ``avgpool1d``; ``strides`` defaults to ``pool_size``."""

    pool_size: tuple[int] = arg(_T1, (2,))
    strides: tuple[int] | None = arg(_O1, None)
    padding: Any = arg(padding_n(1), "valid")
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Pool3D:
    """``maxpool3d`` / ``avgpool3d``; ``strides`` defaults to ``pool_size``."""

    pool_size: tuple[int, int, int] = arg(_T3, (2, 2, 2))
    strides: tuple[int, int, int] | None = arg(_O3, None)
    padding: Any = arg(padding_n(3), "valid")
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class GlobalPool1D:
    """``global_avgpool1d`` / ``global_maxpool1d``."""

    data_format: str | None = arg(at.data_format, None)
    keepdims: bool = arg(at.boolean, False)


@dataclass(frozen=True, slots=True)
class GlobalPool3D:
    """``global_avgpool3d`` / ``global_maxpool3d``."""

    data_format: str | None = arg(at.data_format, None)
    keepdims: bool = arg(at.boolean, False)


@dataclass(frozen=True, slots=True)
class ZeroPad1D:
    """``zeropad1d`` / ``ZeroPadding1D``: ``padding`` an int or (begin, end)."""

    padding: tuple[tuple[int, int]] = arg(explicit_pads_n(1), ((1, 1),))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class ZeroPad3D:
    """``zeropad3d`` / ``ZeroPadding3D``."""

    padding: tuple[tuple[int, int], ...] = arg(explicit_pads_n(3), ((1, 1), (1, 1), (1, 1)))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Cropping1D:
    """``cropping1d`` / ``Cropping1D``: (begin, end) steps off axis 1 (Keras gives it no data_format)."""

    cropping: tuple[tuple[int, int]] = arg(explicit_pads_n(1), ((1, 1),))


@dataclass(frozen=True, slots=True)
class Cropping2D:
    """``cropping2d`` / ``Cropping2D``: ``((top, bottom), (left, right))``."""

    cropping: tuple[tuple[int, int], ...] = arg(explicit_pads_n(2), ((0, 0), (0, 0)))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Cropping3D:
    """``cropping3d`` / ``Cropping3D``."""

    cropping: tuple[tuple[int, int], ...] = arg(explicit_pads_n(3), ((1, 1), (1, 1), (1, 1)))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class UpSampling1D:
    """``upsampling1d`` / ``UpSampling1D``: repeats each step ``size`` times on axis 1."""

    size: tuple[int] = arg(_T1, (2,))


@dataclass(frozen=True, slots=True)
class UpSampling2D:
    """``upsampling2d`` / ``UpSampling2D``: ``interpolation`` as ``keras.ops.image.resize``."""

    size: tuple[int, int] = arg(at.int_pair, (2, 2))
    data_format: str | None = arg(at.data_format, None)
    interpolation: str = arg(enum(INTERPOLATIONS), "nearest")


@dataclass(frozen=True, slots=True)
class UpSampling3D:
    """``upsampling3d`` / ``UpSampling3D`` (nearest)."""

    size: tuple[int, int, int] = arg(_T3, (2, 2, 2))
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class Resizing:
    """``resizing(height, width)`` / ``Resizing`` (``pad_to_aspect_ratio`` is not supported)."""

    height: int = arg(at.positive_int)
    width: int = arg(at.positive_int)
    interpolation: str = arg(enum(INTERPOLATIONS), "bilinear")
    crop_to_aspect_ratio: bool = arg(at.boolean, False)
    data_format: str | None = arg(at.data_format, None)


@dataclass(frozen=True, slots=True)
class CenterCrop:
    """``center_crop(height, width)`` / ``CenterCrop``; a smaller input is resized as Keras does."""

    height: int = arg(at.positive_int)
    width: int = arg(at.positive_int)
    data_format: str | None = arg(at.data_format, None)


# --- shapes on n axes ---------------------------------------------------------------------------------


def spatial_rank(attrs: Any) -> int:
    """How many spatial axes an op's attributes describe.

    >>> spatial_rank(make_attrs(Conv3D, {"filters": 1, "kernel_size": 3}))
    3
    """
    for key in ("kernel_size", "pool_size", "padding", "cropping", "size"):
        value = getattr(attrs, key, None)
        if isinstance(value, tuple):
            return len(value)
    return 2


def _split(op: str, shape: Shape, fmt: str, n: int) -> tuple[list[int | None], int | None]:
    """(spatial sizes, channels) of an input of ``n`` spatial axes, or E405 naming both ranks."""
    if len(shape) != n + 1:
        layout = _LAYOUTS[n][fmt != "channels_last"]
        raise ShapeError(
            "E405", f"{op} needs a {n + 1}-D input {layout} without the batch axis, got shape {_fmt(shape)}"
            + (f" of rank {len(shape)}" if len(shape) != 1 else "")
        )
    if fmt == "channels_last":
        return list(shape[:-1]), shape[-1]
    return list(shape[1:]), shape[0]


def _join(fmt: str, dims: Sequence[int | None], c: int | None) -> Shape:
    return (*dims, c) if fmt == "channels_last" else (c, *dims)


def _axis_pad(padding: Any, i: int, size: int, dilation: int) -> Any:
    """The padding of axis ``i`` as :func:`netspec.core.shapes.window_output` takes it."""
    if padding == "causal":
        return (dilation * (size - 1), 0)
    return padding if isinstance(padding, str) else padding[i]


def _show_pad(padding: Any, i: int, size: int, dilation: int) -> str:
    return repr(padding) if padding in ("valid", "same") else str(_axis_pad(padding, i, size, dilation))


def _windowed(op: str, shape: Shape, fmt: str, size, strides, dilation, padding, kernel_arg: str):
    """Output spatial sizes and channels of a sliding window, with the arithmetic in the error."""
    n = len(size)
    dims, c = _split(op, shape, fmt, n)
    out = []
    for i, length in enumerate(dims):
        try:
            out.append(window_output(length, size[i], strides[i], dilation[i], _axis_pad(padding, i, size[i],
                                                                                       dilation[i])))
        except SizeError as err:
            axis = _AXIS_NAMES[n][i]
            raise ShapeError(
                "E401",
                f"{op} output {axis} would be {err.size}: {err.arithmetic} "
                f"(input {axis} {length}, window {size[i]}, stride {strides[i]}, "
                f"dilation {dilation[i]}, padding {_show_pad(padding, i, size[i], dilation[i])})",
                kernel_arg,
            ) from None
    return out, c


def _text(values: Sequence[int]) -> str:
    """``3`` when every axis agrees, else ``(3, 5)``."""
    return str(values[0]) if len(set(values)) == 1 else "(" + ", ".join(map(str, values)) + ")"


def _window_warnings(op: str, shape: Shape, fmt: str, size, strides, dilation, padding):
    n = len(size)
    if len(shape) != n + 1:
        return []
    dims, _ = _split(op, shape, fmt, n)
    skipped, dropped = [], []
    for i, length in enumerate(dims):
        cells = _CELLS[n][i]
        window = effective_window(size[i], dilation[i])
        if strides[i] > window:
            skipped.append(f"{strides[i] - window} of every {strides[i]} input {cells}")
            continue
        lost = dropped_cells(length, size[i], strides[i], dilation[i], _axis_pad(padding, i, size[i], dilation[i]))
        if lost:
            dropped.append(f"the last {lost} of {length} {cells}")
    out = []
    if skipped:
        out.append(("W104", f"{op} stride {_text(strides)} is larger than its window "
                    f"{_text([effective_window(k, d) for k, d in zip(size, dilation)])}: "
                    f"{' and '.join(skipped)} are never read", "strides"))
    if dropped:
        out.append(("W101", f"{op} stride {_text(strides)} does not tile the input: "
                    f"{' and '.join(dropped)} are silently dropped", "strides"))
    return out


def _kernel_warnings(op: str, kernel: tuple[int, ...]) -> list[tuple[str, str, str | None]]:
    if any(k % 2 == 0 for k in kernel):
        shown = kernel if len(kernel) > 1 else kernel[0]
        return [("W103", f"{op} has an even kernel size {shown}: its output is shifted half a pixel", "kernel_size")]
    return []


def _conv_window(a: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return tuple(effective_window(k, d) for k, d in zip(a.kernel_size, a.dilation_rate)), tuple(a.strides)


def _strided_dilated(a: Any) -> list[tuple[str, str, str | None]]:
    if max(a.strides) > 1 and max(a.dilation_rate) > 1:
        return [(
            "E306",
            f"strides {_show_tuple(a.strides)} > 1 cannot be combined with dilation_rate "
            f"{_show_tuple(a.dilation_rate)} > 1 (Keras rejects it)",
            "dilation_rate",
        )]
    return []


def _show_tuple(t: tuple[int, ...]) -> str:
    return format_value(t)


# convolutions -------------------------------------------------------------------------------------------


def _conv_validate(a: Any) -> list[tuple[str, str, str | None]]:
    out = _strided_dilated(a)
    groups = getattr(a, "groups", 1)
    if hasattr(a, "filters") and a.filters % groups:
        out.append(("E402", f"groups={groups} does not divide filters={a.filters}", "groups"))
    return out


def _conv_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _windowed(op, shapes[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding,
                            "kernel_size")
        c = _known_channels(op, c)
        groups = getattr(a, "groups", 1)
        if c % groups:
            raise ShapeError(
                "E402", f"groups={groups} does not divide the {c} input channels ({c} % {groups} = {c % groups})",
                "groups",
            )
        if op.startswith("depthwise"):
            return _join(a.data_format, dims, c * a.depth_multiplier)
        return _join(a.data_format, dims, a.filters)
    return infer


def _channels(op: str, a: Any, shape: Shape) -> int:
    return _known_channels(op, _split(op, shape, a.data_format, len(a.kernel_size))[1])


def _conv_weights(op: str):
    def weights(a: Any, shapes: list[Shape]) -> list[WeightSpec]:
        c = _channels(op, a, shapes[0])
        out = [WeightSpec("kernel", (*a.kernel_size, c // a.groups, a.filters), True,
                          a.kernel_initializer, a.kernel_regularizer, a.kernel_constraint)]
        if a.use_bias:
            out.append(WeightSpec("bias", (a.filters,), True, a.bias_initializer, a.bias_regularizer,
                                  a.bias_constraint))
        return out
    return weights


def _conv_macs(op: str):
    def macs(a: Any, shapes: list[Shape], out: Shape) -> int | None:
        c = _split(op, shapes[0], a.data_format, len(a.kernel_size))[1]
        return _mul(_prod(out), math.prod(a.kernel_size), None if c is None else c // a.groups)
    return macs


def _conv_warnings(op: str):
    def warnings(a: Any, shapes: list[Shape]):
        # A causal window's padding is its own choice: only strides can drop steps there.
        return _kernel_warnings(op, a.kernel_size) * (a.padding != "causal") + _window_warnings(
            op, shapes[0], a.data_format, a.kernel_size, a.strides, a.dilation_rate, a.padding)
    return warnings


def _depthwise_weights(op: str):
    def weights(a: Any, shapes: list[Shape]) -> list[WeightSpec]:
        c = _channels(op, a, shapes[0])
        out = [WeightSpec("kernel", (*a.kernel_size, c, a.depth_multiplier), True,
                          a.depthwise_initializer, a.depthwise_regularizer, a.depthwise_constraint)]
        if a.use_bias:
            out.append(WeightSpec("bias", (c * a.depth_multiplier,), True,
                                  a.bias_initializer, a.bias_regularizer, a.bias_constraint))
        return out
    return weights


def _depthwise_macs(a: Any, shapes: list[Shape], out: Shape) -> int | None:
    return _mul(_prod(out), math.prod(a.kernel_size))


def _separable_weights(op: str):
    def weights(a: Any, shapes: list[Shape]) -> list[WeightSpec]:
        c = _channels(op, a, shapes[0])
        n = len(a.kernel_size)
        out = [
            WeightSpec("depthwise_kernel", (*a.kernel_size, c, a.depth_multiplier), True,
                       a.depthwise_initializer, a.depthwise_regularizer, a.depthwise_constraint),
            WeightSpec("pointwise_kernel", (*(1,) * n, c * a.depth_multiplier, a.filters), True,
                       a.pointwise_initializer, a.pointwise_regularizer, a.pointwise_constraint),
        ]
        if a.use_bias:
            out.append(WeightSpec("bias", (a.filters,), True, a.bias_initializer, a.bias_regularizer,
                                  a.bias_constraint))
        return out
    return weights


def _separable_macs(op: str):
    def macs(a: Any, shapes: list[Shape], out: Shape) -> int | None:
        n = len(a.kernel_size)
        dims, _ = _split(op, out, a.data_format, n)
        cin = _split(op, shapes[0], a.data_format, n)[1]
        mid = None if cin is None else cin * a.depth_multiplier
        return _mul(_prod(dims), mid, math.prod(a.kernel_size) + a.filters)
    return macs


# transposed convolutions ----------------------------------------------------------------------------------


def conv_transpose_length(length: int | None, size: int, stride: int, dilation: int, padding: str,
                          output_padding: int | None) -> int | None:
    """Keras's ``deconv_output_length`` (the TensorFlow backend's ``_get_output_shape_given_tf_padding``).

    >>> conv_transpose_length(16, 3, 2, 1, "valid", None), conv_transpose_length(16, 3, 2, 1, "same", None)
    (33, 32)
    >>> conv_transpose_length(16, 3, 2, 1, "same", 0), conv_transpose_length(16, 1, 3, 1, "valid", None)
    (31, 48)
    """
    if length is None:
        return None
    k = effective_window(size, dilation)
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return (length - 1) * stride + k + extra
    if output_padding is None:
        return length * stride
    return (length - 1) * stride + k % 2 + output_padding


def transpose_pads(size: int, stride: int, dilation: int, padding: str, output_padding: int | None
                   ) -> tuple[int, int, int]:
    """ONNX ``ConvTranspose`` ``(pad_begin, pad_end, output_padding)`` of one axis for Keras's padding.

    TensorFlow crops the full transposed output; any input length gives the
    same crop, so it is computed at length 4.  The ONNX target writes these
    pads and the ONNX importer reads them back.

    >>> transpose_pads(3, 2, 1, "same", None), transpose_pads(3, 2, 1, "valid", None)
    ((0, 1, 0), (0, 0, 0))
    """
    out = conv_transpose_length(4, size, stride, dilation, padding, output_padding)
    assert out is not None
    full = 3 * stride + dilation * (size - 1) + 1
    begin = 0 if padding == "valid" else max(full - out, 0) // 2
    end = full - begin - out
    return begin, max(end, 0), max(-end, 0)


def _transpose_validate(a: Any) -> list[tuple[str, str, str | None]]:
    out = _strided_dilated(a)
    if a.output_padding is not None:
        for op_, s in zip(a.output_padding, a.strides):
            if op_ >= s:
                out.append(("E306", f"output_padding {_show_tuple(a.output_padding)} must be less than strides "
                            f"{_show_tuple(a.strides)} on every axis (Keras rejects it)", "output_padding"))
                break
        if a.padding == "same":
            for i, (k, d, op_) in enumerate(zip(a.kernel_size, a.dilation_rate, a.output_padding)):
                if effective_window(k, d) % 2 == 0 and op_ == 0:
                    out.append(("E410", f"padding='same' with the even window {effective_window(k, d)} and "
                                "output_padding 0 makes an output one short of what the matching convolution "
                                f"reads on axis {i + 1} (TensorFlow refuses it); use output_padding >= 1 or "
                                "an odd kernel", "output_padding"))
                    break
    return out


def _transpose_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        n = len(a.kernel_size)
        dims, c = _split(op, shapes[0], a.data_format, n)
        _known_channels(op, c)
        ops_ = a.output_padding or (None,) * n
        out = [conv_transpose_length(d, k, s, r, a.padding, p)
               for d, k, s, r, p in zip(dims, a.kernel_size, a.strides, a.dilation_rate, ops_)]
        return _join(a.data_format, out, a.filters)
    return infer


def _transpose_weights(op: str):
    def weights(a: Any, shapes: list[Shape]) -> list[WeightSpec]:
        c = _channels(op, a, shapes[0])
        out = [WeightSpec("kernel", (*a.kernel_size, a.filters, c), True,
                          a.kernel_initializer, a.kernel_regularizer, a.kernel_constraint)]
        if a.use_bias:
            out.append(WeightSpec("bias", (a.filters,), True, a.bias_initializer, a.bias_regularizer,
                                  a.bias_constraint))
        return out
    return weights


def _transpose_macs(op: str):
    def macs(a: Any, shapes: list[Shape], out: Shape) -> int | None:
        # Every input cell meets every kernel tap once: input cells x C_in x taps x filters.
        return _mul(_prod(shapes[0]), math.prod(a.kernel_size), a.filters)
    return macs


def _transpose_warnings(op: str):
    def warnings(a: Any, shapes: list[Shape]):
        uneven = [(k, s) for k, s in zip(a.kernel_size, a.strides) if s > 1 and k % s]
        if uneven:
            k, s = uneven[0]
            return [("W110", f"{op} kernel size {k} is not a multiple of its stride {s}: output cells get "
                     "unequal numbers of contributions (checkerboard artifacts)", "kernel_size")]
        return []
    return warnings


def _transpose_window(a: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    # Each output cell reads ceil(K/S) input cells; a step of one output cell is 1/S input cells.
    from fractions import Fraction  # here, not at the top: most nets never need it (start-up time)

    return (tuple(-(-effective_window(k, d) // s) for k, d, s in zip(a.kernel_size, a.dilation_rate, a.strides)),
            tuple(Fraction(1, s) for s in a.strides))


# pools ------------------------------------------------------------------------------------------------------


def _pool_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _windowed(op, shapes[0], a.data_format, a.pool_size, a.strides, (1,) * len(a.pool_size),
                            a.padding, "pool_size")
        return _join(a.data_format, dims, c)
    return infer


def _pool_warnings(op: str):
    def warnings(a: Any, shapes: list[Shape]):
        return _window_warnings(op, shapes[0], a.data_format, a.pool_size, a.strides, (1,) * len(a.pool_size),
                                a.padding)
    return warnings


def _pool_window(a: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    return tuple(a.pool_size), tuple(a.strides)


def _global_infer(op: str, n: int):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        _, c = _split(op, shapes[0], a.data_format, n)
        return _join(a.data_format, (1,) * n, c) if a.keepdims else (c,)
    return infer


# padding, cropping, resampling -------------------------------------------------------------------------------


def _format_of(a: Any) -> str:
    return getattr(a, "data_format", None) or "channels_last"


def _zeropad_infer(op: str, n: int):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _split(op, shapes[0], _format_of(a), n)
        return _join(_format_of(a), [None if d is None else d + b + e for d, (b, e) in zip(dims, a.padding)], c)
    return infer


def _cropping_infer(op: str, n: int):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _split(op, shapes[0], _format_of(a), n)
        out = []
        for i, (d, (b, e)) in enumerate(zip(dims, a.cropping)):
            if d is not None and d - b - e < 1:
                axis = _AXIS_NAMES[n][i]
                raise ShapeError("E401", f"{op} output {axis} would be {d - b - e}: {d} - {b} - {e} "
                                 f"(input {axis} {d}, cropping ({b}, {e}))", "cropping")
            out.append(None if d is None else d - b - e)
        return _join(_format_of(a), out, c)
    return infer


def _upsampling_infer(op: str, n: int):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _split(op, shapes[0], _format_of(a), n)
        return _join(_format_of(a), [None if d is None else d * s for d, s in zip(dims, a.size)], c)
    return infer


def _upsampling_window(a: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    from fractions import Fraction  # see _transpose_window

    reach = 1 if getattr(a, "interpolation", "nearest") in ("nearest", "area") else 2
    return (reach,) * len(a.size), tuple(Fraction(1, s) for s in a.size)


def resize_crop_box(height: int, width: int, target_height: int, target_width: int) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width) of Keras's ``crop_to_aspect_ratio``: the centred box of the target's shape.

    >>> resize_crop_box(100, 200, 50, 50)
    (0, 50, 100, 100)
    """
    crop_h = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_w = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def _resize_infer(op: str):
    def infer(a: Any, shapes: list[Shape]) -> Shape:
        dims, c = _split(op, shapes[0], a.data_format, 2)
        if op == "center_crop" and None in dims:
            raise ShapeError("E404", f"center_crop needs a known height and width, got {_fmt(shapes[0])}")
        return _join(a.data_format, (a.height, a.width), c)
    return infer


def _center_crop_warnings(a: Any, shapes: list[Shape]):
    if len(shapes[0]) != 3:
        return []
    dims, _ = _split("center_crop", shapes[0], a.data_format, 2)
    if any(d is not None and d < t for d, t in zip(dims, (a.height, a.width))):
        return [("W111", f"center_crop to ({a.height}, {a.width}) of an input of {_fmt(tuple(dims))} cannot crop: "
                 "Keras resizes it instead (crop to the aspect ratio, then bilinear)", "height")]
    return []


# FLOPs (docs/language.md, "FLOPs") --------------------------------------------------------------------------

#: Input cells one output value reads along one axis, for each resampling method.
_TAPS = {"nearest": 0, "bilinear": 2, "bicubic": 4, "lanczos3": 6, "lanczos5": 10, "area": 2}


def _pool_flops(kind: str):
    def flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
        window = math.prod(a.pool_size)
        # max: window-1 comparisons; avg: window-1 additions and one division.
        return _mul(_prod(out), window - 1 if kind == "max" else window)
    return flops


def _resample_flops(a: Any, shapes: list[Shape], out: Shape, macs: int | None) -> int | None:
    """Nearest copies (0); the others weigh ``taps`` cells per axis: a multiply and an add each."""
    taps = _TAPS[getattr(a, "interpolation", "nearest")]
    if a.__class__.__name__ == "CenterCrop":
        dims, _ = _split("center_crop", shapes[0], a.data_format, 2)
        taps = 0 if all(d is not None and d >= t for d, t in zip(dims, (a.height, a.width))) else _TAPS["bilinear"]
    return _mul(_prod(out), 2 * taps * 2)


# --- the table -------------------------------------------------------------------------------------------------


def _conv_def(name: str, cls: type, keras: str, auto: str, aliases: tuple[str, ...]) -> OpDef:
    return OpDef(name, cls, keras, auto, _conv_infer(name), aliases, _conv_weights(name), _conv_macs(name),
                 _conv_warnings(name), _conv_validate, _conv_window, "window", flops=_weighted_flops,
                 explain=explain_window)


def _depthwise_def(name: str, cls: type, keras: str, auto: str, aliases: tuple[str, ...]) -> OpDef:
    return OpDef(name, cls, keras, auto, _conv_infer(name), aliases, _depthwise_weights(name), _depthwise_macs,
                 _conv_warnings(name), _conv_validate, _conv_window, "window", flops=_weighted_flops,
                 explain=explain_window)


def _separable_def(name: str, cls: type, keras: str, auto: str, aliases: tuple[str, ...]) -> OpDef:
    return OpDef(name, cls, keras, auto, _conv_infer(name), aliases, _separable_weights(name),
                 _separable_macs(name), _conv_warnings(name), _conv_validate, _conv_window, "window",
                 flops=_weighted_flops, explain=explain_window)


def _transpose_def(n: int, cls: type) -> OpDef:
    name = f"conv{n}d_transpose"
    return OpDef(name, cls, f"Conv{n}DTranspose", name, _transpose_infer(name),
                 (f"Conv{n}DTranspose", f"Convolution{n}DTranspose"), _transpose_weights(name),
                 _transpose_macs(name), _transpose_warnings(name), _transpose_validate, _transpose_window, "window",
                 flops=_weighted_flops, explain=explain_transpose)


def _pool_def(kind: str, n: int, cls: type) -> OpDef:
    name = f"{kind}pool{n}d"
    keras = f"{'MaxPooling' if kind == 'max' else 'AveragePooling'}{n}D"
    snake = f"{'max_pooling' if kind == 'max' else 'average_pooling'}{n}d"
    short = f"{'MaxPool' if kind == 'max' else 'AvgPool'}{n}D"
    return OpDef(name, cls, keras, snake, _pool_infer(name), (keras, short, snake, f"{kind}_pool{n}d"),
                 warnings=_pool_warnings(name), window=_pool_window, rf="window", flops=_pool_flops(kind),
                 explain=explain_window)


def _global_def(kind: str, n: int, cls: type) -> OpDef:
    name = f"global_{kind}pool{n}d"
    word = "Max" if kind == "max" else "Average"
    keras = f"Global{word}Pooling{n}D"
    snake = f"global_{word.lower()}_pooling{n}d"
    return OpDef(name, cls, keras, snake, _global_infer(name, n),
                 (keras, f"Global{'Max' if kind == 'max' else 'Avg'}Pool{n}D", snake, f"global_{kind}_pool{n}d"),
                 rf="global", flops=_global_flops)


SPATIAL_DEFS: list[OpDef] = [
    _conv_def("conv1d", Conv1D, "Conv1D", "conv1d", ("Conv1D", "Convolution1D", "conv1D")),
    _conv_def("conv2d", Conv2D, "Conv2D", "conv2d", ("Conv2D", "Convolution2D", "conv2D")),
    _conv_def("conv3d", Conv3D, "Conv3D", "conv3d", ("Conv3D", "Convolution3D", "conv3D")),
    _transpose_def(1, Conv1DTranspose),
    _transpose_def(2, Conv2DTranspose),
    _transpose_def(3, Conv3DTranspose),
    _depthwise_def("depthwise_conv1d", DepthwiseConv1D, "DepthwiseConv1D", "depthwise_conv1d",
                   ("DepthwiseConv1D",)),
    _depthwise_def("depthwise_conv2d", DepthwiseConv2D, "DepthwiseConv2D", "depthwise_conv2d",
                   ("DepthwiseConv2D",)),
    _separable_def("separable_conv1d", SeparableConv1D, "SeparableConv1D", "separable_conv1d",
                   ("SeparableConv1D", "SeparableConvolution1D")),
    _separable_def("separable_conv2d", SeparableConv2D, "SeparableConv2D", "separable_conv2d",
                   ("SeparableConv2D", "SeparableConvolution2D")),
    *[_pool_def(kind, n, cls) for n, cls in ((1, Pool1D), (2, Pool2D), (3, Pool3D)) for kind in ("max", "avg")],
    *[_global_def(kind, n, cls) for n, cls in ((1, GlobalPool1D), (2, GlobalPool2D), (3, GlobalPool3D))
      for kind in ("avg", "max")],
    *[OpDef(f"zeropad{n}d", cls, f"ZeroPadding{n}D", f"zero_padding{n}d", _zeropad_infer(f"zeropad{n}d", n),
            (f"ZeroPadding{n}D", f"zero_padding{n}d"), flops=_zero_flops, explain=explain_resample("pad"))
      for n, cls in ((1, ZeroPad1D), (2, ZeroPad2D), (3, ZeroPad3D))],
    *[OpDef(f"cropping{n}d", cls, f"Cropping{n}D", f"cropping{n}d", _cropping_infer(f"cropping{n}d", n),
            (f"Cropping{n}D",), flops=_zero_flops, explain=explain_resample("crop"))
      for n, cls in ((1, Cropping1D), (2, Cropping2D), (3, Cropping3D))],
    *[OpDef(f"upsampling{n}d", cls, f"UpSampling{n}D", f"up_sampling{n}d", _upsampling_infer(f"upsampling{n}d", n),
            (f"UpSampling{n}D", f"up_sampling{n}d"), window=_upsampling_window, rf="window",
            flops=_resample_flops, explain=explain_resample("up"))
      for n, cls in ((1, UpSampling1D), (2, UpSampling2D), (3, UpSampling3D))],
    OpDef("resizing", Resizing, "Resizing", "resizing", _resize_infer("resizing"), ("Resizing",), rf="global",
          flops=_resample_flops),
    OpDef("center_crop", CenterCrop, "CenterCrop", "center_crop", _resize_infer("center_crop"), ("CenterCrop",),
          warnings=_center_crop_warnings, flops=_resample_flops),
]

# Keep make_attrs importable from here for the doctests above.
_ = make_attrs
