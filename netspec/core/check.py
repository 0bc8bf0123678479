"""Checking: shapes, parameter counts, MACs and receptive fields of a graph.

:func:`analyze_node` is the one loop body shared by the elaborator (which
checks as it builds, so ``channels(x)`` and ``shape(x)`` can be answered)
and :func:`check_graph` (for graphs built in Python).  Results live beside
the IR in :class:`LayerInfo` and :class:`NetworkReport`, never inside it.

>>> from netspec.core import ops
>>> from netspec.core.ir import Graph, Input, Node
>>> g = Graph("lecture", Input("x", (32, 32, 3)),
...           (Node("conv", "conv2d", ("x",), ops.Conv2D(filters=4, kernel_size=(5, 5))),))
>>> r = check_graph(g)
>>> r.ok, r.layers["conv"].shape, r.layers["conv"].params, r.params
(True, (28, 28, 4), 304, (304, 0))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, NetspecError, Note
from .ir import Graph, Input, Node, Shape
from .lints import covered_by_sibling, dense_is_pointwise, refine_warnings
from .ops import OPS, ShapeError, WeightSpec
from .ops_layers import glu_shape

__all__ = [
    "MAX_ELEMENTS",
    "LayerInfo",
    "NetworkReport",
    "RF",
    "analyze_node",
    "GraphChecker",
    "check_graph",
    "with_symbolic",
    "input_rf",
]

#: Most scalars one tensor (per sample) or one weight may hold before netspec calls it too large.
MAX_ELEMENTS = 2**31 - 1

#: A receptive field: ("window", sizes, jumps) with one entry per spatial axis (a jump is a Fraction
#: after an upsampling), ("global",), or None (no spatial axes).
RF = tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What checking learned about one node.

    >>> LayerInfo((4,), (), 0, 0, 0, None).params
    0
    """

    shape: Shape
    weights: tuple[WeightSpec, ...]
    trainable: int
    non_trainable: int
    macs: int | None
    rf: RF

    @property
    def params(self) -> int:
        """Trainable plus non-trainable parameters."""
        return self.trainable + self.non_trainable

    @property
    def receptive_field(self) -> tuple[int | str, ...] | str | None:
        """One size per spatial axis (``(h, w)`` for images) in input cells, ``'global'``, or None.

        An axis along which the layer (or one before it) mixes every
        position, such as ``softmax(axis=1)``, is ``'global'`` on its own:
        ``('global', 5)``.
        """
        if self.rf is None:
            return None
        if self.rf[0] == "global":
            return "global"
        return tuple("global" if r == math.inf else math.ceil(r) for r in self.rf[1])


@dataclass(frozen=True, slots=True)
class NetworkReport:
    """A checked network: its graph, what each layer does, and its diagnostics.

    ``graph`` is None when the network has errors; ``layers`` then holds
    what was checked before them.  ``inputs`` are the network's inputs,
    ``outputs`` its output tensor names and ``output_shapes`` their shapes
    (None where one failed); ``input_shape`` and ``output_shape`` are the
    first of each.

    >>> from netspec.frontend.elaborate import check_source
    >>> net = check_source("network n {\\n input x: [4, 4, 2]\\n batchnorm()\\n}\\n").networks[0]
    >>> net.ok, net.params, net.macs
    (True, (4, 4), 0)
    """

    name: str
    graph: Graph | None
    layers: dict[str, LayerInfo]
    diagnostics: tuple[Diagnostic, ...] = ()
    input_shape: Shape | None = None
    output_shape: Shape | None = None
    span: Any = field(default=None, compare=False, repr=False)
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    output_shapes: tuple[Shape | None, ...] = ()
    #: Every node the checker took, in order, with its info (None where it failed), unused and
    #: failed ones included, even when ``graph`` is None: what an editor shows at each line.
    checked: tuple[tuple[Node, LayerInfo | None], ...] = field(default=(), compare=False, repr=False)
    #: The symbolic pass's report (:mod:`netspec.core.symbolic`) when the input has symbolic sizes.
    symbolic: Any = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return self.graph is not None and not any(d.is_error for d in self.diagnostics)

    @property
    def params(self) -> tuple[int, int]:
        """(trainable, non-trainable) parameter totals."""
        return (sum(i.trainable for i in self.layers.values()),
                sum(i.non_trainable for i in self.layers.values()))

    @property
    def total_params(self) -> int:
        """All parameters, as Keras ``count_params()`` reports them."""
        return sum(self.params)

    @property
    def macs(self) -> int | None:
        """Total multiply-accumulates per sample, or None if a size is unknown."""
        total = 0
        for info in self.layers.values():
            if info.macs is None:
                return None
            total += info.macs
        return total

    @property
    def weight_bytes(self) -> int:
        """Bytes of float32 weights."""
        return 4 * self.total_params

    @property
    def activation_bytes(self) -> int | None:
        """Bytes of float32 activations per sample (the inputs and every layer's output)."""
        firsts = [i.shape for i in self.inputs] if self.inputs else [self.input_shape or ()]
        sizes = firsts + [i.shape for i in self.layers.values()]
        total = 0
        for shape in sizes:
            if any(d is None for d in shape):
                return None
            total += math.prod(shape)  # type: ignore[arg-type]
        return 4 * total

    def raise_for_errors(self) -> NetworkReport:
        """Raise :class:`NetspecError` if there are errors; else return self."""
        if not self.ok:
            raise NetspecError(self.diagnostics or (Diagnostic.error("E211", f"network {self.name!r} is incomplete"),))
        return self


def input_rf(shape: Shape, data_format: str) -> RF:
    """The receptive field of an input tensor: one cell if it is a signal, an image or a volume.

    >>> input_rf((28, 28, 1), "channels_last")
    ('window', (1, 1), (1, 1))
    >>> input_rf((10,), "channels_last") is None
    True
    """
    n = len(shape) - 1
    return ("window", (1,) * n, (1,) * n) if 1 <= n <= 3 else None


def _axis_index(axis: Any, rank: int) -> int | None:
    """A Keras axis (counting the batch axis) as an index into the shape without it."""
    if isinstance(axis, bool) or not isinstance(axis, int):
        return None
    a = axis if axis >= 0 else rank + 1 + axis
    return a - 1 if 1 <= a <= rank else None


#: Ops that mix every position along the axes named by their ``axis`` argument.
_AXIS_MIXING = ("softmax", "log_softmax", "sparsemax", "layernorm", "unit_normalization")


def mixed_axes(op: str, attrs: Any, shape: Shape) -> set[int]:
    """Indices (into ``shape``, no batch axis) along which ``op`` mixes every position.

    ``dense`` acts on the last axis, ``softmax`` and the normalizations over
    their ``axis``, ``groupnorm`` over everything but the batch.

    >>> from netspec.core import ops
    >>> sorted(mixed_axes("softmax", ops.Softmax(axis=1), (16, 16, 3)))
    [0]
    >>> sorted(mixed_axes("dense", None, (3, 16, 16))), sorted(mixed_axes("relu", None, (16, 16, 3)))
    ([2], [])
    """
    rank = len(shape)
    if op == "dense":
        return {rank - 1}
    if op == "groupnorm":
        return set(range(rank))
    if op in _AXIS_MIXING:
        axis = getattr(attrs, "axis", -1)
        axes = axis if isinstance(axis, tuple) else (axis,)
        return {i for i in (_axis_index(a, rank) for a in axes) if i is not None}
    return set()


def _spatial_positions(shape: Shape, data_format: str) -> list[int]:
    n = len(shape) - 1
    return list(range(n)) if data_format == "channels_last" else list(range(1, n + 1))


def _global_along(op: str, attrs: Any, in_shapes: list[Shape], rf: RF, data_format: str) -> RF:
    """``rf`` made global along the spatial axes the op mixes (issue 9 item 1)."""
    if rf is None or rf[0] != "window" or not in_shapes or OPS[op].rf != "identity":
        return rf
    shape = in_shapes[0]
    fmt = getattr(attrs, "data_format", None) or data_format
    mixed = mixed_axes(op, attrs, shape)
    positions = _spatial_positions(shape, fmt)
    if not mixed or len(positions) != len(rf[1]):
        return rf
    reach = tuple(math.inf if pos in mixed else r for pos, r in zip(positions, rf[1]))
    if all(r == math.inf for r in reach):
        return ("global",)
    return ("window", reach, rf[2])


def _next_rf(node_op: str, attrs: Any, rfs: list[RF]) -> RF:
    opdef = OPS[node_op]
    first = rfs[0]
    if first is None:
        return None
    if opdef.rf == "identity":
        return first
    if opdef.rf == "global" or first[0] == "global":
        return ("global",)
    if opdef.rf == "merge":
        if any(r is None or r[0] == "global" for r in rfs):
            return ("global",) if all(r is not None for r in rfs) else None
        if len({len(r[1]) for r in rfs}) != 1:  # type: ignore[index]
            return ("global",)
        return ("window", tuple(map(max, *(r[1] for r in rfs))) if len(rfs) > 1 else first[1],  # type: ignore[index]
                first[2])
    sizes, strides = opdef.window(attrs)  # type: ignore[misc]
    _, reach, jumps = first
    if len(sizes) != len(reach):
        return ("global",)
    return ("window", tuple(r + (k - 1) * j for r, k, j in zip(reach, sizes, jumps)),
            tuple(j * s for j, s in zip(jumps, strides)))


class NodeProblem(Exception):
    """Raised by :func:`analyze_node`: a diagnostic code, message and the argument to point at."""

    def __init__(self, code: str, message: str, arg: str | None = None, input_index: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg
        self.input_index = input_index


def analyze_node(
    op: str, attrs: Any, in_shapes: list[Shape], in_rfs: list[RF], data_format: str = "channels_last",
    trainable: bool = True
) -> tuple[LayerInfo, list[tuple[str, str, str | None]]]:
    """Check one node given its inputs; returns its info and its warnings.

    ``data_format`` is the network's layout (for ops without their own).

    ``attrs`` must be normalized (see :meth:`netspec.core.ops.OpDef.normalize`).
    Raises :class:`NodeProblem` for an error.  With ``trainable`` false
    (a layer's ``trainable=false``) every weight counts as non-trainable.

    >>> from netspec.core import ops
    >>> info, warns = analyze_node("conv2d", ops.OPS["conv2d"].normalize(
    ...     ops.Conv2D(filters=1, kernel_size=(2, 2)), "channels_last"), [(5, 5, 1)], [None])
    >>> info.shape, [w[0] for w in warns]
    ((4, 4, 1), ['W103'])
    """
    opdef = OPS[op]
    for code, message, arg in opdef.validate(attrs):
        raise NodeProblem(code, message, arg)
    try:
        shape = opdef.infer(attrs, in_shapes)
        if getattr(attrs, "activation", None) == "glu" and shape:
            shape = glu_shape(shape, len(shape) - 1)  # a fused glu halves the layer's last axis
        weights = tuple(opdef.weights(attrs, in_shapes))
        macs = opdef.macs(attrs, in_shapes, shape)
        warnings = opdef.warnings(attrs, in_shapes)
    except ShapeError as err:
        index = int(err.arg) if err.arg is not None and err.arg.isdigit() else None
        raise NodeProblem(err.code, err.message, None if index is not None else err.arg, index) from None
    for d in shape:
        if d is not None and d > MAX_ELEMENTS:
            raise NodeProblem("E501", f"{op} output size {d} is too large to build (limit {MAX_ELEMENTS})")
    if all(d is not None for d in shape) and math.prod(shape) > MAX_ELEMENTS:  # type: ignore[arg-type]
        raise NodeProblem(
            "E501", f"{op} output {tuple(shape)} holds {math.prod(shape):,} values per sample, "  # type: ignore[arg-type]
            f"too large to build (limit {MAX_ELEMENTS:,})")
    for w in weights:
        if w.size > MAX_ELEMENTS:
            raise NodeProblem(
                "E501", f"{op} weight {w.name} {w.shape} holds {w.size:,} values, too large to build "
                f"(limit {MAX_ELEMENTS:,})")
    if not trainable:
        weights = tuple(dataclasses.replace(w, trainable=False) for w in weights)
    n_trainable = sum(w.size for w in weights if w.trainable)
    non_trainable = sum(w.size for w in weights if not w.trainable)
    rf = _global_along(op, attrs, in_shapes, _next_rf(op, attrs, in_rfs), data_format)
    return LayerInfo(shape, weights, n_trainable, non_trainable, macs, rf), warnings


def node_diagnostic(
    node_span: Any, arg_span: Any, problem: NodeProblem, call_sites: Iterable[Any] = (), notes: Iterable[Note] = ()
) -> Diagnostic:
    """Turn a :class:`NodeProblem` into a diagnostic with call-site notes."""
    all_notes = list(notes) + [Note("in the block called here", s) for s in reversed(tuple(call_sites))]
    return Diagnostic.error(problem.code, problem.message, arg_span or node_span, all_notes)


class GraphChecker:
    """Checks nodes one at a time, in dependency order, keeping every result.

    The elaborator adds nodes as it creates them (so it can answer
    ``channels(x)``); :func:`check_graph` adds a whole graph's nodes.
    A node whose input failed is skipped without a second report.
    ``graph_inputs`` is one :class:`Input` or a sequence of them; the first
    one's layout is the default ``data_format`` of every layer.

    >>> from netspec.core import ops
    >>> from netspec.core.ir import Input, Node
    >>> c = GraphChecker(Input("x", (8, 8, 3)))
    >>> c.add(Node("p", "maxpool2d", ("x",), ops.Pool2D()))
    (4, 4, 3)
    """

    def __init__(self, graph_inputs: Input | Sequence[Input], silence: Iterable[str] = ()):
        self.inputs: tuple[Input, ...] = (graph_inputs,) if isinstance(graph_inputs, Input) else tuple(graph_inputs)
        self.input = self.inputs[0]
        self.format: str = self.input.data_format
        self.silenced = set(silence)
        self.shapes: dict[str, Shape | None] = {i.name: i.shape for i in self.inputs}
        self.rfs: dict[str, RF] = {i.name: input_rf(i.shape, i.data_format) for i in self.inputs}
        self.producers: dict[str, Node] = {}
        self.layers: dict[str, LayerInfo] = {}
        self.diagnostics: list[Diagnostic] = []
        self.nodes: list[Node] = []
        self.deferred: list[tuple[Node, Diagnostic]] = []

    def add(self, node: Node) -> Shape | None:
        """Check one node; returns its output shape, or None if it (or an input) failed."""
        opdef = OPS.get(node.op)
        if opdef is None:
            self.diagnostics.append(Diagnostic.error("E201", f"unknown op {node.op!r}", node.span))
            self.shapes[node.name] = None
            return None
        if node.name in self.shapes:
            first = self.producers.get(node.name)
            self.diagnostics.append(Diagnostic.error(
                "E209", f"layer name {node.name!r} is used twice", node.arg_span("name"),
                [Note("first used here", first.span)] if first is not None and first.span is not None else []))
            return None
        missing = [i for i in node.inputs if i not in self.shapes]
        if missing:
            self.diagnostics.append(Diagnostic.error("E203", f"{node.name}: unknown input tensor {missing[0]!r}", node.span))
            self.shapes[node.name] = None
            return None
        attrs = opdef.normalize(node.attrs, self.format)
        if attrs is not node.attrs:
            node = dataclasses.replace(node, attrs=attrs)
        self.nodes.append(node)
        self.producers[node.name] = node
        in_shapes = [self.shapes[i] for i in node.inputs]
        if any(s is None for s in in_shapes):
            # The input failed and was reported; errors in the arguments alone still count.
            for code, message, arg in opdef.validate(attrs):
                self.diagnostics.append(Diagnostic.error(code, message, node.arg_span(arg) if arg else node.span))
            self.shapes[node.name] = None
            return None
        try:
            info, warns = analyze_node(node.op, attrs, in_shapes, [self.rfs[i] for i in node.inputs],  # type: ignore[arg-type]
                                       self.format, node.trainable)
        except NodeProblem as problem:
            notes = []
            if problem.input_index is not None:
                src = node.inputs[problem.input_index]
                producer = self.producers.get(src)
                span = producer.span if producer is not None else next(
                    (i.span for i in self.inputs if i.name == src), self.input.span)
                notes.append(Note(f"{src!r} is produced here with shape {_show_shape(self.shapes[src])}", span))
            arg_span = node.arg_span(problem.arg) if problem.arg else None
            self.diagnostics.append(node_diagnostic(node.span, arg_span, problem, node.call_sites, notes))
            self.shapes[node.name] = None
            return None
        self.shapes[node.name] = info.shape
        self.rfs[node.name] = info.rf
        self.layers[node.name] = info
        warns = refine_warnings(node, attrs, in_shapes, warns, self.producers, self.format)  # type: ignore[arg-type]
        for code, message, arg in warns:
            if code not in self.silenced:
                if not message.startswith(node.name + " "):
                    message = f"{node.name}: {message}"
                diag = Diagnostic.warning(
                    code, message, node.arg_span(arg) if arg else node.span,
                    [Note("in the block called here", s) for s in reversed(node.call_sites)])
                if code in ("W102", "W104"):  # known only with the whole graph: see core/lints.py
                    self.deferred.append((node, diag))
                else:
                    self.diagnostics.append(diag)
        return info.shape

    def report(self, name: str, outputs: str | Sequence[str], span: Any = None,
               extra: Iterable[Diagnostic] = ()) -> NetworkReport:
        """The report for everything added so far, with ``outputs`` as the network's outputs.

        ``outputs`` is one tensor name or a sequence of them.  Layers that
        reach no output are dropped with a W105 warning: a Keras model holds
        only the layers between its inputs and outputs, so they would not be
        built, run or counted.
        """
        outs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        diags = list(extra) + self.diagnostics
        diags += [d for node, d in self.deferred
                  if not (covered_by_sibling(node, self.nodes, self.producers) if d.code == "W104"
                          else dense_is_pointwise(node, self.nodes))]
        for output in outs:
            if output not in self.shapes:
                diags.append(Diagnostic.error("E203", f"unknown output tensor {output!r}", span))
        if any(self.shapes.get(o) is None for o in outs):  # an output failed: every layer may still matter
            live = set(self.shapes)
        else:
            live = self._reaching(outs)
        nodes = [n for n in self.nodes if n.name in live]
        if "W105" not in self.silenced:
            if len(outs) == 1:
                reach = f"it does not reach the output {outs[0]!r}"
            else:
                reach = "it reaches none of the outputs " + ", ".join(repr(o) for o in outs)
            for node in self.nodes:
                if node.name not in live and node.name in self.layers:
                    diags.append(Diagnostic.warning(
                        "W105", f"{node.name}: computed but never used ({reach}), "
                        "so it is left out of the network and its counts", node.span,
                        [Note("in the block called here", s) for s in reversed(node.call_sites)]))
        layers = {k: v for k, v in self.layers.items() if k in live}
        diags.sort(key=_position)
        ok = not any(d.is_error for d in diags)
        graph = Graph(name, self.inputs, tuple(nodes), outs, span) if ok else None
        out_shapes = tuple(self.shapes.get(o) for o in outs)
        return NetworkReport(name, graph, layers, tuple(diags), self.input.shape, out_shapes[0] if out_shapes else None,
                             span, self.inputs, outs, out_shapes,
                             tuple((n, self.layers.get(n.name)) for n in self.nodes))

    def _reaching(self, outputs: Sequence[str]) -> set[str]:
        live = set(outputs)
        for node in reversed(self.nodes):
            if node.name in live:
                live.update(node.inputs)
        return live


def _position(d: Diagnostic) -> tuple:
    if d.span is None:
        return ("", 0)
    return (d.span.file, d.span.start)


def _show_shape(shape: Shape | None) -> str:
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def check_graph(graph: Graph, silence: Iterable[str] = ()) -> NetworkReport:
    """Check a graph built in Python (or elaborated from a file), collecting every error.

    ``silence`` lists warning codes to drop.

    >>> from netspec.core import ops
    >>> from netspec.core.ir import Input
    >>> g = Graph("g", Input("x", (2, 2, 1)), (Node("c", "conv2d", ("x",), ops.Conv2D(filters=1, kernel_size=(3, 3))),))
    >>> [(d.code, d.message[:40]) for d in check_graph(g).diagnostics]
    [('E401', 'conv2d output height would be 0: floor((')]
    """
    checker = GraphChecker(graph.inputs, silence)
    for node in graph.nodes:
        checker.add(node)
    report = checker.report(graph.name, graph.outputs, graph.span)
    return with_symbolic(report, silence)


def with_symbolic(report: NetworkReport, silence: Iterable[str] = ()) -> NetworkReport:
    """The report with the symbolic pass (:mod:`netspec.core.symbolic`) when an input has a symbolic size.

    >>> from netspec.core import ops
    >>> from netspec.core.ir import Input
    >>> g = Graph("g", Input("x", (None, 5, 1)), (Node("c", "conv2d", ("x",), ops.Conv2D(filters=1, kernel_size=(3, 3))),))
    >>> check_graph(g).symbolic.valid_text()
    ['valid for ?1 >= 3']
    """
    graph = report.graph
    if graph is None or not any(None in i.shape for i in graph.inputs):
        return report
    from dataclasses import replace

    from .symbolic import symbolic_check

    symbolic = symbolic_check(graph, silence)
    diags = report.diagnostics
    if symbolic.diagnostics:
        diags = tuple(sorted(diags + symbolic.diagnostics, key=_position))
        if any(d.is_error for d in symbolic.diagnostics):
            graph = None
    return replace(report, graph=graph, diagnostics=diags, symbolic=symbolic)
