"""One Keras layer config to a netspec op call with only the arguments that matter.

The op comes from the layer's class name through the op table's Keras
aliases (:func:`netspec.core.ops.canonical_op`), and the arguments from the
config keys that are the op's Keras arguments; arguments equal to their
Keras default are left out, and a tuple of equal sizes is written as one
size where that means the same (``kernel_size=(3, 3)`` as ``3``).  A config
key netspec cannot express, set to anything but its neutral value, is
reported, never dropped silently.

>>> convert_layer({"class_name": "Conv2D", "config": {"name": "c", "filters": 8, "kernel_size": [3, 3],
...     "strides": [1, 1], "padding": "same", "use_bias": True, "trainable": True,
...     "kernel_initializer": {"class_name": "HeNormal", "config": {"seed": None}}}}, "c")
('conv2d', {'filters': 8, 'kernel_size': 3, 'padding': 'same', 'kernel_initializer': 'he_normal'}, True, None)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..core import argtypes as at
from ..core.argtypes import ArgError, CallValue, KerasObject
from ..core.ops import OPS, arg_names, canonical_op, make_attrs

__all__ = ["convert_layer", "shortest", "spec_value"]

#: Config keys that carry no meaning for netspec (the layer name travels apart).
_IGNORED = frozenset({"name", "dtype", "trainable", "autocast", "input_dim", "input_length", "batch_input_shape",
                      "batch_shape", "build_config", "compile_config"})
#: Keys whose neutral value is not None/False: (class, key) -> value that needs nothing.
_NEUTRAL = {
    ("LayerScale", "projection_dim"): None,  # keras.applications' ConvNeXt: always the channel count
    ("BatchNormalization", "renorm_momentum"): None,  # any value, when renorm is off
    ("Dense", "lora_alpha"): None,
    ("Conv2D", "lora_alpha"): None,
}
#: Keras classes that need a word of explanation when refused.
_REFUSED = {
    "Lambda": "a Lambda layer runs Python code, which netspec does not run or express",
    "TFOpLambda": "a TensorFlow op wrapped as a layer runs Python code, which netspec does not express",
}


def spec_value(value: Any) -> Any:
    """A config value as a spec value: lists become tuples, Keras objects become calls.

    >>> spec_value([[1, 1], [2, 2]])
    ((1, 1), (2, 2))
    >>> spec_value({"class_name": "L2", "config": {"l2": 0.0001}})
    CallValue(name='L2', args=(), kwargs=(('l2', 0.0001),))
    """
    if isinstance(value, list):
        return tuple(spec_value(v) for v in value)
    if isinstance(value, dict):
        cls = value.get("class_name")
        cfg = value.get("config", {})
        if cls == "__tuple__":
            return tuple(spec_value(v) for v in cfg.get("value", []))
        if isinstance(cls, str) and isinstance(cfg, dict):
            kwargs = tuple((k, spec_value(v)) for k, v in cfg.items() if v is not None)
            return CallValue(cls, (), kwargs)
        raise ValueError(f"cannot read the value {str(value)[:60]}")
    return value


def _keras_object(value: Any, kind: str) -> Any:
    """A Keras initializer/regularizer/constraint call with only the arguments netspec knows.

    Unknown arguments (``input_axes`` of newer initializers) are dropped when
    None and refused otherwise.
    """
    if not isinstance(value, CallValue):
        return value
    reader = {"initializer": at.initializer, "regularizer": at.regularizer, "constraint": at.constraint}[kind]
    known = {k for k, _ in reader(CallValue(value.name)).kwargs}  # type: ignore[union-attr]
    extra = [k for k, _ in value.kwargs if k not in known]
    if extra:
        raise ValueError(f"{kind} {value.name} has arguments netspec cannot express: {', '.join(extra)}")
    return CallValue(value.name, (), value.kwargs)


def _kind_of(field: dataclasses.Field) -> str | None:
    kind = field.metadata.get("kind")
    for name in ("initializer", "regularizer", "constraint"):
        if kind is getattr(at, name):
            return name
    return None


def _short_object(obj: Any) -> Any:
    """``he_normal`` rather than ``he_normal(seed=none)``: a Keras object with its non-default arguments."""
    if not isinstance(obj, KerasObject):
        return obj
    reader = at.initializer
    for fn in (at.initializer, at.regularizer, at.constraint):
        try:
            base = fn(obj.name)
        except ArgError:
            continue
        reader = fn
        break
    base = reader(obj.name)
    changed = tuple((k, v) for (k, v), (_, d) in zip(obj.kwargs, base.kwargs) if v != d)  # type: ignore[union-attr]
    return obj.name if not changed else CallValue(obj.name, (), changed)


def _simplest(cls: type, field: str, value: Any, normalized: Any) -> Any:
    """A shorter spelling of ``value`` that converts to the same thing, if there is one."""
    candidates = []
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        candidates.append(value[0])
        inner = value[0]
        if isinstance(inner, tuple) and inner and all(v == inner[0] for v in inner):
            candidates.append(inner[0])
    if isinstance(value, tuple) and value and all(isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]
                                                  for v in value):
        candidates.append(tuple(v[0] for v in value))
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        candidates.append(int(value))
    for c in sorted(candidates, key=lambda c: len(repr(c))):
        try:
            if getattr(make_attrs(cls, {field: c, **_required_dummy(cls, field)}), field) == normalized:
                return c
        except ArgError:
            continue
    return value


def shortest(op: str, key: str, value: Any) -> Any:
    """The shortest spelling of one argument of ``op`` that means the same.

    >>> shortest("zeropad2d", "padding", ((1, 1), (1, 1))), shortest("conv2d", "kernel_size", (3, 3))
    (1, 3)
    """
    attrs = OPS[op].attrs
    try:
        normalized = getattr(make_attrs(attrs, {key: value, **_required_dummy(attrs, key)}), key)
    except ArgError:
        return value
    return _simplest(attrs, key, value, normalized)


def _required_dummy(cls: type, skip: str) -> dict[str, Any]:
    """Placeholder values for required arguments, so one argument can be converted alone."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name != skip and f.default is dataclasses.MISSING:
            out[f.name] = _DUMMY.get(f.name, 1)
    return out


_DUMMY = {"activation": "linear", "target_shape": (1,), "dims": (1,), "cropping": 0, "size": 1}


def convert_layer(entry: dict, name: str) -> tuple[str, dict[str, Any], bool, str | None] | str:
    """``(op, args, trainable, data_format)`` for one Keras layer config, or a reason it cannot be.

    ``args`` keeps only arguments that differ from the Keras defaults, in the
    op's Keras order; ``data_format`` is the layer's own, when it has one.
    """
    cls = str(entry.get("class_name"))
    cfg = entry.get("config", {})
    if not isinstance(cfg, dict):
        return "its config is not an object"
    if cls in _REFUSED:
        return _REFUSED[cls]
    op = canonical_op(cls)
    if op is None:
        return f"netspec has no op for the Keras class {cls}"
    opdef = OPS[op]
    names = arg_names(opdef.attrs)
    fields = {f.name: f for f in dataclasses.fields(opdef.attrs)}
    values: dict[str, Any] = {}
    problems = []
    for key, raw in cfg.items():
        if key in _IGNORED:
            continue
        if key in names:
            try:
                value = spec_value(raw)
                kind = _kind_of(fields[key])
                if kind:
                    value = _keras_object(value, kind)
            except ValueError as err:
                problems.append(f"{key}: {err}")
                continue
            values[key] = value
        elif raw in (None, False, {}, [], "linear") or (cls, key) in _NEUTRAL or (key, raw) == ("renorm_momentum", 0.99):
            continue
        else:
            problems.append(f"{key}={str(raw)[:40]} (netspec's {op} has no such argument)")
    if problems:
        return "cannot express " + "; ".join(problems)
    try:
        attrs = make_attrs(opdef.attrs, values)
    except ArgError as err:
        return f"{err.message}"
    fmt = getattr(attrs, "data_format", None)
    norm = opdef.normalize(attrs, fmt or "channels_last")
    args: dict[str, Any] = {}
    for key in names:
        if key not in values or key == "data_format":
            continue
        value = getattr(norm, key)
        if fields[key].default is not dataclasses.MISSING:
            # Left out when the layer means the same without it (defaults may follow other arguments).
            rest = make_attrs(opdef.attrs, {k: v for k, v in values.items() if k != key})
            if getattr(opdef.normalize(rest, fmt or "channels_last"), key) == value:
                continue
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key} is not a finite number"
        written = _short_object(value) if isinstance(value, KerasObject) else _simplest(opdef.attrs, key, values[key], value)
        args[key] = written
    if fmt is not None and "data_format" in values:
        args["data_format"] = fmt
    trainable = cfg.get("trainable", True) is not False
    return op, args, trainable, fmt
