"""Elaboration: surface AST to IR, checking each layer as it is built.

Resolves names and scopes, evaluates expressions, applies ``default``
statements, expands ``repeat``, ``if`` and block calls, follows imports,
and feeds every node to a :class:`~netspec.core.check.GraphChecker` so that
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
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.argtypes import CallValue, clip, did_you_mean, format_value, type_name
from ..core.check import NetworkReport
from ..core.diagnostics import CODES, Diagnostic, NetspecError, Note
from ..core.ir import Graph
from ..core.ops import canonical_op
from ..core.source import Source, Span
from . import surface as S
from .scope import (
    BUILTINS,
    MAX_BLOCK_DEPTH,
    MAX_LAYERS,
    MAX_REPEAT,
    MAX_STEPS,
    POISON_VALUE,
    TOTALS,
    Abort,
    Scope,
)
from .statements import NetworkElaborator, calls, dedupe, unknown_callee
from .syntax import parse_source

__all__ = [
    "MAX_BLOCK_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_LAYERS",
    "MAX_REPEAT",
    "MAX_STEPS",
    "FileReport",
    "check_file",
    "check_source",
    "graph_of",
    "load",
    "load_source",
]

#: Largest spec file netspec reads.
MAX_FILE_BYTES = 256 * 2**20


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
    #: Parameterised networks with a parameter without default: checked only through their instances.
    templates: tuple[str, ...] = ()

    @property
    def all_diagnostics(self) -> tuple[Diagnostic, ...]:
        """File-level diagnostics, then each network's, in order."""
        return self.diagnostics + tuple(d for n in self.networks for d in n.diagnostics)

    @property
    def ok(self) -> bool:
        """True when nothing in the file is an error."""
        return not any(d.is_error for d in self.all_diagnostics)

    def network(self, name: str | None = None) -> NetworkReport:
        """One network's report: the one named, or the only one when ``name`` is None.

        Raises :class:`NetspecError` (E208) if there is no such network, or
        if ``name`` is None and the file has several (the message names them).

        >>> r = check_source("network a {\\n input x: [2]\\n}\\nnetwork b {\\n input y: [3]\\n}\\n", "two.net")
        >>> r.network()
        Traceback (most recent call last):
        ...
        netspec.core.diagnostics.NetspecError: error[E208]: two.net has 2 networks (a, b): choose one with --network/-n (network= in the library)
        """
        if name is None and len(self.networks) == 1:
            return self.networks[0]
        names = [n.name for n in self.networks]
        if name is None and len(names) > 1:
            raise NetspecError([Diagnostic.error(
                "E208", f"{self.path} has {len(names)} networks ({', '.join(names)}): choose one with "
                "--network/-n (network= in the library)")])
        for net in self.networks:
            if net.name == name:
                return net
        msg = f"no network {name!r} in {self.path}" if name else f"no network in {self.path}"
        if name in self.templates:
            msg = (f"network {name!r} in {self.path} has parameters without defaults, so it is built only "
                   f"through its instances (network NAME = {name}(...))")
        if names:
            msg += f" (it has {', '.join(names)})" + did_you_mean(name or "", names)
        raise NetspecError([Diagnostic.error("E208", msg)])

    def select(self, name: str | None = None) -> NetworkReport:
        """The network to build: like :meth:`network`, and raises :class:`NetspecError` if it has errors.

        Only the file's own problems (syntax, imports, duplicate definitions)
        and the chosen network's count: an error in another network of the
        file does not stop this one.

        >>> r = check_source("network a {\\n input x: [2]\\n dense(2)\\n}\\nnetwork b {\\n input y: [3]\\n dense(q)\\n}\\n")
        >>> r.ok, r.select("a").total_params
        (False, 6)
        """
        file_errors = [d for d in self.diagnostics if d.is_error]
        if file_errors:
            raise NetspecError(self.diagnostics)
        net = self.network(name)
        if not net.ok:
            raise NetspecError(net.diagnostics or (Diagnostic.error("E211", f"network {net.name!r} is incomplete"),))
        return net


# --- public entry points ---------------------------------------------------------------------


def check_source(text: str, filename: str = "<string>", silence: Iterable[str] = (),
                 base_dir: str | os.PathLike | None = None,
                 input_shape: tuple[int, ...] | None = None) -> FileReport:
    """Parse, elaborate and check ``.net`` text; never raises for a bad spec.

    >>> check_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n").networks[0].total_params
    10
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return _Program(silence, input_shape).check(filename, text, base / filename if base_dir is not None else None)


def check_file(path: str | os.PathLike, silence: Iterable[str] = (),
               input_shape: tuple[int, ...] | None = None) -> FileReport:
    """Parse, elaborate and check a ``.net`` file; never raises for a bad spec.

    A file that cannot be read gives an E603 diagnostic.  ``input_shape``
    (sizes without the batch axis) replaces each network's symbolic input
    sizes with concrete ones, as ``check --input-shape`` does.

    >>> [d.code for d in check_file("no/such/file.net").all_diagnostics]
    ['E603']
    """
    path = Path(path)
    program = _Program(silence, input_shape)
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

    ``network`` names the network to load; it may be left out when the
    file holds one.  Errors in the file's other networks do not stop it.

    The returned report's ``graph`` is the IR; ``layers`` holds each node's
    shape and counts.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "n.net")
    >>> _ = open(path, "w").write("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n")
    >>> load(path).total_params
    10
    """
    return check_file(path, silence).select(network)


def load_source(text: str, network: str | None = None, filename: str = "<string>") -> NetworkReport:
    """Like :func:`load`, from text.

    >>> load_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n").graph.nodes[0].name
    'dense'
    """
    return check_source(text, filename).select(network)


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
    fns: dict[str, tuple[S.FnDef, _Unit]] = field(default_factory=dict)
    #: File-level ``let`` values, seen by every item of the file.
    scope: Scope = field(default_factory=Scope)


#: Names an ``fn`` cannot take: the built-in functions.
_RESERVED_FNS = frozenset(("channels", "shape", *BUILTINS, *TOTALS))


class _Program:
    def __init__(self, silence: Iterable[str], input_shape: tuple[int, ...] | None = None):
        self.silence = tuple(silence)
        self.input_shape = input_shape
        self.units: dict[Path, _Unit] = {}
        self.by_source: dict[int, _Unit] = {}
        self.loading: list[tuple[Path, Span | None]] = []
        self.diags: list[Diagnostic] = []
        #: ``allow`` regions: source, start and end offsets, and the codes they silence.
        self.allows: list[tuple[Source, int, int, frozenset[str]]] = []

    def allowed(self, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
        """Drop the warnings that an ``allow`` covers (at the warning or at a block call that made it)."""
        diags = list(diags)
        if not self.allows:
            return diags
        out = []
        for d in diags:
            if not d.is_error and any(self._covers(span, d.code) for span in (d.span, *(n.span for n in d.notes))):
                continue
            out.append(d)
        return out

    def _covers(self, span: Span | None, code: str) -> bool:
        if span is None:
            return False
        return any(src is span.source and start <= span.start < end and code in codes
                   for src, start, end, codes in self.allows)

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

    # Hooks for tools that keep files in memory (the language server: unsaved buffers, cached parses).
    def read(self, path: Path) -> bytes:
        """The bytes of an imported file."""
        return read_spec_bytes(path)

    def parse(self, text: str, name: str) -> S.File:
        """The syntax tree of a file's text; raises NetspecError on a syntax error."""
        return parse_source(text, name)

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
            seen: dict[str, S.NetworkDef | S.InstanceDef] = {}
            for item in unit.ast.items:
                if isinstance(item, (S.NetworkDef, S.InstanceDef)):
                    if item.name in seen:
                        self.diags.append(Diagnostic.error(
                            "E210", f"network {item.name!r} is defined twice", item.name_span,
                            [Note("first defined here", seen[item.name].name_span)]))
                        continue
                    seen[item.name] = item
            for item in unit.ast.items:
                if seen.get(getattr(item, "name", None)) is not item:
                    continue
                if isinstance(item, S.NetworkDef):
                    if all(p.default is not None for p in item.params or ()):
                        networks.append(NetworkElaborator(self, unit, item).run())
                elif isinstance(item, S.InstanceDef):
                    report = self._instance(unit, item, seen)
                    if report is not None:
                        networks.append(report)
            self._lint_blocks(unit)
            if not unit.ast.items or not any(isinstance(i, (S.NetworkDef, S.BlockDef)) for i in unit.ast.items):
                # Nothing to check is a mistake (an empty or truncated file); a file of blocks
                # only is a library for `import` and checks clean.
                self.diags.append(Diagnostic.error(
                    "E208", f"no network in {name}: the file defines no network or block",
                    Span(unit.source, 0, 0)))
        templates = tuple(item.name for item in (unit.ast.items if unit.ast else ())
                          if isinstance(item, S.NetworkDef) and any(p.default is None for p in item.params or ()))
        return FileReport(name, tuple(networks), tuple(dedupe(self.diags)), templates)

    def _instance(self, unit: _Unit, item: S.InstanceDef, defs: dict) -> NetworkReport | None:
        """``network NAME = OTHER(args)``: OTHER's body, elaborated with these arguments under NAME."""
        target = defs.get(item.target)
        if not isinstance(target, S.NetworkDef):
            nets = [n for n, d in defs.items() if isinstance(d, S.NetworkDef) and d.params is not None]
            if target is None:
                msg = f"no network {item.target!r} to make an instance of" + did_you_mean(item.target, nets)
            else:
                msg = f"{item.target!r} is itself an instance; make an instance of the network it comes from"
            self.diags.append(Diagnostic.error("E208", msg, item.target_span))
            return None
        evaluator = NetworkElaborator(self, unit, None)
        params = target.params or ()
        try:
            positional, keyword = evaluator.eval_args(item.args, unit.scope)
            values = evaluator.bind_args(item.target, [p.name for p in params], positional, keyword, allow_name=False)
        except Abort as err:
            if err.diag is not None:
                self.diags.append(err.diag)
            return None
        for p in params:
            if p.name in values and p.default is not None:
                value, span = values[p.name]
                try:
                    default = evaluator.eval(p.default, unit.scope)
                except Abort:
                    continue
                if not _same_kind(value, default):
                    self.diags.append(Diagnostic.error(
                        "E309", f"argument {p.name!r} of network {item.target} takes {type_name(default)} "
                        f"(its default is {format_value(default)}), got {type_name(value)} {format_value(value)}",
                        span, [Note(f"{p.name!r} is declared here", p.span)]))
                    return None
        return NetworkElaborator(self, unit, target, name=item.name, args=values, instance=item).run()

    def _unit(self, name: str, text: str, path: Path | None, import_span: Span | None) -> _Unit:
        if "\r" in text:
            # Old Mac line endings (CR alone) end lines as CR LF and LF do; same length, so offsets hold.
            text = re.sub(r"\r(?!\n)", "\n", text)
        try:
            ast = self.parse(text, name)
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
                    imported = self._import(unit, item)
                    if imported is not None:
                        for bname, entry in imported.blocks.items():
                            self._add_block(unit, bname, entry)
                        for fname, fentry in imported.fns.items():
                            self._add_fn(unit, fname, fentry)
            for item in ast.items:
                if isinstance(item, S.BlockDef):
                    self._add_block(unit, item.name, (item, unit))
                elif isinstance(item, S.FnDef):
                    self._add_fn(unit, item.name, (item, unit))
            self.by_source[id(unit.source)] = unit
            self._file_values(unit)
        finally:
            if key is not None:
                self.loading.pop()
        return unit

    def _add_fn(self, unit: _Unit, name: str, entry: tuple[S.FnDef, _Unit]) -> None:
        old = unit.fns.get(name)
        if old is not None and old[0] is not entry[0]:
            self.diags.append(Diagnostic.error(
                "E210", f"fn {name!r} is defined twice", entry[0].name_span,
                [Note("first defined here", old[0].name_span)]))
            return
        if name in _RESERVED_FNS:
            self.diags.append(Diagnostic.error(
                "E210", f"fn {name!r} has the name of a built-in function", entry[0].name_span))
            return
        unit.fns[name] = entry

    def _file_values(self, unit: _Unit) -> None:
        """File-level ``let`` values (in order), ``allow`` regions, and recursive fns."""
        assert unit.ast is not None
        evaluator = NetworkElaborator(self, unit, None)
        for item in unit.ast.items:
            if isinstance(item, S.LetStmt):
                try:
                    if item.name in unit.scope.values:
                        raise Abort(Diagnostic.error(
                            "E204", f"name {item.name!r} is bound twice at file level", item.name_span,
                            [Note("first bound here", unit.scope.spans[item.name])]))
                    unit.scope.values[item.name] = evaluator.eval(item.value, unit.scope)
                    unit.scope.spans[item.name] = item.name_span
                except Abort as err:
                    if err.diag is not None:
                        self.diags.append(err.diag)
                    unit.scope.values.setdefault(item.name, POISON_VALUE)
        self._allows(unit, unit.ast.items, True)
        self._fn_cycles(unit)

    def _allows(self, unit: _Unit, body: Iterable, file_level: bool = False) -> None:
        body = tuple(body)
        for stmt in body:
            if isinstance(stmt, S.AllowStmt):
                codes = set()
                for c in stmt.codes:
                    code = c.id.upper()
                    if not code.startswith("W") or code not in CODES:
                        what = "an error, which cannot be silenced" if code in CODES else "not a warning code"
                        self.diags.append(Diagnostic.error(
                            "E221", f"allow: {clip(c.id)!r} is {what} (the warning codes are listed "
                            "in docs/diagnostics.md)", c.span))
                    codes.add(code)
                end = len(unit.source.text) if file_level else body[-1].span.end
                self.allows.append((unit.source, 0 if file_level else stmt.span.start, end, frozenset(codes)))
            for inner in _bodies(stmt):
                self._allows(unit, inner)

    def _fn_cycles(self, unit: _Unit) -> None:
        """A fn that calls itself, directly or through others: E218 naming the cycle."""
        own = {n: fn for n, (fn, u) in unit.fns.items() if u is unit}
        state: dict[str, int] = {}  # 1 visiting, 2 done
        path: list[tuple[str, S.FunCall | None]] = []

        def visit(name: str, via: S.FunCall | None) -> None:
            state[name] = 1
            path.append((name, via))
            fn = own[name]
            for call in _funcalls([fn.body, *(p.default for p in fn.params if p.default is not None)]):
                if call.name not in own:
                    continue
                if state.get(call.name) == 1:
                    names = [n for n, _ in path]
                    cycle = names[names.index(call.name):] + [call.name]
                    notes = [Note(f"{n!r} calls {m!r} here", c.span)
                             for (n, _), (m, c) in zip(path[names.index(call.name):], path[names.index(call.name) + 1:])
                             if c is not None]
                    self.diags.append(Diagnostic.error(
                        "E218", f"recursive fn: {' -> '.join(cycle)}", call.span, notes))
                elif call.name not in state:
                    visit(call.name, call)
            path.pop()
            state[name] = 2

        for name in own:
            if name not in state:
                visit(name, None)

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

    def _import(self, unit: _Unit, item: S.Import) -> _Unit | None:
        base = unit.path.parent if unit.path is not None else Path.cwd()
        target = (base / item.path).resolve()
        active = [p for p, _ in self.loading]
        if target in active:
            cycle = self.loading[active.index(target):]
            names = " -> ".join([p.name for p, _ in cycle] + [target.name])
            chain = [Note(f"{p.name} is imported here", s) for p, s in cycle[1:] if s]
            self.diags.append(Diagnostic.error("E206", f"import cycle: {names}", item.span, chain))
            return None
        if target in self.units:
            return self.units[target]
        try:
            data = self.read(target)
        except OSError as err:
            self.diags.append(Diagnostic.error(
                "E207", f"cannot import {item.path!r}: {err.strerror or err} ({target})", item.span))
            return None
        text = self.decode(data, str(target))
        if isinstance(text, Diagnostic):
            self.diags.append(Diagnostic.error(text.code, text.message, item.span))
            return None
        # Name the imported file as the user would reach it from the importing file's name.
        shown = os.path.normpath(os.path.join(os.path.dirname(unit.source.name), item.path))
        return self._unit(shown, text, target, item.span)

    def _lint_blocks(self, unit: _Unit) -> None:
        """Unknown op names in blocks that no network calls are still errors."""
        for item in unit.ast.items if unit.ast else ():
            if isinstance(item, S.BlockDef):
                for call in calls(item.body):
                    if canonical_op(call.name) is None and call.name not in unit.blocks:
                        self.diags.append(unknown_callee(call, unit.blocks))



def _bodies(stmt: object) -> list[tuple]:
    """The statement bodies directly inside an item or statement."""
    if isinstance(stmt, (S.NetworkDef, S.BlockDef, S.RepeatStmt, S.ForStmt)):
        return [stmt.body]
    if isinstance(stmt, S.IfStmt):
        return [stmt.then, stmt.orelse or ()]
    return []


def _funcalls(exprs: Iterable[object]) -> Iterable[S.FunCall]:
    stack = list(exprs)
    while stack:
        e = stack.pop()
        if isinstance(e, S.FunCall):
            yield e
            stack.extend(a.value for a in e.args)
        elif isinstance(e, S.Binary):
            stack.extend((e.left, e.right))
        elif isinstance(e, S.Unary):
            stack.append(e.operand)
        elif isinstance(e, S.Index):
            stack.extend((e.target, e.index))
        elif isinstance(e, S.TupleExpr):
            stack.extend(e.items)
        elif isinstance(e, S.CondExpr):
            stack.extend((e.then, e.cond, e.orelse))


def _same_kind(value: object, default: object) -> bool:
    """Whether an instance argument has the type of the parameter's default (``none`` takes anything)."""
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float))
    if isinstance(default, CallValue) or isinstance(value, CallValue):
        return isinstance(value, (CallValue, str)) and isinstance(default, (CallValue, str))
    return type(value) is type(default)


def graph_of(report: NetworkReport) -> Graph:
    """The checked graph of a network report; raises :class:`NetspecError` if it has errors."""
    report.raise_for_errors()
    assert report.graph is not None
    return report.graph

