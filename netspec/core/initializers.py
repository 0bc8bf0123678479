"""Keras 3 initializers in NumPy: the same formulas, fans and distributions.

Every target draws its fresh weights through :func:`initialize` (via
:func:`netspec.targets.weights.init_weights`), so NumPy, Keras and ONNX agree on a
given seed.  The random streams are NumPy's, not Keras's: what matches
Keras is each distribution and its parameters.

>>> import numpy as np
>>> from netspec.core.ops import WeightSpec
>>> from netspec.core.argtypes import KerasObject
>>> spec = WeightSpec("kernel", (3, 3, 16, 32), True, KerasObject("he_uniform", (("seed", None),)))
>>> w = initialize(spec, np.random.default_rng(0))
>>> w.dtype, w.shape, bool(np.abs(w).max() <= np.sqrt(6 / (3 * 3 * 16)))
(dtype('float32'), (3, 3, 16, 32), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .argtypes import KerasObject
from .ops import WeightSpec

__all__ = ["InitializerError", "TRUNCATED_STDDEV", "compute_fans", "initialize", "make_array"]

#: Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it.
TRUNCATED_STDDEV = 0.87962566103423978

# name -> (scale, mode, distribution) of the variance-scaling family, as Keras 3 defines them.
_VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
}


class InitializerError(ValueError):
    """An initializer cannot fill a weight of this shape (``identity`` on a conv kernel, say)."""


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` as Keras's ``compute_fans`` counts them.

    A conv kernel ``(kh, kw, cin, cout)`` has receptive field ``kh*kw``,
    ``fan_in = cin*kh*kw`` and ``fan_out = cout*kh*kw``; a dense kernel is
    ``(in, out)``; a vector is its own length both ways.

    >>> compute_fans((3, 3, 16, 32)), compute_fans((784, 10)), compute_fans((7,)), compute_fans(())
    ((144, 288), (784, 10), (7, 7), (1, 1))
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float, stddev: float) -> np.ndarray:
    """Normal draws truncated to two standard deviations (resampled, as TensorFlow does)."""
    n = math.prod(shape)
    out = np.empty(n, dtype=np.float32)
    filled = 0
    while filled < n:
        # Draw a little more than needed: 95.4% of draws survive the cut.
        draw = rng.standard_normal(int((n - filled) * 1.1) + 16, dtype=np.float32)
        keep = draw[np.abs(draw) <= 2.0][: n - filled]
        out[filled:filled + keep.size] = keep
        filled += keep.size
    return (out.reshape(shape) * np.float32(stddev) + np.float32(mean)).astype(np.float32, copy=False)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> np.ndarray:
    u = rng.random(shape, dtype=np.float32)
    return (u * np.float32(high - low) + np.float32(low)).astype(np.float32, copy=False)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float, stddev: float) -> np.ndarray:
    z = rng.standard_normal(shape, dtype=np.float32)
    return (z * np.float32(stddev) + np.float32(mean)).astype(np.float32, copy=False)


def _variance_scaling(rng: np.random.Generator, shape: tuple[int, ...], scale: float, mode: str,
                      distribution: str) -> np.ndarray:
    fan_in, fan_out = compute_fans(shape)
    if mode == "fan_in":
        scale /= max(1.0, fan_in)
    elif mode == "fan_out":
        scale /= max(1.0, fan_out)
    elif mode == "fan_avg":
        scale /= max(1.0, (fan_in + fan_out) / 2.0)
    else:
        raise InitializerError(f"variance_scaling mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
    if distribution == "truncated_normal":
        return _truncated_normal(rng, shape, 0.0, math.sqrt(scale) / TRUNCATED_STDDEV)
    if distribution == "untruncated_normal":
        return _normal(rng, shape, 0.0, math.sqrt(scale))
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale)
        return _uniform(rng, shape, -limit, limit)
    raise InitializerError(
        "variance_scaling distribution must be 'truncated_normal', 'untruncated_normal' or 'uniform', "
        f"got {distribution!r}")


def _orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float) -> np.ndarray:
    if len(shape) < 2:
        raise InitializerError(f"orthogonal needs a weight of rank at least 2, got shape {shape}")
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    # Make Q unique (and uniformly distributed) by fixing the signs of R's diagonal, as Keras does.
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(np.float32)


def make_array(obj: KerasObject, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Fill an array of ``shape`` with the Keras initializer ``obj``, drawing from ``rng``.

    This ignores ``obj``'s seed; :func:`initialize` honours it.

    >>> import numpy as np
    >>> make_array(KerasObject("constant", (("value", 0.5),)), (2,), np.random.default_rng(0))
    array([0.5, 0.5], dtype=float32)
    """
    shape = tuple(int(d) for d in shape)
    name = obj.name
    if name == "zeros":
        return np.zeros(shape, np.float32)
    if name == "ones":
        return np.ones(shape, np.float32)
    if name == "constant":
        return np.full(shape, obj.get("value", 0.0), np.float32)
    if name == "random_normal":
        return _normal(rng, shape, obj.get("mean", 0.0), obj.get("stddev", 0.05))
    if name == "random_uniform":
        return _uniform(rng, shape, obj.get("minval", -0.05), obj.get("maxval", 0.05))
    if name == "truncated_normal":
        return _truncated_normal(rng, shape, obj.get("mean", 0.0), obj.get("stddev", 0.05))
    if name in _VARIANCE_SCALING:
        return _variance_scaling(rng, shape, *_VARIANCE_SCALING[name])
    if name == "variance_scaling":
        return _variance_scaling(rng, shape, float(obj.get("scale", 1.0)), obj.get("mode", "fan_in"),
                                 obj.get("distribution", "truncated_normal"))
    if name == "orthogonal":
        return _orthogonal(rng, shape, obj.get("gain", 1.0))
    if name == "identity":
        if len(shape) != 2:
            raise InitializerError(f"identity needs a 2-D weight (a dense kernel), got shape {shape}")
        return (obj.get("gain", 1.0) * np.eye(*shape)).astype(np.float32)
    raise InitializerError(f"unknown initializer {name!r}")


def initialize(spec: WeightSpec, rng: np.random.Generator) -> np.ndarray:
    """A fresh float32 array for one weight, drawn from its Keras initializer.

    An initializer with its own ``seed`` draws from a generator seeded with
    it, so it gives the same values whatever ``rng`` is (as a seeded Keras
    initializer does); otherwise the draws come from ``rng``.

    >>> import numpy as np
    >>> seeded = WeightSpec("kernel", (4, 4), True, KerasObject("glorot_normal", (("seed", 7),)))
    >>> a = initialize(seeded, np.random.default_rng(0))
    >>> b = initialize(seeded, np.random.default_rng(1))
    >>> bool((a == b).all())
    True
    """
    seed = spec.initializer.get("seed")
    source = np.random.default_rng(int(seed)) if seed is not None else rng
    return make_array(spec.initializer, spec.shape, source)
