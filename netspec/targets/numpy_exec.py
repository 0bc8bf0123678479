"""The NumPy reference executor: every op forward in float32, any batch size.

The Keras and ONNX targets are judged against this one, so each lowering
follows Keras's arithmetic (the asymmetric split of ``'same'``, average
pooling that divides by the real cells, ``tf.nn.batch_normalization``'s
``x * inv + (beta - mean * inv)``, ``keras.activations``).  Convolutions
run channels_last as one large matrix product over a strided im2col view
(a batched product for groups), so the work is BLAS's, not Python's.

>>> import netspec, numpy as np
>>> net = netspec.load_source('''
... network tiny {
...     input x: [6, 6, 1]
...     conv2d(2, 3, padding='same', activation='relu', name='conv')
...     global_avgpool2d(name='pool')
... }''')
>>> run = executor(net, seed=0)
>>> y = run(np.ones((4, 6, 6, 1), np.float32))
>>> y.shape, y.dtype
((4, 2), dtype('float32'))
>>> sorted(run.activations(np.ones((1, 6, 6, 1), np.float32)))
['conv', 'pool', 'x']
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..analysis.plan import PlanStep, execution_plan
from ..core.argtypes import did_you_mean
from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, NetspecError
from ..core.fileio import atomic_output
from ..core.ir import Node
from ..core.ops import ACTIVATION_OPS
from ..core.ops_layers import AXIS_ACTIVATIONS
from ..core.shapes import same_padding
from .weights import resolve_weights, save_weights, validate_weights

__all__ = [
    "ACTIVATIONS",
    "Executor",
    "LOWERINGS",
    "compile_numpy",
    "conv",
    "conv2d",
    "conv_transpose",
    "depthwise_conv",
    "depthwise_conv2d",
    "executor",
    "input_paths",
    "pool",
    "pool2d",
    "resize",
    "run_cli",
    "traced_peak",
    "upsample",
]

F32 = np.float32
#: A lowered layer: ``step(inputs, inplace) -> output``; with ``inplace`` it may overwrite ``inputs[0]``.
Step = Callable[[list, bool], np.ndarray]
#: A lowering: ``lower(node, layer_weights) -> step``, with ``layer_weights`` keyed by Keras weight name.
Lowering = Callable[[Node, Mapping[str, np.ndarray]], Step]


# --- activations ------------------------------------------------------------------------------
# Each takes (x, inplace) and returns the result; with inplace it may reuse x's memory.


def _linear(x: np.ndarray, inplace: bool) -> np.ndarray:
    return x


def _relu(x: np.ndarray, inplace: bool = False, max_value: float | None = None, negative_slope: float = 0.0,
          threshold: float = 0.0) -> np.ndarray:
    """``keras.activations.relu``, step for step (``ReLU.static_call``)."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x, F32(0), out=x if inplace else None)
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return _leaky(x, inplace, negative_slope)
    negative = None
    if negative_slope != 0.0:
        negative = np.maximum(F32(threshold) - x, F32(0))
    if threshold != 0.0:
        y = np.where(x > F32(threshold), x, F32(0)).astype(F32, copy=False)
    else:
        y = np.maximum(x, F32(0), out=x if inplace else None)
    if max_value is not None:
        np.clip(y, F32(0), F32(max_value), out=y)
    if negative is not None:
        negative *= F32(negative_slope)
        y -= negative
    return y


def _leaky(x: np.ndarray, inplace: bool, negative_slope: float = 0.2) -> np.ndarray:
    # TF's leaky_relu: x where x >= 0, else slope * x.
    neg = np.minimum(x, F32(0)) * F32(negative_slope)
    y = np.maximum(x, F32(0), out=x if inplace else None)
    y += neg
    return y


def _elu(x: np.ndarray, inplace: bool, alpha: float = 1.0) -> np.ndarray:
    neg = np.expm1(np.minimum(x, F32(0)))
    if alpha != 1.0:
        neg *= F32(alpha)
    return np.where(x > 0, x, neg).astype(F32, copy=False)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x: np.ndarray, inplace: bool) -> np.ndarray:
    y = _elu(x, False, _SELU_ALPHA)
    y *= F32(_SELU_SCALE)
    return y


def _sigmoid(x: np.ndarray, inplace: bool) -> np.ndarray:
    # Stable both ways: exp of a non-positive number never overflows.
    e = np.exp(-np.abs(x))
    d = e + F32(1)
    pos = np.divide(F32(1), d)
    return np.where(x >= 0, pos, e * pos).astype(F32, copy=False)


def _hard_sigmoid(x: np.ndarray, inplace: bool) -> np.ndarray:
    # Keras 3: relu6(x + 3) / 6.
    y = np.add(x, F32(3), out=x if inplace else None)
    np.clip(y, F32(0), F32(6), out=y)
    y /= F32(6)
    return y


def _softplus(x: np.ndarray, inplace: bool) -> np.ndarray:
    return np.logaddexp(F32(0), x, out=x if inplace else None)


def _softsign(x: np.ndarray, inplace: bool) -> np.ndarray:
    d = np.abs(x)
    d += F32(1)
    return np.divide(x, d, out=x if inplace else None)


def _swish(x: np.ndarray, inplace: bool) -> np.ndarray:
    s = _sigmoid(x, False)
    return np.multiply(x, s, out=x if inplace else None)


def _tanh(x: np.ndarray, inplace: bool) -> np.ndarray:
    return np.tanh(x, out=x if inplace else None)


def _exponential(x: np.ndarray, inplace: bool) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(x, out=x if inplace else None)


def _erfc(x: np.ndarray) -> np.ndarray:
    """Complementary error function, fractional error below 1.2e-7 everywhere (Numerical Recipes' erfcc).

    >>> import math
    >>> xs = np.array([-3.0, -0.5, 0.0, 0.7, 2.5], F32)
    >>> bool(np.allclose(_erfc(xs), [math.erfc(v) for v in xs], rtol=1e-6, atol=0))
    True
    """
    z = np.abs(x)
    t = F32(1) / (F32(1) + F32(0.5) * z)
    poly = F32(0.17087277)
    for c in (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
              1.00002368, -1.26551223):
        poly = poly * t + F32(c)
    ans = t * np.exp(-z * z + poly)
    return np.where(x >= 0, ans, F32(2) - ans).astype(F32, copy=False)


def _gelu(x: np.ndarray, inplace: bool) -> np.ndarray:
    # Keras's exact gelu, 0.5 x (1 + erf(x / sqrt 2)), written with erfc to keep the negative tail accurate.
    y = _erfc(x * F32(-1.0 / math.sqrt(2.0)))
    y *= F32(0.5)
    y *= x
    return y


def _softmax(x: np.ndarray, inplace: bool, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    y = np.subtract(x, m, out=x if inplace else None)
    np.exp(y, out=y)
    y /= np.sum(y, axis=axis, keepdims=True)
    return y


#: ``keras.activations`` by name: ``fn(x, inplace) -> y`` with Keras's defaults.
ACTIVATIONS: dict[str, Callable[[np.ndarray, bool], np.ndarray]] = {
    "linear": _linear,
    "relu": _relu,
    "leaky_relu": _leaky,  # keras.activations.leaky_relu: negative_slope=0.2 (the layer's default is 0.3)
    "elu": _elu,
    "gelu": _gelu,
    "selu": _selu,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "softmax": _softmax,
    "softplus": _softplus,
    "softsign": _softsign,
    "swish": _swish,
    "tanh": _tanh,
    "exponential": _exponential,
}


# --- layout helpers --------------------------------------------------------------------------
# Spatial ops run channels_last, ``(N, *spatial, C)``, for 1, 2 or 3 spatial axes.


def _to_last(x: np.ndarray, data_format: str) -> np.ndarray:
    """``x`` with its channels moved last (a view)."""
    return x if data_format == "channels_last" else np.moveaxis(x, 1, -1)


def _from_last(y: np.ndarray, data_format: str) -> np.ndarray:
    """``y`` (channels last) in ``data_format`` (a view)."""
    return y if data_format == "channels_last" else np.moveaxis(y, -1, 1)


# The 2-D names, kept for readers of the 2-D ops.
_to_nhwc, _from_nhwc = _to_last, _from_last


def _pads(padding: Any, lengths: tuple[int, ...], size: tuple[int, ...], strides: tuple[int, ...],
          dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Concrete (begin, end) per spatial axis for any padding form ('causal' too)."""
    if padding == "valid":
        return ((0, 0),) * len(size)
    if padding == "same":
        return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(lengths, size, strides, dilation))
    if padding == "causal":
        return tuple((d * (k - 1), 0) for k, d in zip(size, dilation))
    return tuple(tuple(p) for p in padding)  # type: ignore[misc]


def _pad(x: np.ndarray, pads: tuple[tuple[int, int], ...], value: float = 0.0) -> np.ndarray:
    """``x`` (channels last) padded on its spatial axes; the input itself when there is nothing to pad."""
    if not any(b or e for b, e in pads):
        return x
    n, *lengths, c = x.shape
    out = np.empty((n, *(d + b + e for d, (b, e) in zip(lengths, pads)), c), F32)
    for axis, (d, (b, _)) in enumerate(zip(lengths, pads), start=1):
        lead = (slice(None),) * axis
        out[(*lead, slice(0, b))] = value
        out[(*lead, slice(b + d, None))] = value
    inner = out[(slice(None), *(slice(b, b + d) for d, (b, _) in zip(lengths, pads)))]

    def copy(images: slice) -> None:
        inner[images] = x[images]
    _for_each(copy, _batch_slices(n))
    return out


def _out_len(length: int, size: int, stride: int, dilation: int) -> int:
    return (length - dilation * (size - 1) - 1) // stride + 1


def _padded_window(op: str, x: np.ndarray, size: tuple[int, ...], strides: tuple[int, ...],
                   dilation: tuple[int, ...], padding: Any, fill: float = 0.0
                   ) -> tuple[np.ndarray, tuple[int, ...]]:
    """``x`` (channels last) padded for a sliding window, and the window's output sizes."""
    pads = _pads(padding, x.shape[1:-1], size, strides, dilation)
    xp = _pad(x, pads, fill)
    outs = tuple(_out_len(xp.shape[1 + i], size[i], strides[i], dilation[i]) for i in range(len(size)))
    if min(outs) < 1:
        raise NetspecError([Diagnostic.error(
            "E602", f"{op}: input of spatial size {x.shape[1:-1]} is too small for the window "
            f"(output {'x'.join(map(str, outs))})")])
    return xp, outs


# --- convolution -------------------------------------------------------------------------------


#: Bytes of patch matrix per matrix product: small enough that a chunk's patches and output stay in cache
#: for the bias and activation that follow, large enough that BLAS runs at full speed.
CHUNK_BYTES = 1 << 22


def _patches(xp: np.ndarray, size: tuple[int, ...], outs: tuple[int, ...], strides: tuple[int, ...],
             dilation: tuple[int, ...]) -> np.ndarray:
    """A read-only strided view of a padded channels-last tensor's windows: ``(N, *outs, ...)``, no copy.

    When the window's last axis is ``k*C`` contiguous floats (no dilation across it) the trailing
    axes are ``(*size[:-1], k*C)``, so copying it moves whole window rows at once; otherwise they
    are ``(*size, C)``.
    """
    n, c = xp.shape[0], xp.shape[-1]
    sn, *sp, sc = xp.strides
    steps = tuple(s * st for s, st in zip(sp, strides))
    taps = tuple(s * d for s, d in zip(sp, dilation))
    if (dilation[-1] == 1 or size[-1] == 1) and sc == xp.itemsize and sp[-1] == c * sc:
        return as_strided(xp, (n, *outs, *size[:-1], size[-1] * c), (sn, *steps, *taps[:-1], sc),
                          writeable=False)
    return as_strided(xp, (n, *outs, *size, c), (sn, *steps, *taps, sc), writeable=False)


def _chunk_pixels(k: int, f: int, total: int) -> int:
    """Output pixels per matrix product: about :data:`CHUNK_BYTES` of patches or of output, whichever
    is larger, and small enough that every worker thread gets a chunk."""
    pixels = max(256, CHUNK_BYTES // (4 * max(k, f)))
    workers = _workers()
    if workers is not None:
        pixels = min(pixels, max(32, -(-total // workers._max_workers)))
    return pixels


def _chunks(n: int, outs: tuple[int, ...], pixels: int) -> list[tuple[slice, slice]]:
    """(image slice, first-spatial-axis slice) blocks of about ``pixels`` output cells each."""
    per_row = math.prod(outs[1:])
    first = outs[0]
    if first * per_row >= pixels:
        rows = max(1, pixels // per_row)
        return [(slice(i, i + 1), slice(r, min(r + rows, first))) for i in range(n) for r in range(0, first, rows)]
    images = max(1, pixels // (first * per_row))
    return [(slice(i, min(i + images, n)), slice(0, first)) for i in range(0, n, images)]


# While an Executor runs with threads, each calling thread sees its pool here; chunks then run on
# the pool with BLAS single-threaded, so copies and epilogues run in parallel too.
_state = threading.local()


def _workers() -> ThreadPoolExecutor | None:
    return getattr(_state, "pool", None)


def _for_each(fn: Callable[[Any], None], items: list) -> None:
    pool = _workers()
    if pool is None or len(items) < 2:
        for item in items:
            fn(item)
    else:
        for _ in pool.map(fn, items):
            pass


#: Elements below which an elementwise step stays on one thread.
PARALLEL_MIN = 1 << 17


def _batch_slices(n: int) -> list[slice]:
    """The batch split into one slice per worker thread (one slice without workers)."""
    pool = _workers()
    parts = 1 if pool is None else min(n, pool._max_workers)
    step = -(-n // parts) if parts else 1
    return [slice(i, min(i + step, n)) for i in range(0, n, step)] or [slice(0, n)]


def _flat_slices(size: int) -> list[slice]:
    """A flat array of ``size`` split into one piece per worker thread, if it is worth it."""
    pool = _workers()
    if pool is None or size < PARALLEL_MIN:
        return [slice(0, size)]
    step = -(-size // pool._max_workers)
    return [slice(i, min(i + step, size)) for i in range(0, size, step)]


def _elementwise(fn: Callable[[np.ndarray, bool], np.ndarray], x: np.ndarray, inplace: bool) -> np.ndarray:
    """``fn(x, inplace)`` for an elementwise ``fn``, on contiguous pieces in parallel when it pays."""
    pieces = _flat_slices(x.size)
    if len(pieces) == 1 or not x.flags.c_contiguous:
        return fn(x, inplace)
    y = x if inplace else np.empty_like(x)
    xf, yf = x.reshape(-1), y.reshape(-1)

    def piece(part: slice) -> None:
        # Within a piece, blocks small enough to stay in cache between the copy and fn.
        for start in range(part.start, part.stop, 1 << 15):
            block = slice(start, min(start + (1 << 15), part.stop))
            dst = yf[block]
            if y is not x:
                dst[...] = xf[block]
            r = fn(dst, True)
            if r is not dst:
                dst[...] = r
    _for_each(piece, pieces)
    return y


#: The largest im2col buffer any thread has asked for (see ``Executor._even_scratch``).
_scratch_high = 0


def _scratch(size: int) -> np.ndarray:
    """A float32 buffer of at least ``size`` for this thread, reused from call to call."""
    global _scratch_high
    buf = getattr(_state, "scratch", None)
    _scratch_high = max(_scratch_high, size)
    if buf is None or buf.size < size:
        buf = _state.scratch = np.empty(size, F32)
    return buf[:size]


def _epilogue(y: np.ndarray, bias: np.ndarray | None, act: Callable[[np.ndarray, bool], np.ndarray] | None
              ) -> None:
    """Add the bias and apply an elementwise activation to ``y`` in place."""
    if bias is not None:
        y += bias
    if act is not None and act is not _linear:
        r = act(y, True)
        if r is not y:
            y[...] = r


def conv(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...] | None = None, padding: Any = "valid",
         dilation: tuple[int, ...] | None = None, groups: int = 1, bias: np.ndarray | None = None,
         act: Callable[[np.ndarray, bool], np.ndarray] | None = None) -> np.ndarray:
    """N-D convolution (cross-correlation, as Keras) of channels-last ``x`` with a Keras kernel ``(*F, C/groups, filters)``.

    One spatial axis (``(N, L, C)``), two or three: im2col over a strided view, then
    one BLAS product per chunk of output cells.  ``padding`` is ``'valid'``,
    ``'same'``, ``'causal'`` or a (begin, end) pair per axis; ``act`` is an
    elementwise activation ``act(y, inplace)`` applied after the bias.  The
    lecture's example, with a bias of 2:

    >>> x = np.array([[3,3,2,1,0],[0,0,1,3,1],[3,1,2,2,3],[2,0,0,2,2],[2,0,0,0,1]], F32)
    >>> k = np.array([[0,1,2],[2,2,0],[0,1,2]], F32)
    >>> conv(x[None, :, :, None], k[:, :, None, None], bias=np.array([2], F32))[0, :, :, 0]
    array([[14., 14., 19.],
           [12., 19., 21.],
           [11.,  8., 16.]], dtype=float32)
    >>> conv(np.arange(5, dtype=F32).reshape(1, 5, 1), np.ones((2, 1, 1), F32), padding="causal")[0, :, 0]
    array([0., 1., 3., 5., 7.], dtype=float32)
    """
    size, cg, f = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    nd = len(size)
    strides = strides or (1,) * nd
    dilation = dilation or (1,) * nd
    n, c = x.shape[0], x.shape[-1]
    xp, outs = _padded_window(f"conv{nd}d", x, size, strides, dilation, padding)
    y = np.empty((n, *outs, f), F32)
    cells = n * math.prod(outs)
    taps = math.prod(size)
    if groups > 1:
        # One batched product over the groups: (G, M, K) @ (G, K, F/G).
        fg = f // groups
        sn, *sp, sc = xp.strides
        view = as_strided(xp, (groups, n, *outs, *size, cg),
                          (sc * cg, sn, *(s * st for s, st in zip(sp, strides)),
                           *(s * d for s, d in zip(sp, dilation)), sc), writeable=False)
        wg = kernel.reshape(taps * cg, groups, fg).transpose(1, 0, 2)
        yg = np.matmul(view.reshape(groups, cells, taps * cg), wg)
        y.reshape(cells, groups, fg)[...] = yg.transpose(1, 0, 2)
        _epilogue(y, bias, act)
        return y
    k = taps * c
    w2 = kernel.reshape(k, f)
    if taps == 1 and all(s == 1 for s in strides) and xp.flags.c_contiguous:
        # A 1x1 convolution is a plain matrix product on the cells: no copy at all.
        src = xp.reshape(cells, c)  # padded or not, one row per output cell
        y2 = y.reshape(cells, f)
        step = _chunk_pixels(k, f, cells)

        def pointwise(p: int) -> None:
            np.matmul(src[p:p + step], w2, out=y2[p:p + step])
            _epilogue(y2[p:p + step], bias, act)
        _for_each(pointwise, list(range(0, cells, step)))
        return y
    view = _patches(xp, size, outs, strides, dilation)
    per_row = math.prod(outs[1:])

    def chunk(block: tuple[slice, slice]) -> None:
        part = view[block]
        m = part.shape[0] * part.shape[1] * per_row
        cols = _scratch(m * k).reshape(part.shape)  # this chunk's patches: the one copy im2col makes
        np.copyto(cols, part)
        out = y[block]
        out.shape = (m, f)  # a view of y (setting .shape never copies)
        np.matmul(cols.reshape(m, k), w2, out=out)
        _epilogue(out, bias, act)
    _for_each(chunk, _chunks(n, outs, _chunk_pixels(k, f, cells)))
    return y


#: The 2-D convolution is :func:`conv` on NHWC tensors.
conv2d = conv


def depthwise_conv(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...] | None = None,
                   padding: Any = "valid", dilation: tuple[int, ...] | None = None,
                   bias: np.ndarray | None = None) -> np.ndarray:
    """Depthwise convolution of channels-last ``x`` with a Keras kernel ``(*F, C, depth_multiplier)``.

    Output channel ``c * depth_multiplier + m`` is input channel ``c`` under filter ``m``.

    >>> x = np.arange(16, dtype=F32).reshape(1, 4, 4, 1)
    >>> depthwise_conv(x, np.ones((2, 2, 1, 2), F32))[0, :, :, 1]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]], dtype=float32)
    """
    size, c, dm = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    nd = len(size)
    strides = strides or (1,) * nd
    dilation = dilation or (1,) * nd
    n = x.shape[0]
    xp, outs = _padded_window(f"depthwise_conv{nd}d", x, size, strides, dilation, padding)
    # One multiply-add per kernel tap over the whole output: a vectorised pass per tap, no per-cell loop.
    out = np.zeros((n, *outs, c, dm) if dm > 1 else (n, *outs, c), F32)
    tmp = np.empty_like(out)
    for tap in itertools.product(*(range(k) for k in size)):
        view = xp[(slice(None), *(slice(t * d, t * d + s * (o - 1) + 1, s)
                                  for t, d, s, o in zip(tap, dilation, strides, outs)))]
        if dm > 1:
            np.multiply(view[..., None], kernel[tap], out=tmp)
        else:
            np.multiply(view, kernel[tap][:, 0], out=tmp)
        out += tmp
    out = out.reshape(n, *outs, c * dm)
    if bias is not None:
        out += bias
    return out


depthwise_conv2d = depthwise_conv


def conv_transpose(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, ...], padding: str,
                   output_padding: tuple[int, ...] | None, dilation: tuple[int, ...],
                   bias: np.ndarray | None = None, act: Callable[[np.ndarray, bool], np.ndarray] | None = None
                   ) -> np.ndarray:
    """Transposed convolution of channels-last ``x`` with a Keras kernel ``(*F, filters, C_in)``, as Keras.

    One BLAS product ``(cells, C_in) @ (C_in, taps*filters)`` gives every tap's contribution of
    every input cell; a scatter-add per kernel tap (col2im) lays them out with the stride, and
    the window TensorFlow's matching convolution pads is cropped off.

    >>> x = np.array([1, 2, 3], F32).reshape(1, 3, 1)
    >>> conv_transpose(x, np.ones((2, 1, 1), F32), (2,), "valid", None, (1,))[0, :, 0]
    array([1., 1., 2., 2., 3., 3.], dtype=float32)
    >>> conv_transpose(x, np.ones((3, 1, 1), F32), (1,), "same", None, (1,))[0, :, 0]
    array([3., 6., 5.], dtype=float32)
    """
    from ..core.ops_spatial import conv_transpose_length

    size, f, cin = kernel.shape[:-2], kernel.shape[-2], kernel.shape[-1]
    nd = len(size)
    n, ins = x.shape[0], x.shape[1:-1]
    ops_ = output_padding or (None,) * nd
    outs = [conv_transpose_length(i, k, s, d, padding, p)
            for i, k, s, d, p in zip(ins, size, strides, dilation, ops_)]
    full = [(i - 1) * s + (k - 1) * d + 1 for i, k, s, d in zip(ins, size, strides, dilation)]
    begins = [0 if padding == "valid" else max(fl - o, 0) // 2 for fl, o in zip(full, outs)]
    taps = math.prod(size)
    w = kernel.reshape(taps, f, cin).transpose(2, 0, 1).reshape(cin, taps * f)
    cols = np.matmul(x.reshape(-1, cin), w).reshape(n, *ins, taps, f)
    canvas = np.zeros((n, *(max(fl, b + o) for fl, b, o in zip(full, begins, outs)), f), F32)
    for t, tap in enumerate(itertools.product(*(range(k) for k in size))):
        dst = canvas[(slice(None), *(slice(j * d, j * d + s * (i - 1) + 1, s)
                                     for j, d, s, i in zip(tap, dilation, strides, ins)))]
        dst += cols[..., t, :]
    y = canvas[(slice(None), *(slice(b, b + o) for b, o in zip(begins, outs)))]
    if y.shape != canvas.shape:
        y = np.ascontiguousarray(y)
    _epilogue(y, bias, act)
    return y


def upsample(x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Nearest upsampling of channels-last ``x``: each cell repeated ``size[i]`` times on axis ``i``, one copy.

    >>> upsample(np.array([[[1], [2]]], F32), (2,))[0, :, 0]
    array([1., 1., 2., 2.], dtype=float32)
    """
    n, *lengths, c = x.shape
    expanded = x.reshape(n, *itertools.chain.from_iterable((d, 1) for d in lengths), c)
    shape = (n, *itertools.chain.from_iterable((d, s) for d, s in zip(lengths, size)), c)
    return np.ascontiguousarray(np.broadcast_to(expanded, shape)).reshape(
        n, *(d * s for d, s in zip(lengths, size)), c)


def resize(x: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """NHWC ``x`` resized to ``(height, width)`` as ``tf.image.resize`` does (see :mod:`.resample`).

    >>> resize(np.array([[[[0], [4]]]], F32), 1, 4, "bilinear")[0, 0, :, 0]
    array([0., 1., 3., 4.], dtype=float32)
    """
    from .resample import nearest_index, resize_matrix

    n, h, w, c = x.shape
    if method == "nearest" or (method == "area" and height % h == 0 and width % w == 0):
        return np.ascontiguousarray(x[:, nearest_index(h, height)][:, :, nearest_index(w, width)])
    rows, cols = resize_matrix(h, height, method), resize_matrix(w, width, method)
    y = np.matmul(rows, x.reshape(n, h, w * c)).reshape(n, height, w, c)
    return np.matmul(cols, y.reshape(n * height, w, c)).reshape(n, height, width, c)


# --- pooling -------------------------------------------------------------------------------------


def pool(x: np.ndarray, kind: str, pool_size: tuple[int, ...], strides: tuple[int, ...],
         padding: Any = "valid") -> np.ndarray:
    """Max or average pooling of channels-last ``x`` over 1, 2 or 3 spatial axes, as Keras computes it.

    ``'same'``: max ignores the padded cells and average divides by the
    number of real cells; explicit padding is zero padding then ``'valid'``.

    >>> x = np.arange(9, dtype=F32).reshape(1, 3, 3, 1)
    >>> pool(x, "avg", (2, 2), (2, 2), "same")[0, :, :, 0]
    array([[2. , 3.5],
           [6.5, 8. ]], dtype=float32)
    """
    n, *lengths, c = x.shape
    nd = len(pool_size)
    same = padding == "same"
    fill = -np.inf if (same and kind == "max") else 0.0
    ones = (1,) * nd
    pads = _pads(padding, tuple(lengths), pool_size, strides, ones)
    xp, outs = _padded_window(f"{kind}pool{nd}d", x, pool_size, strides, ones, padding, fill)
    out = np.empty((n, *outs, c), F32)
    divisor: Any = F32(math.prod(pool_size))
    if kind == "avg" and same and any(b or e for b, e in pads):
        # Divide each window by the real (unpadded) cells it covers: the product over the axes.
        divisor = np.ones((), F32)
        for i in range(nd):
            real = _real_cells(lengths[i], pool_size[i], strides[i], pads[i][0], outs[i]).astype(F32)
            divisor = np.multiply.outer(divisor, real)
        divisor = divisor[None, ..., None]
    taps = list(itertools.product(*(range(k) for k in pool_size)))

    def images(part: slice) -> None:
        o = out[part]
        for i, tap in enumerate(taps):
            view = xp[(part, *(slice(t, t + s * (m - 1) + 1, s) for t, s, m in zip(tap, strides, outs)))]
            if i == 0:
                np.copyto(o, view)
            elif kind == "max":
                np.maximum(o, view, out=o)
            else:
                o += view
        if kind == "avg":
            o /= divisor
    _for_each(images, _batch_slices(n))
    return out


def pool2d(x: np.ndarray, kind: str, pool_size: tuple[int, int], strides: tuple[int, int],
           padding: Any = "valid") -> np.ndarray:
    """:func:`pool` on NHWC tensors.

    >>> pool2d(np.arange(16, dtype=F32).reshape(1, 4, 4, 1), "max", (2, 2), (2, 2))[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    return pool(x, kind, pool_size, strides, padding)


def _real_cells(length: int, size: int, stride: int, begin: int, count: int) -> np.ndarray:
    starts = np.arange(count) * stride - begin
    return np.minimum(starts + size, length) - np.maximum(starts, 0)


# --- lowerings ------------------------------------------------------------------------------------


def _act_step(fn: Callable[..., np.ndarray], **kwargs: Any) -> Step:
    """A step for an elementwise activation ``fn(x, inplace, **kwargs)``."""
    def elementwise(x: np.ndarray, inplace: bool) -> np.ndarray:
        return fn(x, inplace, **kwargs)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return _elementwise(elementwise, inputs[0], inplace)
    return step


def _split_act(name: str, data_format: str) -> tuple[Callable | None, Callable | None]:
    """(activation to apply per chunk in NHWC, activation to apply afterwards in the layer's layout)."""
    act = ACTIVATIONS[name]
    if name in AXIS_ACTIVATIONS and (name != "softmax" or data_format != "channels_last"):
        return None, act  # Keras's softmax (and glu, ...) is on the last axis of the layer's own layout
    return act, None


def _lower_conv(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    kernel, bias = w["kernel"], w.get("bias")
    inner, outer = _split_act(a.activation, a.data_format)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        y = conv(_to_nhwc(inputs[0], a.data_format), kernel, a.strides, a.padding, a.dilation_rate,
                 a.groups, bias, inner)
        y = _from_nhwc(y, a.data_format)
        return y if outer is None else outer(y, True)
    return step


def _lower_depthwise(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    kernel, bias = w["kernel"], w.get("bias")
    inner, outer = _split_act(a.activation, a.data_format)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        y = depthwise_conv(_to_nhwc(inputs[0], a.data_format), kernel, a.strides, a.padding, a.dilation_rate,
                           bias)
        _epilogue(y, None, inner)
        y = _from_nhwc(y, a.data_format)
        return y if outer is None else outer(y, True)
    return step


def _lower_separable(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    depthwise, pointwise, bias = w["depthwise_kernel"], w["pointwise_kernel"], w.get("bias")
    inner, outer = _split_act(a.activation, a.data_format)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        mid = depthwise_conv(_to_nhwc(inputs[0], a.data_format), depthwise, a.strides, a.padding,
                             a.dilation_rate)
        y = _from_nhwc(conv(mid, pointwise, bias=bias, act=inner), a.data_format)
        return y if outer is None else outer(y, True)
    return step


def _lower_pool(kind: str) -> Lowering:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        a = node.attrs

        def step(inputs: list, inplace: bool) -> np.ndarray:
            y = pool(_to_nhwc(inputs[0], a.data_format), kind, a.pool_size, a.strides, a.padding)
            return _from_nhwc(y, a.data_format)
        return step
    return lower


def _lower_global(kind: str) -> Lowering:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        a = node.attrs

        def step(inputs: list, inplace: bool) -> np.ndarray:
            x = inputs[0]
            axes = tuple(range(1, x.ndim - 1)) if a.data_format == "channels_last" else tuple(range(2, x.ndim))
            if kind == "max":
                return np.max(x, axis=axes, keepdims=a.keepdims)
            # Accumulate in float64 (no float64 copy of x is made) so large images average exactly.
            return np.mean(x, axis=axes, keepdims=a.keepdims, dtype=np.float64).astype(F32)
        return step
    return lower


def _lower_zeropad(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return _from_nhwc(_pad(_to_nhwc(inputs[0], a.data_format), a.padding), a.data_format)
    return step


def _lower_transpose(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    kernel, bias = w["kernel"], w.get("bias")
    inner, outer = _split_act(a.activation, a.data_format)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        y = conv_transpose(_to_last(inputs[0], a.data_format), kernel, a.strides, a.padding, a.output_padding,
                           a.dilation_rate, bias, inner)
        y = _from_last(y, a.data_format)
        return y if outer is None else outer(y, True)
    return step


def _crop(x: np.ndarray, cropping: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Channels-last ``x`` without ``(begin, end)`` cells on each spatial axis, as a new array."""
    return np.ascontiguousarray(x[(slice(None), *(slice(b, x.shape[1 + i] - e) for i, (b, e) in enumerate(cropping)))])


def _lower_cropping(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    fmt = getattr(a, "data_format", "channels_last")  # cropping1d has none: it crops axis 1

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return _from_last(_crop(_to_last(inputs[0], fmt), a.cropping), fmt)
    return step


def _lower_upsampling(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    fmt = getattr(a, "data_format", "channels_last")  # upsampling1d has none: it repeats axis 1
    method = getattr(a, "interpolation", "nearest")

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = _to_last(inputs[0], fmt)
        if method == "nearest":
            return _from_last(upsample(x, a.size), fmt)
        return _from_last(resize(x, x.shape[1] * a.size[0], x.shape[2] * a.size[1], method), fmt)
    return step


def _lower_resizing(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    from ..core.ops_spatial import resize_crop_box

    a = node.attrs

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = _to_last(inputs[0], a.data_format)
        if a.crop_to_aspect_ratio:
            top, left, ch, cw = resize_crop_box(x.shape[1], x.shape[2], a.height, a.width)
            x = x[:, top:top + ch, left:left + cw]
        return _from_last(resize(np.ascontiguousarray(x), a.height, a.width, a.interpolation), a.data_format)
    return step


def _lower_center_crop(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    from ..core.ops_spatial import resize_crop_box

    a = node.attrs

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = _to_last(inputs[0], a.data_format)
        h, w_ = x.shape[1], x.shape[2]
        if h >= a.height and w_ >= a.width:
            top, left = (h - a.height) // 2, (w_ - a.width) // 2
            return _from_last(_crop(x, ((top, h - top - a.height), (left, w_ - left - a.width))), a.data_format)
        # Keras's smart_resize: the centred box of the target's aspect ratio, then bilinear.
        top, left, ch, cw = resize_crop_box(h, w_, a.height, a.width)
        y = resize(np.ascontiguousarray(x[:, top:top + ch, left:left + cw]), a.height, a.width, "bilinear")
        return _from_last(y, a.data_format)
    return step


def _lower_flatten(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        if a.data_format == "channels_first" and x.ndim > 2:
            # Keras 3 flattens channels_first tensors in channels_last order.
            x = np.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))  # -1 cannot be solved for an empty batch
    return step


def _lower_reshape(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    target = tuple(node.attrs.target_shape)

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        return x.reshape((x.shape[0], *target))
    return step


def _lower_dense(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    kernel, bias = w["kernel"], w.get("bias")
    act = ACTIVATIONS[a.activation]

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        # Keras's Dense acts on the last axis of any rank.
        y = np.matmul(x.reshape(-1, x.shape[-1]), kernel)
        if bias is not None:
            y += bias
        return act(y.reshape(*x.shape[:-1], kernel.shape[1]), True)
    return step


def _lower_dropout(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    def step(inputs: list, inplace: bool) -> np.ndarray:
        return inputs[0]
    return step


def _bn_scale_shift(a: Any, w: Mapping[str, np.ndarray], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """tf.nn.batch_normalization's ``inv = rsqrt(var + eps) * gamma`` and ``beta - mean * inv``, in float32."""
    inv = F32(1) / np.sqrt(w["moving_variance"] + F32(a.epsilon))
    if a.scale:
        inv = inv * w["gamma"]
    shift = (w["beta"] if a.center else np.zeros(channels, F32)) - w["moving_mean"] * inv
    return inv.astype(F32), shift.astype(F32)


def _lower_batchnorm(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    inv, shift = _bn_scale_shift(a, w, w["moving_mean"].shape[0])

    def step(inputs: list, inplace: bool) -> np.ndarray:
        x = inputs[0]
        axis = a.axis % x.ndim
        shape = [1] * x.ndim
        shape[axis] = -1
        y = np.multiply(x, inv.reshape(shape), out=x if inplace else None)
        y += shift.reshape(shape)
        return y
    return step


def _lower_activation(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    if node.attrs.activation == "softmax":
        return _lower_softmax(Node(node.name, "softmax", node.inputs, _SoftmaxLast()), w)
    return _act_step(ACTIVATIONS[node.attrs.activation])


def _lower_relu(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    a = node.attrs
    return _act_step(_relu, max_value=a.max_value, negative_slope=a.negative_slope, threshold=a.threshold)


def _lower_leaky(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    return _act_step(_leaky, negative_slope=node.attrs.negative_slope)


def _lower_elu(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    return _act_step(_elu, alpha=node.attrs.alpha)


def _lower_softmax(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    axis = node.attrs.axis

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return _softmax(inputs[0], inplace, axis)
    return step


def _lower_named(name: str) -> Lowering:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        return _act_step(ACTIVATIONS[name])
    return lower


def _lower_elementwise(ufunc: np.ufunc) -> Lowering:
    def lower(node: Node, w: Mapping[str, np.ndarray]) -> Step:
        # A merge may carry the activation that followed it (see netspec.analysis.plan.fuse).
        act = ACTIVATIONS[getattr(node.attrs, "activation", "linear")]

        def step(inputs: list, inplace: bool) -> np.ndarray:
            first = inputs[0]
            shape = np.broadcast_shapes(*(t.shape for t in inputs))
            if all(t.shape == shape and t.flags.c_contiguous for t in inputs):
                out = first if inplace else np.empty(shape, F32)
                flat = [t.reshape(-1) for t in inputs]
                dst = out.reshape(-1)

                def piece(part: slice) -> None:
                    o = dst[part]
                    ufunc(flat[0][part], flat[1][part], out=o)
                    for t in flat[2:]:
                        ufunc(o, t[part], out=o)
                    _epilogue(o, None, act)
                _for_each(piece, _flat_slices(dst.size))
                return out
            out = ufunc(first, inputs[1], out=first if inplace and first.shape == shape else None)
            for t in inputs[2:]:
                out = ufunc(out, t, out=out if out.shape == shape else None)
            _epilogue(out, None, act)
            return out
        return step
    return lower


def _lower_concat(node: Node, w: Mapping[str, np.ndarray]) -> Step:
    axis = node.attrs.axis

    def step(inputs: list, inplace: bool) -> np.ndarray:
        return np.concatenate(inputs, axis=axis)
    return step


#: Op name -> lowering, for every op in :data:`netspec.core.ops.OPS`.
LOWERINGS: dict[str, Lowering] = {
    **{f"conv{n}d": _lower_conv for n in (1, 2, 3)},
    **{f"conv{n}d_transpose": _lower_transpose for n in (1, 2, 3)},
    **{f"depthwise_conv{n}d": _lower_depthwise for n in (1, 2)},
    **{f"separable_conv{n}d": _lower_separable for n in (1, 2)},
    **{f"{kind}pool{n}d": _lower_pool(kind) for n in (1, 2, 3) for kind in ("max", "avg")},
    **{f"global_{kind}pool{n}d": _lower_global(kind) for n in (1, 2, 3) for kind in ("max", "avg")},
    **{f"zeropad{n}d": _lower_zeropad for n in (1, 2, 3)},
    **{f"cropping{n}d": _lower_cropping for n in (1, 2, 3)},
    **{f"upsampling{n}d": _lower_upsampling for n in (1, 2, 3)},
    "resizing": _lower_resizing,
    "center_crop": _lower_center_crop,
    "flatten": _lower_flatten,
    "reshape": _lower_reshape,
    "dense": _lower_dense,
    "dropout": _lower_dropout,
    "batchnorm": _lower_batchnorm,
    "activation": _lower_activation,
    "relu": _lower_relu,
    "leaky_relu": _lower_leaky,
    "elu": _lower_elu,
    "softmax": _lower_softmax,
    **{name: _lower_named(name) for name in ACTIVATION_OPS},
    "add": _lower_elementwise(np.add),
    "multiply": _lower_elementwise(np.multiply),
    "concat": _lower_concat,
}

# Version 2's layer ops and the rest of keras.activations (their own module).
from . import numpy_layers as _numpy_layers  # noqa: E402

_numpy_layers.install(LOWERINGS, ACTIVATIONS)

# --- fusion ---------------------------------------------------------------------------------------
# Which layers fuse, and the liveness that frees and overwrites tensors, is decided in pure Python by
# netspec.analysis.plan (so the memory estimate of `netspec check` walks the same plan); here the
# weights of a folded batchnorm are folded.


def _fold_batchnorm(node: Node, bn: Node, w: Mapping[str, np.ndarray], bw: Mapping[str, np.ndarray]
                    ) -> dict[str, np.ndarray]:
    """The weights of ``node`` with batchnorm ``bn`` (which :func:`folds_batchnorm` accepts) folded in."""
    key = "pointwise_kernel" if node.op.startswith("separable") else "kernel"
    kernel = w[key]
    # A depthwise kernel (kh, kw, C, m) makes C*m channels; the others make kernel.shape[-1].
    depthwise = node.op.startswith("depthwise")
    channels = kernel.shape[-2] * kernel.shape[-1] if depthwise else kernel.shape[-1]
    inv, shift = _bn_scale_shift(bn.attrs, bw, channels)
    out = dict(w)
    out[key] = (kernel * inv.reshape(kernel.shape[-2:] if depthwise else (-1,))).astype(F32)
    bias = w.get("bias")
    out["bias"] = (shift if bias is None else bias * inv + shift).astype(F32)
    return out


def _step_weights(step: PlanStep, nodes: Mapping[str, Node], weights: Mapping[str, Mapping[str, np.ndarray]]
                  ) -> Mapping[str, np.ndarray]:
    """The weights a fused step runs with: its first layer's, with any batchnorm after it folded in."""
    first = nodes[step.layers[0]]
    w = weights[first.name]
    for name in step.layers[1:]:
        later = nodes[name]
        if later.op == "batchnorm":
            w = _fold_batchnorm(first, later, w, weights[name])
    return w


@dataclasses.dataclass(frozen=True, slots=True)
class _SoftmaxLast:
    axis: int = -1


# --- the executor ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Plan:
    names: list[str]
    ops: list[str]
    layers: list[tuple[str, ...]]
    steps: list[Step]
    inputs: list[tuple[str, ...]]
    donate: list[bool]
    free: list[tuple[str, ...]]


class Executor:
    """A network lowered to NumPy: call it on a batch, or ask for every layer's activation.

    :meth:`__call__` runs an optimised plan: with ``fuse``, a batchnorm is
    folded into the convolution or dense layer before it and a plain
    activation into the layer or merge before it (when nothing else reads
    the earlier output); a step overwrites an input that nothing later
    reads; convolutions run in chunks on ``threads`` threads (default: the
    CPUs this process may use) with BLAS single-threaded meanwhile, when
    threadpoolctl is installed.  :meth:`activations` runs layer by layer.

    >>> import netspec, numpy as np
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, kernel_initializer='ones') }")
    >>> Executor(net, {"dense/kernel": np.ones((3, 2), F32), "dense/bias": np.zeros(2, F32)})(
    ...     np.array([[1, 2, 3]], F32))
    array([[6., 6.]], dtype=float32)
    """

    def __init__(self, net: NetworkReport, weights: Mapping[str, np.ndarray], fuse: bool = True,
                 threads: int | None = None):
        net.raise_for_errors()
        self.threads = threads if threads is not None else _available_cpus()
        self._pool: ThreadPoolExecutor | None = None
        self._blas: Any = None
        self.net = net
        self.graph = net.graph
        self.weights = validate_weights(net, weights)
        #: Each input's expected shape, batch axis first (None: any size); ``input_shape`` is the first.
        self.input_shapes: tuple[tuple[int | None, ...], ...] = tuple((None, *i.shape) for i in self.graph.inputs)
        self.input_shape: tuple[int | None, ...] = self.input_shapes[0]
        self._layer_weights = {
            node.name: {s.name: self.weights[f"{node.name}/{s.name}"] for s in net.layers[node.name].weights}
            for node in self.graph.nodes
        }
        self._plain = self._plan(fuse=False, keep_all=True)
        self._fast = self._plan(fuse=fuse, keep_all=False)

    # planning ------------------------------------------------------------------------------------

    def _plan(self, fuse: bool, keep_all: bool) -> _Plan:
        plan = execution_plan(self.graph, fuse_layers=fuse, keep_all=keep_all)
        nodes = {node.name: node for node in self.graph.nodes}
        steps = [LOWERINGS[p.node.op](p.node, _step_weights(p, nodes, self._layer_weights)) for p in plan]
        return _Plan([p.name for p in plan], [p.node.op for p in plan], [p.layers for p in plan], steps,
                     [p.node.inputs for p in plan], [p.donate for p in plan], [p.free for p in plan])

    # running --------------------------------------------------------------------------------------

    def check_input(self, x: Any, index: int = 0) -> np.ndarray:
        """``x`` as float32 for input number ``index``, or E602 naming the expected shape when it does not fit.

        >>> import netspec
        >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
        >>> executor(net).check_input(np.zeros((2, 4)))
        Traceback (most recent call last):
        ...
        netspec.core.diagnostics.NetspecError: error[E602]: input has shape (2, 4), but network 'n' expects (None, 3) (None: any batch size)
        """
        x = np.asarray(x)
        expected = self.input_shapes[index]
        what = "input" if len(self.input_shapes) == 1 else f"input {self.graph.inputs[index].name!r}"
        shown = "(" + ", ".join("None" if d is None else str(d) for d in expected) + ")"
        if x.dtype.kind not in "biuf":
            raise NetspecError([Diagnostic.error(
                "E602", f"{what} holds {x.dtype} values, but network {self.graph.name!r} expects numbers of shape {shown}")])
        if x.ndim != len(expected) or any(d is not None and d != s for d, s in zip(expected, x.shape)):
            raise NetspecError([Diagnostic.error(
                "E602", f"{what} has shape {tuple(x.shape)}, but network {self.graph.name!r} expects {shown} "
                "(None: any batch size)")])
        if len(self.input_shapes) == 1 and any(d is None for d in expected[1:]):
            self._check_sizes({self.graph.input.name: tuple(int(d) for d in x.shape[1:])})
        return np.asarray(x, dtype=F32)

    def check_inputs(self, *xs: Any) -> list[np.ndarray]:
        """The inputs as float32 arrays in the network's input order; E602 when they do not fit.

        ``xs`` is one array per input, in order, or a single mapping from
        input name to array.  Every input's batch size must be the same.

        >>> import netspec
        >>> net = netspec.load_source("network n { input a: [3]\\n input b: [2]\\n concat(a, b) }")
        >>> [x.shape for x in executor(net).check_inputs({"b": np.zeros((1, 2)), "a": np.zeros((1, 3))})]
        [(1, 3), (1, 2)]
        """
        names = [i.name for i in self.graph.inputs]
        if len(xs) == 1 and isinstance(xs[0], Mapping):
            given = dict(xs[0])
            unknown = [k for k in given if k not in names]
            missing = [n for n in names if n not in given]
            if unknown or missing:
                problem = f"has no input {unknown[0]!r}" if unknown else f"needs input {missing[0]!r} too"
                raise NetspecError([Diagnostic.error(
                    "E602", f"network {self.graph.name!r} {problem} (its inputs: {', '.join(names)})")])
            xs = tuple(given[n] for n in names)
        if len(xs) != len(names):
            raise NetspecError([Diagnostic.error(
                "E602", f"network {self.graph.name!r} takes {len(names)} input(s) ({', '.join(names)}), "
                f"got {len(xs)}")])
        arrays = [self.check_input(x, i) for i, x in enumerate(xs)]
        if len({a.shape[0] for a in arrays}) > 1:
            shown = ", ".join(f"{n}: {a.shape[0]}" for n, a in zip(names, arrays))
            raise NetspecError([Diagnostic.error(
                "E602", f"the inputs of network {self.graph.name!r} have different batch sizes ({shown})")])
        if len(arrays) > 1 and any(d is None for shape in self.input_shapes for d in shape[1:]):
            self._check_sizes({n: tuple(int(d) for d in a.shape[1:]) for n, a in zip(names, arrays)})
        return arrays

    def _check_sizes(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Unknown sizes made known by a batch: every layer must fit them (a located E4xx if not).

        ``shapes`` maps input names to their sizes without the batch axis.
        """
        seen = self.__dict__.setdefault("_fitting_sizes", set())
        key = tuple(sorted(shapes.items()))
        if key in seen:
            return
        from ..core.concrete import concrete_problems

        problems = concrete_problems(self.graph, shapes)
        if problems:
            raise NetspecError(problems)
        seen.add(key)

    @contextlib.contextmanager
    def _parallel(self) -> Iterator[None]:
        """Run convolution chunks on ``threads`` threads, with BLAS single-threaded meanwhile.

        Needs threadpoolctl to set BLAS's threads; without it (or with ``threads=1``) each
        matrix product is left to BLAS's own threads.
        """
        if self.threads <= 1 or getattr(_state, "pool", None) is not None:
            yield
            return
        if self._blas is None:
            try:
                import threadpoolctl
            except ImportError:
                self.threads = 1
                yield
                return
            self._blas = threadpoolctl.ThreadpoolController()
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="netspec")
        with self._blas.limit(limits=1, user_api="blas"):
            _state.pool = self._pool
            try:
                yield
            finally:
                _state.pool = None
            if _scratch_high != getattr(self, "_evened", None):
                self._even_scratch()
                self._evened = _scratch_high

    def _even_scratch(self) -> None:
        """Give every worker thread an im2col buffer as large as the largest any has needed.

        Which worker gets the largest chunk varies from call to call; without this a later call
        could still grow some thread's buffer.  With it, the memory a call allocates is what
        the plan says (``netspec check``'s activation peak) and the buffers are the workspace.
        """
        assert self._pool is not None
        workers = self._pool._max_workers
        barrier = threading.Barrier(workers)

        def grow(_: int) -> None:
            barrier.wait(timeout=10)  # one task on each worker thread
            _scratch(_scratch_high)
        try:
            list(self._pool.map(grow, range(workers)))
        except threading.BrokenBarrierError:  # pragma: no cover - a worker did not start in time
            pass

    def _run(self, plan: _Plan, xs: Sequence[np.ndarray], keep: dict | None, times: dict | None
             ) -> list[np.ndarray]:
        with self._parallel():
            return self._run_steps(plan, xs, keep, times)

    def _run_steps(self, plan: _Plan, xs: Sequence[np.ndarray], keep: dict | None, times: dict | None
                   ) -> list[np.ndarray]:
        env = {i.name: x for i, x in zip(self.graph.inputs, xs)}
        for name, step, ins, donate, free in zip(plan.names, plan.steps, plan.inputs, plan.donate, plan.free):
            args = [env[t] for t in ins]
            start = time.perf_counter() if times is not None else 0.0
            env[name] = step(args, donate)
            if times is not None:
                times[name] = time.perf_counter() - start
            del args
            for t in free:
                if t != name:
                    del env[t]
        if keep is not None:
            keep.update(env)
        return [env[o] for o in self.graph.outputs]

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)

    def __call__(self, *xs: Any, by_name: bool = False) -> Any:
        """The network's output for a batch: one array per input, in order (or one mapping by input name).

        A one-output network gives an array; a network with several outputs a
        tuple of arrays in output order; ``by_name=True`` gives a dict keyed by
        output name in either case.  Outputs are float32 and C-contiguous; the
        inputs themselves are never written.

        >>> import netspec
        >>> net = netspec.load_source("network two { input a: [3]\\n input b: [3]\\n"
        ...     " s = add(a, b, name='s')\\n d = s -> dense(2, name='d')\\n output d, s }")
        >>> run = executor(net)
        >>> d, s = run(np.ones((4, 3), F32), np.ones((4, 3), F32))
        >>> d.shape, s[0].tolist()
        ((4, 2), [2.0, 2.0, 2.0])
        >>> sorted(run({"a": np.ones((1, 3)), "b": np.zeros((1, 3))}, by_name=True))
        ['d', 's']
        """
        ys = [np.ascontiguousarray(y) for y in self._run(self._fast, self.check_inputs(*xs), None, None)]
        if by_name:
            return dict(zip(self.graph.outputs, ys))
        return ys[0] if len(ys) == 1 else tuple(ys)

    def activations(self, *xs: Any) -> dict[str, np.ndarray]:
        """Every tensor by name (the inputs' names too), computed layer by layer without fusion.

        Takes the inputs as :meth:`__call__` does.

        >>> import netspec
        >>> net = netspec.load_source("network n { input x: [2]\\n relu(name='r')\\n dropout(0.5, name='d') }")
        >>> {k: v.tolist() for k, v in executor(net).activations(np.array([[-1, 2]], F32)).items()}
        {'x': [[-1.0, 2.0]], 'r': [[0.0, 2.0]], 'd': [[0.0, 2.0]]}
        """
        keep: dict[str, np.ndarray] = {}
        self._run(self._plain, self.check_inputs(*xs), keep, None)
        names = [*(i.name for i in self.graph.inputs), *(n.name for n in self.graph.nodes)]
        return {name: keep[name] for name in names}

    def profile(self, *xs: Any) -> list[tuple[str, str, tuple[str, ...], float]]:
        """Time each step of :meth:`__call__` on the inputs: ``(name, op, layers it computes, seconds)``.

        >>> import netspec
        >>> net = netspec.load_source("network n { input x: [4]\\n dense(3, name='fc')\\n relu(name='r') }")
        >>> [(name, op, layers) for name, op, layers, _ in executor(net).profile(np.ones((1, 4), F32))]
        [('r', 'dense', ('fc', 'r'))]
        """
        times: dict[str, float] = {}
        self._run(self._fast, self.check_inputs(*xs), None, times)
        p = self._fast
        return [(name, op, layers, times[name]) for name, op, layers in zip(p.names, p.ops, p.layers)]


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def executor(net: NetworkReport, weights: Mapping[str, np.ndarray] | str | os.PathLike | None = None,
             seed: int = 0, fuse: bool = True, threads: int | None = None) -> Executor:
    """An :class:`Executor` for a checked network.

    ``weights`` is a weights dict, a ``.npz`` / ``.keras`` path, or None for
    fresh weights drawn with ``seed``.

    >>> import netspec, numpy as np
    >>> net = netspec.load_source("network n { input x: [4, 4, 1]\\n maxpool2d(2) }")
    >>> executor(net)(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))[0, :, :, 0]
    array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    from .weights import need_net, need_weights

    need_net("executor(net, weights=None, seed=0)", net)
    need_weights("executor(net, weights=None, seed=0)", weights, paths=True, optional=True)
    if weights is None or isinstance(weights, (str, os.PathLike)):
        weights = resolve_weights(net, weights, seed)
    return Executor(net, weights, fuse=fuse, threads=threads)


def compile_numpy(net: NetworkReport, output: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                  seed: int = 0) -> None:
    """Write the network's weights as the contract's ``.npz``: ``weights`` checked and converted, or fresh ones.

    >>> import netspec, tempfile, os
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> compile_numpy(net, p, seed=1)
    >>> sorted(np.load(p).files)
    ['dense/bias', 'dense/kernel']
    """
    save_weights(resolve_weights(net, weights, seed), output)


def run_cli(net: NetworkReport, inputs: str | os.PathLike | Mapping[str, str | os.PathLike] | Sequence[str],
            output: str | os.PathLike, *, weights: str | os.PathLike | None = None, seed: int = 0) -> None:
    """``netspec run``: read a batch per input from ``.npy``, run the network, write the result.

    ``inputs`` is one ``.npy`` path (a one-input network), a mapping from
    input name to path, or a sequence of ``NAME=PATH`` strings (``--input``
    given once per input; a bare path when the network has one input).  The
    result is written as ``.npy`` for a one-output network, and as an
    ``.npz`` keyed by output name when the network has several outputs or
    ``output`` ends in ``.npz``.  Mismatched inputs are E610.  Each input
    follows :func:`netspec.targets.input_scale`: ``uint8`` pixels are
    divided by 255, as ``netspec train`` feeds them.

    >>> import netspec, tempfile, os
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "x.npy"), np.ones((5, 3), np.float32))
    >>> run_cli(net, os.path.join(d, "x.npy"), os.path.join(d, "y.npy"))
    >>> np.load(os.path.join(d, "y.npy")).shape
    (5, 2)
    >>> two = netspec.load_source("network t { input a: [3]\\n input b: [3]\\n"
    ...     " s = add(a, b, name='s')\\n d = s -> dense(2, name='d')\\n output d, s }")
    >>> run_cli(two, [f"a={d}/x.npy", f"b={d}/x.npy"], os.path.join(d, "y.npz"))
    >>> {k: v.shape for k, v in np.load(os.path.join(d, "y.npz")).items()}
    {'d': (5, 2), 's': (5, 3)}
    """
    from ..core.fileio import content_problem

    graph = net.graph
    assert graph is not None
    paths = input_paths(net, inputs)
    arrays = {}
    for name, path in paths.items():
        problem = content_problem(path, "npy")
        if problem is not None:
            raise NetspecError([Diagnostic.error("E603", f"cannot read input {path}: {problem}")])
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise NetspecError([Diagnostic.error("E603", f"cannot read input {path}: {err}")]) from None
        if not isinstance(x, np.ndarray):
            raise NetspecError([Diagnostic.error("E603", f"cannot read input {path}: not a .npy array")])
        arrays[name] = x
    as_npz = len(graph.outputs) > 1 or os.fspath(output).lower().endswith(".npz")
    if len(graph.outputs) > 1 and os.fspath(output).lower().endswith(".npy"):
        raise NetspecError([Diagnostic.error(
            "E610", f"network {graph.name!r} has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}); "
            f"write them to an .npz file keyed by output name, not {os.fspath(output)}", graph.span)])
    from . import input_scale

    run = executor(net, weights, seed)
    for i, inp in enumerate(graph.inputs):
        try:
            scale = input_scale(arrays[inp.name])
            arrays[inp.name] = run.check_input(arrays[inp.name], i)
            if scale != 1.0:  # uint8 pixels, as netspec train feeds them
                arrays[inp.name] = arrays[inp.name] * np.float32(scale)
        except NetspecError as err:
            raise NetspecError([Diagnostic.error(
                d.code, f"{os.path.basename(paths[inp.name])}: {d.message}", d.span, d.notes)
                for d in err.diagnostics]) from None
    ys = run(arrays, by_name=True)
    try:
        with atomic_output(output, suffix=".npz" if as_npz else ".npy") as tmp, open(tmp, "wb") as f:
            if as_npz:
                np.savez(f, **ys)
            else:
                np.save(f, ys[graph.output])
    except OSError as err:
        raise NetspecError([Diagnostic.error("E603", f"cannot write output {os.fspath(output)}: {err}")]) from None


def input_paths(net: NetworkReport, inputs: str | os.PathLike | Mapping[str, str | os.PathLike] | Sequence[str]
                ) -> dict[str, str]:
    """Which file feeds which input, from ``netspec run``'s ``--input`` values; E610 when they do not fit.

    A value is ``NAME=PATH``, or a bare path when the network has one input.
    Every input needs exactly one file; the error points at the input
    statement that has none.

    >>> import netspec
    >>> two = netspec.load_source("network t { input a: [3]\\n input b: [3]\\n add(a, b) }")
    >>> input_paths(two, ["b=y.npy", "a=x.npy"])
    {'a': 'x.npy', 'b': 'y.npy'}
    >>> try:
    ...     input_paths(two, ["a=x.npy"])
    ... except NetspecError as err:
    ...     print(err.diagnostics[0].code, err.diagnostics[0].message)
    E610 network 't' has no input file for 'b': give --input b=FILE.npy
    """
    graph = net.graph
    assert graph is not None
    names = [i.name for i in graph.inputs]
    given: dict[str, str] = {}
    if isinstance(inputs, (str, os.PathLike)):
        items: list[tuple[str | None, str]] = [(None, os.fspath(inputs))]
    elif isinstance(inputs, Mapping):
        items = [(k, os.fspath(v)) for k, v in inputs.items()]
    else:
        items = [_split_input(os.fspath(v), names) for v in inputs]
    for name, path in items:
        if name is None:
            if len(names) > 1:
                raise NetspecError([Diagnostic.error(
                    "E610", f"network {graph.name!r} has inputs {', '.join(names)}: "
                    f"name each file as --input NAME=FILE.npy (got {path!r})", graph.input.span)])
            name = names[0]
        if name not in names:
            raise NetspecError([Diagnostic.error(
                "E610", f"network {graph.name!r} has no input {name!r} (its inputs: {', '.join(names)})"
                + did_you_mean(name, names), graph.input.span)])
        if name in given:
            raise NetspecError([Diagnostic.error(
                "E610", f"input {name!r} is given twice ({given[name]} and {path})", graph.input_named(name).span)])
        given[name] = path
    for inp in graph.inputs:
        if inp.name not in given:
            raise NetspecError([Diagnostic.error(
                "E610", f"network {graph.name!r} has no input file for {inp.name!r}: "
                f"give --input {inp.name}=FILE.npy", inp.span)])
    return {n: given[n] for n in names}


def _split_input(value: str, names: Sequence[str]) -> tuple[str | None, str]:
    """``NAME=PATH`` as (NAME, PATH) when NAME is an identifier and ``value`` is not itself a file."""
    name, eq, path = value.partition("=")
    if eq and name.isidentifier() and (name in names or not os.path.exists(value)):
        return name, path
    return None, value


def traced_peak(run: Executor, *xs: Any, warmup: bool = True) -> int:
    """Peak bytes ``tracemalloc`` sees during one call of ``run`` on ``xs`` (after a warm-up call).

    ``xs`` is one batch per input, in order.  The weights and the inputs exist
    before tracing starts, so they are not counted; the network's outputs are.

    >>> import netspec
    >>> net = netspec.load_source("network n { input x: [4]\\n dense(3) }")
    >>> traced_peak(executor(net), np.ones((10, 4), F32)) >= 10 * 3 * 4
    True
    """
    import gc
    import tracemalloc

    inputs = run.check_inputs(*xs)
    if warmup:
        run(*inputs)
    gc.collect()
    tracemalloc.start()
    try:
        y = run(*inputs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del y
    return peak
