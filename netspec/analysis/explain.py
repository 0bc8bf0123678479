"""``check --explain``: the arithmetic behind a layer's row, the way the lecture teaches it.

Each layer's story comes from its :class:`~netspec.core.ops.OpDef`: the
op's ``explain`` hook (:mod:`netspec.core.explain`) derives the output size
with the numbers filled in; the weights are multiplied out from its
``WeightSpec`` list; the MACs are output values times the work per output;
the receptive field grows by ``(k - 1) * jump`` per window.  An op without
a hook still gets its shape, weights, MACs and receptive field, so a new
op is explained without extra work.

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source('''network lecture {
...     input x: [32, 32, 3]
...     conv2d(filters=4, kernel_size=(5, 5))
... }''').networks[0]
>>> print(explain_layer(net, "conv2d"))
conv2d: conv2d  (None, 32, 32, 3) -> (None, 28, 28, 4)
  height, width: floor((32 - 5 + 2*0) / 1) + 1 = 28   ('valid': no padding)
  channels: filters = 4
  weights: kernel (5, 5, 3, 4): 5*5*3*4 = 300; bias (4,): 4
  params:  5*5*3*4 + 4 = 304 (trainable)
  MACs:    28*28*4 outputs * 5*5*3 per output = 235,200
  receptive field: 1 + (5 - 1)*1 = 5 on each axis (jump 1 -> 1*1 = 1)
"""

from __future__ import annotations

import math
from typing import Any

from ..core.argtypes import did_you_mean
from ..core.check import NetworkReport, input_rf
from ..core.explain import AXIS_NAMES, Explanation
from ..core.ops import OPS

__all__ = ["ExplainError", "explain_layer", "explain_network", "layer_names"]


class ExplainError(ValueError):
    """No layer of that name (the message has a did-you-mean)."""


def layer_names(net: NetworkReport) -> list[str]:
    """The names ``--explain`` accepts for a network: its inputs and layers, in order."""
    graph = net.graph
    if graph is None:
        return []
    return [i.name for i in graph.inputs] + [n.name for n in graph.nodes]


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(["None"] + ["None" if d is None else str(d) for d in shape]) + ")"


def _product(dims: Any) -> str:
    return "*".join(str(d) for d in dims)


_AXES = ("height", "width", "depth", "length")


def _align(lines: list[str]) -> list[str]:
    """Pad the ``height:``/``width:`` heads so that their formulas line up (continuation lines too)."""
    heads = [line.split(":", 1)[0] for line in lines if line.split(":", 1)[0] in _AXES]
    width = max((len(h) for h in heads), default=0)
    out, last = [], ""
    for line in lines:
        head = line.split(":", 1)[0]
        if head in _AXES:
            last = head
            line = f"{head}:{' ' * (width - len(head))}{line.split(':', 1)[1]}"
        elif line.startswith(" ") and last:
            line = " " * (width - len(last)) + line
        out.append(line)
    return out


def explain_layer(net: NetworkReport, name: str) -> str:
    """The explanation of one layer (or input) of a checked network.

    Raises :class:`ExplainError` with a did-you-mean if there is no such layer.
    """
    graph = net.graph
    names = layer_names(net)
    if graph is None or name not in names:
        raise ExplainError(f"no layer {name!r} in network {net.name!r}" + did_you_mean(name, names))
    for inp in graph.inputs:
        if inp.name == name:
            shape = net.symbolic.shapes.get(name) if net.symbolic is not None else None
            return (f"{name}: input  {_shape_text(shape or inp.shape)}\n"
                    f"  the network's input ({inp.data_format}); no weights, no MACs; "
                    "each output cell sees one input cell")
    node = graph.node(name)
    info = net.layers[name]
    opdef = OPS[node.op]
    shapes: dict[str, Any] = {i.name: i.shape for i in graph.inputs}
    shapes.update({k: v.shape for k, v in net.layers.items()})
    if net.symbolic is not None:  # formulas where the sizes are symbolic
        shapes.update({k: v for k, v in net.symbolic.shapes.items() if v is not None})
    in_shapes = [shapes[i] for i in node.inputs]
    ins = ", ".join(_shape_text(s) for s in in_shapes)
    out_shape = shapes.get(name, info.shape)
    lines = [f"{name}: {node.op}  {ins} -> {_shape_text(out_shape)}"]

    story = Explanation()
    if opdef.explain is not None:
        try:
            story = opdef.explain(node.attrs, in_shapes, out_shape)
        except (TypeError, ValueError, IndexError, AttributeError):
            story = Explanation()
    body = list(story.sizes) or _generic_sizes(node, opdef, in_shapes, out_shape)
    lines += ["  " + line for line in _align(body)]

    # weights, from the WeightSpecs
    if info.weights:
        parts = []
        for w in info.weights:
            product = _product(w.shape)
            parts.append(f"{w.name} {tuple(w.shape)}: " + (f"{product} = {w.size:,}" if len(w.shape) > 1 else
                                                           f"{w.size:,}"))
        lines.append("  weights: " + "; ".join(parts))
        terms = " + ".join(_product(w.shape) for w in info.weights)
        split = ("trainable" if not info.non_trainable else "non-trainable" if not info.trainable else
                 f"{info.trainable:,} trainable, {info.non_trainable:,} non-trainable")
        lines.append(f"  params:  {terms} = {info.params:,} ({split})")
    else:
        lines.append("  params:  0 (no weights)")

    # MACs: output values times the work per output value
    macs = info.macs
    if macs is None:
        lines.append("  MACs:    unknown (a size is unknown)")
    elif macs == 0:
        lines.append("  MACs:    0 (no multiply-accumulates; the contract counts none for this op)")
    else:
        outputs = math.prod(info.shape) if all(isinstance(d, int) for d in info.shape) else None  # type: ignore[arg-type]
        per = story.per_output
        if story.macs is not None:
            lines.append(f"  MACs:    {story.macs} = {macs:,}")
        elif outputs and per is not None and _eval_product(per) * outputs == macs:
            lines.append(f"  MACs:    {_product(info.shape)} outputs * {per} per output = {macs:,}")
        elif outputs and macs % outputs == 0:
            lines.append(f"  MACs:    {_product(info.shape)} outputs * {macs // outputs:,} per output = {macs:,}")
        else:
            lines.append(f"  MACs:    {macs:,} (the op's MACs rule)")

    lines.append("  receptive field: " + _rf_story(net, node, opdef, shapes))
    return "\n".join(lines)


def _eval_product(text: str) -> int:
    return math.prod(int(t) for t in text.split("*"))


def _generic_sizes(node: Any, opdef: Any, in_shapes: list[Any], out: Any) -> list[str]:
    if opdef.merge:
        return [f"merge of {len(in_shapes)} tensors: {node.op} of " + ", ".join(_shape_text(s) for s in in_shapes)
                + f" -> {_shape_text(out)}"]
    if len(in_shapes) == 1 and tuple(map(str, in_shapes[0])) == tuple(map(str, out)):
        return ["shape: unchanged (it acts on each value, or along an axis, without resizing)"]
    return [f"shape: {_shape_text(in_shapes[0])} -> {_shape_text(out)} ({node.op}'s shape rule)"]


def _rf_story(net: NetworkReport, node: Any, opdef: Any, shapes: dict[str, Any]) -> str:
    info = net.layers[node.name]
    graph = net.graph
    assert graph is not None
    src = node.inputs[0]
    if src in net.layers:
        before = net.layers[src].rf
    else:
        inp = next(i for i in graph.inputs if i.name == src)
        before = input_rf(inp.shape, inp.data_format)
    after = info.rf
    if after is None:
        return "none (the tensor has no spatial axes)"
    if after[0] == "global":
        if before is not None and before[0] == "global":
            return "global, as its input"
        return "global: each output reads every input cell"
    if before is None or before[0] != "window":
        return "x".join(map(str, after[1]))
    if opdef.rf == "merge":
        return f"the widest of its inputs: {'x'.join(map(str, after[1]))}"
    if opdef.rf != "window" or opdef.window is None:
        return f"unchanged: {'x'.join(map(str, after[1]))}"
    sizes, strides = opdef.window(node.attrs)
    reach, jumps = before[1], before[2]
    n = len(reach)
    names = AXIS_NAMES.get(n, tuple(f"axis {i + 1}" for i in range(n)))
    if n > 1 and len({(reach[i], sizes[i], jumps[i], strides[i]) for i in range(n)}) == 1:
        return (f"{reach[0]} + ({sizes[0]} - 1)*{jumps[0]} = {after[1][0]} on each axis "
                f"(jump {jumps[0]} -> {jumps[0]}*{strides[0]} = {after[2][0]})")
    steps = [f"{names[i]} {reach[i]} + ({sizes[i]} - 1)*{jumps[i]} = {after[1][i]}" for i in range(n)]
    jump_text = f"jump {'x'.join(map(str, jumps))} -> {'x'.join(map(str, after[2]))}"
    return ", ".join(steps) + f" ({jump_text})"


def explain_network(net: NetworkReport, which: str) -> str:
    """``--explain NAME`` (one layer) or ``--explain all`` (every input and layer, in order)."""
    if which == "all":
        return "\n\n".join(explain_layer(net, n) for n in layer_names(net))
    return explain_layer(net, which)
