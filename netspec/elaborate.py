"""Elaboration: surface AST to IR, checking each layer as it is built.

Resolves names and scopes, evaluates expressions, applies ``default``
statements, expands ``repeat``, ``if`` and block calls, follows imports,
and feeds every node to a :class:`~netspec.check.GraphChecker` so that
``channels(x)`` and ``shape(x)`` can be answered while building.  Every
problem becomes a diagnostic; nothing a user writes raises anything else.

>>> report = check_source('''
... block double(n) {
...     conv2d(n, 3, padding='same') -> conv2d(n, 3, padding='same')
... }
... network net {
...     input x: [32, 32, 3]
...     repeat 2 as i { double(16 * (i + 1)) }
... }''')
>>> [(n.name, n.op) for n in report.networks[0].graph][-2:]
[('conv2d_2', 'conv2d'), ('conv2d_3', 'conv2d')]
>>> report.networks[0].output_shape
(32, 32, 32)
"""

from __future__ import annotations

import gc
import math
import operator
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import surface as S
from .argtypes import MAX_SIZE, ArgError, CallValue, clip, did_you_mean, format_value, type_name
from .check import GraphChecker, NetworkReport
from .diagnostics import Diagnostic, NetspecError, Note
from .ir import Graph, Input, Node
from .ops import ALIASES, OPS, arg_names, canonical_op, make_attrs
from .shapes import channel_axis
from .source import Source, Span
from .syntax import parse_source

__all__ = [
    "MAX_BLOCK_DEPTH",
    "MAX_LAYERS",
    "MAX_REPEAT",
    "MAX_STEPS",
    "FileReport",
    "check_file",
    "check_source",
    "load",
    "load_source",
]

#: Most layers one network may have.
MAX_LAYERS = 500_000
#: Largest count one ``repeat`` may have.
MAX_REPEAT = 1_000_000
#: Most statements one network's elaboration may execute (bounds nested repeats).
MAX_STEPS = 5_000_000
#: Deepest nesting of block calls.
MAX_BLOCK_DEPTH = 100
#: Largest integer an expression may produce.
MAX_INT = 2**63 - 1
#: Longest string an expression may produce.
MAX_STRING = 10_000
#: Largest spec file netspec reads.
MAX_FILE_BYTES = 256 * 2**20
#: Most diagnostics reported for one network before giving up.
MAX_DIAGNOSTICS = 200

_POISON = "\x00error"
#: Functions an expression may call besides channels() and shape().
_BUILTINS = ("str", "len", "min", "max")


@dataclass(frozen=True)
class FileReport:
    """Everything ``netspec check`` learned about one file.

    ``diagnostics`` holds file-level problems (syntax, imports, duplicate
    definitions); each network's own are in its :class:`NetworkReport`.

    >>> r = check_source("network a {\\n input x: [2]\\n dense(1)\\n}\\nnetwork b {\\n input y: [3]\\n}\\n")
    >>> [n.name for n in r.networks], r.ok, r.network("b").output_shape
    (['a', 'b'], True, (3,))
    """

    path: str
    networks: tuple[NetworkReport, ...]
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def all_diagnostics(self) -> tuple[Diagnostic, ...]:
        """File-level diagnostics, then each network's, in order."""
        return self.diagnostics + tuple(d for n in self.networks for d in n.diagnostics)

    @property
    def ok(self) -> bool:
        """True when nothing in the file is an error."""
        return not any(d.is_error for d in self.all_diagnostics)

    def network(self, name: str | None = None) -> NetworkReport:
        """One network's report (the only one, or the first, when ``name`` is None).

        Raises :class:`NetspecError` (E208) if there is no such network.
        """
        if name is None and self.networks:
            return self.networks[0]
        for net in self.networks:
            if net.name == name:
                return net
        names = [n.name for n in self.networks]
        msg = f"no network {name!r} in {self.path}" if name else f"no network in {self.path}"
        if names:
            msg += f" (it has {', '.join(names)})" + did_you_mean(name or "", names)
        raise NetspecError([Diagnostic.error("E208", msg)])


# --- public entry points ---------------------------------------------------------------------


def check_source(text: str, filename: str = "<string>", silence: Iterable[str] = (),
                 base_dir: str | os.PathLike | None = None) -> FileReport:
    """Parse, elaborate and check ``.net`` text; never raises for a bad spec.

    >>> check_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n").networks[0].total_params
    10
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _Program(silence).check(filename, text, base / filename if base_dir is not None else None)


def check_file(path: str | os.PathLike, silence: Iterable[str] = ()) -> FileReport:
    """Parse, elaborate and check a ``.net`` file; never raises for a bad spec.

    A file that cannot be read gives an E603 diagnostic.

    >>> [d.code for d in check_file("no/such/file.net").all_diagnostics]
    ['E603']
    """
    path = Path(path)
    program = _Program(silence)
    try:
        data = read_spec_bytes(path)
    except OSError as err:
        return FileReport(str(path), (), (Diagnostic.error("E603", f"cannot read {path}: {err.strerror or err}"),))
    text = program.decode(data, str(path))
    if isinstance(text, Diagnostic):
        return FileReport(str(path), (), (text,))
    return program.check(str(path), text, path)


def load(path: str | os.PathLike, network: str | None = None, silence: Iterable[str] = ()) -> NetworkReport:
    """Load one network from a file, checked; raises :class:`NetspecError` on any error.

    The returned report's ``graph`` is the IR; ``layers`` holds each node's
    shape and counts.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "n.net")
    >>> _ = open(path, "w").write("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n")
    >>> load(path).total_params
    10
    """
    report = check_file(path, silence)
    if not report.ok:
        raise NetspecError(report.all_diagnostics)
    return report.network(network)


def load_source(text: str, network: str | None = None, filename: str = "<string>") -> NetworkReport:
    """Like :func:`load`, from text.

    >>> load_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n").graph.nodes[0].name
    'dense'
    """
    report = check_source(text, filename)
    if not report.ok:
        raise NetspecError(report.all_diagnostics)
    return report.network(network)


def read_spec_bytes(path: Path) -> bytes:
    """A spec file's bytes; refuses what is not a regular file or is over :data:`MAX_FILE_BYTES`.

    ``/dev/zero`` or a FIFO would otherwise be read until memory runs out.

    >>> read_spec_bytes(Path("/dev/null"))
    Traceback (most recent call last):
    ...
    OSError: not a regular file
    """
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(f"file of {info.st_size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit")
        return f.read(MAX_FILE_BYTES + 1)


# --- program: files, imports, blocks ---------------------------------------------------------


@dataclass
class _Unit:
    path: Path | None
    source: Source
    ast: S.File | None
    blocks: dict[str, tuple[S.BlockDef, _Unit]] = field(default_factory=dict)


class _Program:
    def __init__(self, silence: Iterable[str]):
        self.silence = tuple(silence)
        self.units: dict[Path, _Unit] = {}
        self.loading: list[tuple[Path, Span | None]] = []
        self.diags: list[Diagnostic] = []

    @staticmethod
    def decode(data: bytes, name: str) -> str | Diagnostic:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            head = data[: err.start].decode("utf-8", "replace")
            src = Source(name, head + data[err.start:].decode("utf-8", "replace"))
            return Diagnostic.error(
                "E103", f"not UTF-8 text: byte 0x{data[err.start]:02x} cannot start a character; is this a binary file?",
                Span(src, len(head), len(head) + 1))

    def check(self, name: str, text: str, path: Path | None) -> FileReport:
        # Elaboration allocates many small acyclic objects; the cyclic collector would
        # rescan them all again and again, making large specs quadratic.
        enabled = gc.isenabled()
        gc.disable()
        # Nesting is bounded (blocks and brackets 100 deep), but the two together can need
        # more Python frames than the default limit of 1,000.
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            return self._check(name, text, path)
        finally:
            sys.setrecursionlimit(limit)
            if enabled:
                gc.enable()

    def _check(self, name: str, text: str, path: Path | None) -> FileReport:
        unit = self._unit(name, text, path, None)
        networks: list[NetworkReport] = []
        if unit.ast is not None:
            seen: dict[str, S.NetworkDef] = {}
            for item in unit.ast.items:
                if isinstance(item, S.NetworkDef):
                    if item.name in seen:
                        self.diags.append(Diagnostic.error(
                            "E210", f"network {item.name!r} is defined twice", item.name_span,
                            [Note("first defined here", seen[item.name].name_span)]))
                        continue
                    seen[item.name] = item
                    networks.append(_Network(self, unit, item).run())
            self._lint_blocks(unit)
        return FileReport(name, tuple(networks), tuple(_dedupe(self.diags)))

    def _unit(self, name: str, text: str, path: Path | None, import_span: Span | None) -> _Unit:
        try:
            ast = parse_source(text, name)
        except NetspecError as err:
            self.diags.extend(err.diagnostics)
            return _Unit(path, Source(name, text), None)
        unit = _Unit(path, ast.source, ast)
        key = path.resolve() if path is not None else None
        if key is not None:
            self.units[key] = unit
            self.loading.append((key, import_span))
        try:
            for item in ast.items:
                if isinstance(item, S.Import):
                    for bname, entry in self._import(unit, item).items():
                        self._add_block(unit, bname, entry)
            for item in ast.items:
                if isinstance(item, S.BlockDef):
                    self._add_block(unit, item.name, (item, unit))
        finally:
            if key is not None:
                self.loading.pop()
        return unit

    def _add_block(self, unit: _Unit, name: str, entry: tuple[S.BlockDef, _Unit]) -> None:
        old = unit.blocks.get(name)
        if old is not None and old[0] is not entry[0]:
            self.diags.append(Diagnostic.error(
                "E210", f"block {name!r} is defined twice", entry[0].name_span,
                [Note("first defined here", old[0].name_span)]))
            return
        if canonical_op(name) is not None:
            self.diags.append(Diagnostic.error(
                "E210", f"block {name!r} has the name of a built-in op", entry[0].name_span))
            return
        unit.blocks[name] = entry

    def _import(self, unit: _Unit, item: S.Import) -> dict[str, tuple[S.BlockDef, _Unit]]:
        base = unit.path.parent if unit.path is not None else Path.cwd()
        target = (base / item.path).resolve()
        active = [p for p, _ in self.loading]
        if target in active:
            cycle = self.loading[active.index(target):]
            names = " -> ".join([p.name for p, _ in cycle] + [target.name])
            chain = [Note(f"{p.name} is imported here", s) for p, s in cycle[1:] if s]
            self.diags.append(Diagnostic.error("E206", f"import cycle: {names}", item.span, chain))
            return {}
        if target in self.units:
            return self.units[target].blocks
        try:
            data = read_spec_bytes(target)
        except OSError as err:
            self.diags.append(Diagnostic.error(
                "E207", f"cannot import {item.path!r}: {err.strerror or err} ({target})", item.span))
            return {}
        text = self.decode(data, str(target))
        if isinstance(text, Diagnostic):
            self.diags.append(Diagnostic.error(text.code, text.message, item.span))
            return {}
        # Name the imported file as the user would reach it from the importing file's name.
        shown = os.path.normpath(os.path.join(os.path.dirname(unit.source.name), item.path))
        return self._unit(shown, text, target, item.span).blocks

    def _lint_blocks(self, unit: _Unit) -> None:
        """Unknown op names in blocks that no network calls are still errors."""
        for item in unit.ast.items if unit.ast else ():
            if isinstance(item, S.BlockDef):
                for call in _calls(item.body):
                    if canonical_op(call.name) is None and call.name not in unit.blocks:
                        self.diags.append(_unknown_callee(call, unit.blocks))


def _calls(body: Iterable[S.Stmt]) -> Iterable[S.Call]:
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


def _unknown_callee(call: S.Call, blocks: dict) -> Diagnostic:
    names = list(OPS) + list(ALIASES) + list(blocks)
    return Diagnostic.error("E201", f"unknown op or block {clip(call.name)!r}" + did_you_mean(call.name, names),
                            call.name_span)


def _dedupe(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    seen: set = set()
    out = []
    for d in diags:
        key = (d.severity, d.code, d.span.file if d.span else None, d.span.start if d.span else None)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


# --- one network ---------------------------------------------------------------------------------


class _Abort(Exception):
    """Stops one statement; its diagnostic is recorded and the statement's result is poisoned."""

    def __init__(self, diag: Diagnostic | None):
        self.diag = diag


class _Fatal(Exception):
    """Stops the whole network (a limit was reached)."""

    def __init__(self, diag: Diagnostic):
        self.diag = diag


class _Scope:
    __slots__ = ("parent", "tensors", "values", "defaults", "spans")

    def __init__(self, parent: _Scope | None = None, tensors: dict | None = None, values: dict | None = None):
        self.parent = parent
        self.tensors: dict[str, str] = tensors or {}
        self.values: dict[str, Any] = values or {}
        self.defaults: dict[str, dict[str, tuple[Any, Span]]] = {}
        self.spans: dict[str, Span] = {}

    def find(self, name: str) -> tuple[str, Any] | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.tensors:
                return "tensor", scope.tensors[name]
            if name in scope.values:
                return "value", scope.values[name]
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        out: list[str] = []
        scope: _Scope | None = self
        while scope is not None:
            out.extend(scope.tensors)
            out.extend(scope.values)
            scope = scope.parent
        return out

    def defaults_for(self, op: str) -> dict[str, tuple[Any, Span]]:
        chain = []
        scope: _Scope | None = self
        while scope is not None:
            if op in scope.defaults:
                chain.append(scope.defaults[op])
            scope = scope.parent
        merged: dict[str, tuple[Any, Span]] = {}
        for d in reversed(chain):
            merged.update(d)
        return merged


class _Network:
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
        scope = _Scope()
        try:
            graph_input = self._input(first, scope)
        except _Abort as err:
            return self._failed(err.diag)
        self.checker = GraphChecker(graph_input, self.program.silence)
        self.checker.shapes[_POISON] = None
        scope.tensors[first.name] = first.name
        scope.spans[first.name] = first.span
        cur = first.name
        try:
            cur = self.exec_body([s for s in body if not isinstance(s, S.InputStmt)], scope, cur)
        except _Fatal as err:
            self.diags.append(err.diag)
            cur = _POISON
        report = self.checker.report(name, cur, self.netdef.name_span, self.diags)
        return NetworkReport(report.name, report.graph, report.layers, tuple(_dedupe(report.diagnostics)),
                             report.input_shape, report.output_shape, report.span)

    def _failed(self, diag: Diagnostic | None) -> NetworkReport:
        diags = self.diags + ([diag] if diag else [])
        return NetworkReport(self.netdef.name, None, {}, tuple(diags), None, None, self.netdef.name_span)

    def _input(self, stmt: S.InputStmt, scope: _Scope) -> Input:
        dims = []
        for d in stmt.dims:
            if d is None:
                dims.append(None)
                continue
            v = self.eval(d, scope)
            if isinstance(v, bool) or not isinstance(v, int):
                code = "E305" if isinstance(v, float) else "E302"
                raise _Abort(Diagnostic.error(code, f"input size must be an integer or ?, got {type_name(v)} {format_value(v)}", d.span))
            if v < 1:
                raise _Abort(Diagnostic.error("E306", f"input size must be at least 1, got {v}", d.span))
            if v > MAX_SIZE:
                raise _Abort(Diagnostic.error("E501", f"input size {v} is too large to build (limit {MAX_SIZE})", d.span))
            dims.append(v)
        layout = stmt.layout or "channels_last"
        if layout not in ("channels_last", "channels_first"):
            raise _Abort(Diagnostic.error(
                "E303", f"bad layout {layout!r}: expected 'channels_last' or 'channels_first'"
                + did_you_mean(layout, ["channels_last", "channels_first"]), stmt.layout_span))
        return Input(stmt.name, tuple(dims), layout, stmt.span)

    # statements
    def exec_body(self, body: Iterable[S.Stmt], scope: _Scope, cur: str) -> str:
        for stmt in body:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise _Fatal(Diagnostic.error(
                    "E503", f"network {self.netdef.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", getattr(stmt, "span", None)))
            try:
                cur = self.exec_stmt(stmt, scope, cur)
            except _Abort as err:
                if err.diag is not None:
                    self.diags.append(err.diag)
                    if len(self.diags) > MAX_DIAGNOSTICS:
                        raise _Fatal(Diagnostic.error("E503", "too many errors; stopping", err.diag.span)) from None
                cur = _POISON
                if isinstance(stmt, S.BindStmt) and stmt.name not in scope.tensors:
                    scope.tensors[stmt.name] = _POISON
        return cur

    def exec_stmt(self, stmt: S.Stmt, scope: _Scope, cur: str) -> str:
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
                raise _Abort(Diagnostic.error(code, f"repeat count must be an integer, got {type_name(count)} {format_value(count)}", stmt.count.span))
            if count < 0:
                raise _Abort(Diagnostic.error("E306", f"repeat count must be at least 0, got {count}", stmt.count.span))
            if count > MAX_REPEAT:
                raise _Abort(Diagnostic.error("E503", f"repeat count {count:,} is too large (limit {MAX_REPEAT:,})", stmt.count.span))
            passes = self.passes * count
            if passes > MAX_LAYERS and any(True for _ in _calls(stmt.body)):
                raise _Fatal(Diagnostic.error(
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
                raise _Abort(Diagnostic.error("E302", f"if condition must be true or false, got {type_name(cond)} {format_value(cond)}", stmt.cond.span))
            body = stmt.then if cond else stmt.orelse
            return self.exec_body(body or (), _Scope(scope), cur)
        if isinstance(stmt, S.DefaultStmt):
            self.exec_default(stmt, scope)
            return cur
        if isinstance(stmt, S.InputStmt):
            raise _Abort(Diagnostic.error(
                "E101", "an input statement belongs at the start of a network; a block takes its input as 'in'",
                stmt.span))
        raise _Abort(Diagnostic.error("E101", "unexpected statement", getattr(stmt, "span", None)))

    def _repeat(self, stmt: S.RepeatStmt, scope: _Scope, cur: str, count: int) -> str:
        for i in range(count):
            self.steps += 1  # an empty body still costs a pass: bound nested repeats
            if self.steps > MAX_STEPS:
                raise _Fatal(Diagnostic.error(
                    "E503", f"network {self.netdef.name!r} runs more than {MAX_STEPS:,} statements; "
                    "is a repeat count too large?", stmt.count.span))
            inner = _Scope(scope, values={stmt.var: i} if stmt.var else None)
            cur = self.exec_body(stmt.body, inner, cur)
        return cur

    def exec_default(self, stmt: S.DefaultStmt, scope: _Scope) -> None:
        op = canonical_op(stmt.op)
        if op is not None:
            names = [n for n in arg_names(OPS[op].attrs)]
        elif stmt.op in self.unit.blocks:
            op = stmt.op
            names = [p.name for p in self.unit.blocks[op][0].params]
        else:
            raise _Abort(_unknown_callee(S.Call(stmt.op, stmt.args, stmt.span, stmt.op_span), self.unit.blocks))
        positional, keyword = self.eval_args(stmt.args, scope)
        values = self.bind_args(stmt.op, names, positional, keyword, allow_name=False)
        scope.defaults.setdefault(op, {}).update(values)

    def exec_chain(self, chain: S.Chain, scope: _Scope, cur: str) -> str:
        for i, step in enumerate(chain.steps):
            if isinstance(step, S.Ref):
                if i > 0:
                    raise _Abort(Diagnostic.error(
                        "E302", f"the tensor name {step.name!r} can only start a chain; "
                        f"to combine tensors use add(...), concat(...) or multiply(...)", step.span))
                cur = self.tensor(step.name, step.span, scope)
            else:
                cur = self.call(step, scope, cur, first=i == 0)
        return cur

    # names
    def tensor(self, name: str, span: Span, scope: _Scope) -> str:
        found = scope.find(name)
        if found is None:
            hint = did_you_mean(name, scope.visible())
            if name == "in":
                raise _Abort(Diagnostic.error("E203", "'in' is only defined inside a block", span))
            raise _Abort(Diagnostic.error("E203", f"unbound name {clip(name)!r}" + hint, span))
        kind, value = found
        if kind != "tensor":
            raise _Abort(Diagnostic.error("E302", f"{name!r} is a value ({format_value(value)}), not a tensor", span))
        if value == _POISON:
            raise _Abort(None)
        return value

    # calls
    def call(self, call: S.Call, scope: _Scope, cur: str, first: bool) -> str:
        op = canonical_op(call.name)
        if op is not None:
            return self.op_call(op, call, scope, cur, first)
        entry = self.unit_of(call).blocks.get(call.name)
        if entry is not None:
            return self.block_call(entry, call, scope, cur)
        raise _Abort(_unknown_callee(call, self.unit_of(call).blocks))

    def unit_of(self, call: S.Call) -> _Unit:
        """Blocks are looked up in the file where the call is written."""
        name = call.span.file
        for unit in self.program.units.values():
            if unit.source is call.span.source:
                return unit
        return self.unit if name == self.unit.source.name else self.unit

    def eval_args(self, args: Iterable[S.Arg], scope: _Scope, tensors: bool = False
                  ) -> tuple[list[tuple[Any, Span]], dict[str, tuple[Any, Span]]]:
        positional: list[tuple[Any, Span]] = []
        keyword: dict[str, tuple[Any, Span]] = {}
        poisoned = False
        for a in args:
            if a.name is None:
                if keyword:
                    raise _Abort(Diagnostic.error("E304", "a positional argument cannot follow a keyword argument", a.span))
                if tensors:
                    if not isinstance(a.value, S.Name):
                        raise _Abort(Diagnostic.error("E302", "merges take tensor names as positional arguments", a.value.span))
                    try:
                        positional.append((self.tensor(a.value.id, a.value.span, scope), a.span))
                    except _Abort as err:
                        if err.diag is not None:
                            raise
                        poisoned = True  # reported already; still look at the other names
                        positional.append((_POISON, a.span))
                else:
                    positional.append((self.eval(a.value, scope), a.value.span))
            else:
                name_span = Span(a.span.source, a.span.start, a.span.start + len(a.name))
                if a.name in keyword:
                    raise _Abort(Diagnostic.error("E304", f"argument {a.name!r} is given twice", name_span))
                self.name_spans[id(a.value.span)] = name_span
                keyword[a.name] = (self.eval(a.value, scope), a.value.span)
        if poisoned:
            raise _Abort(None)
        return positional, keyword

    def bind_args(self, callee: str, names: list[str], positional: list[tuple[Any, Span]],
                  keyword: dict[str, tuple[Any, Span]], allow_name: bool = True) -> dict[str, tuple[Any, Span]]:
        if len(positional) > len(names):
            shown = ", ".join(names) if names else "no arguments"
            raise _Abort(Diagnostic.error(
                "E304", f"{callee} takes at most {len(names)} positional argument(s) ({shown}), got {len(positional)}",
                positional[len(names)][1]))
        values = {n: v for n, v in zip(names, positional)}
        for key, (v, span) in keyword.items():
            if key == "name" and allow_name:
                continue
            name_span = self.name_spans.get(id(span), span)
            if key not in names:
                raise _Abort(Diagnostic.error(
                    "E202", f"unknown argument {clip(key)!r} for {clip(callee)}" + did_you_mean(key, names), name_span))
            if key in values:
                raise _Abort(Diagnostic.error("E304", f"argument {key!r} of {callee} is given twice", name_span))
            values[key] = (v, span)
        return values

    def op_call(self, op: str, call: S.Call, scope: _Scope, cur: str, first: bool) -> str:
        opdef = OPS[op]
        if opdef.merge:
            # A merge names its tensors; one that continues a chain also takes the chain's tensor first.
            named, _ = self.eval_args([a for a in call.args if a.name is None], scope, tensors=True)
            _, keyword = self.eval_args([a for a in call.args if a.name is not None], scope)
            inputs = ([] if first else [cur]) + [t for t, _ in named]
            positional: list[tuple[Any, Span]] = []
        else:
            positional, keyword = self.eval_args(call.args, scope)
            inputs = [cur]
        values = self.bind_args(call.name, arg_names(opdef.attrs), positional, keyword)
        for key, entry in scope.defaults_for(op).items():
            values.setdefault(key, entry)
        try:
            attrs = make_attrs(opdef.attrs, {k: v for k, (v, _) in values.items()})
        except ArgError as err:
            arg = getattr(err, "arg", None)
            span = values[arg][1] if arg in values else call.span
            raise _Abort(Diagnostic.error(err.code, f"{call.name}: {err.message}", span, self._call_notes())) from None
        layer_name = self.layer_name(opdef, keyword.get("name"))
        if _POISON in inputs:
            # An input already failed and was reported; errors in the arguments alone still count.
            for code, message, arg in opdef.validate(attrs):
                span = values[arg][1] if arg in values else call.span
                raise _Abort(Diagnostic.error(code, f"{call.name}: {message}", span, self._call_notes()))
            raise _Abort(None)
        arg_spans = tuple((k, s) for k, (_, s) in values.items())
        if "name" in keyword:
            arg_spans += (("name", keyword["name"][1]),)
        node = Node(layer_name, op, tuple(inputs), attrs, call.span, tuple(s for _, s in self.stack), arg_spans)
        assert self.checker is not None
        if len(self.checker.nodes) >= MAX_LAYERS:
            raise _Fatal(Diagnostic.error("E503", f"network has more than {MAX_LAYERS:,} layers", call.span))
        if self.checker.add(node) is None:
            if len(self.checker.diagnostics) > MAX_DIAGNOSTICS:
                raise _Fatal(Diagnostic.error("E503", "too many errors; stopping", call.span))
            return _POISON
        return layer_name

    def layer_name(self, opdef: Any, given: tuple[Any, Span] | None) -> str:
        assert self.checker is not None
        if given is not None and given[0] is not None:  # name=none picks a name, as in Keras
            value, span = given
            if not isinstance(value, str) or not value or any(c in value for c in "/\x00\n"):
                raise _Abort(Diagnostic.error(
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

    def block_call(self, entry: tuple[S.BlockDef, _Unit], call: S.Call, scope: _Scope, cur: str) -> str:
        block, unit = entry
        active = [name for name, _ in self.stack]
        if block.name in active:
            cycle = active[active.index(block.name):] + [block.name]
            raise _Fatal(Diagnostic.error(
                "E205", f"recursive block: {' -> '.join(cycle)}", call.name_span,
                [Note(f"{block.name!r} is defined here", block.name_span)] + self._call_notes()))
        if len(self.stack) >= MAX_BLOCK_DEPTH:
            raise _Fatal(Diagnostic.error(
                "E502", f"block calls nested more than {MAX_BLOCK_DEPTH} deep", call.name_span))
        names = [p.name for p in block.params]
        positional, keyword = self.eval_args(call.args, scope)
        if "name" in keyword and "name" not in names:
            raise _Abort(Diagnostic.error("E202", f"unknown argument 'name' for block {block.name}", keyword["name"][1]))
        values = self.bind_args(block.name, names, positional, keyword, allow_name=False)
        for key, entry_ in scope.defaults_for(block.name).items():
            values.setdefault(key, entry_)
        params = _Scope(None, values={})
        for p in block.params:
            if p.name in values:
                params.values[p.name] = values[p.name][0]
            elif p.default is not None:
                params.values[p.name] = self.eval(p.default, params)
            else:
                raise _Abort(Diagnostic.error(
                    "E301", f"block {block.name} is missing argument {p.name!r}", call.span,
                    [Note(f"{block.name!r} is defined here", block.name_span)]))
        inner = _Scope(params, tensors={"in": cur})
        self.stack.append((block.name, call.span))
        try:
            return self.exec_body(block.body, inner, cur)
        finally:
            self.stack.pop()

    # expressions
    def eval(self, expr: S.Expr, scope: _Scope) -> Any:
        if isinstance(expr, S.Const):
            return expr.value
        if isinstance(expr, S.Name):
            found = scope.find(expr.id)
            if found is None:
                raise _Abort(Diagnostic.error("E203", f"unbound name {clip(expr.id)!r}" + did_you_mean(expr.id, scope.visible()), expr.span))
            kind, value = found
            if kind == "tensor":
                raise _Abort(Diagnostic.error(
                    "E302", f"{expr.id!r} is a tensor; use channels({expr.id}) or shape({expr.id}) for its sizes", expr.span))
            return value
        if isinstance(expr, S.Unary):
            v = self.eval(expr.operand, scope)
            if expr.op == "not":
                if not isinstance(v, bool):
                    raise _Abort(Diagnostic.error("E307", f"'not' needs true or false, got {type_name(v)}", expr.span))
                return not v
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _Abort(Diagnostic.error("E307", f"unary {expr.op} needs a number, got {type_name(v)}", expr.span))
            return -v if expr.op == "-" else v
        if isinstance(expr, S.Binary):
            if expr.op in _LEFT_ASSOCIATIVE:
                return self.binary(expr, scope)
            return self.binary_step(expr, self.eval(expr.left, scope), scope)
        if isinstance(expr, S.TupleExpr):
            return tuple(self.eval(i, scope) for i in expr.items)
        if isinstance(expr, S.Index):
            target = self.eval(expr.target, scope)
            index = self.eval(expr.index, scope)
            if not isinstance(target, tuple):
                raise _Abort(Diagnostic.error("E307", f"only tuples can be indexed, got {type_name(target)}", expr.target.span))
            if isinstance(index, bool) or not isinstance(index, int):
                raise _Abort(Diagnostic.error("E307", f"a tuple index must be an integer, got {type_name(index)}", expr.index.span))
            if not -len(target) <= index < len(target):
                raise _Abort(Diagnostic.error("E307", f"index {index} is out of range for a tuple of {len(target)}", expr.index.span))
            return target[index]
        if isinstance(expr, S.FunCall):
            return self.funcall(expr, scope)
        raise _Abort(Diagnostic.error("E307", "bad expression", getattr(expr, "span", None)))

    def funcall(self, expr: S.FunCall, scope: _Scope) -> Any:
        if expr.name in ("channels", "shape"):
            if len(expr.args) != 1 or expr.args[0].name is not None or not isinstance(expr.args[0].value, S.Name):
                raise _Abort(Diagnostic.error("E302", f"{expr.name}() takes one tensor name", expr.span))
            ref = expr.args[0].value
            tensor = self.tensor(ref.id, ref.span, scope)
            assert self.checker is not None
            shape = self.checker.shapes.get(tensor)
            if shape is None:
                raise _Abort(None)
            if expr.name == "shape":
                return tuple(shape)
            if len(shape) != 3:
                return shape[-1]
            return shape[channel_axis(self.checker.format)]
        if expr.name in _BUILTINS:
            return self.builtin(expr, scope)
        positional, keyword = self.eval_args(expr.args, scope)
        return CallValue(expr.name, tuple(v for v, _ in positional), tuple((k, v) for k, (v, _) in keyword.items()))

    def builtin(self, expr: S.FunCall, scope: _Scope) -> Any:
        """``str(x)``, ``len(t)``, ``min(a, b, ...)``, ``max(a, b, ...)``."""
        positional, keyword = self.eval_args(expr.args, scope)
        args = [v for v, _ in positional]
        if keyword or not args or (expr.name in ("str", "len") and len(args) != 1):
            count = "one argument" if expr.name in ("str", "len") else "one or more arguments"
            raise _Abort(Diagnostic.error("E302", f"{expr.name}() takes {count}, without keywords", expr.span))
        if expr.name == "str":
            if not isinstance(args[0], (int, float, str)) or isinstance(args[0], bool):
                raise _Abort(Diagnostic.error("E307", f"str() takes a number or a string, got {type_name(args[0])}", expr.span))
            return args[0] if isinstance(args[0], str) else format_value(args[0])
        if expr.name == "len":
            if not isinstance(args[0], (tuple, str)):
                raise _Abort(Diagnostic.error("E307", f"len() takes a tuple or a string, got {type_name(args[0])}", expr.span))
            return len(args[0])
        items = args[0] if len(args) == 1 and isinstance(args[0], tuple) else tuple(args)
        if not items or not all(_is_num(v) for v in items):
            raise _Abort(Diagnostic.error("E307", f"{expr.name}() takes numbers", expr.span))
        return min(items) if expr.name == "min" else max(items)

    def binary(self, expr: S.Binary, scope: _Scope) -> Any:
        # Walk the left spine of a left-associative chain (1 + 2 + ... + n) without recursion.
        spine = []
        node: S.Expr = expr
        while isinstance(node, S.Binary) and node.op in _LEFT_ASSOCIATIVE:
            spine.append(node)
            node = node.left
        value = self.eval(node, scope)
        for step in reversed(spine):
            value = self.binary_step(step, value, scope)
        return value

    def binary_step(self, expr: S.Binary, left: Any, scope: _Scope) -> Any:
        op = expr.op
        if op in ("and", "or"):
            if not isinstance(left, bool):
                raise _Abort(Diagnostic.error("E307", f"'{op}' needs true or false, got {type_name(left)}", expr.left.span))
            if (op == "and" and not left) or (op == "or" and left):
                return left
            right = self.eval(expr.right, scope)
            if not isinstance(right, bool):
                raise _Abort(Diagnostic.error("E307", f"'{op}' needs true or false, got {type_name(right)}", expr.right.span))
            return right
        right = self.eval(expr.right, scope)
        if op in ("==", "!="):
            same = left == right and type(left) is type(right) or (
                _is_num(left) and _is_num(right) and left == right)
            return same if op == "==" else not same
        if op in ("<", "<=", ">", ">="):
            if not ((_is_num(left) and _is_num(right)) or (isinstance(left, str) and isinstance(right, str))):
                raise _Abort(Diagnostic.error(
                    "E307", f"cannot compare {type_name(left)} with {type_name(right)} using {op}", expr.span))
            return _COMPARE[op](left, right)
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_STRING:
                raise _Abort(Diagnostic.error("E501", "string too long", expr.span))
            return left + right
        if op == "+" and isinstance(left, tuple) and isinstance(right, tuple):
            if len(left) + len(right) > MAX_STRING:
                raise _Abort(Diagnostic.error("E501", "tuple too long", expr.span))
            return left + right
        if not (_is_num(left) and _is_num(right)):
            raise _Abort(Diagnostic.error(
                "E307", f"cannot apply {op} to {type_name(left)} and {type_name(right)}", expr.span))
        try:
            if op == "**":
                result = _power(left, right)
            elif op in ("/", "//", "%") and right == 0:
                raise _Abort(Diagnostic.error("E307", f"division by zero in {format_value(left)} {op} {format_value(right)}", expr.span))
            else:
                result = _ARITH[op](left, right)
        except OverflowError:
            result = math.inf
        except _TooBig:
            raise _Abort(Diagnostic.error(
                "E501", f"{format_value(left)} ** {format_value(right)} is too large", expr.span)) from None
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise _Abort(Diagnostic.error("E501", f"value {op} result is too large (over {MAX_INT})", expr.span))
        if isinstance(result, float) and not math.isfinite(result):
            raise _Abort(Diagnostic.error("E501", f"result of {op} is too large or not a number", expr.span))
        if isinstance(result, complex):
            raise _Abort(Diagnostic.error("E307", "result is not a real number", expr.span))
        return result


class _TooBig(Exception):
    pass


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _power(base: Any, exp: Any) -> Any:
    if isinstance(base, int) and isinstance(exp, int) and exp >= 0:
        if abs(base) > 1 and exp * math.log2(abs(base)) > 64:
            raise _TooBig()
        return base**exp
    if isinstance(base, (int, float)) and base < 0 and isinstance(exp, float) and not exp.is_integer():
        return complex(0, 1)
    if base == 0 and exp < 0:
        raise OverflowError
    try:
        return float(base) ** float(exp)
    except OverflowError:
        return math.inf
    except ZeroDivisionError:
        return math.inf


_LEFT_ASSOCIATIVE = frozenset({"+", "-", "*", "/", "//", "%", "and", "or"})
_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def graph_of(report: NetworkReport) -> Graph:
    """The checked graph of a network report; raises :class:`NetspecError` if it has errors."""
    report.raise_for_errors()
    assert report.graph is not None
    return report.graph
