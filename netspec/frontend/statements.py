"""Statement elaboration: one network's body to IR nodes, checked as they are built.

Chains, bindings, ``repeat``, ``if``, ``default``, op calls and block
calls; each node goes to the network's :class:`~netspec.core.check.GraphChecker`
at once, so later statements can ask for shapes.  Expressions are the
:class:`~netspec.frontend.expressions.ExpressionEvaluator`'s job.

>>> from netspec import load_source
>>> [n.name for n in load_source("network n {\\n input x: [4]\\n repeat 2 { dense(3) }\\n}\\n").graph]
['dense', 'dense_1']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.argtypes import MAX_SIZE, ArgError, clip, did_you_mean, format_value, type_name
from ..core.check import GraphChecker, NetworkReport, with_symbolic
from ..core.diagnostics import Diagnostic, Note
from ..core.ir import Input, Node
from ..core.ops import ALIASES, OPS, arg_names, canonical_op, make_attrs
from ..core.source import Span
from . import surface as S
from .expressions import ExpressionEvaluator
from .scope import (
    MAX_BLOCK_DEPTH,
    MAX_DIAGNOSTICS,
    MAX_LAYERS,
    MAX_REPEAT,
    MAX_STEPS,
    POISON,
    POISON_VALUE,
    Abort,
    Fatal,
    Scope,
)

if TYPE_CHECKING:
    from .elaborate import _Program, _Unit

__all__ = ["NetworkElaborator", "dedupe"]


def calls(body: Iterable[S.Stmt]) -> Iterable[S.Call]:
    stack = list(body)
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, S.Chain):
            stack.extend(s for s in stmt.steps if isinstance(s, S.Call))
        elif isinstance(stmt, S.Call):
            yield stmt
        elif isinstance(stmt, S.BindStmt):
            stack.append(stmt.chain)
        elif isinstance(stmt, (S.RepeatStmt, S.ForStmt)):
            stack.extend(stmt.body)
        elif isinstance(stmt, S.IfStmt):
            stack.extend(stmt.then)
            stack.extend(stmt.orelse or ())


def unknown_callee(call: S.Call, blocks: dict) -> Diagnostic:
    names = list(OPS) + list(ALIASES) + list(blocks)
    return Diagnostic.error("E201", f"unknown op or block {clip(call.name)!r}" + did_you_mean(call.name, names),
                            call.name_span)


def dedupe(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    seen: set = set()
    out = []
    for d in diags:
        key = (d.severity, d.code, d.span.file if d.span else None, d.span.start if d.span else None)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out



class NetworkElaborator(ExpressionEvaluator):
    """Elaborates one network definition into a checked :class:`~netspec.core.check.NetworkReport`."""

    def __init__(self, program: _Program, unit: _Unit, netdef: S.NetworkDef | None,
                 name: str | None = None, args: dict[str, tuple[Any, Span]] | None = None,
                 instance: S.InstanceDef | None = None):
        self.program = program
        self.unit = unit
        self.netdef = netdef  # None for the evaluator of file-level values
        self.name = name or (netdef.name if netdef is not None else "")
        self.args = args or {}
        self.instance = instance
        self.checker: GraphChecker | None = None
        self.diags: list[Diagnostic] = []
        self.counters: dict[str, int] = {}
        self.steps = 0
        self.stack: list[tuple[str, Span]] = []
        self.fn_stack: list[str] = []
        self.block_path: list[str] = []  # the block calls being elaborated, as Node.block names them
        self.block_calls: dict[tuple[str, ...], int] = {}
        self.name_spans: dict[int, Span] = {}
        self.passes = 1  # how many times the innermost repeat body runs in all
        self.outputs: tuple[str, ...] | None = None  # set by the output statement
        #: Each ``default`` statement run, with its values' span ids, and which of those a call took.
        self.default_stmts: dict[int, tuple[S.DefaultStmt, list[int], tuple]] = {}
        self.defaults_used: set[int] = set()

    # driver
    def run(self) -> NetworkReport:
        assert self.netdef is not None
        body = self.netdef.body
        name = self.name
        span = self.instance.name_span if self.instance is not None else self.netdef.name_span
        inputs = [s for s in body if isinstance(s, S.InputStmt)]
        if not inputs:
            return self._failed(Diagnostic.error("E211", f"network {name!r} has no input statement", span))
        # Input statements come first; the first input is the current tensor at the start.
        leading = 0
        while leading < len(body) and isinstance(body[leading], S.InputStmt):
            leading += 1
        for late in inputs[leading:]:
            self.diags.append(Diagnostic.error(
                "E211", "input statements must come before the other statements of a network", late.span,
                [Note("the first statement that is not an input", getattr(body[leading], "span", None))]))
        try:
            params = self.param_scope(self.netdef.params or (), self.args, self.unit.scope, "network", self.netdef,
                                      self.instance.span if self.instance is not None else None)
        except Abort as err:
            return self._failed(err.diag)
        scope = Scope(params, kind="body")
        self.first_input = inputs[0]
        graph_inputs: list[Input] = []
        for stmt in inputs:
            if stmt.name in scope.spans:
                self.diags.append(Diagnostic.error(
                    "E204", f"input name {stmt.name!r} is bound twice", stmt.span,
                    [Note("first bound here", scope.spans[stmt.name])]))
                continue
            try:
                graph_inputs.append(self._input(stmt, scope))
            except Abort as err:
                if not graph_inputs:
                    return self._failed(err.diag)
                self.diags.append(err.diag)
                scope.tensors[stmt.name] = POISON
                scope.spans[stmt.name] = stmt.span
                continue
            scope.tensors[stmt.name] = stmt.name
            scope.spans[stmt.name] = stmt.span
        self.checker = GraphChecker(graph_inputs, self.program.silence)
        self.checker.shapes[POISON] = None
        cur = graph_inputs[0].name
        self.outputs = None
        self.output_span: Span | None = None
        try:
            cur = self.exec_body([s for s in body if not isinstance(s, S.InputStmt)], scope, cur)
        except Fatal as err:
            self.diags.append(err.diag)
            cur = POISON
        outputs = self.outputs if self.outputs is not None else (cur,)
        self._unused_defaults()
        report = self.checker.report(name, outputs, span, self.diags)
        report = with_symbolic(report, self.program.silence)
        diags = self._instance_notes(self.program.allowed(dedupe(report.diagnostics)))
        return dataclasses.replace(report, diagnostics=tuple(diags))

    def _unused_defaults(self) -> None:
        """W107: a ``default`` that no later call took (its op is never called in its reach, or
        every call gives those arguments itself)."""
        if "W107" in self.program.silence or any(d.is_error for d in self.diags):
            return
        for stmt, spans, stack in self.default_stmts.values():
            if spans and not any(s in self.defaults_used for s in spans):
                self.diags.append(Diagnostic.warning(
                    "W107", f"default {stmt.op}(...) reaches no layer: no call of {stmt.op} after it, in this body "
                    f"or in the blocks called from it, takes these arguments", stmt.span,
                    [Note("in the block called here", s) for _, s in reversed(stack)]))

    def _instance_notes(self, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
        """Errors and warnings met while building an instance point back at the instance too."""
        inst = self.instance
        if inst is None:
            return list(diags)
        note = Note(f"in network {inst.name!r}, the instance of {inst.target!r} made here", inst.span)
        return [d if d.span is not None and d.span.source is inst.span.source and
                inst.span.start <= d.span.start < inst.span.end
                else Diagnostic(d.severity, d.code, d.message, d.span, d.notes + (note,)) for d in diags]

    def param_scope(self, params: Iterable[S.Param], values: dict[str, tuple[Any, Span]], parent: Scope,
                    what: str, owner: Any, call_span: Span | None = None) -> Scope:
        """A scope holding the value parameters: given values, else defaults (which may use earlier ones)."""
        scope = Scope(parent, values={})
        for p in params:
            if p.tensor:
                continue
            if p.name in values:
                scope.values[p.name] = values[p.name][0]
            elif p.default is not None:
                scope.values[p.name] = self.eval(p.default, scope)
            else:
                raise Abort(Diagnostic.error(
                    "E301", f"{what} {owner.name} is missing argument {p.name!r}", call_span or owner.name_span,
                    [Note(f"{owner.name!r} is defined here", owner.name_span)] if call_span is not None else []))
        return scope

    def _failed(self, diag: Diagnostic | None) -> NetworkReport:
        assert self.netdef is not None
        diags = self._instance_notes(self.diags + ([diag] if diag else []))
        span = self.instance.name_span if self.instance is not None else self.netdef.name_span
        return NetworkReport(self.name, None, {}, tuple(diags), None, None, span)

    def _input(self, stmt: S.InputStmt, scope: Scope) -> Input:
        dims: list[int | None] = []
        symbols: list[str | None] = []
        for d in stmt.dims:
            if d is None or (isinstance(d, S.Name) and scope.find(d.id) is None):
                # `?`, or a name bound to no value: a symbolic size (netspec.core.symbolic).
                dims.append(None)
                symbols.append(None if d is None else d.id)
                continue
            symbols.append(None)
            v = self.eval(d, scope)
            if isinstance(v, bool) or not isinstance(v, int):
                code = "E305" if isinstance(v, float) else "E302"
                raise Abort(Diagnostic.error(code, f"input size must be an integer or ?, got {type_name(v)} {format_value(v)}", d.span))
            if v < 1:
                raise Abort(Diagnostic.error("E306", f"input size must be at least 1, got {v}", d.span))
            if v > MAX_SIZE:
                raise Abort(Diagnostic.error("E501", f"input size {v} is too large to build (limit {MAX_SIZE})", d.span))
            dims.append(v)
        layout = stmt.layout or "channels_last"
        if layout not in ("channels_last", "channels_first"):
            raise Abort(Diagnostic.error(
                "E303", f"bad layout {layout!r}: expected 'channels_last' or 'channels_first'"
                + did_you_mean(layout, ["channels_last", "channels_first"]), stmt.layout_span))
        override = getattr(self.program, "input_shape", None)
        if override is not None and stmt is self.first_input:  # --input-shape sizes the first input
            given = tuple(override)
            if len(given) != len(dims):
                raise Abort(Diagnostic.error(
                    "E421", f"--input-shape gives {len(given)} sizes, but input {stmt.name!r} has {len(dims)}", stmt.span))
            return Input(stmt.name, given, layout, stmt.span)
        named = tuple(symbols) if any(symbols) else ()
        return Input(stmt.name, tuple(dims), layout, stmt.span, named)

    # statements
    def exec_body(self, body: Iterable[S.Stmt], scope: Scope, cur: str) -> str:
        for stmt in body:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise Fatal(Diagnostic.error(
                    "E503", f"network {self.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", getattr(stmt, "span", None)))
            try:
                cur = self.exec_stmt(stmt, scope, cur)
            except Abort as err:
                if err.diag is not None:
                    self.diags.append(err.diag)
                    if len(self.diags) > MAX_DIAGNOSTICS:
                        raise Fatal(Diagnostic.error("E503", "too many errors; stopping", err.diag.span)) from None
                if isinstance(stmt, _VALUE_STMTS):
                    if isinstance(stmt, S.LetStmt):
                        self.poison(scope, stmt.name, "value")
                    continue  # the current tensor is untouched
                cur = POISON
                if isinstance(stmt, S.BindStmt):
                    self.poison(scope, stmt.name, "tensor")
        return cur

    def poison(self, scope: Scope, name: str, kind: str) -> None:
        """After an error, bind ``name`` to a marker so its later uses are not reported again."""
        site = scope.site(name)
        if site is None:
            scope.bind(name, kind, POISON if kind == "tensor" else POISON_VALUE)
        elif site.kind == "carry":
            site.bind(name, kind, POISON if kind == "tensor" else POISON_VALUE)

    def assign(self, scope: Scope, name: str, kind: str, value: Any, span: Span, writeback: bool = False) -> None:
        """Bind ``name`` in ``scope``; a name of an enclosing body only when a loop carries it.

        ``writeback`` is a carrying loop handing its carried name's last value
        back to the body around it.
        """
        site = scope.site(name)
        if site is None:
            scope.bind(name, kind, value)
            scope.spans[name] = span
            return
        first = site.spans.get(name)
        passes = 0
        s: Scope | None = scope
        while s is not None and s is not site:
            passes += s.kind == "pass"
            s = s.parent
        if writeback and (passes == 0 or (site.kind == "carry" and passes == 1)):
            site.bind(name, kind, value)  # a nested loop's hand-back is not one of the pass's own rebindings
            return
        if site is scope:
            raise Abort(Diagnostic.error(
                "E204", f"name {name!r} is bound twice in one scope", span,
                [Note("first bound here", first)] if first else []))
        if site.kind == "carry" and passes == 1:
            if name in site.rebound:
                raise Abort(Diagnostic.error(
                    "E217", f"carried name {name!r} is rebound twice in one pass", span,
                    [Note("first rebound here", site.rebound[name])]))
            site.rebound[name] = span
            site.bind(name, kind, value)
            return
        raise Abort(Diagnostic.error(
            "E215", f"name {name!r} is already bound outside this body; only a loop that carries it may "
            f"rebind it (repeat N carry {name} {{ ... }})", span,
            [Note("first bound here", first)] if first else []))

    def exec_stmt(self, stmt: S.Stmt, scope: Scope, cur: str) -> str:
        if isinstance(stmt, S.Chain):
            return self.exec_chain(stmt, scope, cur)
        if isinstance(stmt, S.BindStmt):
            result = self.exec_chain(stmt.chain, scope, cur)
            if stmt.name not in scope.tensors and stmt.name not in scope.values and scope.kind == "body":
                scope.tensors[stmt.name] = result  # the common case, kept fast
                scope.spans[stmt.name] = stmt.name_span
                return result
            try:
                self.assign(scope, stmt.name, "tensor", result, stmt.name_span)
            except Abort as err:
                assert err.diag is not None
                self.diags.append(err.diag)
            return result
        if isinstance(stmt, S.LetStmt):
            self.assign(scope, stmt.name, "value", self.eval(stmt.value, scope), stmt.name_span)
            return cur
        if isinstance(stmt, S.RepeatStmt):
            count = self.eval(stmt.count, scope)
            if isinstance(count, bool) or not isinstance(count, int):
                code = "E305" if isinstance(count, float) else "E302"
                raise Abort(Diagnostic.error(code, f"repeat count must be an integer, got {type_name(count)} {format_value(count)}", stmt.count.span))
            if count < 0:
                raise Abort(Diagnostic.error("E306", f"repeat count must be at least 0, got {count}", stmt.count.span))
            if count > MAX_REPEAT:
                raise Abort(Diagnostic.error("E503", f"repeat count {count:,} is too large (limit {MAX_REPEAT:,})", stmt.count.span))
            passes = self.passes * count
            if passes > MAX_LAYERS and any(True for _ in calls(stmt.body)):
                raise Fatal(Diagnostic.error(
                    "E503", f"nested repeats would run their body {passes:,} times, building at least that many "
                    f"layers (limit {MAX_LAYERS:,})", stmt.count.span))
            outer, self.passes = self.passes, passes
            try:
                var = stmt.var
                return self.loop(stmt, scope, cur, ({var: i} if var else None for i in range(count)))
            finally:
                self.passes = outer
        if isinstance(stmt, S.ForStmt):
            return self.exec_for(stmt, scope, cur)
        if isinstance(stmt, S.AssertStmt):
            self.exec_assert(stmt, scope)
            return cur
        if isinstance(stmt, S.AllowStmt):
            return cur  # checked and applied per file (see _Program.allowed)
        if isinstance(stmt, S.IfStmt):
            cond = self.eval(stmt.cond, scope)
            if not isinstance(cond, bool):
                raise Abort(Diagnostic.error("E302", f"if condition must be true or false, got {type_name(cond)} {format_value(cond)}", stmt.cond.span))
            body = stmt.then if cond else stmt.orelse
            return self.exec_body(body or (), Scope(scope, kind="if"), cur)
        if isinstance(stmt, S.DefaultStmt):
            self.exec_default(stmt, scope)
            return cur
        if isinstance(stmt, S.OutputStmt):
            self.exec_output(stmt, scope)
            return cur
        if isinstance(stmt, S.InputStmt):
            raise Abort(Diagnostic.error(
                "E101", "an input statement belongs at the start of a network; a block takes its input as 'in'",
                stmt.span))
        raise Abort(Diagnostic.error("E101", "unexpected statement", getattr(stmt, "span", None)))

    def exec_output(self, stmt: S.OutputStmt, scope: Scope) -> None:
        """``output a, b``: the network's outputs; it leaves the current tensor as it is."""
        if self.stack:
            raise Abort(Diagnostic.error(
                "E230", "an output statement belongs in a network; a block's output is its current tensor "
                "at the end", stmt.span, self._call_notes()))
        if self.outputs is not None:
            raise Abort(Diagnostic.error(
                "E231", "a network has at most one output statement; list every output in it",
                stmt.span, [Note("the outputs were given here", self.output_span)]))
        tensors: list[str] = []
        seen: dict[str, Span] = {}
        for name, span in zip(stmt.names, stmt.name_spans):
            try:
                tensor = self.tensor(name, span, scope)
            except Abort as err:
                if err.diag is not None:
                    self.diags.append(err.diag)
                tensors.append(POISON)
                continue
            if tensor in seen:
                self.diags.append(Diagnostic.error(
                    "E232", f"output {name!r} is listed twice (it is the tensor {tensor!r})", span,
                    [Note("first listed here", seen[tensor])]))
                continue
            seen[tensor] = span
            tensors.append(tensor)
        self.outputs = tuple(tensors)
        self.output_span = stmt.span

    def loop(self, stmt: S.RepeatStmt | S.ForStmt, scope: Scope, cur: str,
             passes: Iterable[dict[str, Any] | None]) -> str:
        """Run a loop body once per entry of ``passes`` (the loop variables of that pass).

        Carried names live in a scope between the loop and its passes: each
        pass may rebind each of them once, the next pass sees the new value,
        and the body around the loop sees the last one.
        """
        carry: Scope | None = None
        if stmt.carry:
            carry = Scope(scope, kind="carry")
            for n in stmt.carry:
                if n.id in carry.spans:
                    raise Abort(Diagnostic.error("E204", f"name {n.id!r} is carried twice", n.span,
                                                 [Note("first carried here", carry.spans[n.id])]))
                found = scope.find(n.id)
                if found is None:
                    raise Abort(Diagnostic.error(
                        "E203", f"carried name {clip(n.id)!r} is not bound before the loop"
                        + did_you_mean(n.id, scope.visible()), n.span))
                if not _rebinds(stmt.body, n.id):
                    raise Abort(Diagnostic.error(
                        "E216", f"carried name {n.id!r} is never rebound in the loop body; "
                        f"bind it once in the body ({n.id} = ...) or do not carry it", n.span))
                carry.bind(n.id, *found)
                carry.spans[n.id] = n.span
        parent = carry if carry is not None else scope
        for values in passes:
            self.steps += 1  # an empty body still costs a pass: bound nested repeats
            if self.steps > MAX_STEPS:
                raise Fatal(Diagnostic.error(
                    "E503", f"network {self.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", stmt.span))
            if carry is not None:
                carry.rebound = {}
            cur = self.exec_body(stmt.body, Scope(parent, values=values, kind="pass"), cur)
        if carry is not None:
            for n in stmt.carry:
                kind = "tensor" if n.id in carry.tensors else "value"
                value = carry.tensors[n.id] if kind == "tensor" else carry.values[n.id]
                try:
                    self.assign(scope, n.id, kind, value, n.span, writeback=True)
                except Abort as err:
                    assert err.diag is not None
                    self.diags.append(err.diag)
        return cur

    def exec_for(self, stmt: S.ForStmt, scope: Scope, cur: str) -> str:
        table = self.eval(stmt.iterable, scope)
        if not isinstance(table, tuple):
            raise Abort(Diagnostic.error(
                "E311", f"for iterates over a tuple, got {type_name(table)} {format_value(table)}", stmt.iterable.span))
        names = [n.id for n in stmt.names]
        for i, n in enumerate(stmt.names):
            if n.id in names[:i]:
                raise Abort(Diagnostic.error("E204", f"loop name {n.id!r} is used twice", n.span))
        passes: list[dict[str, Any]] = []
        for k, item in enumerate(table):
            if not stmt.unpack:
                passes.append({names[0]: item})
                continue
            if not isinstance(item, tuple) or len(item) != len(names):
                items = getattr(stmt.iterable, "items", None)
                span = items[k].span if isinstance(stmt.iterable, S.TupleExpr) and items else stmt.iterable.span
                got = f"a tuple of {len(item)}" if isinstance(item, tuple) else type_name(item)
                raise Abort(Diagnostic.error(
                    "E311", f"element {k} of the table is {format_value(item)} ({got}), which does not unpack "
                    f"into the {len(names)} names ({', '.join(names)})", span,
                    [Note("the names are here", Span(stmt.names[0].span.source, stmt.names[0].span.start,
                                                     stmt.names[-1].span.end))]))
            passes.append(dict(zip(names, item)))
        total = self.passes * len(passes)
        if total > MAX_LAYERS and any(True for _ in calls(stmt.body)):
            raise Fatal(Diagnostic.error(
                "E503", f"nested loops would run their body {total:,} times, building at least that many "
                f"layers (limit {MAX_LAYERS:,})", stmt.iterable.span))
        outer, self.passes = self.passes, total
        try:
            return self.loop(stmt, scope, cur, passes)
        finally:
            self.passes = outer

    def exec_assert(self, stmt: S.AssertStmt, scope: Scope) -> None:
        cond = self.eval(stmt.cond, scope)
        if not isinstance(cond, bool):
            raise Abort(Diagnostic.error(
                "E302", f"assert needs true or false, got {type_name(cond)} {format_value(cond)}", stmt.cond.span))
        if cond:
            return
        text = _text(stmt.cond)
        shown = f"assertion failed: {text}"
        c = stmt.cond
        if isinstance(c, S.Binary) and c.op in ("==", "!=", "<", "<=", ">", ">="):
            sides = [(_text(e), self.eval(e, scope)) for e in (c.left, c.right)]
            shown += " (" + ", ".join(f"{t} is {_show(v)}" for t, v in sides) + ")"
        if stmt.message is not None:
            message = self.eval(stmt.message, scope)
            shown = f"{message if isinstance(message, str) else format_value(message)}: {shown}"
        raise Abort(Diagnostic.error("E310", shown, stmt.cond.span, self._call_notes()))

    def exec_default(self, stmt: S.DefaultStmt, scope: Scope) -> None:
        op = canonical_op(stmt.op)
        if op is not None:
            # Every layer also takes trainable= (like name=, handled once for all ops).
            names = [n for n in arg_names(OPS[op].attrs) if n != "constants"] + ["trainable"]
        elif stmt.op in self.unit.blocks:
            op = stmt.op
            names = [p.name for p in self.unit.blocks[op][0].params if not p.tensor]
        else:
            raise Abort(unknown_callee(S.Call(stmt.op, stmt.args, stmt.span, stmt.op_span), self.unit.blocks))
        positional, keyword = self.eval_args(stmt.args, scope)
        values = self.bind_args(stmt.op, names, positional, keyword, allow_name=False)
        scope.defaults.setdefault(op, {}).update(values)
        self.default_stmts.setdefault(id(stmt), (stmt, [id(span) for _, span in values.values()], tuple(self.stack)))

    def exec_chain(self, chain: S.Chain, scope: Scope, cur: str) -> str:
        for i, step in enumerate(chain.steps):
            if isinstance(step, S.Ref):
                if i > 0:
                    raise Abort(Diagnostic.error(
                        "E302", f"the tensor name {step.name!r} can only start a chain; "
                        f"to combine tensors use add(...), concat(...) or multiply(...)", step.span))
                cur = self.tensor(step.name, step.span, scope)
            else:
                cur = self.call(step, scope, cur, first=i == 0)
        return cur

    # names
    def tensor(self, name: str, span: Span, scope: Scope) -> str:
        found = scope.find(name)
        if found is None:
            hint = did_you_mean(name, scope.visible())
            if name == "in":
                raise Abort(Diagnostic.error("E203", "'in' is only defined inside a block", span))
            raise Abort(Diagnostic.error("E203", f"unbound name {clip(name)!r}" + hint, span))
        kind, value = found
        if kind != "tensor":
            if value is POISON_VALUE:
                raise Abort(None)
            raise Abort(Diagnostic.error(
                "E308", f"{name!r} is a value ({format_value(value)}), where a tensor is expected", span))
        if value == POISON:
            raise Abort(None)
        return value

    # calls
    def call(self, call: S.Call, scope: Scope, cur: str, first: bool) -> str:
        op = canonical_op(call.name)
        if op is not None:
            return self.op_call(op, call, scope, cur, first)
        entry = self.unit_of(call).blocks.get(call.name)
        if entry is not None:
            return self.block_call(entry, call, scope, cur)
        raise Abort(unknown_callee(call, self.unit_of(call).blocks))

    def unit_of(self, call: S.Call | S.FunCall) -> _Unit:
        """Blocks and fns are looked up in the file where the call is written."""
        return self.program.by_source.get(id(call.span.source), self.unit)

    def eval_args(self, args: Iterable[S.Arg], scope: Scope, tensors: bool = False
                  ) -> tuple[list[tuple[Any, Span]], dict[str, tuple[Any, Span]]]:
        positional: list[tuple[Any, Span]] = []
        keyword: dict[str, tuple[Any, Span]] = {}
        poisoned = False
        errors: list[Diagnostic] = []  # every bad argument of the call is reported, not only the first
        for a in args:
            try:
                self._eval_arg(a, scope, tensors, positional, keyword)
            except Abort as err:
                if err.diag is None:
                    poisoned = True
                else:
                    errors.append(err.diag)
        if errors:
            self.diags.extend(errors[:-1])
            raise Abort(errors[-1])
        if poisoned:
            raise Abort(None)
        return positional, keyword

    def _eval_arg(self, a: S.Arg, scope: Scope, tensors: bool, positional: list[tuple[Any, Span]],
                  keyword: dict[str, tuple[Any, Span]]) -> None:
        if a.name is None:
            if keyword:
                raise Abort(Diagnostic.error("E304", "a positional argument cannot follow a keyword argument", a.span))
            if tensors:
                if not isinstance(a.value, S.Name):
                    raise Abort(Diagnostic.error("E302", "merges take tensor names as positional arguments", a.value.span))
                try:
                    positional.append((self.tensor(a.value.id, a.value.span, scope), a.span))
                except Abort:
                    positional.append((POISON, a.span))  # still look at the other names
                    raise
            else:
                positional.append((self.eval(a.value, scope), a.value.span))
        else:
            name_span = Span(a.span.source, a.span.start, a.span.start + len(a.name))
            if a.name in keyword:
                raise Abort(Diagnostic.error("E304", f"argument {a.name!r} is given twice", name_span))
            self.name_spans[id(a.value.span)] = name_span
            keyword[a.name] = (self.eval(a.value, scope), a.value.span)

    def merge_operands(self, args: list[S.Arg], scope: Scope, numbers_ok: bool) -> list[tuple[Any, Span]]:
        """A merge's positional operands: tensor names, or (number,) where numbers are allowed."""
        out: list[tuple[Any, Span]] = []
        poisoned = False
        for a in args:
            if isinstance(a.value, S.Name) and (not numbers_ok or (scope.find(a.value.id) or ("",))[0] != "value"):
                try:
                    out.append((self.tensor(a.value.id, a.value.span, scope), a.span))
                except Abort as err:
                    if err.diag is not None:
                        raise
                    poisoned = True  # reported already; still look at the other names
                    out.append((POISON, a.span))
                continue
            if not numbers_ok:
                raise Abort(Diagnostic.error("E302", "merges take tensor names as positional arguments", a.value.span))
            value = self.eval(a.value, scope)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Abort(Diagnostic.error(
                    "E302", f"merge operands are tensor names or numbers, got {type_name(value)} "
                    f"{format_value(value)}", a.value.span))
            out.append(((value,), a.span))
        if poisoned:
            raise Abort(None)
        return out

    def bind_args(self, callee: str, names: list[str], positional: list[tuple[Any, Span]],
                  keyword: dict[str, tuple[Any, Span]], allow_name: bool = True) -> dict[str, tuple[Any, Span]]:
        if len(positional) > len(names):
            shown = ", ".join(names) if names else "no arguments"
            raise Abort(Diagnostic.error(
                "E304", f"{callee} takes at most {len(names)} positional argument(s) ({shown}), got {len(positional)}",
                positional[len(names)][1]))
        values = {n: v for n, v in zip(names, positional)}
        for key, (v, span) in keyword.items():
            if key == "name" and allow_name:
                continue
            name_span = self.name_spans.get(id(span), span)
            if key not in names:
                raise Abort(Diagnostic.error(
                    "E202", f"unknown argument {clip(key)!r} for {clip(callee)}" + did_you_mean(key, names), name_span))
            if key in values:
                raise Abort(Diagnostic.error("E304", f"argument {key!r} of {callee} is given twice", name_span))
            values[key] = (v, span)
        return values

    def op_call(self, op: str, call: S.Call, scope: Scope, cur: str, first: bool) -> str:
        opdef = OPS[op]
        constants: list[tuple[int, Any]] = []
        if opdef.merge:
            # A merge names its tensors; one that continues a chain also takes the chain's tensor first.
            # Elementwise merges also take numbers at any operand position (add(x, 3)).
            numbers_ok = "constants" in arg_names(opdef.attrs)
            named = self.merge_operands([a for a in call.args if a.name is None], scope, numbers_ok)
            _, keyword = self.eval_args([a for a in call.args if a.name is not None], scope)
            inputs = [] if first else [cur]
            for t, _ in named:
                if isinstance(t, str):
                    inputs.append(t)
                else:
                    constants.append((len(inputs) + len(constants), t[0]))
            if numbers_ok and not inputs and named:
                raise Abort(Diagnostic.error(
                    "E302", f"{call.name} needs at least one tensor operand, got only numbers", call.span,
                    self._call_notes()))
            positional: list[tuple[Any, Span]] = []
        else:
            positional, keyword = self.eval_args(call.args, scope)
            inputs = [cur]
        names = [n for n in arg_names(opdef.attrs) if n != "constants"]
        trainable = keyword.pop("trainable", None)
        values = self.bind_args(call.name, names, positional, keyword)
        for key, entry in scope.defaults_for(op).items():
            if key == "trainable":
                if trainable is None:
                    trainable = entry
                    self.defaults_used.add(id(entry[1]))
            elif key != "constants" and key not in values:
                values[key] = entry
                self.defaults_used.add(id(entry[1]))
        if constants:
            values["constants"] = (tuple(constants), call.span)
        if trainable is not None and not isinstance(trainable[0], bool):
            raise Abort(Diagnostic.error(
                "E302", f"{call.name}: trainable must be true or false, got {type_name(trainable[0])} "
                f"{format_value(trainable[0])}", trainable[1], self._call_notes()))
        try:
            attrs = make_attrs(opdef.attrs, {k: v for k, (v, _) in values.items()})
        except ArgError as err:
            arg = getattr(err, "arg", None)
            span = values[arg][1] if arg in values else call.span
            raise Abort(Diagnostic.error(err.code, f"{call.name}: {err.message}", span, self._call_notes())) from None
        layer_name = self.layer_name(opdef, keyword.get("name"))
        if POISON in inputs:
            # An input already failed and was reported; errors in the arguments alone still count.
            for code, message, arg in opdef.validate(attrs):
                span = values[arg][1] if arg in values else call.span
                raise Abort(Diagnostic.error(code, f"{call.name}: {message}", span, self._call_notes()))
            raise Abort(None)
        arg_spans = tuple((k, s) for k, (_, s) in values.items())
        if "name" in keyword:
            arg_spans += (("name", keyword["name"][1]),)
        if trainable is not None:
            arg_spans += (("trainable", trainable[1]),)
        node = Node(layer_name, op, tuple(inputs), attrs, call.span, tuple(s for _, s in self.stack), arg_spans,
                    tuple(self.block_path), trainable=trainable is None or trainable[0])
        assert self.checker is not None
        if len(self.checker.nodes) >= MAX_LAYERS:
            raise Fatal(Diagnostic.error("E503", f"network has more than {MAX_LAYERS:,} layers", call.span))
        if self.checker.add(node) is None:
            if len(self.checker.diagnostics) > MAX_DIAGNOSTICS:
                raise Fatal(Diagnostic.error("E503", "too many errors; stopping", call.span))
            return POISON
        return layer_name

    def layer_name(self, opdef: Any, given: tuple[Any, Span] | None) -> str:
        assert self.checker is not None
        if given is not None and given[0] is not None:  # name=none picks a name, as in Keras
            value, span = given
            if not isinstance(value, str) or not value or any(c in value for c in "/\x00\n"):
                raise Abort(Diagnostic.error(
                    "E302", f"name must be a non-empty string without '/', got {type_name(value)} {format_value(value)}", span))
            return value
        base = opdef.auto_name
        n = self.counters.get(base, 0)
        while True:
            candidate = base if n == 0 else f"{base}_{n}"
            n += 1
            if candidate not in self.checker.shapes:
                self.counters[base] = n
                return candidate

    def _call_notes(self) -> list[Note]:
        return [Note("in the block called here", s) for _, s in reversed(self.stack)]

    def block_call(self, entry: tuple[S.BlockDef, _Unit], call: S.Call, scope: Scope, cur: str) -> str:
        block, unit = entry
        active = [name for name, _ in self.stack]
        if block.name in active:
            cycle = active[active.index(block.name):] + [block.name]
            raise Fatal(Diagnostic.error(
                "E205", f"recursive block: {' -> '.join(cycle)}", call.name_span,
                [Note(f"{block.name!r} is defined here", block.name_span)] + self._call_notes()))
        if len(self.stack) >= MAX_BLOCK_DEPTH:
            raise Fatal(Diagnostic.error(
                "E502", f"block calls nested more than {MAX_BLOCK_DEPTH} deep", call.name_span))
        names = [p.name for p in block.params]
        positional, keyword = self.block_args(block, call, scope)
        if "name" in keyword and "name" not in names:
            raise Abort(Diagnostic.error("E202", f"unknown argument 'name' for block {block.name}", keyword["name"][1]))
        values = self.bind_args(block.name, names, positional, keyword, allow_name=False)
        for key, entry_ in scope.defaults_for(block.name).items():
            if key not in values:
                values[key] = entry_
                self.defaults_used.add(id(entry_[1]))
        params = self.param_scope(block.params, values, unit.scope, "block", block, call.span)
        tensors: dict[str, str] = {"in": cur}
        for p in block.params:
            if p.tensor:
                if p.name not in values:
                    raise Abort(Diagnostic.error(
                        "E301", f"block {block.name} is missing tensor argument {p.name!r}", call.span,
                        [Note(f"{block.name!r} is defined here", block.name_span)]))
                tensors[p.name] = values[p.name][0]
        inner = Scope(params, tensors=tensors, kind="body")
        inner.caller = scope  # defaults reach the blocks called from their scope (issue 9 item 5)
        self.stack.append((block.name, call.span))
        key = (*self.block_path, block.name)
        self.block_calls[key] = self.block_calls.get(key, 0) + 1
        self.block_path.append(f"{block.name}_{self.block_calls[key]}")
        try:
            return self.exec_body(block.body, inner, cur)
        finally:
            self.stack.pop()
            self.block_path.pop()

    def block_args(self, block: S.BlockDef, call: S.Call, scope: Scope
                   ) -> tuple[list[tuple[Any, Span]], dict[str, tuple[Any, Span]]]:
        """Evaluate a block call's arguments: tensor names for ``t: tensor`` parameters, values for the rest."""
        kinds = {p.name: p for p in block.params}
        if not any(p.tensor for p in block.params):
            for a in call.args:  # a tensor where a value is expected is worth its own message
                if isinstance(a.value, S.Name) and (found := scope.find(a.value.id)) and found[0] == "tensor":
                    break
            else:
                return self.eval_args(call.args, scope)
        positional: list[tuple[Any, Span]] = []
        keyword: dict[str, tuple[Any, Span]] = {}
        poisoned = False
        for i, a in enumerate(call.args):
            if a.name is None and keyword:
                raise Abort(Diagnostic.error("E304", "a positional argument cannot follow a keyword argument", a.span))
            target = a.name if a.name is not None else (block.params[i].name if i < len(block.params) else None)
            param = kinds.get(target) if target is not None else None
            if param is not None and param.tensor:
                if not isinstance(a.value, S.Name):
                    raise Abort(Diagnostic.error(
                        "E308", f"parameter {param.name!r} of block {block.name} takes a tensor name, "
                        f"got {_text(a.value)}", a.value.span, [Note(f"{param.name!r} is declared here", param.span)]))
                found = scope.find(a.value.id)
                if found is not None and found[0] == "value" and found[1] is not POISON_VALUE:
                    raise Abort(Diagnostic.error(
                        "E308", f"parameter {param.name!r} of block {block.name} takes a tensor, but {a.value.id!r} "
                        f"is a value ({format_value(found[1])})", a.value.span,
                        [Note(f"{param.name!r} is declared here", param.span)]))
                try:
                    value: Any = self.tensor(a.value.id, a.value.span, scope)
                except Abort as err:
                    if err.diag is not None:
                        raise
                    poisoned, value = True, POISON
            else:
                if isinstance(a.value, S.Name) and (found := scope.find(a.value.id)) and found[0] == "tensor":
                    what = f"parameter {param.name!r} of block {block.name}" if param else f"block {block.name}"
                    raise Abort(Diagnostic.error(
                        "E308", f"{what} takes a value, but {a.value.id!r} is a tensor; mark the parameter "
                        f"'{target or 'p'}: tensor' or pass channels({a.value.id}) or shape({a.value.id})",
                        a.value.span, [Note(f"{param.name!r} is declared here", param.span)] if param else []))
                value = self.eval(a.value, scope)
            if a.name is None:
                positional.append((value, a.value.span))
            else:
                name_span = Span(a.span.source, a.span.start, a.span.start + len(a.name))
                if a.name in keyword:
                    raise Abort(Diagnostic.error("E304", f"argument {a.name!r} is given twice", name_span))
                self.name_spans[id(a.value.span)] = name_span
                keyword[a.name] = (value, a.value.span)
        if poisoned:
            raise Abort(None)
        return positional, keyword


#: Statements that bind values or check things: an error in one leaves the current tensor as it was.
_VALUE_STMTS = (S.LetStmt, S.AssertStmt, S.AllowStmt, S.OutputStmt)


def _rebinds(body: Iterable[S.Stmt], name: str) -> bool:
    """Whether a loop body binds ``name`` itself, in a nested ``if``, or through a nested loop that carries it."""
    for stmt in body:
        if isinstance(stmt, (S.BindStmt, S.LetStmt)) and stmt.name == name:
            return True
        if isinstance(stmt, S.IfStmt) and (_rebinds(stmt.then, name) or _rebinds(stmt.orelse or (), name)):
            return True
        if isinstance(stmt, (S.RepeatStmt, S.ForStmt)) and any(n.id == name for n in stmt.carry):
            return True
    return False


def _text(expr: Any) -> str:
    """An expression as written in the source."""
    span = expr.span
    return span.source.text[span.start:span.end]


def _show(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return format_value(value)
