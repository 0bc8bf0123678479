"""Targets: each turns a checked network into something that runs.

Each target module is imported only when asked for, so ``netspec check``
never loads NumPy, TensorFlow or ONNX.  Every target module exposes a
lowering table ``LOWERINGS: dict[str, Callable]`` keyed by op name; a test
asserts every op in :data:`netspec.core.ops.OPS` has an entry in each.

=========  ==============================  ================================
target     module                          library call
=========  ==============================  ================================
numpy      :mod:`netspec.targets.numpy_exec`  ``executor(net, weights)``
keras      :mod:`netspec.targets.keras_model` ``to_keras(net, weights)``
onnx       :mod:`netspec.targets.onnx_model`  ``to_onnx(net, weights)``
=========  ==============================  ================================
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["TARGETS", "compile_target", "input_scale"]

#: Target name -> module that implements it.
TARGETS = {"numpy": "netspec.targets.numpy_exec", "keras": "netspec.targets.keras_model",
           "onnx": "netspec.targets.onnx_model"}


def compile_target(net: Any, target: str, output: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                   seed: int = 0, opset: int | None = None) -> None:
    """Build ``target`` for a checked network and write it to ``output`` (whole or not at all).

    ``weights`` is a ``.npz`` in the contract's format or a trained ``.keras``
    file; without it, fresh weights are drawn from each layer's initializers
    with ``seed``.  Like every library call, it takes the network first;
    the optional weights and seed are keywords.
    """
    from .weights import need_net, need_path, need_weights

    need_net("compile_target(net, target, output, *, weights=None, seed=0, opset=None)", net, graphs=True)
    need_path("compile_target(net, target, output, *, weights=None, seed=0, opset=None)", output)
    need_weights("compile_target(net, target, output, *, weights=None, seed=0, opset=None)", weights,
                 paths=True, optional=True)
    if isinstance(weights, (str, os.PathLike)):
        # Read once here (a .keras file through the importer's reader), not once per target.
        from .weights import load_weights

        weights = load_weights(net, weights)
    if target == "numpy":
        from .numpy_exec import compile_numpy

        compile_numpy(net, output, weights=weights, seed=seed)
    elif target == "keras":
        from .keras_model import compile_keras

        compile_keras(net, output, weights=weights, seed=seed)
    elif target == "onnx":
        from .onnx_model import compile_onnx

        compile_onnx(net, output, weights=weights, seed=seed, opset=opset)
    else:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")


def input_scale(x: Any) -> float:
    """The one input-scaling rule of ``netspec run`` and ``netspec train``: ``uint8`` arrays are
    pixels and are divided by 255; every other type (floats, other integers) is taken as it is.

    The library's ``executor(net)(x)`` takes ``x`` as it is, as a Keras model does.

    >>> import numpy as np
    >>> input_scale(np.zeros(2, np.uint8)), input_scale(np.zeros(2, np.int64)), input_scale(np.zeros(2))
    (0.00392156862745098, 1.0, 1.0)
    """
    import numpy as np

    return 1 / 255 if np.asarray(x).dtype == np.uint8 else 1.0
