"""Checking a graph again for the sizes of one actual input.

A network with unknown sizes (``input x: [?, ?, 3]``) is checked for every
size at once; some merges then fit only for some sizes (a stride-2 branch
added to a stride-(2, 1) branch).  Before a target runs such a network on a
real batch, :func:`concrete_problems` checks the graph with the batch's
sizes put in, so that a size that does not fit is a located diagnostic that
names the layer and its source line, never a NumPy or Keras exception.

>>> from netspec import load_source
>>> net = load_source('''network q {
...     input x: [?, ?, 3]
...     a = conv2d(4, 3, strides=2, padding='same')
...     b = x -> conv2d(4, 3, strides=(2, 1), padding='same')
...     add(a, b)
... }''', filename="q.net")
>>> concrete_problems(net.graph, {"x": (16, 16, 3)})[0].render().splitlines()[0]
'q.net:5:5: error[E403]: add: for input x of shape (16, 16, 3): add of mismatched shapes: input 1 has shape (8, 8, 4), input 2 has shape (8, 16, 4) (axis 2: 8 vs 16)'
>>> concrete_problems(net.graph, {"x": (16, 1, 3)})
[]
"""

from __future__ import annotations

from collections.abc import Mapping

from .check import check_graph
from .diagnostics import Diagnostic, Note
from .ir import Graph, Input, Shape

__all__ = ["concrete_problems"]


def _show(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def concrete_problems(graph: Graph, shapes: Mapping[str, Shape]) -> list[Diagnostic]:
    """The errors of ``graph`` when its inputs have ``shapes`` (without the batch axis).

    Each error keeps the layer's location and says which input sizes it
    was checked for; an empty list means the graph runs on those sizes.
    ``shapes`` must already fit each input's rank and known sizes.
    """
    inputs = []
    changed = False
    for inp in graph.inputs:
        shape = tuple(shapes.get(inp.name, inp.shape))
        changed |= shape != tuple(inp.shape)
        inputs.append(Input(inp.name, shape, inp.data_format, inp.span))
    if not changed:
        return []
    concrete = Graph(graph.name, tuple(inputs), graph.nodes, graph.outputs, graph.span)
    report = check_graph(concrete, silence=[])
    sizes = " and ".join(f"input {i.name} of shape {_show(i.shape)}" for i in inputs if i.shape != graph.input_named(i.name).shape)
    out = []
    for d in report.diagnostics:
        if not d.is_error:
            continue
        message = d.message
        layer = next((n.name for n in graph.nodes if n.span is not None and d.span is not None
                      and n.span.start <= d.span.start < max(n.span.end, n.span.start + 1)), None)
        prefix = f"{layer}: " if layer and not message.startswith(layer + ":") else ""
        out.append(Diagnostic.error(d.code, f"{prefix}for {sizes}: {message}", d.span,
                                    d.notes + (() if d.span is not None else (Note("checked for those sizes"),))))
    return out
