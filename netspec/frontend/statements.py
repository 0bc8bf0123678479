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

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..core.argtypes import MAX_SIZE, ArgError, clip, did_you_mean, format_value, type_name
from ..core.check import GraphChecker, NetworkReport
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
        elif isinstance(stmt, S.RepeatStmt):
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

    def __init__(self, program: _Program, unit: _Unit, netdef: S.NetworkDef):
        self.program = program
        self.unit = unit
        self.netdef = netdef
        self.checker: GraphChecker | None = None
        self.diags: list[Diagnostic] = []
        self.counters: dict[str, int] = {}
        self.steps = 0
        self.stack: list[tuple[str, Span]] = []
        self.name_spans: dict[int, Span] = {}
        self.passes = 1  # how many times the innermost repeat body runs in all

    # driver
    def run(self) -> NetworkReport:
        body = self.netdef.body
        name = self.netdef.name
        inputs = [s for s in body if isinstance(s, S.InputStmt)]
        if not inputs:
            return self._failed(Diagnostic.error("E211", f"network {name!r} has no input statement", self.netdef.name_span))
        for extra in inputs[1:]:
            self.diags.append(Diagnostic.error("E211", f"network {name!r} has more than one input", extra.span))
        first = inputs[0]
        if body[0] is not first:
            self.diags.append(Diagnostic.error("E211", "the input statement must come first in a network", first.span))
        scope = Scope()
        try:
            graph_input = self._input(first, scope)
        except Abort as err:
            return self._failed(err.diag)
        self.checker = GraphChecker(graph_input, self.program.silence)
        self.checker.shapes[POISON] = None
        scope.tensors[first.name] = first.name
        scope.spans[first.name] = first.span
        cur = first.name
        try:
            cur = self.exec_body([s for s in body if not isinstance(s, S.InputStmt)], scope, cur)
        except Fatal as err:
            self.diags.append(err.diag)
            cur = POISON
        report = self.checker.report(name, cur, self.netdef.name_span, self.diags)
        return NetworkReport(report.name, report.graph, report.layers, tuple(dedupe(report.diagnostics)),
                             report.input_shape, report.output_shape, report.span)

    def _failed(self, diag: Diagnostic | None) -> NetworkReport:
        diags = self.diags + ([diag] if diag else [])
        return NetworkReport(self.netdef.name, None, {}, tuple(diags), None, None, self.netdef.name_span)

    def _input(self, stmt: S.InputStmt, scope: Scope) -> Input:
        dims = []
        for d in stmt.dims:
            if d is None:
                dims.append(None)
                continue
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
        return Input(stmt.name, tuple(dims), layout, stmt.span)

    # statements
    def exec_body(self, body: Iterable[S.Stmt], scope: Scope, cur: str) -> str:
        for stmt in body:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise Fatal(Diagnostic.error(
                    "E503", f"network {self.netdef.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", getattr(stmt, "span", None)))
            try:
                cur = self.exec_stmt(stmt, scope, cur)
            except Abort as err:
                if err.diag is not None:
                    self.diags.append(err.diag)
                    if len(self.diags) > MAX_DIAGNOSTICS:
                        raise Fatal(Diagnostic.error("E503", "too many errors; stopping", err.diag.span)) from None
                cur = POISON
                if isinstance(stmt, S.BindStmt) and stmt.name not in scope.tensors:
                    scope.tensors[stmt.name] = POISON
        return cur

    def exec_stmt(self, stmt: S.Stmt, scope: Scope, cur: str) -> str:
        if isinstance(stmt, S.Chain):
            return self.exec_chain(stmt, scope, cur)
        if isinstance(stmt, S.BindStmt):
            if stmt.name in scope.tensors or stmt.name in scope.values:
                first = scope.spans.get(stmt.name)
                self.diags.append(Diagnostic.error(
                    "E204", f"name {stmt.name!r} is bound twice in one scope", stmt.name_span,
                    [Note("first bound here", first)] if first else []))
                return self.exec_chain(stmt.chain, scope, cur)
            result = self.exec_chain(stmt.chain, scope, cur)
            scope.tensors[stmt.name] = result
            scope.spans[stmt.name] = stmt.name_span
            return result
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
                return self._repeat(stmt, scope, cur, count)
            finally:
                self.passes = outer
        if isinstance(stmt, S.IfStmt):
            cond = self.eval(stmt.cond, scope)
            if not isinstance(cond, bool):
                raise Abort(Diagnostic.error("E302", f"if condition must be true or false, got {type_name(cond)} {format_value(cond)}", stmt.cond.span))
            body = stmt.then if cond else stmt.orelse
            return self.exec_body(body or (), Scope(scope), cur)
        if isinstance(stmt, S.DefaultStmt):
            self.exec_default(stmt, scope)
            return cur
        if isinstance(stmt, S.InputStmt):
            raise Abort(Diagnostic.error(
                "E101", "an input statement belongs at the start of a network; a block takes its input as 'in'",
                stmt.span))
        raise Abort(Diagnostic.error("E101", "unexpected statement", getattr(stmt, "span", None)))

    def _repeat(self, stmt: S.RepeatStmt, scope: Scope, cur: str, count: int) -> str:
        for i in range(count):
            self.steps += 1  # an empty body still costs a pass: bound nested repeats
            if self.steps > MAX_STEPS:
                raise Fatal(Diagnostic.error(
                    "E503", f"network {self.netdef.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", stmt.count.span))
            inner = Scope(scope, values={stmt.var: i} if stmt.var else None)
            cur = self.exec_body(stmt.body, inner, cur)
        return cur

    def exec_default(self, stmt: S.DefaultStmt, scope: Scope) -> None:
        op = canonical_op(stmt.op)
        if op is not None:
            names = [n for n in arg_names(OPS[op].attrs)]
        elif stmt.op in self.unit.blocks:
            op = stmt.op
            names = [p.name for p in self.unit.blocks[op][0].params]
        else:
            raise Abort(unknown_callee(S.Call(stmt.op, stmt.args, stmt.span, stmt.op_span), self.unit.blocks))
        positional, keyword = self.eval_args(stmt.args, scope)
        values = self.bind_args(stmt.op, names, positional, keyword, allow_name=False)
        scope.defaults.setdefault(op, {}).update(values)

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
            raise Abort(Diagnostic.error("E302", f"{name!r} is a value ({format_value(value)}), not a tensor", span))
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

    def unit_of(self, call: S.Call) -> _Unit:
        """Blocks are looked up in the file where the call is written."""
        name = call.span.file
        for unit in self.program.units.values():
            if unit.source is call.span.source:
                return unit
        return self.unit if name == self.unit.source.name else self.unit

    def eval_args(self, args: Iterable[S.Arg], scope: Scope, tensors: bool = False
                  ) -> tuple[list[tuple[Any, Span]], dict[str, tuple[Any, Span]]]:
        positional: list[tuple[Any, Span]] = []
        keyword: dict[str, tuple[Any, Span]] = {}
        poisoned = False
        for a in args:
            if a.name is None:
                if keyword:
                    raise Abort(Diagnostic.error("E304", "a positional argument cannot follow a keyword argument", a.span))
                if tensors:
                    if not isinstance(a.value, S.Name):
                        raise Abort(Diagnostic.error("E302", "merges take tensor names as positional arguments", a.value.span))
                    try:
                        positional.append((self.tensor(a.value.id, a.value.span, scope), a.span))
                    except Abort as err:
                        if err.diag is not None:
                            raise
                        poisoned = True  # reported already; still look at the other names
                        positional.append((POISON, a.span))
                else:
                    positional.append((self.eval(a.value, scope), a.value.span))
            else:
                name_span = Span(a.span.source, a.span.start, a.span.start + len(a.name))
                if a.name in keyword:
                    raise Abort(Diagnostic.error("E304", f"argument {a.name!r} is given twice", name_span))
                self.name_spans[id(a.value.span)] = name_span
                keyword[a.name] = (self.eval(a.value, scope), a.value.span)
        if poisoned:
            raise Abort(None)
        return positional, keyword

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
                trainable = trainable or entry
            elif key != "constants":
                values.setdefault(key, entry)
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
                    trainable=trainable is None or trainable[0])
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
        positional, keyword = self.eval_args(call.args, scope)
        if "name" in keyword and "name" not in names:
            raise Abort(Diagnostic.error("E202", f"unknown argument 'name' for block {block.name}", keyword["name"][1]))
        values = self.bind_args(block.name, names, positional, keyword, allow_name=False)
        for key, entry_ in scope.defaults_for(block.name).items():
            values.setdefault(key, entry_)
        params = Scope(None, values={})
        for p in block.params:
            if p.name in values:
                params.values[p.name] = values[p.name][0]
            elif p.default is not None:
                params.values[p.name] = self.eval(p.default, params)
            else:
                raise Abort(Diagnostic.error(
                    "E301", f"block {block.name} is missing argument {p.name!r}", call.span,
                    [Note(f"{block.name!r} is defined here", block.name_span)]))
        inner = Scope(params, tensors={"in": cur})
        self.stack.append((block.name, call.span))
        try:
            return self.exec_body(block.body, inner, cur)
        finally:
            self.stack.pop()

