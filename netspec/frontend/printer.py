"""Print a graph back as ``.net`` source that parses to an equal graph.

>>> from netspec.core import ops
>>> from netspec.core.ir import Graph, Input, Node
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

from ..core.argtypes import format_value
from ..core.ir import Graph
from ..core.ops import OPS
from ..core.ops_layers import merge_operands

__all__ = ["to_source"]


def to_source(graph: Graph) -> str:
    """The graph as ``.net`` text: every node named, only non-default arguments written.

    Each tensor is bound to its layer name where that is an identifier, else
    to a generated one; the layer name itself always travels in ``name=``.
    Every input gets its ``input`` statement; several outputs get an
    ``output`` statement.  Raises ValueError if the graph's or an input's
    name is not an identifier.

    >>> from netspec.core import ops
    >>> from netspec.core.ir import Input, Node
    >>> g = Graph("g", Input("x", (4,)), (Node("layer-1", "dense", ("x",), ops.Dense(units=2)),))
    >>> print(to_source(g))
    network g {
        input x: [4]
        _t0 = x -> dense(2, name='layer-1')
        _t0
    }
    >>> g = Graph("two", (Input("a", (4,)), Input("b", (4,))), (
    ...     Node("s", "add", ("a", "b"), ops.NoArgs()), Node("d", "dense", ("s",), ops.Dense(units=2))), ("d", "s"))
    >>> print(to_source(g))
    network two {
        input a: [4]
        input b: [4]
        s = add(a, b, name='s')
        d = s -> dense(2, name='d')
        output d, s
    }
    """
    for what, name in (("network", graph.name), *(("input", i.name) for i in graph.inputs)):
        if not _is_identifier(name):
            raise ValueError(f"the {what} name {name!r} is not an identifier, so it cannot be written as .net")
    lines = [f"network {graph.name} {{"]
    bound: dict[str, str] = {}
    for inp in graph.inputs:
        names = tuple(inp.symbols) + (None,) * len(inp.shape)
        dims = ", ".join((names[i] or "?") if d is None else str(d) for i, d in enumerate(inp.shape))
        layout = " channels_first" if inp.data_format == "channels_first" else ""
        lines.append(f"    input {inp.name}: [{dims}]{layout}")
        bound[inp.name] = inp.name
    for i, node in enumerate(graph.nodes):
        var = node.name if _is_identifier(node.name) and node.name not in bound.values() else f"_t{i}"
        while var in bound.values():
            var = "_" + var
        bound[node.name] = var
        args = _args(node.attrs, graph.input.data_format)
        args.append(f"name={node.name!r}")
        if not node.trainable:
            args.append("trainable=false")
        inputs = [bound[t] for t in node.inputs]
        if OPS[node.op].merge:
            operands = [bound[v] if kind == "tensor" else format_value(v)
                        for kind, v in merge_operands(node.inputs, node.attrs)]
            lines.append(f"    {var} = {node.op}({', '.join(operands + args)})")
        else:
            lines.append(f"    {var} = {inputs[0]} -> {node.op}({', '.join(args)})")
    if len(graph.outputs) == 1:
        lines.append(f"    {bound[graph.output]}")
    else:
        lines.append(f"    output {', '.join(bound[o] for o in graph.outputs)}")
    lines.append("}")
    return "\n".join(lines)


_KEYWORDS = frozenset(
    "network block input repeat as if else default in and or not true false none import "
    "output let fn tensor carry for allow assert".split())


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii() and name not in _KEYWORDS


def _args(attrs: object, default_format: str) -> list[str]:
    out: list[str] = []
    positional = True
    for f in dataclasses.fields(attrs):  # type: ignore[arg-type]
        value = getattr(attrs, f.name)
        if f.name == "constants":  # a merge's number operands, written among its operands
            continue
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
