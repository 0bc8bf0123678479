"""Image resampling as TensorFlow computes it (``keras.ops.image.resize``, ``antialias=False``).

Every method is separable: along one axis an output cell is a weighted sum
of input cells, so one ``(out, in)`` matrix per axis describes it.  The
NumPy executor applies the matrices; the ONNX target uses ``Resize`` for
``nearest`` and ``bilinear`` and these same matrices (as ``MatMul``) for the
methods ONNX's ``Resize`` cannot reproduce exactly.

>>> resize_matrix(2, 4, "bilinear").tolist()
[[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]]
>>> nearest_index(3, 6).tolist()
[0, 0, 1, 1, 2, 2]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["nearest_index", "resize_matrix"]

_TABLE = 1024


def nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """The input cell each output cell copies (``half_pixel_centers``: ``floor((x + 0.5) * in / out)``).

    >>> nearest_index(5, 2).tolist()
    [1, 3]
    """
    scale = np.float32(in_size / out_size)
    x = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    return np.clip(np.floor(x).astype(np.int64), 0, in_size - 1)


def _keys_table() -> np.ndarray:
    a = -0.5  # Keys' cubic with a = -0.5, TensorFlow's half-pixel bicubic
    x = np.arange(_TABLE + 1, dtype=np.float64) / _TABLE
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    return np.stack([near, far], axis=1).astype(np.float32)


def _lanczos(radius: float):
    def kernel(x: np.ndarray) -> np.ndarray:
        x = np.abs(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius) / (np.pi * np.pi * x * x)
        v = np.where(x <= 1e-3, 1.0, v)
        return np.where(x > radius, 0.0, v)
    return kernel


def resize_matrix(in_size: int, out_size: int, method: str) -> np.ndarray:
    """The ``(out_size, in_size)`` float32 matrix of one axis of a resize.

    ``method`` is one of ``nearest``, ``bilinear``, ``bicubic`` (TensorFlow's
    table of Keys weights, zero weight outside the image, renormalised),
    ``lanczos3``, ``lanczos5`` (``scale_and_translate``) or ``area``.

    >>> resize_matrix(4, 2, "area").tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    m = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    if method == "nearest":
        m[rows, nearest_index(in_size, out_size)] = 1.0
        return m.astype(np.float32)
    scale = in_size / out_size
    if method == "bilinear":
        x = (rows + 0.5) * np.float32(scale) - 0.5
        x = x.astype(np.float32)
        low = np.floor(x)
        lerp = (x - low).astype(np.float64)
        lo = np.maximum(low, 0).astype(np.int64)
        hi = np.minimum(np.ceil(x), in_size - 1).astype(np.int64)
        np.add.at(m, (rows, lo), 1.0 - lerp)
        np.add.at(m, (rows, hi), lerp)
        return m.astype(np.float32)
    if method == "bicubic":
        table = _keys_table()
        x = ((rows + 0.5) * np.float32(scale) - 0.5).astype(np.float32)
        base = np.floor(x).astype(np.int64)
        offset = np.rint((x - base) * _TABLE).astype(np.int64)
        weights = np.stack([table[offset, 1], table[offset, 0], table[_TABLE - offset, 0],
                            table[_TABLE - offset, 1]], axis=1).astype(np.float64)
        for r in range(out_size):
            idx = base[r] + np.arange(-1, 3)
            w = np.where((idx >= 0) & (idx < in_size), weights[r], 0.0)
            total = w.sum()
            if abs(total) > 0:
                w = w / total
            for i, v in zip(np.clip(idx, 0, in_size - 1), w):
                m[r, i] += v
        return m.astype(np.float32)
    if method in ("lanczos3", "lanczos5"):
        radius = 3.0 if method == "lanczos3" else 5.0
        kernel = _lanczos(radius)
        inv = 1.0 / np.float32(out_size / in_size)
        for r in range(out_size):
            sample = (r + 0.5) * inv
            start = min(max(math.ceil(sample - radius - 0.5), 0), in_size - 1)
            end = min(max(math.floor(sample + radius - 0.5), 0), in_size - 1) + 1
            src = np.arange(start, end)
            w = kernel(src + 0.5 - sample)
            total = w.sum()
            if abs(total) > 0:
                w = w / total
            m[r, start:end] = w
        return m.astype(np.float32)
    if method == "area":
        for r in range(out_size):
            lo, hi = r * scale, (r + 1) * scale
            for i in range(int(math.floor(lo)), min(int(math.ceil(hi)), in_size)):
                overlap = min(hi, i + 1) - max(lo, i)
                if overlap > 0:
                    m[r, i] = overlap / scale
        return m.astype(np.float32)
    raise ValueError(f"unknown resize method {method!r}")
