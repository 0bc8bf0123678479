"""Fold an imported model's repeated structure into parameterised blocks and ``repeat`` loops.

Keras names the layers of one block alike (``conv4_block3_1_conv``,
``conv4_block3_2_conv``, ...).  The folder tries each naming level (the name
up to a token with a digit: ``conv4``, ``conv4_block3``, ``conv4_block3_1``)
and keeps the groups that are real blocks: contiguous, one tensor in, one
out, nothing inside read from outside.  Groups with the same structure
(ops, name suffixes, wiring) are instances of one block; an argument that
differs between them becomes a parameter (or ``k * channels(in)`` when it
follows the input's channels, or a multiple of another parameter).  Levels
are chosen greedily by how many lines they save.  Consecutive calls that
differ only in a counted name become one ``repeat``.

The caller checks the folded spec against the flat one, layer by layer, and
keeps the flat one if they differ, so folding can only change the layout.

>>> block_kind_name(["conv", "bn", "relu", "conv", "bn", "relu", "conv", "bn", "add", "relu"],
...                 [(1, 1), None, None, (3, 3), None, None, (1, 1), None, None, None], "conv#_block#")
'bottleneck'
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.ops import OPS
from .model import ImportedLayer, ImportedModel
from .writer import (
    Body,
    Call,
    Expr,
    _Namer,
    is_identifier,
    layer_call,
    shared_defaults,
    value_source,
    write_items,
)

__all__ = ["block_kind_name", "fold_model"]


def _prefixes(name: str) -> list[str]:
    """Candidate block prefixes: the name up to each token that holds a digit (not the last token)."""
    tokens = name.split("_")
    return ["_".join(tokens[: i + 1]) for i, t in enumerate(tokens[:-1]) if re.search(r"\d", t)]


def _pattern(prefix: str) -> str:
    return "_".join("#" if re.search(r"\d", t) else t for t in prefix.split("_"))


@dataclass
class _Group:
    prefix: str
    layers: list[ImportedLayer]
    entry: str  # the one tensor from outside
    signature: tuple = ()
    index: int = 0  # position of its first layer in the model


@dataclass
class _Kind:
    name: str
    pattern: str
    groups: list[_Group]
    params: list[str] = field(default_factory=list)  # parameter names, in order
    defaults: dict[str, Any] = field(default_factory=dict)
    # (layer index, arg key) -> Expr or literal
    template: dict[tuple[int, str], Any] = field(default_factory=dict)
    call_values: list[dict[str, Any]] = field(default_factory=list)  # per group: param -> value


def _groups_for(model: ImportedModel, pattern: str, taken: set[str]) -> list[_Group]:
    """The valid groups of layers whose names start with a prefix of this pattern."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    by_prefix: dict[str, list[ImportedLayer]] = {}
    for layer in model.layers:
        for p in _prefixes(layer.name):
            if _pattern(p) == pattern:
                by_prefix.setdefault(p, []).append(layer)
                break
    consumers = model.consumers()
    outputs = set(model.outputs)
    out = []
    for prefix, layers in by_prefix.items():
        if len(layers) < 2 or any(layer.name in taken for layer in layers):
            continue
        idx = [order[layer.name] for layer in layers]
        if idx != list(range(idx[0], idx[0] + len(idx))):
            continue
        names = {layer.name for layer in layers}
        external = {t for layer in layers for t in layer.inputs if t not in names}
        if len(external) != 1:
            continue
        inner_out = [layer.name for layer in layers[:-1]
                     if any(c not in names for c in consumers.get(layer.name, [])) or layer.name in outputs]
        if inner_out:
            continue
        out.append(_Group(prefix, layers, next(iter(external)), index=idx[0]))
    return out


def _signature(group: _Group) -> tuple:
    local = {layer.name: i for i, layer in enumerate(group.layers)}
    sig = []
    for layer in group.layers:
        ins = tuple(local.get(t, -1) for t in layer.inputs)
        sig.append((layer.op, layer.name[len(group.prefix):], ins, layer.trainable))
    return tuple(sig)


def block_kind_name(ops: list[str], kernels: list[Any], pattern: str, prefix: str = "") -> str:
    """A block's name from what it is, else from its layers' names.

    ``ops`` are the layers' ops (``conv`` for any convolution), ``kernels``
    their kernel sizes.
    """
    convs = [k for o, k in zip(ops, kernels) if o == "conv"]
    if "add" in ops and len(convs) >= 3 and convs[0] == (1, 1) and convs[-1] == (1, 1):
        return "bottleneck"
    if "add" in ops and convs and all(k == (3, 3) for k in convs):
        return "residual_block"
    if "dwconv" in ops and "conv" in ops:
        return "inverted_residual" if ops.count("conv") >= 2 else "depthwise_block"
    if "concat" in ops and len(convs) >= 2:
        return "dense_layer"
    words = [re.sub(r"\d+[a-z]?$", "", t) for t in (prefix or pattern).split("_")]
    words = [w for w in words if w and w != "#"]
    for candidate in (words[-1:], words[-2:], ["unit"]):
        name = "_".join(candidate)
        if candidate and is_identifier(name):
            return name
    return "unit"


def _short_op(op: str) -> str:
    if op in ("conv2d", "conv1d", "conv3d", "separable_conv2d"):
        return "conv"
    if op.startswith("depthwise"):
        return "dwconv"
    return op


def _make_kind(groups: list[_Group], pattern: str, channels: dict[str, int | None]) -> _Kind:
    first = groups[0]
    kernels = [first.layers[i].args.get("kernel_size") for i in range(len(first.layers))]
    kernels = [(k, k) if isinstance(k, int) else k for k in kernels]
    kind = _Kind(block_kind_name([_short_op(layer.op) for layer in first.layers], kernels, pattern, first.prefix),
                 pattern, groups)
    varying: list[tuple[int, str]] = []
    for i, layer in enumerate(first.layers):
        keys = [k for k in dict.fromkeys(k for g in groups for k in g.layers[i].args)]
        for key in keys:
            values = [g.layers[i].args.get(key, _default(layer.op, key)) for g in groups]
            value = values[0]
            if all(type(v) is type(value) and v == value for v in values):
                if key in layer.args:
                    kind.template[(i, key)] = value
            else:
                varying.append((i, key))
    params: dict[str, list[Any]] = {}
    for i, key in varying:
        values = [g.layers[i].args.get(key, _default(g.layers[i].op, key)) for g in groups]
        ins = [channels.get(g.layers[i].inputs[0]) if g.layers[i].inputs else None for g in groups]
        entry_ch = [channels.get(g.entry) for g in groups]
        expr = _derived(values, params, entry_ch, ins)
        if expr is not None:
            kind.template[(i, key)] = expr
            continue
        name = _param_name(key, params)
        params[name] = values
        kind.template[(i, key)] = Expr(name)
    kind.params = list(params)
    for name, values in params.items():
        common, count = Counter(map(repr, values)).most_common(1)[0]
        if count * 2 >= len(values) and len(set(map(repr, values))) > 1:
            kind.defaults[name] = next(v for v in values if repr(v) == common)
    kind.call_values = [{p: params[p][n] for p in params} for n in range(len(groups))]
    return kind


def _default(op: str, key: str) -> Any:
    """An argument's Keras default as a spec value (an equal-sized tuple as one size)."""
    for f in dataclasses.fields(OPS[op].attrs):
        if f.name == key:
            value = f.default
            if isinstance(value, tuple) and value and all(v == value[0] for v in value):
                return value[0]
            return value
    return None


def _derived(values: list[Any], params: dict[str, list[Any]], entry_ch: list[Any], ins: list[Any]) -> Expr | None:
    """An expression for values that follow an existing parameter or the block input's channels."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    for name, pv in params.items():
        if pv == values:
            return Expr(name)
        if ints and all(isinstance(p, int) and not isinstance(p, bool) and p and v % p == 0 for p, v in zip(pv, values)):
            ratios = {v // p for p, v in zip(pv, values)}
            if len(ratios) == 1:
                return Expr(f"{ratios.pop()} * {name}")
    if ints and all(isinstance(c, int) and c for c in entry_ch):
        if all(v == c for v, c in zip(values, entry_ch)):
            return Expr("channels(in)")
        if all(v % c == 0 for v, c in zip(values, entry_ch)):
            ratios = {v // c for v, c in zip(values, entry_ch)}
            if len(ratios) == 1:
                return Expr(f"{ratios.pop()} * channels(in)")
        if all(v and c % v == 0 for v, c in zip(values, entry_ch)):
            ratios = {c // v for v, c in zip(values, entry_ch)}
            if len(ratios) == 1:
                return Expr(f"channels(in) // {ratios.pop()}")
    return None


def _param_name(key: str, taken: dict[str, Any]) -> str:
    base = {"kernel_size": "kernel", "pool_size": "pool", "units": "units", "strides": "strides",
            "filters": "filters", "rate": "rate", "padding": "padding"}.get(key, key)
    name, n = base, 2
    while name in taken or name in ("name", "in"):
        name = f"{base}{n}"
        n += 1
    return name


def _cost(kinds: list[_Kind]) -> int:
    """Lines saved by folding these kinds (their layers) into blocks and calls."""
    saved = 0
    for kind in kinds:
        layers = sum(len(g.layers) for g in kind.groups)
        saved += layers - (len(kind.groups[0].layers) + 3) - len(kind.groups)
    return saved


def _kinds_for(model: ImportedModel, pattern: str, taken: set[str], channels: dict[str, int | None]) -> list[_Kind]:
    groups = _groups_for(model, pattern, taken)
    by_sig: dict[tuple, list[_Group]] = {}
    for g in groups:
        g.signature = _signature(g)
        by_sig.setdefault(g.signature, []).append(g)
    return [_make_kind(gs, pattern, channels) for gs in by_sig.values() if len(gs) >= 2]


def _choose(model: ImportedModel, channels: dict[str, int | None]) -> list[_Kind]:
    patterns = sorted({_pattern(p) for layer in model.layers for p in _prefixes(layer.name)})
    chosen: list[_Kind] = []
    taken: set[str] = set()
    while True:
        best, best_kinds = 0, []
        for pattern in patterns:
            kinds = _kinds_for(model, pattern, taken, channels)
            saved = _cost(kinds)
            if saved > best:
                best, best_kinds = saved, kinds
        if not best_kinds:
            return chosen
        chosen.extend(best_kinds)
        for kind in best_kinds:
            for g in kind.groups:
                taken.update(layer.name for layer in g.layers)


def _feature(kind: _Kind) -> str:
    """What tells a variant of a block apart: a projection shortcut, a stride, else nothing."""
    first = kind.groups[0]
    readers = [layer for layer in first.layers[1:] if first.entry in layer.inputs]
    if any(OPS[layer.op].rf == "window" for layer in readers):
        return "projection"
    if any(layer.op.startswith("zeropad") or layer.args.get("strides") not in (None, 1) for layer in first.layers):
        return "strided"
    return ""


def _unique_names(kinds: list[_Kind]) -> None:
    """Give variants of one block distinct names: the plain one keeps the name, the others say how they differ."""
    by_name: dict[str, list[_Kind]] = {}
    for kind in sorted(kinds, key=lambda k: k.groups[0].index):
        by_name.setdefault(kind.name, []).append(kind)
    for name, same in by_name.items():
        if len(same) == 1:
            continue
        used = set()
        for kind in sorted(same, key=lambda k: _feature(k) != ""):
            feature = _feature(kind)
            candidate = f"{name}_{feature}" if feature else name
            n = 2
            while candidate in used:
                candidate = f"{name}_{feature or 'v'}{n}" if feature else f"{name}_{n}"
                n += 1
            used.add(candidate)
            kind.name = candidate




def _block_source(kind: _Kind, data_format: str) -> str:
    first = kind.groups[0]
    local_names = {}
    template_layers = []
    for i, layer in enumerate(first.layers):
        suffix = layer.name[len(first.prefix):]
        var = suffix.strip("_") or f"t{i}"
        var = re.sub(r"\W", "_", var)
        if not is_identifier(var):
            var = "t" + var if is_identifier("t" + var) else f"t{i}"
        while var in local_names.values():
            var += "_"
        local_names[layer.name] = var
    for i, layer in enumerate(first.layers):
        args = {key: kind.template[(i, k2)] for (j, k2) in kind.template if j == i for key in [k2]}
        args = {k: v for k, v in args.items() if not (v is None and _default(layer.op, k) is None)}
        suffix = layer.name[len(first.prefix):]
        args["name"] = Expr(f"name + {suffix!r}")
        inputs = tuple("in" if t == first.entry else local_names[t] for t in layer.inputs)
        template_layers.append(ImportedLayer(local_names[layer.name], layer.op, args, inputs, layer.trainable))
    defaults = shared_defaults([(t.op, {k: v for k, v in t.args.items() if not isinstance(v, Expr)})
                                for t in template_layers], minimum=2)
    for t in template_layers:
        for key in defaults.get(t.op, {}):
            del t.args[key]
    body, _ = write_items(list(template_layers), "in", None, data_format, [template_layers[-1].name], ["in"])
    body.defaults = [f"default {layer_call(op, args)}" for op, args in defaults.items()]
    required = [p for p in kind.params if p not in kind.defaults]
    optional = [f"{p}={value_source(kind.defaults[p])}" for p in kind.params if p in kind.defaults]
    header = f"block {kind.name}({', '.join(required + ['name'] + optional)}) {{"
    return "\n".join([header, *body.lines("    "), "}"])


def _call(kind: _Kind, values: dict[str, Any], name_expr: str) -> str:
    args = [value_source(values[p]) for p in kind.params if p not in kind.defaults]
    args.append(name_expr)
    for p in kind.params:
        if p in kind.defaults and repr(values[p]) != repr(kind.defaults[p]):
            args.append(f"{p}={value_source(values[p])}")
    return f"{kind.name}({', '.join(args)})"


def _counted(prefixes: list[str]) -> tuple[str, int] | None:
    """('conv2_block', 2) when the prefixes are conv2_block2, conv2_block3, ... (consecutive)."""
    m = [re.fullmatch(r"(.*?)(\d+)", p) for p in prefixes]
    if not all(m):
        return None
    stems = {x.group(1) for x in m}  # type: ignore[union-attr]
    nums = [int(x.group(2)) for x in m]  # type: ignore[union-attr]
    if len(stems) != 1 or nums != list(range(nums[0], nums[0] + len(nums))):
        return None
    return stems.pop(), nums[0]


def fold_model(model: ImportedModel, data_format: str, channels: dict[str, int | None] | None = None
               ) -> tuple[Body, list[str]]:
    """The network body with block calls, and the blocks' source, for a model.

    ``channels`` maps tensor names to their channel counts (from checking the
    flat spec), which lets a block write ``6 * channels(in)``.
    """
    channels = channels or {}
    kinds = _choose(model, channels)
    _unique_names(kinds)
    starts: dict[str, tuple[_Kind, int]] = {}
    covered: set[str] = set()
    for kind in kinds:
        for n, g in enumerate(kind.groups):
            starts[g.layers[0].name] = (kind, n)
            covered.update(layer.name for layer in g.layers)

    consumers = model.consumers()
    # One item per layer outside the blocks, one per block call; runs of calls become repeats.
    items: list[ImportedLayer | Call] = []
    pos = 0
    while pos < len(model.layers):
        layer = model.layers[pos]
        if layer.name not in starts:
            items.append(layer)
            pos += 1
            continue
        kind, n = starts[layer.name]
        run = [n]
        pos += len(kind.groups[n].layers)
        while pos < len(model.layers) and model.layers[pos].name in starts:
            k2, m = starts[model.layers[pos].name]
            prev_out = kind.groups[run[-1]].layers[-1].name
            if k2 is not kind:
                break
            inside = {layer.name for layer in kind.groups[m].layers}
            if (kind.groups[m].entry != prev_out
                    or any(c not in inside for c in consumers.get(prev_out, []))
                    or kind.call_values[m] != kind.call_values[n]):
                break
            run.append(m)
            pos += len(kind.groups[m].layers)
        counted = _counted([kind.groups[m].prefix for m in run]) if len(run) > 1 else None
        groups = [kind.groups[m] for m in run]
        if counted:
            stem, first = counted
            offset = f" + {first}" if first else ""
            call = _call(kind, kind.call_values[n], f"{stem!r} + str(i{offset})")
            text = f"repeat {len(run)} as i {{\n    {call}\n}}"
            items.append(Call(text, (groups[0].entry,), groups[-1].layers[-1].name, chain_input=True))
            if _needs_source(items, groups[0].entry):
                # A repeat cannot start from a named tensor: make it current first.
                items.insert(len(items) - 1, Call(_var_stub(groups[0].entry), (groups[0].entry,),
                                                  groups[0].entry, chain_input=False))
        else:
            for g, m in zip(groups, run):
                items.append(Call(_call(kind, kind.call_values[m], repr(g.prefix)), (g.entry,), g.layers[-1].name))
    namer = _Namer({i.name for i in model.inputs})
    for kind in kinds:
        for g in kind.groups:
            namer.taken.update(layer.name for layer in g.layers)
    body, _ = write_items(items, model.inputs[0].name if model.inputs else None, namer, data_format,
                          model.outputs, [i.name for i in model.inputs])
    blocks = [_block_source(kind, data_format) for kind in sorted(kinds, key=lambda k: k.groups[0].index)]
    return body, blocks


def _needs_source(items: list, entry: str) -> bool:
    """True when the item before the last one does not leave ``entry`` as the current tensor."""
    if len(items) < 2:
        return False
    prev = items[-2]
    out = prev.name if isinstance(prev, ImportedLayer) else prev.output
    return out != entry


def _var_stub(tensor: str) -> str:
    return tensor if is_identifier(tensor) else re.sub(r"\W", "_", tensor)
