"""The IR: plain frozen data describing one network as a graph.

A :class:`Graph` has one :class:`Input` and a tuple of :class:`Node` in
dependency order; edges are tensor names (an input's name or an earlier
node's name).  Each node's ``attrs`` is the op's own frozen dataclass from
:mod:`netspec.core.ops`, with every argument filled in.  Source spans sit
beside the fields and never affect equality.  Analysis results (shapes,
counts, diagnostics) live in :mod:`netspec.core.check`, not here.

Build a graph in Python:

>>> from netspec.core import ops
>>> g = Graph("tiny", Input("x", (28, 28, 1)), (
...     Node("conv2d", "conv2d", ("x",), ops.Conv2D(filters=8, kernel_size=(3, 3))),
...     Node("flatten", "flatten", ("conv2d",), ops.Flatten()),
...     Node("dense", "dense", ("flatten",), ops.Dense(units=10)),
... ))
>>> g.output, [n.name for n in g]
('dense', ['conv2d', 'flatten', 'dense'])
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .source import Span

__all__ = ["Dim", "Graph", "Input", "Node", "Shape"]

#: One size: an int, or None when unknown (``?`` in a spec).
Dim = int | None
#: A tensor's shape without the batch axis.
Shape = tuple[Dim, ...]


@dataclass(frozen=True, slots=True)
class Input:
    """The network's input tensor: its name, shape without batch, and layout.

    >>> Input("x", (3, 32, 32), "channels_first").data_format
    'channels_first'
    """

    name: str
    shape: Shape
    data_format: str = "channels_last"
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Node:
    """One layer: its unique name, op, input tensor names and typed attributes.

    ``call_sites`` holds the spans of the block calls that produced the node,
    innermost last, for diagnostics that point back at the caller.

    >>> from netspec.core import ops
    >>> Node("d", "dense", ("x",), ops.Dense(units=4)).attrs.units
    4
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Any
    span: Span | None = field(default=None, compare=False, repr=False)
    call_sites: tuple[Span, ...] = field(default=(), compare=False, repr=False)
    arg_spans: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)
    #: ``trainable=false`` moves the layer's weights to the non-trainable count (as Keras's ``trainable``).
    trainable: bool = True

    def arg_span(self, name: str) -> Span | None:
        """The span of one argument as written, else the node's own span."""
        for key, span in self.arg_spans:
            if key == name:
                return span
        return self.span


@dataclass(frozen=True, slots=True)
class Graph:
    """A whole network: input, nodes in dependency order, and the output's name.

    ``output`` defaults to the last node (or the input when there are none).

    >>> from netspec.core import ops
    >>> g = Graph("g", Input("x", (4,)), (Node("d", "dense", ("x",), ops.Dense(units=2)),))
    >>> g.output, len(g)
    ('d', 1)
    """

    name: str
    input: Input
    nodes: tuple[Node, ...] = ()
    output: str = ""
    span: Span | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.output:
            object.__setattr__(self, "output", self.nodes[-1].name if self.nodes else self.input.name)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        """The node called ``name``; KeyError if there is none.

        >>> from netspec.core import ops
        >>> g = Graph("g", Input("x", (4,)), (Node("d", "dense", ("x",), ops.Dense(units=2)),))
        >>> g.node("d").op
        'dense'
        """
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
