"""An imported model as ``.net`` text, written as a person would write it.

Arguments at their Keras defaults are left out (the layer converters did
that); a ``default`` statement carries an argument that every call of an op
in a body shares; a tensor gets a name only where something other than the
next statement reads it; ``name=`` is written only where netspec's own
automatic name would differ; repeated structure is folded into blocks (see
:mod:`netspec.importers.folding`).

>>> from netspec.importers.model import ImportedInput, ImportedLayer, ImportedModel
>>> m = ImportedModel("tiny", [ImportedInput("x", (8, 8, 3))], [
...     ImportedLayer("conv2d", "conv2d", {"filters": 4, "kernel_size": 3}, ("x",)),
...     ImportedLayer("flatten", "flatten", {}, ("conv2d",)),
...     ImportedLayer("out", "dense", {"units": 2}, ("flatten",))], ["out"])
>>> print(write_spec(m, fold=False))
network tiny {
    input x: [8, 8, 3]
    conv2d(4, 3)
    flatten()
    dense(2, name='out')
}
<BLANKLINE>
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.argtypes import CallValue, format_value
from ..core.ops import OPS
from .model import ImportedLayer, ImportedModel

__all__ = ["Body", "Call", "Statement", "layer_call", "value_source", "write_items", "write_spec"]

_KEYWORDS = frozenset(
    "network block input repeat as if else default in and or not true false none import "
    "output let fn tensor carry for allow assert".split())


def value_source(value: Any) -> str:
    """A spec value as ``.net`` text (calls as calls, tuples as tuples).

    >>> value_source(CallValue("l2", (), (("l2", 1e-4),))), value_source((1, 'same'))
    ('l2(l2=0.0001)', "(1, 'same')")
    """
    if isinstance(value, CallValue):
        inner = [value_source(a) for a in value.args] + [f"{k}={value_source(v)}" for k, v in value.kwargs]
        return f"{value.name}({', '.join(inner)})"
    if isinstance(value, tuple):
        inner = ", ".join(value_source(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, Expr):
        return value.text
    return format_value(value)


@dataclass(frozen=True)
class Expr:
    """Source text standing for a value (a block parameter, ``name + '_conv'``)."""

    text: str


def is_identifier(name: str) -> bool:
    """True when ``name`` can be written as a tensor or block name.

    >>> is_identifier("conv1_relu"), is_identifier("block-1"), is_identifier("for")
    (True, False, False)
    """
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) and name not in _KEYWORDS


def layer_call(op: str, args: dict[str, Any], skip: Iterable[str] = ()) -> str:
    """``op(positional..., key=value...)`` with required arguments positional, in Keras order.

    >>> layer_call("conv2d", {"filters": 8, "kernel_size": 3, "padding": "same"})
    "conv2d(8, 3, padding='same')"
    """
    opdef = OPS[op]
    parts = []
    positional = not opdef.merge  # a merge's positional arguments are its tensors
    skip = set(skip)
    for i, f in enumerate(dataclasses.fields(opdef.attrs)):
        if f.name not in args or f.name in skip:
            if f.default is dataclasses.MISSING and f.name not in skip:
                continue
            positional = False
            continue
        text = value_source(args[f.name])
        if positional and (f.default is dataclasses.MISSING or i == 0):
            parts.append(text)
        else:
            positional = False
            parts.append(f"{f.name}={text}")
    for key, value in args.items():
        if key in ("name", "trainable") and key not in skip:
            parts.append(f"{key}={value_source(value)}")
    return f"{op}({', '.join(parts)})"


@dataclass
class Statement:
    """One line of a body: ``[var =] [source ->] call``, plus an optional comment."""

    call: str
    var: str | None = None
    source: str | None = None
    comment: str = ""

    def text(self) -> str:
        """The statement as source (without indentation)."""
        out = self.call if self.source is None else f"{self.source} -> {self.call}"
        if self.var is not None:
            out = f"{self.var} = {out}"
        return out


@dataclass
class Body:
    """The statements of one network or block body, and the defaults above them."""

    statements: list[Statement] = field(default_factory=list)
    defaults: list[str] = field(default_factory=list)

    def lines(self, indent: str) -> list[str]:
        """The body's lines, indented, defaults first."""
        out = [indent + d for d in self.defaults]
        if self.defaults and self.statements:
            out.append("")
        for s in self.statements:
            out.extend(indent + line for line in s.text().split("\n"))
        return out


def shared_defaults(layers: list[tuple[str, dict[str, Any]]], minimum: int = 3) -> dict[str, dict[str, Any]]:
    """Per op, the arguments (not required ones) that every call of it shares, when it has ``minimum`` calls.

    >>> shared_defaults([("batchnorm", {"epsilon": 1e-5}), ("batchnorm", {"epsilon": 1e-5}),
    ...                  ("batchnorm", {"epsilon": 1e-5, "name": "b"})])
    {'batchnorm': {'epsilon': 1e-05}}
    """
    by_op: dict[str, list[dict[str, Any]]] = {}
    for op, args in layers:
        by_op.setdefault(op, []).append(args)
    out: dict[str, dict[str, Any]] = {}
    for op, calls in by_op.items():
        if len(calls) < minimum or OPS[op].merge:
            continue
        required = {f.name for f in dataclasses.fields(OPS[op].attrs) if f.default is dataclasses.MISSING}
        common = {k: v for k, v in calls[0].items()
                  if k not in required and k not in ("name", "data_format")
                  and all(k in c and _same(c[k], v) for c in calls[1:])}
        if common:
            out[op] = common
    return out


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


class _Namer:
    """netspec's automatic layer names, followed as the spec is written, to leave out ``name=`` where it matches."""

    def __init__(self, taken: Iterable[str] = ()):
        self.counters: Counter[str] = Counter()
        self.taken = set(taken)

    def auto(self, op: str, name: str) -> bool:
        """True when netspec would name this layer ``name`` by itself (and so it needs no ``name=``)."""
        base = OPS[op].auto_name
        n = self.counters[base]
        while True:
            candidate = base if n == 0 else f"{base}_{n}"
            n += 1
            if candidate not in self.taken:
                break
        self.taken.add(name)
        if candidate != name:
            return False
        self.counters[base] = n
        return True


@dataclass
class Call:
    """A statement that is not one layer (a block call, a repeat): its text, input and output tensors."""

    text: str
    inputs: tuple[str, ...]
    output: str
    chain_input: bool = True  # False: the text already names its inputs (a repeat reads the current tensor)


def write_items(items: list[ImportedLayer | Call], entry: str | None, namer: _Namer | None, data_format: str,
                outputs: Iterable[str] = (), known: Iterable[str] = ()) -> tuple[Body, dict[str, str]]:
    """Statements for layers and calls in order; ``entry`` is the current tensor at the start.

    A tensor gets a variable where something other than the very next
    statement reads it (or a merge does); ``known`` names tensors that are
    variables already (inputs, ``in``).  With ``namer`` None every layer
    keeps ``name=`` (unless its args hold one).  Returns the body and the map
    from tensor names to variables.
    """
    outputs = list(outputs)
    variables: dict[str, str] = {k: k for k in known}
    produced = {(it.name if isinstance(it, ImportedLayer) else it.output) for it in items}
    readers: dict[str, int] = {}
    for it in items:
        for t in it.inputs:
            readers[t] = readers.get(t, 0) + 1
    needs_var: set[str] = set()
    prev = entry
    for it in items:
        merge = isinstance(it, ImportedLayer) and OPS[it.op].merge
        for t in it.inputs:
            if merge or t != prev or readers.get(t, 0) > 1 or not getattr(it, "chain_input", True):
                needs_var.add(t)
        prev = it.name if isinstance(it, ImportedLayer) else it.output
    if len(outputs) > 1 or (outputs and outputs[-1] != prev):
        needs_var.update(o for o in outputs if o in produced)

    def var_for(tensor: str) -> str:
        if tensor not in variables:
            base = tensor if is_identifier(tensor) else re.sub(r"\W", "_", tensor)
            if not is_identifier(base):
                base = "t_" + base
            v, n = base, 1
            while v in variables.values():
                v, n = f"{base}_{n}", n + 1
            variables[tensor] = v
        return variables[tensor]

    body = Body()
    cur = entry
    for it in items:
        if isinstance(it, Call):
            src = it.inputs[0] if it.inputs and it.chain_input else None
            stmt = Statement(it.text, source=None if src is None or src == cur else var_for(src))
            out = it.output
        else:
            args = dict(it.args)
            if args.get("data_format") == data_format:
                del args["data_format"]
            if "name" not in args and (namer is None or not namer.auto(it.op, it.name)):
                args["name"] = it.name
            if not it.trainable:
                args["trainable"] = False
            if OPS[it.op].merge:
                numbers = dict(args.pop("constants", ()))  # number operands, by position
                tensors = iter(it.inputs)
                operands = ", ".join(value_source(numbers[i]) if i in numbers else var_for(next(tensors))
                                     for i in range(len(it.inputs) + len(numbers)))
                call = layer_call(it.op, args)
                call = call.replace("(", f"({operands}, " if call[-2:] != "()" else f"({operands}", 1)
                stmt = Statement(call)
            else:
                src = it.inputs[0] if it.inputs else None
                stmt = Statement(layer_call(it.op, args), source=None if src == cur else var_for(src or ""))
            out = it.name
        if out in needs_var:
            stmt.var = var_for(out)
        body.statements.append(stmt)
        cur = out
    return body, variables


def write_spec(model: ImportedModel, fold: bool = True, channels: dict[str, int | None] | None = None) -> str:
    """The model as a ``.net`` file; ``fold`` folds repeated structure into blocks.

    ``channels`` (tensor name -> channel count) lets folded blocks write
    ``6 * channels(in)`` instead of a parameter.
    """
    data_format = model.inputs[0].data_format if model.inputs else "channels_last"
    lines: list[str] = []
    blocks: list[str] = []
    if fold:
        from .folding import fold_model

        body, blocks = fold_model(model, data_format, channels)
    else:
        body, _ = write_items(list(model.layers), model.inputs[0].name if model.inputs else None,
                              _Namer({i.name for i in model.inputs}), data_format, model.outputs,
                              [i.name for i in model.inputs])
    for b in blocks:
        lines.extend(b.split("\n"))
        lines.append("")
    lines.append(f"network {model.name} {{")
    for i in model.inputs:
        dims = ", ".join("?" if d is None else str(d) for d in i.shape)
        layout = " channels_first" if i.data_format == "channels_first" else ""
        lines.append(f"    input {i.name}: [{dims}]{layout}")
    lines.extend(body.lines("    "))
    last = model.layers[-1].name if model.layers else (model.inputs[0].name if model.inputs else "")
    if len(model.outputs) > 1 or (model.outputs and model.outputs[0] != last):
        names = []
        for o in model.outputs:
            names.append(o if is_identifier(o) else re.sub(r"\W", "_", o))
        lines.append(f"    output {', '.join(names)}")
    lines.append("}")
    return "\n".join(lines) + "\n"
