"""Weights: the contract's ``.npz`` format, fresh initialisation and validation.

A weights dict maps ``"layer/weight"`` to a float32 array in Keras's
layout (a conv2d kernel is ``(F_h, F_w, C_in/groups, filters)``).  Every
target reads and writes this one format; :func:`init_weights` is where every
target's fresh weights come from, so the targets agree for a given seed.

>>> import netspec
>>> net = netspec.load_source('''
... network tiny {
...     input x: [4]
...     dense(3, name='fc')
... }''')
>>> w = init_weights(net, seed=0)
>>> sorted((k, v.shape) for k, v in w.items())
[('fc/bias', (3,)), ('fc/kernel', (4, 3))]
>>> validate_weights(net, w) is not None
True
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, NetspecError
from ..core.fileio import atomic_output
from ..core.initializers import InitializerError, initialize

__all__ = ["expected_weights", "init_weights", "load_weights", "resolve_weights", "save_weights",
           "validate_weights"]

#: Old or alternative weight names accepted when reading: (op, name) -> contract name.
_ALIASES = {("depthwise_conv2d", "depthwise_kernel"): "kernel"}


def _what(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def need_net(call: str, net: Any, graphs: bool = False) -> None:
    """TypeError naming the call's signature unless ``net`` is a checked network (or a graph).

    Every library call takes the network first, then the weights, then a path.

    >>> need_net("load_weights(net, path)", "w.npz")
    Traceback (most recent call last):
    ...
    TypeError: load_weights(net, path): the network must be a checked network (netspec.load(...)), got str 'w.npz'; the library takes the network first, then the weights, then a path
    """
    from ..core.ir import Graph

    if isinstance(net, NetworkReport) or (graphs and isinstance(net, Graph)):
        return
    kind = "a checked network (netspec.load(...))" + (" or a netspec.Graph" if graphs else "")
    raise TypeError(f"{call}: the network must be {kind}, got {_what(net)}; "
                    "the library takes the network first, then the weights, then a path")


def need_weights(call: str, weights: Any, paths: bool = False, optional: bool = False) -> None:
    """TypeError naming the call's signature unless ``weights`` is a weights dict (or a path)."""
    if optional and weights is None:
        return
    if isinstance(weights, Mapping) or (paths and isinstance(weights, (str, os.PathLike))):
        return
    kind = "a dict {'layer/weight': array}" + (" or a .npz/.keras path" if paths else "")
    raise TypeError(f"{call}: the weights must be {kind}, got {_what(weights)}; "
                    "the library takes the network first, then the weights, then a path")


def need_path(call: str, path: Any) -> None:
    """TypeError naming the call's signature unless ``path`` is a str or os.PathLike."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{call}: the path must be a str or os.PathLike, got {_what(path)}; "
                        "the library takes the network first, then the weights, then a path")


def _graph(net: NetworkReport) -> Any:
    net.raise_for_errors()
    return net.graph


def expected_weights(net: NetworkReport) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """Every weight the network needs: ``"layer/weight" -> (layer, op, shape)``, in Keras order.

    >>> import netspec
    >>> net = netspec.load_source("network n { input x: [8, 8, 2]\\n conv2d(4, 3, name='c') }")
    >>> expected_weights(net)
    {'c/kernel': ('c', 'conv2d', (3, 3, 2, 4)), 'c/bias': ('c', 'conv2d', (4,))}
    """
    out = {}
    for node in _graph(net).nodes:
        for spec in net.layers[node.name].weights:
            out[f"{node.name}/{spec.name}"] = (node.name, node.op, tuple(spec.shape))
    return out


def init_weights(net: NetworkReport, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh weights for every layer, drawn from each weight's Keras initializer.

    Layers draw in graph order from one generator seeded with ``seed``; an
    initializer with its own ``seed`` argument draws from that instead.

    >>> import netspec
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, kernel_initializer='ones') }")
    >>> init_weights(net)["dense/kernel"].tolist()
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """
    need_net("init_weights(net, seed=0)", net, graphs=True)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for node in _graph(net).nodes:
        for spec in net.layers[node.name].weights:
            try:
                out[f"{node.name}/{spec.name}"] = initialize(spec, rng)
            except InitializerError as err:
                raise NetspecError([Diagnostic.error(
                    "E605", f"layer {node.name!r} ({node.op}): cannot initialise {spec.name} of shape "
                    f"{tuple(spec.shape)}: {err}", node.span)]) from None
    return out


def _show(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def validate_weights(net: NetworkReport, weights: Mapping[str, Any], source: str | None = None
                     ) -> dict[str, np.ndarray]:
    """Check a weights dict against the network; return it as float32 arrays under contract names.

    Every missing, extra or wrongly shaped weight is reported (E601), each
    naming the layer, the weight and both shapes.  ``depthwise_kernel`` is
    accepted for a ``depthwise_conv2d``'s ``kernel``.  ``source`` names the
    file in the messages.

    >>> import netspec, numpy as np
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, name='fc') }")
    >>> validate_weights(net, {"fc/kernel": np.zeros((2, 3)), "fc/bias": np.zeros(2)})
    Traceback (most recent call last):
    ...
    netspec.core.diagnostics.NetspecError: error[E601]: weight 'fc/kernel' of layer 'fc' (dense) has shape (2, 3), but the network needs (3, 2)
    """
    need_net("validate_weights(net, weights, source=None)", net, graphs=True)
    need_weights("validate_weights(net, weights, source=None)", weights)
    expected = expected_weights(net)
    ops = {node.name: node.op for node in _graph(net).nodes}
    where = f" in {source}" if source else ""
    errors: list[Diagnostic] = []
    out: dict[str, np.ndarray] = {}
    seen: set[str] = set()  # contract names given, well formed or not
    for key, value in weights.items():
        layer, _, name = str(key).rpartition("/")
        canonical = f"{layer}/{_ALIASES.get((ops.get(layer), name), name)}"
        if canonical not in expected:
            if layer in ops:
                needed = ", ".join(k.rpartition("/")[2] for k in expected if k.startswith(layer + "/")) or "none"
                msg = (f"extra weight {key!r}{where}: layer {layer!r} ({ops[layer]}) has no weight {name!r} "
                       f"(it has: {needed})")
            else:
                msg = f"extra weight {key!r}{where}: the network has no layer {layer!r}"
            errors.append(Diagnostic.error("E601", msg))
            continue
        if canonical in seen:
            errors.append(Diagnostic.error("E601", f"weight {canonical!r} is given twice{where} (as {key!r})"))
            continue
        seen.add(canonical)
        array = np.asarray(value)
        want = expected[canonical][2]
        if array.dtype.kind not in "biuf":
            errors.append(Diagnostic.error(
                "E601", f"weight {key!r} of layer {layer!r}{where} holds {array.dtype} values, not numbers"))
        elif tuple(array.shape) != want:
            errors.append(Diagnostic.error(
                "E601", f"weight {key!r} of layer {layer!r} ({ops[layer]}){where} has shape {_show(array.shape)}, "
                f"but the network needs {_show(want)}"))
        else:
            out[canonical] = np.ascontiguousarray(array, dtype=np.float32).reshape(want)  # keeps 0-d (count) 0-d
    for key, (layer, op, shape) in expected.items():
        if key not in seen:
            errors.append(Diagnostic.error(
                "E601", f"missing weight {key!r}{where}: layer {layer!r} ({op}) needs "
                f"{key.rpartition('/')[2]} of shape {_show(shape)}"))
    if errors:
        raise NetspecError(errors)
    return {k: out[k] for k in expected}


def load_weights(net: NetworkReport, path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate weights from a ``.npz`` (the contract's format) or a trained ``.keras`` file.

    >>> import netspec, tempfile, os
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> save_weights(init_weights(net, seed=1), p)
    >>> sorted(load_weights(net, p))
    ['dense/bias', 'dense/kernel']
    """
    need_net("load_weights(net, path)", net)
    need_path("load_weights(net, path)", path)
    path = os.fspath(path)
    if path.endswith((".keras", ".h5")):
        # One reader for .keras files: the importer's, which reads the archive as data (no TensorFlow).
        from ..importers.keras_reader import keras_file_weights

        return validate_weights(net, keras_file_weights(net, path), os.path.basename(path))
    from ..core.fileio import content_problem

    problem = content_problem(path, "npz")
    if problem is not None:
        raise NetspecError([Diagnostic.error("E603", f"cannot read weights {path}: {problem}")])
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise NetspecError([Diagnostic.error("E603", f"cannot read weights {path}: no such file")]) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise NetspecError([Diagnostic.error(
            "E603", f"cannot read weights {path}: not a .npz weights file ({err})")]) from None
    return validate_weights(net, raw, os.path.basename(path))


def save_weights(weights: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write a weights dict as ``.npz`` (uncompressed), whole or not at all.

    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> save_weights({"fc/bias": np.ones(2, np.float32)}, p)
    >>> np.load(p)["fc/bias"].tolist()
    [1.0, 1.0]
    """
    need_weights("save_weights(weights, path)", weights)
    need_path("save_weights(weights, path)", path)
    arrays = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
    try:
        with atomic_output(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            # A file object, so NumPy does not append '.npz' to a name that lacks it.
            np.savez(f, **arrays)
    except OSError as err:
        raise NetspecError([Diagnostic.error("E603", f"cannot write weights {os.fspath(path)}: {err}")]) from None


def resolve_weights(net: NetworkReport, path: str | os.PathLike | Mapping[str, Any] | None = None, seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """The weights to use: those in ``path`` (a file, or a dict already read) when given, else fresh ones from ``seed``.

    >>> import netspec
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
    >>> resolve_weights(net, None, seed=3)["dense/kernel"].shape
    (3, 2)
    """
    if path is None:
        return init_weights(net, seed)
    if isinstance(path, Mapping):  # already read (the command line reads a file once, for every target)
        return validate_weights(net, path)
    return load_weights(net, path)
