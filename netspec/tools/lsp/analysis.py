"""What the language server knows about a document, without any LSP machinery.

:class:`Files` is the editor's view of the file system: open buffers first
(saved or not), then the disk, read once per change of size or time, and a
cache of parses keyed by text, so an edit re-parses only the edited file.
:func:`analyze` checks a document through the real elaborator and builds an
index from offsets to layers, block calls and definitions; the query
functions (:func:`hover`, :func:`inlay_hints`, :func:`definition`,
:func:`completions`) answer in character offsets and plain strings, and
:mod:`netspec.tools.lsp.server` turns them into LSP messages.

>>> files = Files()
>>> doc = analyze(files, "/tmp/m.net", "network n {\\n    input x: [28, 28, 1]\\n    conv2d(8, 3)\\n}\\n")
>>> [(h.line, h.label) for h in inlay_hints(doc)]
[(1, '(None, 28, 28, 1)'), (2, '(None, 26, 26, 8)')]
>>> print(hover(doc, doc.text.index("conv2d")).splitlines()[0])
**conv2d** · `conv2d` (Keras `Conv2D`)
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...analysis.report import format_shape
from ...core import argtypes as at
from ...core.check import LayerInfo, NetworkReport
from ...core.diagnostics import Diagnostic
from ...core.ir import Node
from ...core.ops import ALIASES, OPS, REQUIRED, canonical_op
from ...core.source import Source, Span
from ...frontend import surface as S
from ...frontend.elaborate import FileReport, _Program, read_spec_bytes
from ...frontend.syntax import parse_source

__all__ = [
    "Analysis",
    "Completion",
    "Files",
    "Hint",
    "Target",
    "analyze",
    "completions",
    "definition",
    "hover",
    "inlay_hints",
    "line_starts",
]


# --- files and parses --------------------------------------------------------------------------


class Files:
    """Open buffers, file contents read from disk, and parses, all cached.

    A buffer wins over the disk; a disk file is read again only when its
    size or modification time changes; a parse is reused while its text
    and name are the same.

    >>> f = Files()
    >>> f.set_buffer("/tmp/a.net", "block b() {\\n dense(1)\\n}\\n")
    >>> f.read(Path("/tmp/a.net"))
    b'block b() {\\n dense(1)\\n}\\n'
    """

    PARSES = 64

    def __init__(self) -> None:
        self.buffers: dict[Path, str] = {}
        self._disk: dict[Path, tuple[int, int, bytes]] = {}
        self._parses: OrderedDict[tuple[str, str], S.File] = OrderedDict()

    @staticmethod
    def key(path: str | os.PathLike) -> Path:
        """The key of a file: its absolute, normalised path."""
        return Path(os.path.abspath(os.fspath(path)))

    def set_buffer(self, path: str | os.PathLike, text: str) -> None:
        """Record an open (maybe unsaved) buffer's text."""
        self.buffers[self.key(path)] = text

    def drop_buffer(self, path: str | os.PathLike) -> None:
        """Forget a closed buffer: the disk is the truth again."""
        self.buffers.pop(self.key(path), None)

    def read(self, path: Path) -> bytes:
        """A file's bytes: the open buffer, else the disk (cached while unchanged)."""
        key = self.key(path)
        text = self.buffers.get(key)
        if text is not None:
            return text.encode("utf-8")
        try:
            st = os.stat(key)
        except OSError:
            return read_spec_bytes(key)  # raises the error the elaborator reports
        cached = self._disk.get(key)
        if cached is not None and cached[0] == st.st_mtime_ns and cached[1] == st.st_size:
            return cached[2]
        data = read_spec_bytes(key)
        self._disk[key] = (st.st_mtime_ns, st.st_size, data)
        return data

    def parse(self, text: str, name: str) -> S.File:
        """The syntax tree of ``text``, reused while the text is unchanged."""
        key = (name, text)
        tree = self._parses.get(key)
        if tree is None:
            tree = parse_source(text, name)
            self._parses[key] = tree
            if len(self._parses) > self.PARSES:
                self._parses.popitem(last=False)
        else:
            self._parses.move_to_end(key)
        return tree


class _EditorProgram(_Program):
    """The elaborator's program, reading through :class:`Files`."""

    def __init__(self, files: Files, silence: Iterable[str] = ()):
        super().__init__(silence)
        self.files = files

    def read(self, path: Path) -> bytes:
        return self.files.read(path)

    def parse(self, text: str, name: str) -> S.File:
        return self.files.parse(text, name)


# --- the analysis ------------------------------------------------------------------------------


def line_starts(text: str) -> list[int]:
    """The offset of each line's first character.

    >>> line_starts("ab\\ncd\\n")
    [0, 3, 6]
    """
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


@dataclass
class _Anchor:
    """A place in the document that produced layers: an op call, or a block call."""

    start: int
    end: int
    is_call_site: bool
    nodes: list[tuple[int, Node, LayerInfo | None]] = field(default_factory=list)


@dataclass
class Analysis:
    """One checked document and its index."""

    path: Path
    text: str
    report: FileReport
    source: Source | None  # the document's Source as the checker saw it (None if it did not parse)
    tree: S.File | None
    units: dict[Path, Any]
    networks: tuple[NetworkReport, ...]
    anchors: dict[tuple[int, int], _Anchor] = field(default_factory=dict)
    imports: frozenset[Path] = frozenset()
    shapes: dict[int, str] = field(default_factory=dict)  # id(node) -> its shape as shown

    def shape_of(self, node: Node, info: LayerInfo | None) -> str:
        """A node's output shape as the table shows it (symbolic sizes as formulas)."""
        text = self.shapes.get(id(node))
        if text is not None:
            return text
        return format_shape(info.shape) if info is not None else "?"

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Every error and warning of the check."""
        return self.report.all_diagnostics

    def is_here(self, span: Span | None) -> bool:
        """Whether a span lies in this document."""
        return span is not None and self.source is not None and span.source is self.source

    def line_of(self, offset: int) -> int:
        """0-based line of an offset."""
        import bisect

        return bisect.bisect_right(self._starts, offset) - 1

    @property
    def _starts(self) -> list[int]:
        starts = self.__dict__.get("_line_starts")
        if starts is None:
            starts = line_starts(self.text)
            self.__dict__["_line_starts"] = starts
        return starts


def analyze(files: Files, path: str | os.PathLike, text: str, silence: Iterable[str] = ()) -> Analysis:
    """Check ``text`` as the file ``path`` (imports resolve beside it, through ``files``).

    >>> a = analyze(Files(), "/tmp/n.net", "network n {\\n input x: [4]\\n dense(2)\\n}\\n")
    >>> a.networks[0].output_shape, len(a.anchors)
    ((2,), 1)
    """
    key = Files.key(path)
    program = _EditorProgram(files, silence)
    report = program.check(str(key), text, key)
    unit = program.units.get(key.resolve())
    tree = unit.ast if unit is not None else None
    source = tree.source if tree is not None else None
    imports = frozenset(p for p in program.units if p != key.resolve())
    doc = Analysis(key, text, report, source, tree, dict(program.units), report.networks, imports=imports)
    if source is not None:
        _index(doc)
    return doc


def _shown(net: NetworkReport, name: str, shape: Any) -> str:
    """A tensor's shape with the symbolic pass's formulas where it has them (as ``check`` shows it)."""
    sym = getattr(net, "symbolic", None)
    if sym is not None and sym.shapes.get(name) is not None:
        from ...core.symbolic import shown

        return format_shape(tuple(shown(d) for d in sym.shapes[name]))
    return format_shape(shape)


def _index(doc: Analysis) -> None:
    for net in doc.networks:
        symbolic = getattr(net, "symbolic", None) is not None
        for i, (node, info) in enumerate(net.checked):
            if symbolic and info is not None:
                doc.shapes[id(node)] = _shown(net, node.name, info.shape)
            spans = [node.span] + [s for s in node.call_sites]
            for span in spans:
                if not doc.is_here(span):
                    continue
                key = (span.start, span.end)
                anchor = doc.anchors.get(key)
                if anchor is None:
                    anchor = doc.anchors[key] = _Anchor(span.start, span.end, span is not node.span)
                anchor.nodes.append((i, node, info))


# --- hover -------------------------------------------------------------------------------------


def _num(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _rf(info: LayerInfo) -> str:
    rf = info.receptive_field
    if rf is None:
        return "-"
    if rf == "global":
        return "global"
    return "x".join(str(r) for r in rf)


def _layer_line(doc: Analysis, node: Node, info: LayerInfo | None) -> str:
    if info is None:
        return f"`{node.name}`: not checked (see the error)"
    return (f"`{node.name}` → `{doc.shape_of(node, info)}` · params {_num(info.params)}"
            f"{'' if not info.non_trainable else f' ({_num(info.non_trainable)} non-trainable)'}"
            f" · MACs {_num(info.macs)} · RF {_rf(info)}")


def _runs(entries: list[tuple[int, Node, LayerInfo | None]]) -> list[list[tuple[int, Node, LayerInfo | None]]]:
    """Split nodes into runs of consecutive ones: one run per call (or per repeat pass)."""
    runs: list[list[tuple[int, Node, LayerInfo | None]]] = []
    last = None
    for entry in sorted(entries, key=lambda e: e[0]):
        if runs and last is not None and entry[0] == last + 1:
            runs[-1].append(entry)
        else:
            runs.append([entry])
        last = entry[0]
    return runs


def _anchor_at(doc: Analysis, offset: int) -> _Anchor | None:
    best: _Anchor | None = None
    for anchor in doc.anchors.values():
        if anchor.start <= offset < anchor.end or (offset == anchor.end and anchor.end > anchor.start):
            if best is None or (anchor.end - anchor.start) < (best.end - best.start):
                best = anchor
    return best


def _call_at(doc: Analysis, offset: int) -> S.Call | None:
    """The innermost call whose name is under the offset."""
    for node in _walk(doc.tree):
        if isinstance(node, S.Call) and node.name_span.start <= offset <= node.name_span.end:
            return node
    return None


def _funcall_at(doc: Analysis, offset: int) -> S.FunCall | None:
    """A call inside an expression (``fn`` functions, built-ins) whose name is under the offset."""
    for node in _walk(doc.tree):
        if isinstance(node, S.FunCall) and node.span.start <= offset <= node.span.start + len(node.name):
            return node
    return None


def _network_summary(doc: Analysis, name: str) -> str:
    """Totals of the checked networks called ``name`` (or instances of it), for a hover."""
    lines = []
    for net in doc.networks:
        if net.name != name and not (net.span is not None and net.span.text == name):
            continue
        if not net.ok:
            lines.append(f"`{net.name}`: has errors")
            continue
        ins = ", ".join(f"{i.name} `{_shown(net, i.name, i.shape)}`" for i in net.inputs)
        outs = ", ".join(f"`{_shown(net, o, s)}`" for o, s in zip(net.outputs, net.output_shapes))
        lines.append(f"`{net.name}`: {ins} → {outs} · {len(net.layers)} layers · "
                     f"params {_num(net.total_params)} · MACs {_num(net.macs)}")
    return ("\n\n" + "\n\n".join(lines)) if lines else ""


def hover(doc: Analysis, offset: int) -> str | None:
    """Markdown for the thing under ``offset``: a layer call, a block call, a block definition.

    A layer call shows its output shape, parameters, MACs and receptive
    field (each instance, when a block or a repeat runs it several times);
    a block's name shows its signature and doc comment.
    """
    if doc.tree is None:
        return None
    definition_here = _definition_named_at(doc, offset)
    if definition_here is not None:
        item, unit_source = definition_here
        return _signature(item, unit_source) + _network_summary(doc, item.name)
    for item in doc.tree.items:  # network small = big(...)
        target_span = getattr(item, "target_span", None)
        if target_span is not None and item.span.start <= offset <= item.span.end:
            found = _find_definition(doc, item.target)
            return ((_signature(*found) if found is not None else f"`{item.target}`")
                    + _network_summary(doc, item.name))
    funcall = _funcall_at(doc, offset)
    if funcall is not None:
        found = _find_definition(doc, funcall.name)
        return _signature(*found) if found is not None else None
    if _occurrence(doc.tree, offset) is not None:  # a name inside a call's arguments: the name first
        name_hover = _name_hover(doc, offset)
        if name_hover:
            return name_hover
    call = _call_at(doc, offset)
    anchor = _anchor_at(doc, offset)
    parts: list[str] = []
    if call is not None:
        op = canonical_op(call.name)
        if op is not None:
            opdef = OPS[op]
            parts.append(f"**{call.name}** · `{op}` (Keras `{opdef.keras_class}`)")
        else:
            found = _find_definition(doc, call.name)
            if found is not None:
                parts.append(_signature(*found))
    if anchor is not None and anchor.nodes:
        runs = _runs(anchor.nodes)
        if anchor.is_call_site:
            lines = []
            for run in runs[:8]:
                infos = [i for _, _, i in run]
                last_node, last_info = run[-1][1], run[-1][2]
                params = sum(i.params for i in infos if i is not None)
                macs = None if any(i is None or i.macs is None for i in infos) else sum(i.macs for i in infos)  # type: ignore[misc]
                shape = doc.shape_of(last_node, last_info)
                lines.append(f"output `{shape}` (from `{last_node.name}`) · {len(run)} layers · "
                             f"params {_num(params)} · MACs {_num(macs)}")
            if len(runs) > 8:
                lines.append(f"... and {len(runs) - 8} more calls")
            parts.append("\n\n".join(lines))
        else:
            entries = [e for run in runs for e in run]
            if len(entries) == 1:
                parts.append(_layer_line(doc, entries[0][1], entries[0][2]))
            else:
                lines = [f"{len(entries)} layers from this call:"]
                lines += ["- " + _layer_line(doc, n, i) for _, n, i in entries[:12]]
                if len(entries) > 12:
                    lines.append(f"- ... and {len(entries) - 12} more")
                parts.append("\n".join(lines))
    elif call is not None and canonical_op(call.name) is not None:
        parts.append("not built here (its block is never called, or an error stops it)")
    if not parts:
        name_hover = _name_hover(doc, offset)
        if name_hover:
            parts.append(name_hover)
    return "\n\n".join(parts) if parts else None


def _name_hover(doc: Analysis, offset: int) -> str | None:
    """A tensor or value name: what it is bound to, and a tensor's shape there."""
    resolved = _resolve(doc, offset)
    if resolved is None:
        return None
    name, sp = resolved
    for node in _walk(doc.tree):
        span = getattr(node, "span", None)
        if span is None or not (span.start <= sp.start and sp.end <= span.end):
            continue
        if isinstance(node, (S.BindStmt, S.InputStmt)):
            line = doc.line_of(max(node.span.start, node.span.end - 1))
            shapes = [h.label for h in inlay_hints(doc, line, line)]
            return f"tensor `{name}`" + (f": `{shapes[-1]}`" if shapes else "")
        if type(node).__name__ == "LetStmt":
            return f"`let {name} = {' '.join(node.value.span.text.split())}`"
    return f"`{name}`: a parameter or loop variable"


def _doc_comment(source: Source, start: int) -> str:
    """The ``#`` lines right above the line holding ``start``."""
    line, _ = source.line_col(start)
    out: list[str] = []
    n = line - 1
    while n >= 1:
        text = source.line_text(n).strip()
        if not text.startswith("#"):
            break
        out.append(text.lstrip("#").strip())
        n -= 1
    return "\n".join(reversed(out))


def _signature(item: Any, source: Source) -> str:
    """A block's (or fn's, or parameterised network's) signature and doc comment, as markdown."""
    kind = type(item).__name__.replace("Def", "").lower()
    keyword = {"blockdef": "block", "fndef": "fn", "networkdef": "network"}.get(type(item).__name__.lower(), kind)
    params = []
    for p in getattr(item, "params", ()) or ():
        text = p.span.text if getattr(p, "span", None) is not None else p.name
        params.append(" ".join(text.split()))
    sig = f"{keyword} {item.name}"
    if getattr(item, "params", None) is not None or keyword != "network":
        sig += f"({', '.join(params)})"
    body = getattr(item, "body", None)
    if body is not None and not isinstance(body, tuple) and getattr(body, "span", None) is not None:
        sig += " = " + " ".join(body.span.text.split())  # an fn: its expression
    doc = _doc_comment(source, item.span.start)
    return f"```netspec\n{sig}\n```" + (f"\n\n{doc}" if doc else "")


def _items(doc: Analysis) -> Iterator[tuple[Any, Source]]:
    """Every top-level item of the document and of the files it imports."""
    seen = set()
    trees = [doc.tree] + [u.ast for u in doc.units.values()]
    for tree in trees:
        if tree is None or id(tree) in seen:
            continue
        seen.add(id(tree))
        for item in tree.items:
            yield item, tree.source


def _find_definition(doc: Analysis, name: str) -> tuple[Any, Source] | None:
    """The block (or fn) definition a call in this document reaches."""
    here = [(i, s) for i, s in _items(doc) if s is doc.source]
    for item, source in here + [(i, s) for i, s in _items(doc) if s is not doc.source]:
        if getattr(item, "name", None) == name and hasattr(item, "name_span") and (
                hasattr(item, "params") or isinstance(item, S.NetworkDef)):
            return item, source
    return None


def _definition_named_at(doc: Analysis, offset: int) -> tuple[Any, Source] | None:
    assert doc.tree is not None
    for item in doc.tree.items:
        span = getattr(item, "name_span", None)
        if span is not None and span.start <= offset <= span.end and (
                hasattr(item, "params") or isinstance(item, S.NetworkDef)):
            return item, doc.tree.source
    return None


# --- inlay hints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    """An inlay hint: where (0-based line, character offset in the text), its label and tooltip."""

    line: int
    offset: int
    label: str
    tooltip: str = ""


def _shape_label(shapes: list[str]) -> str:
    distinct = list(dict.fromkeys(shapes))
    if len(distinct) == 1:
        return distinct[0] + (f" ×{len(shapes)}" if len(shapes) > 1 else "")
    if len(distinct) == 2:
        return " | ".join(distinct)
    return f"{shapes[0]} … {shapes[-1]} ({len(shapes)} calls)"


def inlay_hints(doc: Analysis, first_line: int = 0, last_line: int | None = None) -> list[Hint]:
    """Each statement's output shape at the end of its line (inputs too).

    A line that runs several times (a block body, a repeat) shows each
    distinct shape; a block call shows the block's output.
    """
    if doc.source is None:
        return []
    per_line: dict[int, list[tuple[int, int, list[tuple[int, Node, LayerInfo | None]]]]] = {}
    for anchor in doc.anchors.values():
        line = doc.line_of(max(anchor.start, anchor.end - 1))
        per_line.setdefault(line, []).append((anchor.end, anchor.start, anchor.nodes))
    hints: list[Hint] = []
    for net in doc.networks:
        for inp in net.inputs:
            if doc.is_here(inp.span):
                line = doc.line_of(inp.span.end - 1)
                hints.append(Hint(line, inp.span.end, _shown(net, inp.name, inp.shape)))
    for line, entries in per_line.items():
        nodes = sorted({(i, id(n)): (i, n, info) for _, _, ns in entries for i, n, info in ns}.values(),
                       key=lambda e: e[0])
        # One run per call (or pass): the run's last layer is the statement's result.
        shapes = []
        tips = []
        for run in _runs(nodes):
            node, info = run[-1][1], run[-1][2]
            shapes.append(doc.shape_of(node, info))
            tips.append(f"{node.name}: {shapes[-1]}")
        end = max(e for e, _, _ in entries)
        hints.append(Hint(line, end, _shape_label(shapes), "\n".join(tips[:20])))
    hints = [h for h in hints if h.line >= first_line and (last_line is None or h.line <= last_line)]
    hints.sort(key=lambda h: (h.line, h.offset))
    out: list[Hint] = []
    for h in hints:  # one hint per line: the last statement on it
        if out and out[-1].line == h.line:
            out[-1] = h if h.offset >= out[-1].offset else out[-1]
        else:
            out.append(h)
    return out


# --- definitions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a definition is: a file and a character range in it."""

    path: Path
    start: int
    end: int
    text: str  # the target file's text (to turn offsets into positions)


def _walk(node: Any) -> Iterator[Any]:
    """Every surface node under ``node`` (generic: follows slots, tuples and lists)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, (tuple, list)):
            stack.extend(reversed(cur))
            continue
        if not isinstance(cur, S._Node):
            continue
        yield cur
        for slot in reversed(type(cur).__slots__):
            if slot in ("span", "name_span", "source", "op_span", "layout_span"):
                continue
            stack.append(getattr(cur, slot, None))


def _name_span_in(span: Span, name: str, after: int = 0) -> Span | None:
    m = re.search(r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])", span.text[after:])
    if m is None:
        return None
    return Span(span.source, span.start + after + m.start(), span.start + after + m.end())


def _bindings_of(stmt: Any) -> list[tuple[str, Span]]:
    """The names a statement binds, with the span of each name."""
    out: list[tuple[str, Span]] = []
    kind = type(stmt).__name__
    if kind == "InputStmt":
        sp = _name_span_in(stmt.span, stmt.name, len("input"))
        if sp is not None:
            out.append((stmt.name, sp))
    elif kind in ("BindStmt", "LetStmt") and getattr(stmt, "name_span", None) is not None:
        out.append((stmt.name, stmt.name_span))
    return out


def _loop_bindings(stmt: Any) -> list[tuple[str, Span]]:
    """Names a repeat or for statement binds for its body (counter, loop variables)."""
    out: list[tuple[str, Span]] = []
    names: list[str] = []
    var = getattr(stmt, "var", None)
    if isinstance(var, str):
        names.append(var)
    for attr in ("vars", "names", "targets"):
        value = getattr(stmt, attr, None)
        if not isinstance(value, (tuple, list)) or isinstance(stmt, S.OutputStmt if hasattr(S, "OutputStmt") else ()):
            continue
        for v in value:
            if isinstance(v, str):
                names.append(v)
            elif isinstance(v, S.Name):
                out.append((v.id, v.span))
    if names:
        body_start = min((s.span.start for s in getattr(stmt, "body", ()) or () if getattr(s, "span", None)),
                         default=stmt.span.end)
        head = Span(stmt.span.source, stmt.span.start, body_start)
        for name in names:
            sp = _name_span_in(head, name, 1)
            if sp is not None:
                out.append((name, sp))
    return out


def _resolve(doc: Analysis, offset: int) -> tuple[str, Span] | None:
    """The binding a name under ``offset`` refers to, by the language's scoping (bodies nest;
    parameters and file-level ``let`` values are seen by the whole item)."""
    assert doc.tree is not None
    file_scope: list[tuple[str, Span]] = []
    for item in doc.tree.items:
        file_scope.extend(_bindings_of(item))
    for item in doc.tree.items:
        if not (item.span.start <= offset <= item.span.end):
            continue
        for name, sp in _bindings_of(item):
            if sp.start <= offset <= sp.end:
                return name, sp
        scope: list[tuple[str, Span]] = list(file_scope)
        for p in getattr(item, "params", ()) or ():
            sp = Span(p.span.source, p.span.start, p.span.start + len(p.name))
            if sp.start <= offset <= sp.end:
                return p.name, sp
            scope.append((p.name, sp))
        body = getattr(item, "body", None)
        if isinstance(body, tuple):
            found = _resolve_body(body, offset, scope)
        else:  # an fn's body is one expression; an item without a body has only its own names
            name = _occurrence(item, offset)
            found = next(((n, sp) for n, sp in reversed(scope) if n == name), None) if name else None
        if found is not None:
            return found
    return None


def _bodies(stmt: Any) -> list[tuple]:
    out = []
    for attr in ("body", "then", "orelse"):
        value = getattr(stmt, attr, None)
        if isinstance(value, tuple) and value and isinstance(value[0], S._Node):
            out.append(value)
    return out


def _occurrence(node: Any, offset: int) -> str | None:
    for sub in _walk(node):
        if isinstance(sub, (S.Name, S.Ref)) and sub.span.start <= offset <= sub.span.end:
            return sub.id if isinstance(sub, S.Name) else sub.name
        spans = getattr(sub, "name_spans", None)  # output a, b
        if spans:
            for name, span in zip(sub.names, spans):
                if span.start <= offset <= span.end:
                    return name
    return None


def _carried(stmt: Any) -> list[tuple[str, Span]]:
    """The last binding, in a repeat or for body, of each name the loop carries out."""
    carry = {c.id if isinstance(c, S.Name) else str(c) for c in getattr(stmt, "carry", ()) or ()}
    out: list[tuple[str, Span]] = []
    for body in _bodies(stmt):
        for sub in _walk(body):
            out.extend((n, sp) for n, sp in _bindings_of(sub) if n in carry)
    return out


def _resolve_body(body: tuple, offset: int, outer: list[tuple[str, Span]]) -> tuple[str, Span] | None:
    scope = list(outer)
    for stmt in body:
        span = getattr(stmt, "span", None)
        if span is not None and span.start <= offset <= span.end:
            for name, sp in _bindings_of(stmt) + _loop_bindings(stmt):
                if sp.start <= offset <= sp.end:
                    return name, sp
            inner = scope + _loop_bindings(stmt)
            for body_ in _bodies(stmt):
                if any(s.span.start <= offset <= s.span.end for s in body_ if getattr(s, "span", None)):
                    return _resolve_body(body_, offset, inner)
            name = _occurrence(stmt, offset)
            if name is None:
                return None
            for bound, sp in reversed(inner):
                if bound == name:
                    return bound, sp
            return None
        scope.extend(_bindings_of(stmt))
        scope.extend(_carried(stmt))
    return None


def definition(doc: Analysis, offset: int) -> Target | None:
    """Where the block, function, tensor name or import under ``offset`` is defined."""
    if doc.tree is None:
        return None
    for item in doc.tree.items:
        if isinstance(item, S.Import) and item.span.start <= offset <= item.span.end:
            target = (doc.path.parent / item.path).resolve()
            try:
                text = doc.units[target].source.text if target in doc.units else target.read_text("utf-8")
            except OSError:
                return None
            return Target(target, 0, 0, text)
    for item in doc.tree.items:  # network small = big(...): the parameterised network
        target_span = getattr(item, "target_span", None)
        if target_span is not None and target_span.start <= offset <= target_span.end:
            found = _find_definition(doc, item.target)
            return _target(doc, found[1], found[0].name_span) if found is not None else None
    call = _call_at(doc, offset)
    if call is not None:
        found = _find_definition(doc, call.name)
        if found is not None:
            item, source = found
            return _target(doc, source, item.name_span)
        return None
    for node in _walk(doc.tree):
        if isinstance(node, S.FunCall) and node.span.start <= offset < node.span.start + len(node.name):
            found = _find_definition(doc, node.name)
            if found is not None:
                return _target(doc, found[1], found[0].name_span)
    resolved = _resolve(doc, offset)
    if resolved is not None:
        return _target(doc, resolved[1].source, resolved[1])
    return None


def _target(doc: Analysis, source: Source, span: Span) -> Target:
    path = doc.path if source is doc.source else Files.key(source.name)
    return Target(path, span.start, span.end, source.text)


# --- completion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    """One completion item: its label, kind, text to insert, detail and documentation."""

    label: str
    kind: str  # "op", "block", "function", "argument", "value", "keyword", "variable"
    insert: str | None = None
    detail: str = ""
    documentation: str = ""


KEYWORDS = ("network", "block", "input", "repeat", "as", "if", "else", "default", "import", "output",
            "let", "fn", "for", "carry", "allow", "assert", "true", "false", "none", "and", "or", "not", "in")

_TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>'[^'\\\n]*(?:\\.[^'\\\n]*)*'? | "[^"\\\n]*(?:\\.[^"\\\n]*)*"?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?)
  | (?P<punct>->|==|!=|<=|>=|//|\*\*|[()\[\]{},=:;+\-*/%<>?])
  | (?P<nl>\n)
  | (?P<space>[ \t\r\f\\]+)
""", re.X)


def _context(text: str, offset: int) -> tuple[str | None, str | None, bool, str, bool]:
    """(callee of the innermost open bracket, keyword being given a value, inside an open string,
    the word being typed, at an argument's start)."""
    stack: list[tuple[str, str | None]] = []
    toks: list[tuple[str, str]] = []
    in_string = False
    pos = 0
    prefix = text[:offset]
    for m in _TOKEN.finditer(prefix):
        kind, value = m.lastgroup or "", m.group()
        if kind in ("space", "comment"):
            continue
        if kind == "string" and (len(value) < 2 or value[-1] != value[0]) and m.end() == len(prefix):
            in_string = True
        if value in ("(", "["):
            callee = toks[-1][1] if toks and toks[-1][0] == "name" else None
            stack.append((value, callee))
        elif value in (")", "]") and stack:
            stack.pop()
        elif value in ("{", "}"):
            stack.clear()
        toks.append((kind, value))
        pos = m.end()
    del pos
    word = ""
    if toks and toks[-1][0] == "name" and prefix.endswith(toks[-1][1]):
        word = toks.pop()[1]
    if in_string and toks:
        toks.pop()
    callee = stack[-1][1] if stack and stack[-1][0] == "(" else None
    keyword = None
    if len(toks) >= 2 and toks[-1][1] == "=" and toks[-2][0] == "name" and stack:
        keyword = toks[-2][1]
    at_arg = bool(stack) and bool(toks) and toks[-1][1] in ("(", ",")
    return callee, keyword, in_string, word, at_arg


def _default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING or f.default is REQUIRED:
        return "required"
    default = f.default
    if isinstance(default, at.KerasObject):  # 'glorot_uniform' rather than glorot_uniform(seed=none)
        try:
            if f.metadata["kind"](default.name, f.name) == default:
                return "= " + at.format_value(default.name)
        except Exception:  # noqa: BLE001 - show the whole object
            pass
    return "= " + at.format_value(default)


def enum_choices(op: str, arg: str) -> list[str]:
    """The values an op's enum-like argument takes (``padding``: ``'valid'``, ``'same'``).

    >>> enum_choices("conv2d", "padding")
    ['valid', 'same']
    >>> enum_choices("conv2d", "use_bias")
    ['true', 'false']
    """
    opdef = OPS.get(op)
    if opdef is None:
        return []
    fields = {f.name: f for f in dataclasses.fields(opdef.attrs)}
    f = fields.get(arg)
    if f is None:
        return []
    kind = f.metadata.get("kind")
    tables = {at.initializer: at._INITIALIZERS, at.regularizer: at._REGULARIZERS, at.constraint: at._CONSTRAINTS}
    if kind in tables:
        return list(tables[kind])
    if kind is at.boolean:
        return ["true", "false"]
    if kind is at.activation:
        return list(at.ACTIVATIONS)
    try:
        kind("\x00?", arg)  # a value no enum holds: the error lists the choices
    except at.ArgError as err:
        m = re.search(r"expected one of (.*?)(?:;|$)", err.message)
        if m:
            return re.findall(r"'([^']*)'", m.group(1))
    except Exception:  # noqa: BLE001 - a converter that cannot take a string: no choices
        return []
    return []


def completions(doc: Analysis, offset: int) -> list[Completion]:
    """What may be typed at ``offset``: op and block names, arguments with Keras defaults, enum values."""
    text = doc.text
    callee, keyword, in_string, word, at_arg = _context(text, offset)
    op = canonical_op(callee) if callee else None
    if keyword is not None and op is not None:
        out = []
        for value in enum_choices(op, keyword):
            quoted = value in ("true", "false")
            insert = value if (quoted or in_string) else f"'{value}'"
            out.append(Completion(value if (quoted or in_string) else f"'{value}'", "value", insert,
                                  f"{keyword} of {op}"))
        return out
    if in_string:
        return []
    out: list[Completion] = []
    if callee is not None and at_arg or (callee is not None and word):
        if op is not None:
            opdef = OPS[op]
            for f in dataclasses.fields(opdef.attrs):
                out.append(Completion(f.name + "=", "argument", f.name + "=", _default_text(f),
                                      f"`{op}` (Keras `{opdef.keras_class}`) argument `{f.name}`, "
                                      f"{_default_text(f).replace('= ', 'default ')}"))
            out.append(Completion("name=", "argument", "name=", "the layer's name"))
        else:
            found = _find_definition(doc, callee) if doc.tree is not None else None
            if found is not None:
                for p in getattr(found[0], "params", ()):
                    default = getattr(p, "default", None)
                    out.append(Completion(p.name + "=", "argument", p.name + "=",
                                          "required" if default is None else "= " + " ".join(default.span.text.split())))
    names = sorted({n for n in _bound_names(doc)})
    out += [Completion(n, "variable") for n in names]
    if callee is None or not at_arg or word:
        for name, opdef in OPS.items():
            out.append(Completion(name, "op", None, f"Keras {opdef.keras_class}"))
        for alias, name in ALIASES.items():
            out.append(Completion(alias, "op", None, f"alias of {name}"))
        for item, source in _items(doc):
            if hasattr(item, "params") and hasattr(item, "name_span") and not isinstance(item, S.NetworkDef):
                kind = "function" if type(item).__name__ == "FnDef" else "block"
                out.append(Completion(item.name, kind, None, _signature(item, source).split("\n")[1],
                                      _doc_comment(source, item.span.start)))
        if callee is None:
            out += [Completion(k, "keyword") for k in KEYWORDS]
    if word:
        out = [c for c in out if c.label.lower().startswith(word.lower()) or word.lower() in c.label.lower()]
    return out


def _bound_names(doc: Analysis) -> Iterator[str]:
    if doc.tree is None:
        return
    for node in _walk(doc.tree):
        for name, _ in _bindings_of(node):
            yield name
