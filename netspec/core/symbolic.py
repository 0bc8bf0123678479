"""The symbolic pass: sizes as formulas of the input's symbols, and the sizes that work.

An input ``[H, W, 3]`` (or ``[?, ?, 3]``) is checked twice.  The ordinary
checker (:mod:`netspec.core.check`) sees its symbolic sizes as unknown
(``None``) and checks everything that does not depend on them; then this
pass walks the checked graph again with each symbolic size as an
:class:`~netspec.core.symdim.Expr` and re-runs each op's own shape rule
(``OpDef.infer``) on those expressions.  No rule is written twice: the
rules' arithmetic works on expressions, and where a rule compares sizes
(``if out < 1``, ``if x != y``) the comparison goes to an oracle that
answers it for a *set* of sizes.  When both answers can happen, the rule
is run once per answer (a path); each path ends in a shape or in the
rule's own error, and carries the sizes at which it is taken.  The union
of the paths that end in a shape is where the layer is valid; the network
is valid where every layer is.

A merge that fails at every size still allowed is an error (the rule's
own code: E403 for merges); one that fails only at some of them narrows
the valid sizes and gets W116.

>>> from netspec.core import ops
>>> from netspec.core.ir import Graph, Input, Node
>>> g = Graph("g", Input("x", (None, 8, 3), symbols=("H", None, None)), (
...     Node("c", "conv2d", ("x",), ops.OPS["conv2d"].normalize(
...         ops.Conv2D(filters=4, kernel_size=(3, 3), strides=(2, 2)), "channels_last")),))
>>> r = symbolic_check(g)
>>> [str(d) for d in r.shapes["c"]], r.valid["H"].text("H")
(['floor((H - 1) / 2)', '3', '4'], 'H >= 3')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import symdim
from .diagnostics import Diagnostic, Note
from .ir import Graph, Input
from .ops import OPS, ShapeError
from .symdim import (
    LIMIT,
    Expr,
    MixedSymbols,
    Oracle,
    SizeSet,
    SymbolicBudget,
    _Select,
    active_oracle,
    flatten_tables,
    simplify,
    symbols_of,
    with_exceptions,
)

__all__ = ["MAX_PATHS", "SymbolicReport", "axis_symbol_names", "format_dim", "is_anonymous", "shown",
           "symbolic_check"]

#: Most paths one rule may take on one node before the pass gives up on it (W117).
MAX_PATHS = 256

def axis_symbol_names(inp: Input, first: bool = True) -> tuple[str | None, ...]:
    """The symbol of each axis of an input: the name the spec gave it, ``?N`` for the
    ``?`` on axis N (counted from 1 without the batch axis; ``NAME?N`` on an input
    other than the first), None for a known size.

    >>> axis_symbol_names(Input("x", (None, None, 3)))
    ('?1', '?2', None)
    >>> axis_symbol_names(Input("x", (None, None, 3), symbols=("H", None, None)))
    ('H', '?2', None)
    >>> axis_symbol_names(Input("m", (None, 1)), first=False)
    ('m?1', None)
    """
    given = tuple(inp.symbols) + (None,) * len(inp.shape)
    prefix = "" if first else inp.name
    return tuple(None if d is not None else (given[i] or f"{prefix}?{i + 1}") for i, d in enumerate(inp.shape))


def is_anonymous(name: str) -> bool:
    """True for the symbol of a ``?`` size.

    >>> is_anonymous("?1"), is_anonymous("H")
    (True, False)
    """
    return name.startswith("?")


def shown(d: Any) -> Any:
    """A dim as reports show it: a formula, or None when it involves a ``?`` (unknown, as the contract has it).

    >>> shown(Expr.symbol("H") - 2), shown(Expr.symbol("?1") - 2), shown(3)
    ('H - 2', None, 3)
    """
    if isinstance(d, Expr):
        return None if any(is_anonymous(s) for s in d.syms()) else str(d)
    return d


@dataclass(frozen=True)
class SymbolicReport:
    """What the symbolic pass learned: each layer's shape as formulas, and the valid sizes.

    ``shapes`` maps a tensor name to its shape (ints and
    :class:`~netspec.core.symdim.Expr`; None where the pass could not
    follow it); ``valid`` maps each symbol to its :class:`SizeSet`.
    """

    symbols: tuple[str, ...]
    input_shape: tuple[Any, ...]
    shapes: dict[str, tuple[Any, ...] | None]
    valid: dict[str, SizeSet]
    diagnostics: tuple[Diagnostic, ...] = ()

    def valid_sizes(self) -> dict[str, dict[str, Any]]:
        """The JSON form: ``{"H": {"from": 32, "step": 32, "residues": [0], "also": []}}``."""
        return {s: self.valid[s].summary() for s in self.symbols}

    def valid_text(self) -> list[str]:
        """One line per symbol: ``valid for H >= 32, H % 32 == 0``."""
        return [f"valid for {self.valid[s].text(s)}" for s in self.symbols]


def format_dim(d: Any) -> str:
    """A dim as the table shows it.

    >>> format_dim(None), format_dim(3), format_dim(Expr.symbol("H") // 2)
    ('None', '3', 'floor(H / 2)')
    """
    return "None" if d is None else str(d)


# --- exploring a rule's paths -------------------------------------------------------------------


class _TooManyPaths(Exception):
    pass


class _PathOracle(Oracle):
    """Answers each comparison for the sizes still possible on this path; branches where both answers can hold."""

    def __init__(self, region: dict[str, SizeSet], forced: list[bool]):
        self.region = dict(region)
        self.forced = forced
        self.decisions: list[bool] = []
        self.literals: list[tuple[Expr, str, bool]] = []

    def decide(self, h: Expr, rel: str) -> bool:
        syms = h.syms()
        if len(syms) != 1:
            raise MixedSymbols(f"the condition {h} {rel} 0 ties {' and '.join(sorted(syms))} together")
        (name,) = syms
        cur = self.region.get(name)
        if cur is None:
            raise MixedSymbols(f"unknown symbol {name}")
        if symdim.EVALUATED > symdim.MAX_EVALUATIONS:
            raise SymbolicBudget(f"more than {symdim.MAX_EVALUATIONS:,} size conditions to evaluate")
        holds = SizeSet.where(name, h, rel)
        yes, no = cur & holds, cur & ~holds
        if not yes:
            return False
        if not no:
            return True
        k = len(self.decisions)
        value = self.forced[k] if k < len(self.forced) else True
        self.decisions.append(value)
        self.literals.append((h, rel, value))
        self.region[name] = yes if value else no
        return value


@dataclass
class _Path:
    region: dict[str, SizeSet]
    literals: tuple[tuple[Expr, str, bool], ...]
    outcome: Any  # a shape, or the ShapeError the rule raised


def _explore(rule: Callable[[], Any], region: dict[str, SizeSet]) -> list[_Path]:
    paths: list[_Path] = []
    stack: list[list[bool]] = [[]]
    while stack:
        forced = stack.pop()
        oracle = _PathOracle(region, forced)
        with active_oracle(oracle):
            try:
                outcome: Any = rule()
            except ShapeError as err:
                outcome = err
        paths.append(_Path(oracle.region, tuple(oracle.literals), outcome))
        if len(paths) > MAX_PATHS:
            raise _TooManyPaths(f"more than {MAX_PATHS} cases")
        for i in range(len(forced), len(oracle.decisions)):
            stack.append(oracle.decisions[:i] + [not oracle.decisions[i]])
    return paths


def _same_dim(a: Any, b: Any) -> bool:
    if isinstance(a, Expr) or isinstance(b, Expr):
        return isinstance(a, Expr) and a.same(b)
    return a == b and type(a) is type(b)


def _agrees(d: Any, main: Any, region: dict[str, SizeSet]) -> bool:
    """Is ``d == main`` at every size of ``region``?"""
    if _same_dim(d, main):
        return True
    if d is None or main is None:
        return False
    diff = d - main
    if isinstance(diff, int):
        return diff == 0
    syms = diff.syms()
    if len(syms) != 1:
        return False
    (name,) = syms
    where = region.get(name)
    return where is not None and not (where & ~SizeSet.where(name, diff, "=="))


def _combine(paths: list[_Path]) -> tuple[Any, ...] | None:
    """One shape for all successful paths.

    The widest path's dims are the main formula; another path's dim that
    agrees with it wherever that path is taken changes nothing, and one that
    does not becomes a guarded choice.
    """
    shapes = [tuple(p.outcome) for p in paths]
    if any(len(s) != len(shapes[0]) for s in shapes):
        return None
    widest = max(range(len(paths)), key=lambda i: sum(bin(r.mask).count("1") for r in paths[i].region.values()))
    out = list(shapes[widest])
    for i in reversed(range(len(paths))):
        if i == widest:
            continue
        for k, d in enumerate(shapes[i]):
            if _agrees(d, out[k], paths[i].region):
                continue
            if d is None or out[k] is None:
                out[k] = None
                continue
            # Axes are checked one by one: a dim's choice depends on its own symbols' conditions only.
            syms = (d.syms() if isinstance(d, Expr) else set()) | (out[k].syms() if isinstance(out[k], Expr) else set())
            if len(syms) == 1:
                (name,) = syms
                where = paths[i].region[name]
                if not where.mask >> (LIMIT // 2):  # a few sizes only: a table of exceptions
                    f = d.evaluator() if isinstance(d, Expr) else (lambda _n, v=d: v)
                    try:
                        out[k] = with_exceptions(out[k], name, {n: f(n) for n in where.sizes()})
                        continue
                    except MixedSymbols:
                        pass
            literals = tuple(lit for lit in paths[i].literals if lit[0].syms() <= syms)
            if literals:
                out[k] = Expr(((_Select(literals, d, out[k]), 1),), 0)
    return tuple(out)


# --- the pass ----------------------------------------------------------------------------------


def _show(shape: Any) -> str:
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join(format_dim(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def symbolic_check(graph: Graph, silence: Iterable[str] = ()) -> SymbolicReport:
    """Run every node's shape rule on symbolic sizes; see the module doc.

    ``graph`` must have passed :func:`netspec.core.check.check_graph`
    (its attributes normalized); every ``None`` size of its input is a symbol.
    """
    silenced = set(silence)
    symdim.EVALUATED = 0
    inp = graph.input
    shapes: dict[str, tuple[Any, ...] | None] = {}
    all_names: list[str] = []
    for k, each in enumerate(graph.inputs):
        names = axis_symbol_names(each, first=k == 0)
        all_names += [n for n in names if n]
        shapes[each.name] = tuple(Expr.symbol(n) if n else d for d, n in zip(each.shape, names))
    symbols = tuple(dict.fromkeys(all_names))
    in_shape = shapes[inp.name]
    region = {s: SizeSet.full() for s in symbols}
    diags: list[Diagnostic] = []
    producers = {n.name: n for n in graph.nodes}
    gave_up: set[str] = set()

    def warn(code: str, message: str, node: Any) -> None:
        if code not in silenced:
            diags.append(Diagnostic.warning(code, message, node.span,
                                            [Note("in the block called here", s) for s in reversed(node.call_sites)]))

    for node in graph.nodes:
        opdef = OPS[node.op]
        ins = [shapes.get(i) for i in node.inputs]
        if any(s is None for s in ins):
            shapes[node.name] = None
            continue
        if not any(symbols_of(s) for s in ins):
            try:
                shapes[node.name] = tuple(opdef.infer(node.attrs, ins))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - the ordinary checker already judged this node
                shapes[node.name] = None
            continue
        try:
            paths = _explore(functools.partial(opdef.infer, node.attrs, ins), region)
        except SymbolicBudget as err:
            warn("W117", f"{node.name}: the symbolic pass stops here ({err}); the sizes from here on are "
                 "unknown and the valid sizes do not include their conditions", node)
            for rest in graph.nodes[graph.nodes.index(node):]:
                shapes[rest.name] = None
            break
        except Exception as err:  # noqa: BLE001 - any rule that cannot run on formulas
            # The rule needs something a formula cannot give (or ties two symbols together):
            # its output stays unknown, as the ordinary checker has it.
            key = f"{node.op}:{type(err).__name__}"
            if key not in gave_up:
                gave_up.add(key)
                warn("W117", f"{node.name}: cannot follow {node.op} on symbolic sizes ({err}); "
                     "its output size is unknown and the valid sizes do not include its conditions", node)
            shapes[node.name] = None
            continue
        ok = [p for p in paths if not isinstance(p.outcome, ShapeError)]
        bad = [p for p in paths if isinstance(p.outcome, ShapeError)]
        if not ok:
            err = bad[0].outcome
            involved = sorted({s for i in ins for s in symbols_of(i)})
            notes = []
            index = int(err.arg) if err.arg is not None and str(err.arg).isdigit() else None
            if index is not None and index < len(node.inputs):
                src = node.inputs[index]
                producer = producers.get(src)
                span = producer.span if producer is not None else next(
                    (i.span for i in graph.inputs if i.name == src), inp.span)
                notes.append(Note(f"{src!r} is produced here with shape {_show(shapes.get(src))}", span))
            notes += [Note("in the block called here", s) for s in reversed(node.call_sites)]
            span = node.arg_span(err.arg) if err.arg is not None and index is None else node.span
            narrowed = any(region[s] != SizeSet.full() for s in involved)
            diags.append(Diagnostic.error(
                err.code, f"{err.message}, at every input size"
                + (" at which the layers before it are valid" if narrowed else ""), span, notes))
            shapes[node.name] = None
            continue
        node_region = {s: region[s] for s in symbols}
        for s in symbols:
            union = ok[0].region[s]
            for p in ok[1:]:
                union = union | p.region[s]
            node_region[s] = union
        if bad and opdef.merge:
            narrowed = [s for s in symbols if node_region[s] != region[s]]
            if narrowed:
                warn("W116", f"{node.name}: {node.op} matches only for some input sizes, "
                     + "; ".join(f"valid for {node_region[s].text(s)}" for s in narrowed)
                     + f"; at the others: {bad[0].outcome.message}", node)
        region = node_region
        try:
            combined = _combine(ok)
            shapes[node.name] = None if combined is None else tuple(flatten_tables(d) for d in combined)
        except Exception as err:  # noqa: BLE001 - a formula the pass cannot fold: the size stays unknown
            warn("W117", f"{node.name}: cannot fold the sizes of {node.op} into one formula ({err}); "
                 "its output size is unknown", node)
            shapes[node.name] = None
    # Choices that the final valid sizes decide are shown as the branch they take.
    for name, shape in shapes.items():
        if shape is not None:
            try:
                shapes[name] = tuple(simplify(d, region) for d in shape)
            except Exception:  # noqa: BLE001, S112 - the unsimplified formula is still exact
                continue
    return SymbolicReport(symbols, in_shape, shapes, region, tuple(diags))
