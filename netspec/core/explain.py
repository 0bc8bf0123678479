"""The arithmetic behind a layer's row, the way the lecture writes it.

An op may give its :class:`~netspec.core.ops.OpDef` an ``explain`` hook:
``explain(attrs, in_shapes, out_shape) -> Explanation``, the lines that
derive its output size (``floor((224 - 7 + 2*3) / 2) + 1 = 112``) and the
product behind its MACs (``7*7*3`` per output).  Ops without one get the
generic story of :mod:`netspec.analysis.explain`, built from the OpDef's
shape, weights and MACs.  The hooks for sliding windows live here so that
every convolution and pooling op, in 1, 2 or 3 dimensions, tells it the
same way:

>>> from netspec.core.ops import OPS, Conv2D, make_attrs
>>> a = OPS["conv2d"].normalize(make_attrs(Conv2D, {"filters": 64, "kernel_size": 7, "strides": 2, "padding": 3}),
...                             "channels_last")
>>> e = explain_window(a, [(224, 224, 3)], (112, 112, 64))
>>> print(e.sizes[0])
height, width: floor((224 - 7 + 2*3) / 2) + 1 = 112
>>> e.per_output
'7*7*3'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AXIS_NAMES", "Explanation", "explain_resample", "explain_transpose", "explain_window", "window_line"]

#: Spatial axis names by the number of spatial axes.
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


@dataclass(frozen=True)
class Explanation:
    """An op's own story: lines deriving the output size, and its MACs per output value as a product.

    >>> Explanation(("units = 10",), "128").per_output
    '128'
    """

    sizes: tuple[str, ...] = ()
    per_output: str | None = None
    #: The MACs as a product when they are not output values times ``per_output`` (separable convolutions).
    macs: str | None = None


def _split(shape: tuple, fmt: str, n: int) -> tuple[list[Any], Any]:
    if len(shape) != n + 1:
        return [None] * n, None
    if fmt == "channels_last":
        return list(shape[:-1]), shape[-1]
    return list(shape[1:]), shape[0]


def window_line(axis: str, length: Any, size: int, stride: int, dilation: int, padding: Any, out: Any) -> list[str]:
    """The lines that derive one axis of a sliding window's output, with the numbers filled in.

    >>> for line in window_line("width", 6, 2, 2, 1, (1, 1), 4): print(line)
    width: floor((6 - 2 + 2*1) / 2) + 1 = 4
    >>> for line in window_line("width", 224, 7, 2, 1, "same", 112): print(line)
    width: 'same': ceil(224 / 2) = 112
           padding max((112 - 1)*2 + 7 - 224, 0) = 5, split 2 before + 3 after (the extra one at the end)
           = floor((224 - 7 + 2 + 3) / 2) + 1 = 112
    >>> window_line("height", None, 3, 1, 1, "valid", None)
    ['height: unknown input size: floor((H - 3 + 2*0) / 1) + 1']
    """
    window = dilation * (size - 1) + 1
    lines: list[str] = []
    pad = " " * (len(axis) + 2)
    f_text = str(size) if dilation == 1 else str(window)
    if dilation != 1:
        lines.append(f"{axis}: dilated window {dilation}*({size} - 1) + 1 = {window}")
        head = pad
    else:
        head = f"{axis}: "
    if length is not None and out is not None and not isinstance(length, int):  # a symbolic size
        b, e = (0, 0) if padding in ("valid", "same") else padding
        if padding == "same":
            if stride == 1:
                return lines + [f"{head}'same' with stride 1 keeps the size: {out}"]
            return lines + [f"{head}'same': ceil({length} / {stride}) = {out}   (the padding split depends on the size)"]
        p_text = f"2*{b}" if b == e else f"{b} + {e}"
        return lines + [f"{head}floor(({length} - {f_text} + {p_text}) / {stride}) + 1 = {out}"]
    if length is None or out is None or not isinstance(length, int):
        p = "P" if padding == "same" else ("0" if padding == "valid" else None)
        if p is None:
            b, e = padding
            p_text = f"2*{b}" if b == e else f"{b} + {e}"
        else:
            p_text = f"2*{p}"
        return lines + [f"{head}unknown input size: floor(({'H' if axis == 'height' else axis[0].upper()} - "
                        f"{f_text} + {p_text}) / {stride}) + 1"]
    if padding == "same":
        total = max((out - 1) * stride + window - length, 0)
        b, e = total // 2, total - total // 2
        lines.append(f"{head}'same': ceil({length} / {stride}) = {out}")
        split = f"split {b} before + {e} after" + (" (the extra one at the end)" if e > b else "")
        lines.append(f"{pad}padding max(({out} - 1)*{stride} + {window} - {length}, 0) = {total}, {split}")
        p_text = f"2*{b}" if b == e else f"{b} + {e}"
        lines.append(f"{pad}= floor(({length} - {f_text} + {p_text}) / {stride}) + 1 = {out}")
        return lines
    b, e = (0, 0) if padding == "valid" else padding
    p_text = f"2*{b}" if b == e else f"{b} + {e}"
    note = "   ('valid': no padding)" if padding == "valid" else ""
    lines.append(f"{head}floor(({length} - {f_text} + {p_text}) / {stride}) + 1 = {out}{note}")
    return lines


def _axis_padding(padding: Any, i: int, size: int, dilation: int) -> Any:
    if padding == "causal":
        return (dilation * (size - 1), 0)
    if isinstance(padding, str):
        return padding
    return padding[i]


def explain_window(a: Any, in_shapes: list[tuple], out_shape: tuple) -> Explanation:
    """Convolutions (plain, depthwise, separable) and pooling, on any number of spatial axes.

    >>> from netspec.core.ops import OPS, Pool2D
    >>> a = OPS["maxpool2d"].normalize(Pool2D(pool_size=(2, 2), padding="same"), "channels_last")
    >>> e = explain_window(a, [(28, 28, 32)], (14, 14, 32))
    >>> e.sizes[0], e.sizes[-1], e.per_output
    ("height, width: 'same': ceil(28 / 2) = 14", 'channels: 32, as the input', None)
    """
    kernel = getattr(a, "kernel_size", None) or a.pool_size
    n = len(kernel)
    fmt = getattr(a, "data_format", None) or "channels_last"
    dims_in, c = _split(in_shapes[0], fmt, n)
    dims_out, c_out = _split(out_shape, fmt, n)
    dilation = getattr(a, "dilation_rate", None) or (1,) * n
    names = AXIS_NAMES.get(n, tuple(f"axis {i + 1}" for i in range(n)))
    per_axis = [(dims_in[i], kernel[i], a.strides[i], dilation[i], _axis_padding(a.padding, i, kernel[i], dilation[i]),
                 dims_out[i]) for i in range(n)]
    lines: list[str] = []
    same = len({tuple(map(str, p)) for p in per_axis}) == 1  # str: sizes may be formulas
    if n > 1 and same:  # the same arithmetic on every axis: say it once
        lines += window_line(", ".join(names), *per_axis[0])
    else:
        for i in range(n):
            lines += window_line(names[i], *per_axis[i])
    k_text = "*".join(map(str, kernel))
    per_output = macs = None
    if hasattr(a, "filters") and hasattr(a, "depth_multiplier"):  # separable
        mid = None if c is None else c * a.depth_multiplier
        lines.append(f"channels: depthwise {c}*{a.depth_multiplier} = {mid}, then pointwise to filters = {a.filters}")
        if mid is not None and all(isinstance(d, int) for d in dims_out):
            macs = f"{'*'.join(map(str, dims_out))} positions * {mid} channels * ({k_text} + {a.filters})"
    elif hasattr(a, "filters"):
        groups = getattr(a, "groups", 1)
        lines.append(f"channels: filters = {a.filters}" + (f" (in {groups} groups)" if groups != 1 else ""))
        if c is not None:
            per_output = f"{k_text}*{c // groups}"
    elif hasattr(a, "depth_multiplier"):
        lines.append(f"channels: {c}*{a.depth_multiplier} = {c_out} (depthwise: one window per input channel)")
        per_output = k_text
    else:
        lines.append(f"channels: {c}, as the input")
    return Explanation(tuple(lines), per_output, macs)


def explain_resample(kind: str):
    """Zero padding (``'pad'``), cropping (``'crop'``) and upsampling (``'up'``), axis by axis.

    >>> from netspec.core.ops import OPS, ZeroPad2D
    >>> a = OPS["zeropad2d"].normalize(ZeroPad2D(padding=((3, 3), (1, 2))), "channels_last")
    >>> explain_resample("pad")(a, [(224, 224, 3)], (230, 227, 3)).sizes
    ('height: 224 + 3 + 3 = 230', 'width: 224 + 1 + 2 = 227')
    """
    def explain(a: Any, in_shapes: list[tuple], out_shape: tuple) -> Explanation:
        spec = a.size if kind == "up" else (a.padding if kind == "pad" else a.cropping)
        n = len(spec)
        fmt = getattr(a, "data_format", None) or "channels_last"
        dims_in, _ = _split(in_shapes[0], fmt, n)
        dims_out, _ = _split(out_shape, fmt, n)
        names = AXIS_NAMES.get(n, tuple(f"axis {i + 1}" for i in range(n)))
        lines: list[str] = []
        for i in range(n):
            if kind == "up":
                lines.append(f"{names[i]}: {dims_in[i]}*{spec[i]} = {dims_out[i]}")
            else:
                b, e = spec[i]
                sign = "+" if kind == "pad" else "-"
                lines.append(f"{names[i]}: {dims_in[i]} {sign} {b} {sign} {e} = {dims_out[i]}")
        return Explanation(tuple(lines))
    return explain


def explain_transpose(a: Any, in_shapes: list[tuple], out_shape: tuple) -> Explanation:
    """Transposed convolutions: Keras's ``deconv_output_length`` with the numbers filled in.

    >>> from netspec.core.ops import OPS
    >>> from netspec.core.ops_spatial import Conv2DTranspose, make_attrs
    >>> a = OPS["conv2d_transpose"].normalize(make_attrs(Conv2DTranspose, {"filters": 8, "kernel_size": 3,
    ...     "strides": 2}), "channels_last")
    >>> explain_transpose(a, [(16, 16, 4)], (33, 33, 8)).sizes[0]
    "height, width: 'valid': (16 - 1)*2 + 3 + max(3, 2) - 3 = 33"
    """
    kernel = a.kernel_size
    n = len(kernel)
    fmt = getattr(a, "data_format", None) or "channels_last"
    dims_in, c = _split(in_shapes[0], fmt, n)
    dims_out, _ = _split(out_shape, fmt, n)
    names = AXIS_NAMES.get(n, tuple(f"axis {i + 1}" for i in range(n)))
    pads = a.output_padding or (None,) * n
    per_axis = []
    for i in range(n):
        k = a.dilation_rate[i] * (kernel[i] - 1) + 1
        w, st, op_, out = dims_in[i], a.strides[i], pads[i], dims_out[i]
        if a.padding == "valid":
            extra = f"max({k}, {st}) - {k}" if op_ is None else f"{op_}"
            per_axis.append(f"'valid': ({w} - 1)*{st} + {k} + {extra} = {out}")
        elif op_ is None:
            per_axis.append(f"'same': {w}*{st} = {out}")
        else:
            per_axis.append(f"'same': ({w} - 1)*{st} + {k} % 2 + {op_} = {out}")
    if n > 1 and len(set(per_axis)) == 1:
        lines = [f"{', '.join(names)}: {per_axis[0]}"]
    else:
        lines = [f"{names[i]}: {per_axis[i]}" for i in range(n)]
    lines.append(f"channels: filters = {a.filters} (each input value spreads over a {'x'.join(map(str, kernel))} "
                 "window of the output)")
    return Explanation(tuple(lines))
