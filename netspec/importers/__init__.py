"""Importers: existing models (Keras ``.keras``/``.h5``, ONNX) as readable, checked specs.

Each source format has its own reader module that produces an
:class:`~netspec.importers.model.ImportedModel`; :mod:`~netspec.importers.writer`
and :mod:`~netspec.importers.folding` turn it into ``.net`` text, which is
then checked: the spec is kept only when netspec's shapes equal the ones the
model file records, and the folded layout only when it builds exactly the
layers of the flat one.  The core and ``netspec check`` import none of this.

>>> import json, os, tempfile, zipfile
>>> cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
...     {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}}
>>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
>>> with zipfile.ZipFile(path, "w") as z:
...     z.writestr("config.json", json.dumps(cfg))
>>> print(import_model(path).text)
# Imported from m.keras by netspec import.
# 10 parameters: 10 trainable, 0 non-trainable.
<BLANKLINE>
network s {
    input x: [4]
    dense(2)
}
<BLANKLINE>
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, NetspecError
from ..core.shapes import channel_axis
from ..frontend.elaborate import check_source
from .model import ImportedModel, ImportProblem
from .writer import is_identifier, write_spec

__all__ = ["ImportResult", "import_cli", "import_model", "read_model"]


@dataclass
class ImportResult:
    """The spec text of an imported model, its checked report, and (when asked for) its weights."""

    text: str
    report: NetworkReport
    model: ImportedModel
    weights: dict[str, Any] | None = None
    folded: bool = True


def _problem(err: ImportProblem) -> NetspecError:
    shown = os.path.basename(err.path) if err.path else "model"
    return NetspecError([Diagnostic.error(err.code, f"{shown}: {where}: {message}") for where, message in err.problems])


def read_model(path: str | os.PathLike) -> ImportedModel:
    """The model in a ``.keras``, ``.h5`` or ``.onnx`` file, as an :class:`ImportedModel` (no weights yet).

    Raises :class:`NetspecError` naming every part netspec cannot read or express.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".onnx"):
            from .onnx_reader import read_onnx

            return read_onnx(path)
        if path.endswith((".keras", ".h5", ".hdf5")):
            from .keras_reader import read_keras

            return read_keras(path)
    except ImportProblem as err:
        raise _problem(err) from None
    raise NetspecError([Diagnostic.error(
        "E701", f"cannot import {os.path.basename(path)}: expected a .keras, .h5 or .onnx file")])


def _check(text: str, what: str) -> NetworkReport:
    report = check_source(text, what)
    if not report.ok or not report.networks:
        errors = [d for d in report.all_diagnostics if d.is_error]
        raise NetspecError([Diagnostic.error(
            "E702", f"the imported spec does not check ({len(errors)} error(s)); the first: "
            f"{errors[0].message if errors else 'no network'}")] + errors[:20])
    return report.networks[0]


def _rank_axes(model: ImportedModel, report: NetworkReport) -> None:
    """Write Keras's ``axis=3`` of a rank-4 tensor as netspec's default ``-1`` (left out)."""
    shapes = {name: info.shape for name, info in report.layers.items()}
    shapes.update({i.name: i.shape for i in model.inputs})
    for layer in model.layers:
        if "axis" not in layer.args or not layer.inputs or layer.inputs[0] not in shapes:
            continue
        rank = len(shapes[layer.inputs[0]]) + 1
        axis = layer.args["axis"]
        if isinstance(axis, tuple):
            axis = tuple(a - rank if isinstance(a, int) and a > 0 else a for a in axis)
            layer.args["axis"] = axis[0] if len(axis) == 1 else axis
            axis = layer.args["axis"]
        elif isinstance(axis, int) and axis > 0:
            layer.args["axis"] = axis = axis - rank
        if axis == -1:
            del layer.args["axis"]


def _channels(model: ImportedModel, report: NetworkReport) -> dict[str, int | None]:
    fmt = model.inputs[0].data_format if model.inputs else "channels_last"
    out: dict[str, int | None] = {}
    shapes = {i.name: i.shape for i in model.inputs}
    shapes.update({name: info.shape for name, info in report.layers.items()})
    for name, shape in shapes.items():
        if len(shape) >= 2:
            out[name] = shape[channel_axis(fmt)] if len(shape) == 3 else (shape[-1] if fmt == "channels_last" else shape[0])
        elif shape:
            out[name] = shape[0]
    return out


def _layers_of(report: NetworkReport) -> list[tuple]:
    assert report.graph is not None
    return [(n.name, n.op, n.inputs, n.attrs, report.layers[n.name].shape, report.layers[n.name].params)
            for n in report.graph.nodes]


def _verify_shapes(model: ImportedModel, report: NetworkReport, expected: dict[str, tuple]) -> None:
    bad = []
    for name, shape in expected.items():
        info = report.layers.get(name)
        if info is not None and tuple(info.shape) != tuple(shape):
            bad.append(Diagnostic.error(
                "E703", f"layer {name!r}: netspec computes shape {tuple(info.shape)}, the model records {tuple(shape)}"))
    if bad:
        raise NetspecError(bad)


def _weights(model: ImportedModel, report: NetworkReport) -> dict[str, Any]:
    import numpy as np

    if model.load_weights is None:
        raise NetspecError([Diagnostic.error("E704", "this model file has no weights to read")])
    try:
        model.load_weights(model)
    except ImportProblem as err:
        raise _problem(err) from None
    out: dict[str, Any] = {}
    problems = []
    for layer in model.layers:
        specs = report.layers[layer.name].weights
        arrays = layer.weights or []
        if len(arrays) != len(specs):
            problems.append(Diagnostic.error(
                "E601", f"layer {layer.name!r}: the model file holds {len(arrays)} weight(s), netspec expects "
                f"{len(specs)} ({', '.join(s.name for s in specs) or 'none'})"))
            continue
        for spec, array in zip(specs, arrays):
            array = np.asarray(array, dtype=np.float32)
            if tuple(array.shape) != tuple(spec.shape):
                if array.size == spec.size and not spec.shape:
                    array = array.reshape(spec.shape)
                else:
                    problems.append(Diagnostic.error(
                        "E601", f"layer {layer.name!r} weight {spec.name!r}: the model file has shape "
                        f"{tuple(array.shape)}, netspec expects {tuple(spec.shape)}"))
                    continue
            out[f"{layer.name}/{spec.name}"] = array
    if problems:
        raise NetspecError(problems)
    return out


def import_model(path: str | os.PathLike, network: str | None = None, weights: bool = False,
                 fold: bool = True) -> ImportResult:
    """Import a model file as a checked spec (and its weights in the contract's format).

    ``network`` names the network in the spec (default: the model's name).
    The flat spec is checked first (its shapes must equal the ones the file
    records); the folded one replaces it only when it builds the same layers.
    """
    path = os.fspath(path)
    model = read_model(path)
    if network is not None:
        if not is_identifier(network):
            raise NetspecError([Diagnostic.error("E701", f"--network {network!r} is not a valid network name")])
        model.name = network
    shown = os.path.basename(path)
    flat = _check(write_spec(model, fold=False), shown)
    _rank_axes(model, flat)
    flat_text = write_spec(model, fold=False)
    flat = _check(flat_text, shown)
    _verify_shapes(model, flat, model.expected_shapes)
    text, report, folded = flat_text, flat, False
    if fold:
        folded_text = write_spec(model, fold=True, channels=_channels(model, flat))
        candidate = check_source(folded_text, shown)
        if candidate.ok and candidate.networks and _layers_of(candidate.networks[0]) == _layers_of(flat):
            text, report, folded = folded_text, candidate.networks[0], True
    trainable, frozen = report.params
    header = [f"Imported from {shown} by netspec import.",
              f"{trainable + frozen:,} parameters: {trainable:,} trainable, {frozen:,} non-trainable."]
    text = "".join(f"# {h}\n" for h in header) + "\n" + text
    result = ImportResult(text, report, model, None, folded)
    if weights:
        result.weights = _weights(model, report)
    return result


def import_cli(model: str, output: str, weights_out: str | None, network: str | None, fold: bool = True) -> None:
    """``netspec import``: check the paths first, import, then write the spec (and weights) whole or not at all.

    >>> import_cli("model.keras", "model.keras", None, None)
    Traceback (most recent call last):
    ...
    netspec.core.diagnostics.NetspecError: error[E705]: --output model.keras is the model file itself
    """
    from ..core.fileio import atomic_output

    problems = []
    same = os.path.abspath(output) == os.path.abspath(model)
    if same:
        problems.append(f"--output {output} is the model file itself")
    if weights_out is not None:
        if os.path.abspath(weights_out) in (os.path.abspath(model), os.path.abspath(output)):
            problems.append(f"--weights-out {weights_out} is the model file or the spec")
        if not weights_out.endswith(".npz"):
            problems.append(f"--weights-out {weights_out} must end in .npz (the contract's weights format)")
    for path in (output, weights_out):
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            problems.append(f"cannot write {path}: no such directory")
    if problems:
        raise NetspecError([Diagnostic.error("E705", p) for p in problems])
    result = import_model(model, network, weights=weights_out is not None, fold=fold)
    with atomic_output(output) as tmp_spec:
        with open(tmp_spec, "w", encoding="utf-8") as f:
            f.write(result.text)
        if weights_out is not None:
            from ..targets.weights import save_weights

            assert result.weights is not None
            save_weights(result.weights, weights_out)
    layers = len(result.report.graph.nodes) if result.report.graph else 0
    summary = f"imported {layers} layers ({result.report.total_params:,} parameters) into {output}"
    if weights_out is not None:
        summary += f", weights into {weights_out}"
    print(summary, file=sys.stderr)
