"""The IR: plain frozen data describing one network as a graph.

A :class:`Graph` has a tuple of :class:`Input`, a tuple of :class:`Node` in
dependency order and a tuple of output tensor names; edges are tensor names
(an input's name or an earlier node's name).  Each node's ``attrs`` is the op's own frozen dataclass from
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

Several inputs and outputs are tuples; ``input`` and ``output`` mean the first:

>>> g = Graph("two", (Input("a", (4,)), Input("b", (4,))), (
...     Node("sum", "add", ("a", "b"), ops.NoArgs()),
...     Node("d", "dense", ("sum",), ops.Dense(units=2)),
... ), ("d", "sum"))
>>> [i.name for i in g.inputs], g.outputs, g.input.name, g.output
(['a', 'b'], ('d', 'sum'), 'a', 'd')
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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

    A ``None`` size is symbolic: ``symbols`` names it (the identifier the
    spec wrote, or None for ``?``), one entry per axis; see
    :mod:`netspec.core.symbolic`.

    >>> Input("x", (3, 32, 32), "channels_first").data_format
    'channels_first'
    >>> Input("x", (None, None, 3), symbols=("H", "W", None)).symbols
    ('H', 'W', None)
    """

    name: str
    shape: Shape
    data_format: str = "channels_last"
    span: Span | None = field(default=None, compare=False, repr=False)
    symbols: tuple[str | None, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    """One layer: its unique name, op, input tensor names and typed attributes.

    ``call_sites`` holds the spans of the block calls that produced the node,
    innermost last, for diagnostics that point back at the caller; ``block``
    names those calls, outermost first, each as the block's name and its
    1-based call number within the enclosing call (``("stage_3", "bottleneck_2")``).

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
    block: tuple[str, ...] = field(default=(), compare=False, repr=False)
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
    """A whole network: its inputs, nodes in dependency order, and its outputs' names.

    ``inputs`` is a tuple of :class:`Input` (one :class:`Input` is taken as a
    tuple of one); ``outputs`` a tuple of tensor names (one name is taken as
    a tuple of one), and defaults to the last node (or the first input when
    there are no nodes).  ``input`` and ``output`` are the first of each.

    >>> from netspec.core import ops
    >>> g = Graph("g", Input("x", (4,)), (Node("d", "dense", ("x",), ops.Dense(units=2)),))
    >>> g.output, g.outputs, len(g)
    ('d', ('d',), 1)
    """

    name: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...] = ()
    outputs: tuple[str, ...] = ()
    span: Span | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        inputs = self.inputs
        if isinstance(inputs, Input):
            inputs = (inputs,)
        elif not isinstance(inputs, tuple):
            inputs = tuple(inputs)
        if not inputs:
            raise ValueError(f"graph {self.name!r} has no input")
        object.__setattr__(self, "inputs", inputs)
        if not isinstance(self.nodes, tuple):
            object.__setattr__(self, "nodes", tuple(self.nodes))
        outputs: str | Iterable[str] = self.outputs
        if isinstance(outputs, str):
            outputs = (outputs,) if outputs else ()
        outputs = tuple(outputs)
        if not outputs:
            outputs = (self.nodes[-1].name if self.nodes else inputs[0].name,)
        object.__setattr__(self, "outputs", outputs)

    @property
    def input(self) -> Input:
        """The first input (the only one in a one-input network)."""
        return self.inputs[0]

    @property
    def output(self) -> str:
        """The first output's tensor name (the only one in a one-output network)."""
        return self.outputs[0]

    def input_named(self, name: str) -> Input:
        """The input called ``name``; KeyError if there is none.

        >>> Graph("g", (Input("a", (2,)), Input("b", (3,)))).input_named("b").shape
        (3,)
        """
        for inp in self.inputs:
            if inp.name == name:
                return inp
        raise KeyError(name)

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
