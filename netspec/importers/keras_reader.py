"""Read Keras models (``.keras`` archives and legacy ``.h5`` files) as data, never as code.

The model's own config (``config.json`` in the archive, the ``model_config``
attribute of an ``.h5`` file) is read with :mod:`json`, and its weights with
:mod:`h5py`: TensorFlow and Keras are never imported, and nothing in the
file is deserialised as Python (a ``Lambda`` layer's bytecode is reported,
not run, as Keras's safe mode does).  Archives are bounded before they are
read: member count, sizes and compression ratio (zip bombs), and every
weight's declared size against the size its layer needs.

This is the one place that reads ``.keras`` files: ``netspec import`` and
``--weights model.keras`` both come here.

>>> import json, os, tempfile, zipfile
>>> cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
...     {"class_name": "Dense", "config": {"name": "fc", "units": 2, "activation": "relu"}}]}}
>>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
>>> with zipfile.ZipFile(path, "w") as z:
...     z.writestr("config.json", json.dumps(cfg))
>>> m = read_keras(path)
>>> [(layer.name, layer.op, layer.args) for layer in m.layers]
[('fc', 'dense', {'units': 2, 'activation': 'relu'})]
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from .keras_layers import convert_layer
from .model import ImportedInput, ImportedLayer, ImportedModel, ImportProblem

__all__ = ["MAX_CONFIG_BYTES", "MAX_WEIGHT_BYTES", "keras_file_weights", "read_keras", "read_keras_weights",
           "snake_case"]

#: Largest ``config.json`` read (a real CNN's is well under 10 MB).
MAX_CONFIG_BYTES = 64 * 2**20
#: Largest weights member read from an archive.
MAX_WEIGHT_BYTES = 8 * 2**30
#: Highest compression ratio accepted for an archive member (zip bombs compress far better).
MAX_RATIO = 200
#: Most members an archive may hold.
MAX_MEMBERS = 10_000
#: Deepest nesting of models inside models.
MAX_NESTING = 20


def read_keras(path: str | os.PathLike) -> ImportedModel:
    """The model in a ``.keras`` archive or a legacy ``.h5`` file, without its weights.

    Raises :class:`ImportProblem` naming every part that cannot be read or
    expressed.  ``load_weights`` on the result reads the weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImportProblem(path, [("file", "no such file" if not os.path.exists(path) else "not a regular file")],
                            "E603")
    if path.endswith((".h5", ".hdf5")):
        config = _h5_config(path)
    else:
        config = _archive_config(path)
    model = model_from_config(config, path)
    model.load_weights = lambda m: read_keras_weights(path, m, config)
    return model


# --- reading the files ------------------------------------------------------------------------------


def _open_archive(path: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise ImportProblem(path, [("archive", f"not a .keras archive (a zip file): {err}")], "E603") from None
    except OSError as err:
        raise ImportProblem(path, [("file", err.strerror or str(err))], "E603") from None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ImportProblem(path, [("archive", f"{len(infos):,} members (limit {MAX_MEMBERS:,})")], "E603")
    for info in infos:
        limit = MAX_CONFIG_BYTES if info.filename.endswith(".json") else MAX_WEIGHT_BYTES
        if info.file_size > limit:
            raise ImportProblem(path, [(info.filename, f"{info.file_size:,} bytes (limit {limit:,})")], "E603")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 2**20:
            raise ImportProblem(path, [(info.filename, f"compressed {info.file_size / info.compress_size:,.0f}:1; "
                                        "refusing a likely zip bomb")], "E603")
    return archive


def _read_member(path: str, archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        with archive.open(name) as f:
            data = f.read(limit + 1)
    except KeyError:
        raise ImportProblem(path, [("archive", f"no {name} in the archive; is this a Keras 3 .keras file?")],
                            "E603") from None
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ImportProblem(path, [(name, f"cannot read it (truncated or corrupt archive): {err}")], "E603") from None
    if len(data) > limit:
        raise ImportProblem(path, [(name, f"larger than declared (limit {limit:,} bytes)")], "E603")
    return data


def _archive_config(path: str) -> dict:
    with _open_archive(path) as archive:
        data = _read_member(path, archive, "config.json", MAX_CONFIG_BYTES)
    return _parse_json(path, data, "config.json")


def _parse_json(path: str, data: bytes | str, what: str) -> dict:
    try:
        config = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ImportProblem(path, [(what, f"not valid JSON: {err}")], "E603") from None
    if not isinstance(config, dict):
        raise ImportProblem(path, [(what, "not a Keras model config (expected an object)")], "E603")
    return config


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportProblem("", [("h5py", "reading Keras weights and .h5 files needs h5py: "
                                  "pip install 'netspec[import]'")], "E605") from None
    return h5py


def _open_h5(path: str, source: Any) -> Any:
    h5py = _h5py()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as err:
        raise ImportProblem(path, [("weights", f"not a readable HDF5 file: {err}")], "E603") from None


def _h5_config(path: str) -> dict:
    with _open_h5(path, path) as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ImportProblem(path, [("file", "no model_config in this .h5 file (a weights-only file?)")], "E603")
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        if len(raw) > MAX_CONFIG_BYTES:
            raise ImportProblem(path, [("model_config", "too large")], "E603")
    return _parse_json(path, raw, "model_config")


# --- the config to layers -----------------------------------------------------------------------------


def _tensors(value: Any, shapes: dict | None = None) -> Iterator[tuple[str, int, int]]:
    """Every Keras tensor reference in a node's arguments, as (layer, node index, tensor index).

    ``shapes`` collects the shape each reference records for its producer.
    """
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            cfg = value.get("config", {})
            hist = cfg.get("keras_history")
            if isinstance(hist, list) and len(hist) == 3:
                shape = cfg.get("shape")
                if shapes is not None and isinstance(shape, list) and int(hist[2]) == 0:
                    shapes[str(hist[0])] = tuple(d if isinstance(d, int) else None for d in shape[1:])
                yield str(hist[0]), int(hist[1]), int(hist[2])
            return
        for v in value.values():
            yield from _tensors(v, shapes)
    elif isinstance(value, list):
        # Keras 2's form: [layer_name, node_index, tensor_index, kwargs]
        if len(value) in (3, 4) and isinstance(value[0], str) and all(isinstance(v, int) for v in value[1:3]):
            yield value[0], value[1], value[2]
            return
        for v in value:
            yield from _tensors(v, shapes)


def _netspec_layer(entry: dict) -> dict:
    """netspec's own two Keras layers as the Keras class each stands for.

    ``NumberMerge(op, operands)`` (a merge with number operands, ``None`` for
    each tensor) becomes that merge called with the numbers;
    ``ActivationWithArgs(activation, arguments)`` becomes the activation's
    own op with its arguments.

    >>> _netspec_layer({"class_name": "NumberMerge", "config": {"name": "m", "op": "add", "operands": [None, 3.0]}})
    {'class_name': 'add', 'config': {'name': 'm'}, 'numbers': ((1, 3.0),)}
    """
    cfg = dict(entry.get("config", {}))
    if entry.get("class_name") == "NumberMerge":
        operands = cfg.pop("operands", [])
        numbers = tuple((i, float(v)) for i, v in enumerate(operands) if v is not None)
        return {"class_name": cfg.pop("op", "add"), "config": cfg, "numbers": numbers}
    arguments = cfg.pop("arguments", {}) or {}
    return {"class_name": cfg.pop("activation", "linear"), "config": {**cfg, **arguments}}


def _numbers(args: Any) -> tuple[tuple[int, float], ...]:
    """The number operands of a call, with their positions among all operands: ``[x, 3.0]`` -> ``((1, 3.0),)``.

    >>> _numbers([[{"class_name": "__keras_tensor__"}, 3.0]])
    ((1, 3.0),)
    """
    flat: list[Any] = []

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)

    walk(args)
    return tuple((i, float(v)) for i, v in enumerate(flat)
                 if isinstance(v, (int, float)) and not isinstance(v, bool))


def _refs(value: Any) -> list[tuple[str, int, int]]:
    """A list of (layer, node, tensor) refs in ``input_layers``/``output_layers`` (one or many)."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


class _Builder:
    """Flattens a (possibly nested) Keras model config into one list of layers."""

    def __init__(self, path: str):
        self.path = path
        self.layers: list[ImportedLayer] = []
        self.inputs: list[ImportedInput] = []
        self.problems: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self.formats: set[str] = set()
        self.recorded: dict[str, tuple] = {}  # producer name -> shape recorded where it is read

    def model(self, config: dict, inputs: list[str] | None, depth: int) -> list[str]:
        """Add a model's layers; ``inputs`` are the outer tensors feeding it (None at top level)."""
        if depth > MAX_NESTING:
            self.problems.append(("model", f"models nested more than {MAX_NESTING} deep"))
            return []
        cls = config.get("class_name")
        body = config.get("config", {})
        if not isinstance(body, dict):
            self.problems.append(("model", "config is not an object"))
            return []
        if cls == "Sequential":
            return self.sequential(body, inputs, depth)
        if cls in ("Functional", "Model"):
            return self.functional(body, inputs, depth)
        self.problems.append(("model", f"a {cls} is not a Keras Sequential or functional model"))
        return []

    def input_layer(self, config: dict) -> str:
        name = str(config.get("name", "input"))
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        if not isinstance(shape, list) or not shape:
            self.problems.append((f"input {name!r}", "has no batch_shape"))
            shape = [None]
        self.inputs.append(ImportedInput(name, tuple(d if isinstance(d, int) else None for d in shape[1:])))
        self.names.add(name)
        return name

    def sequential(self, body: dict, inputs: list[str] | None, depth: int) -> list[str]:
        cur = inputs[0] if inputs else None
        for entry in body.get("layers", []):
            cls = entry.get("class_name")
            cfg = entry.get("config", {})
            if cls == "InputLayer":
                if cur is None:
                    cur = self.input_layer(cfg)
                continue
            if cur is None:
                shape = body.get("build_input_shape") or cfg.get("batch_input_shape") or cfg.get("batch_shape")
                cur = self.input_layer({"name": "input", "batch_shape": shape})
            if cls in ("Sequential", "Functional", "Model"):
                out = self.model(entry, [cur], depth + 1)
                cur = out[0] if out else cur
                continue
            cur = self.layer(entry, [cur])
        return [cur] if cur is not None else []

    def functional(self, body: dict, inputs: list[str] | None, depth: int) -> list[str]:
        produced: dict[tuple[str, int], list[str]] = {}
        input_names = [r[0] for r in _refs(body.get("input_layers", []))]
        for entry in body.get("layers", []):
            cls = entry.get("class_name")
            cfg = entry.get("config", {})
            name = str(entry.get("name") or cfg.get("name"))
            if cls == "InputLayer":
                if inputs is None:
                    produced[(name, 0)] = [self.input_layer(cfg)]
                else:
                    i = input_names.index(name) if name in input_names else 0
                    produced[(name, 0)] = [inputs[min(i, len(inputs) - 1)]]
                continue
            nodes = entry.get("inbound_nodes", [])
            if len(nodes) != 1:
                self.problems.append((f"layer {name!r}", f"is called {len(nodes)} times (shared weights); "
                                      "netspec layers are called once"))
                for i in range(len(nodes)):  # later layers that read it report their own problems only
                    produced[(name, i)] = [name]
                continue
            recorded: dict[str, tuple] = {}
            refs = list(_tensors(nodes[0], recorded))
            args = []
            for layer, node, index in refs:
                out = produced.get((layer, node))
                if out is None or index >= len(out):
                    self.problems.append((f"layer {name!r}", f"reads {layer!r}, which is not defined before it"))
                    break
                args.append(out[index])
                if layer in recorded and out[index] == layer:
                    self.recorded[layer] = recorded[layer]
            else:
                if cls in ("Sequential", "Functional", "Model"):
                    produced[(name, 0)] = self.model(entry, args, depth + 1)
                else:
                    produced[(name, 0)] = [self.layer(entry, args, _numbers(nodes[0].get("args", [])))]
        outs = []
        for layer, node, index in _refs(body.get("output_layers", [])):
            out = produced.get((layer, node))
            if out is not None and index < len(out):
                outs.append(out[index])
        return outs

    def custom_scale(self, entry: dict, name: str, inputs: list[str]) -> str:
        """keras.applications' ``CustomScaleLayer`` (``x + scale * y``, InceptionResNetV2) as
        ``multiply(y, scale)`` named ``NAME_scale`` and ``add`` named ``NAME``: the same numbers, no weights."""
        scale = entry.get("config", {}).get("scale")
        if not isinstance(scale, (int, float)) or isinstance(scale, bool):
            self.problems.append((f"layer {name!r} (CustomScaleLayer)", "has no numeric scale"))
            return name
        scaled = f"{name}_scale"
        self.names.update((name, scaled))
        self.layers.append(ImportedLayer(scaled, "multiply", {"constants": ((1, float(scale)),)}, (inputs[1],),
                                         origin="CustomScaleLayer"))
        self.layers.append(ImportedLayer(name, "add", {}, (inputs[0], scaled), origin="CustomScaleLayer"))
        return name

    def layer(self, entry: dict, inputs: list[str], numbers: tuple = ()) -> str:
        cfg = entry.get("config", {})
        name = str(cfg.get("name") or entry.get("name") or f"layer_{len(self.layers)}")
        if name in self.names:
            self.problems.append((f"layer {name!r}", "the name is used twice"))
        self.names.add(name)
        if entry.get("class_name") == "CustomScaleLayer" and len(inputs) == 2:
            return self.custom_scale(entry, name, inputs)
        if entry.get("class_name") in ("NumberMerge", "ActivationWithArgs"):
            entry = _netspec_layer(entry)
        converted = convert_layer(entry, name)
        if isinstance(converted, str):
            self.problems.append((f"layer {name!r} ({entry.get('class_name')})", converted))
            return name
        op, args, trainable, fmt = converted
        numbers = numbers or entry.get("numbers", ())
        if numbers:
            from ..core.ops import OPS

            if not OPS[op].merge:
                self.problems.append((f"layer {name!r}", "is called with numbers, which only merges take"))
                return name
            args = {**args, "constants": numbers}  # Add()([x, 3.0]): MobileNetV3's hard-swish
        if fmt:
            self.formats.add(fmt)
        self.layers.append(ImportedLayer(name, op, args, tuple(inputs), trainable, origin=str(entry.get("class_name"))))
        return name


def model_from_config(config: dict, path: str = "<config>") -> ImportedModel:
    """An :class:`ImportedModel` from a Keras model config (``model.get_config()`` or ``config.json``).

    >>> cfg = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8, 3], "name": "img"}},
    ...     {"class_name": "Lambda", "config": {"name": "l", "function": "..."}}]}}
    >>> model_from_config(cfg)
    Traceback (most recent call last):
    ...
    netspec.importers.model.ImportProblem: layer 'l' (Lambda): a Lambda layer runs Python code, which netspec does not run or express
    """
    builder = _Builder(path)
    if "class_name" not in config and "config" not in config and "layers" in config:
        config = {"class_name": "Functional", "config": config}  # a bare get_config() of a functional model
    outputs = builder.model(config, None, 0)
    if not builder.problems and not builder.inputs:
        builder.problems.append(("model", "has no input layer"))
    if builder.problems:
        raise ImportProblem(path, builder.problems)
    _fold_helper_pads(builder.layers)
    fmt = "channels_first" if builder.formats == {"channels_first"} else "channels_last"
    for i in builder.inputs:
        i.data_format = fmt
    name = str(config.get("config", {}).get("name") or "model")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        name = re.sub(r"\W", "_", name) or "model"
        name = name if re.match(r"[A-Za-z_]", name) else "m_" + name
    return ImportedModel(name, builder.inputs, builder.layers, outputs, builder.recorded)


def _fold_helper_pads(layers: list[ImportedLayer]) -> None:
    """netspec's Keras target writes ``conv2d(..., padding=1)`` as ``X_pad`` (ZeroPadding2D) + ``X``: one layer again.

    Only a zero-padding layer marked as netspec's helper (``trainable=False``,
    meaningless on a layer without weights) and named exactly after its one
    reader, which pads 'valid', is folded; other models keep every layer
    (EfficientNet's own ``stem_conv_pad`` stays).
    """
    readers: dict[str, list[ImportedLayer]] = {}
    for layer in layers:
        for t in layer.inputs:
            readers.setdefault(t, []).append(layer)
    drop = set()
    for layer in layers:
        if not layer.op.startswith("zeropad") or not layer.name.endswith("_pad") or layer.trainable:
            continue
        users = readers.get(layer.name, [])
        if len(users) != 1 or users[0].name != layer.name[:-4] or users[0].inputs != (layer.name,):
            continue
        user = users[0]
        if "padding" in user.args or "padding" not in _arg_names(user.op) or user.op.startswith("zeropad"):
            continue
        user.args = {**user.args, "padding": layer.args.get("padding", 1)}
        user.args = {k: user.args[k] for k in _arg_names(user.op) + ["name", "trainable"] if k in user.args}
        user.inputs = layer.inputs
        drop.add(layer.name)
        layer.trainable = True
    layers[:] = [layer for layer in layers if layer.name not in drop]


def _arg_names(op: str) -> list[str]:
    from ..core.ops import OPS, arg_names

    return arg_names(OPS[op].attrs)


# --- weights --------------------------------------------------------------------------------------------


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: the key under which a layer's variables are saved.

    >>> snake_case("BatchNormalization"), snake_case("ReLU"), snake_case("Conv2D")
    ('batch_normalization', 're_lu', 'conv2d')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _archive_paths(config: dict, prefix: str, out: dict[str, str], depth: int = 0) -> None:
    """Layer name -> its group in ``model.weights.h5`` (Keras names groups by class, with counters)."""
    if depth > MAX_NESTING:
        return
    used: dict[str, int] = {}
    for entry in config.get("config", {}).get("layers", []):
        base = snake_case(str(entry.get("class_name", "layer")))
        n = used.get(base, 0)
        used[base] = n + 1
        key = f"{prefix}/{base}" if n == 0 else f"{prefix}/{base}_{n}"
        name = str(entry.get("config", {}).get("name") or entry.get("name"))
        if entry.get("class_name") in ("Sequential", "Functional", "Model"):
            _archive_paths(entry, key + "/layers", out, depth + 1)
        else:
            out[name] = key


def read_keras_weights(path: str | os.PathLike, model: ImportedModel, config: dict | None = None) -> None:
    """Fill each layer's ``weights`` (arrays in Keras order) from the file the model came from.

    ``config`` is the archive's config when the caller has read it already.
    Each array's declared shape and size are checked before it is read.
    """
    path = os.fspath(path)
    if path.endswith((".h5", ".hdf5")):
        with _open_h5(path, path) as f:
            group = f["model_weights"] if "model_weights" in f else f
            for layer in model.layers:
                layer.weights = _legacy_layer_weights(path, group, layer.name)
        return
    with _open_archive(path) as archive:
        if config is None:
            config = _parse_json(path, _read_member(path, archive, "config.json", MAX_CONFIG_BYTES), "config.json")
        if "model.weights.h5" not in archive.namelist():
            raise ImportProblem(path, [("archive", "no model.weights.h5 in the archive")], "E603")
        groups: dict[str, str] = {}
        _archive_paths(config, "layers", groups)
        # h5py reads a zip member through Python in many small seeks (15x slower): read it whole,
        # once, into memory (its size was bounded when the archive was opened).
        member = io.BytesIO(_read_member(path, archive, "model.weights.h5", MAX_WEIGHT_BYTES))
        with member, _open_h5(path, member) as f:
            for layer in model.layers:
                key = groups.get(layer.name)
                if key is None or key + "/vars" not in f:
                    layer.weights = []
                    continue
                vars_ = f[key + "/vars"]
                layer.weights = [_read_dataset(path, vars_[str(i)], f"{layer.name}/{i}")
                                 for i in range(len(vars_))]


def _read_dataset(path: str, ds: Any, what: str) -> Any:
    import numpy as np

    nbytes = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
    if nbytes > MAX_WEIGHT_BYTES:
        raise ImportProblem(path, [(what, f"claims {nbytes:,} bytes (limit {MAX_WEIGHT_BYTES:,})")], "E603")
    try:
        return np.asarray(ds[()], dtype=np.float32)
    except (OSError, ValueError, TypeError) as err:
        raise ImportProblem(path, [(what, f"cannot read the weight (truncated file?): {err}")], "E603") from None


def _legacy_layer_weights(path: str, group: Any, name: str) -> list[Any]:
    if name not in group:
        return []
    g = group[name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
    out = []
    for wname in names:
        if wname in g:
            out.append(_read_dataset(path, g[wname], f"{name}/{wname}"))
        elif f"{name}/{wname}" in g:
            out.append(_read_dataset(path, g[f"{name}/{wname}"], f"{name}/{wname}"))
        else:
            raise ImportProblem(path, [(f"layer {name!r}", f"weight {wname!r} is listed but missing")], "E603")
    return out


def keras_file_weights(net: Any, path: str | os.PathLike) -> dict[str, Any]:
    """The weights of a ``.keras``/``.h5`` file for a checked network, matched by layer name.

    Reads the archive as data (no TensorFlow); each layer's arrays, in Keras
    order, go to the network's weights of the layer with that name.  A layer
    the network needs and the file lacks, or a count that differs, is E601.
    """
    from ..core.diagnostics import Diagnostic, NetspecError

    path = os.fspath(path)
    try:
        model = read_keras(path)
        assert model.load_weights is not None
        model.load_weights(model)
    except ImportProblem as err:
        raise NetspecError([Diagnostic.error(err.code, f"cannot read weights {os.path.basename(path)}: {w}: {m}")
                            for w, m in err.problems]) from None
    by_name = {layer.name: layer for layer in model.layers}
    out: dict[str, Any] = {}
    errors = []
    for node in net.graph.nodes:
        specs = net.layers[node.name].weights
        if not specs:
            continue
        layer = by_name.get(node.name)
        arrays = layer.weights if layer is not None else None
        if arrays is None or len(arrays) != len(specs):
            have = "no such layer" if layer is None else f"{len(arrays or [])} weight(s)"
            errors.append(Diagnostic.error("E601", f"layer {node.name!r} needs {len(specs)} weight(s) "
                                           f"({', '.join(s.name for s in specs)}); {os.path.basename(path)} has {have}"))
            continue
        for spec, array in zip(specs, arrays):
            out[f"{node.name}/{spec.name}"] = array
    if errors:
        raise NetspecError(errors)
    return out
