"""Print a graph back as ``.net`` source that parses to an equal graph.

>>> from netspec import ops
>>> from netspec.ir import Graph, Input, Node
>>> g = Graph("tiny", Input("x", (28, 28, 1)), (
...     Node("c", "conv2d", ("x",), ops.Conv2D(filters=8, kernel_size=(3, 3), padding="same")),
...     Node("f", "flatten", ("c",), ops.Flatten()),
... ))
>>> print(to_source(g))
network tiny {
    input x: [28, 28, 1]
    c = x -> conv2d(8, (3, 3), padding='same', name='c')
    f = c -> flatten(name='f')
    f
}
"""

from __future__ import annotations

import dataclasses

from .argtypes import format_value
from .ir import Graph
from .ops import OPS

__all__ = ["to_source"]


def to_source(graph: Graph) -> str:
    """The graph as ``.net`` text: every node named, only non-default arguments written."""
    dims = ", ".join("?" if d is None else str(d) for d in graph.input.shape)
    layout = " channels_first" if graph.input.data_format == "channels_first" else ""
    lines = [f"network {graph.name} {{", f"    input {graph.input.name}: [{dims}]{layout}"]
    for node in graph.nodes:
        args = _args(node.attrs, graph.input.data_format)
        args.append(f"name={node.name!r}")
        opdef = OPS[node.op]
        if opdef.merge:
            call = f"{node.op}({', '.join(list(node.inputs) + args)})"
            lines.append(f"    {node.name} = {call}")
        else:
            lines.append(f"    {node.name} = {node.inputs[0]} -> {node.op}({', '.join(args)})")
    lines.append(f"    {graph.output}")
    lines.append("}")
    return "\n".join(lines)


def _args(attrs: object, default_format: str) -> list[str]:
    out: list[str] = []
    positional = True
    for f in dataclasses.fields(attrs):  # type: ignore[arg-type]
        value = getattr(attrs, f.name)
        required = f.default is dataclasses.MISSING
        if f.name == "data_format" and value in (None, default_format):
            positional = False
            continue
        if not required and value == f.default:
            positional = False
            continue
        if f.name == "strides" and getattr(attrs, "pool_size", None) == value:
            positional = False
            continue
        text = format_value(value)
        out.append(text if positional and required else f"{f.name}={text}")
        if not required:
            positional = False
    return out
