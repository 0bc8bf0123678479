"""``netspec fmt``: one canonical layout for ``.net`` files, comments kept.

The formatter works on the token stream of the real grammar's lexer (so it
knows every keyword and operator the grammar knows, including ones added
later), with comments and newlines kept.  It knows only brackets,
statements and comments:

- one statement per line, four spaces per ``{`` level; ``;`` becomes a
  line break; bodies always open on their own line (``} else {`` stays);
- a single space around binary operators, ``->`` and statement-level
  ``=``, none around a keyword argument's ``=``, after ``(`` / ``[``,
  before ``)`` / ``]`` / ``,`` / ``:`` or after a unary minus;
- a statement longer than :data:`WIDTH` columns is broken before every
  top-level ``->`` (continuation lines indented once more), then inside
  its brackets, one item a line;
- every comment is kept: own-line comments at the indentation of what
  follows, trailing comments two spaces after the code and aligned in a run
  of consecutive lines; at most one blank line in a row, none at the start
  or end of a body.

The result is verified before it is returned: it must parse to the same
syntax tree as the input (spans aside) and hold the same comments, so the
formatter can never change what a spec means.

>>> print(format_source("network n{input x:[28,28,1]\\nconv2d(8,3,padding = 'same')   # first\\n"
...                     "dense( 10 ,activation='softmax');flatten()}"), end="")
network n {
    input x: [28, 28, 1]
    conv2d(8, 3, padding='same')  # first
    dense(10, activation='softmax')
    flatten()
}
"""

from __future__ import annotations

import difflib
import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..core.diagnostics import Diagnostic, NetspecError
from ..core.fileio import atomic_output
from ..core.source import Source, Span

__all__ = ["WIDTH", "FormatResult", "format_file", "format_source", "run_fmt", "unified_diff"]

#: Longest line (in columns, comments aside) the formatter leaves unbroken when it can break it.
WIDTH = 100
_INDENT = "    "

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}
_OPERAND_END = {")", "]", "?", "true", "false", "none", "in"}
#: Keywords that keep a space before a following ``(`` (every other word is called: ``f(x)``).
_SPACED_KEYWORDS = frozenset(
    "if else for in and or not repeat as assert output let carry allow import network block fn default "
    "input return".split())


@dataclass(eq=False)
class _Tok:
    """A significant token with the comments around it and its place in its statement."""

    type: str
    value: str
    start: int
    lead: list[tuple[str, bool]] = field(default_factory=list)  # own-line comments before it
    trail: str | None = None  # the comment ending its line
    blank: bool = False  # a blank line before it (or before its first leading comment)
    nl: bool = False  # a newline between it and the previous token
    depth: int = 0  # bracket depth inside its statement
    unary: bool = False  # a prefix + or -
    prev: _Tok | None = None

    @property
    def is_word(self) -> bool:
        return self.value[:1].isalpha() or self.value[:1] == "_"

    @property
    def is_keyword(self) -> bool:
        return self.is_word and self.type != "NAME"

    @property
    def ends_operand(self) -> bool:
        return self.type in ("NAME", "NUMBER", "STRING") or self.value in _OPERAND_END


@dataclass(eq=False)
class _Group:
    """A bracketed run: its opening and closing tokens and its comma-separated items."""

    open: _Tok
    items: list[tuple[list, _Tok | None]]  # (elements, the comma after them)
    close: _Tok


# --- lexing ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _lexer():
    """The grammar's own lexer, with the terminals the parser ignores kept, and their names."""
    from ..frontend.syntax import _parser

    parser = _parser()
    return parser._build_lexer(True), frozenset(parser.lexer_conf.ignore) - {"COMMENT"}


def _tokens(text: str) -> list[_Tok]:
    """Significant tokens, each with its comments and line-break facts; the last is an end marker."""
    from lark.lexer import LexerThread

    out: list[_Tok] = []
    lead: list[tuple[str, bool]] = []
    newlines = 0  # since the last token or comment
    nl_since_tok = False
    line_has_code = False
    lexer, ignored = _lexer()
    for raw in LexerThread.from_text(lexer, text).lex(None):
        kind = raw.type
        if kind == "_NL":
            n = str(raw.value).count("\n")
            newlines += n
            nl_since_tok = True
            line_has_code = False
        elif kind == "COMMENT":
            comment = str(raw.value).rstrip()
            if line_has_code and out and out[-1].trail is None:
                out[-1].trail = comment
            else:
                lead.append((comment, newlines >= 2 and bool(out or lead)))
            newlines = 0
        elif kind in ignored:  # blanks and backslash-newline continuations
            continue
        else:
            tok = _Tok(kind, str(raw.value), raw.start_pos or 0, lead,
                       blank=newlines >= 2 and bool(out or lead), nl=nl_since_tok)
            out.append(tok)
            lead = []
            newlines = 0
            nl_since_tok = False
            line_has_code = True
    out.append(_Tok("$END", "", len(text), lead, nl=True))
    return out


# --- spacing -----------------------------------------------------------------------------------


def _space(p: _Tok | None, t: _Tok) -> bool:
    """Whether a space separates two tokens written on one line."""
    if p is None:
        return False
    pv, tv = p.value, t.value
    if tv in (")", "]", ",", ":", ";") or pv in ("(", "[") or p.unary:
        return False
    if pv == "=" or tv == "=":
        return (p if pv == "=" else t).depth == 0
    if tv == "(":
        return pv not in (")", "]") and not (p.is_word and pv not in _SPACED_KEYWORDS)
    if tv == "[":
        return not (p.type in ("NAME", "STRING") or pv in (")", "]"))
    return True


def _flat(elems: Iterable, first: bool = True) -> str:
    parts: list[str] = []
    for tok in _flat_tokens(elems):
        if parts or not first:
            if _space(tok.prev, tok):
                parts.append(" ")
        parts.append(tok.value)
    return "".join(parts)


def _flat_tokens(elems: Iterable) -> Iterable[_Tok]:
    for e in elems:
        if isinstance(e, _Tok):
            yield e
        else:
            yield e.open
            for item, comma in e.items:
                yield from _flat_tokens(item)
                if comma is not None:
                    yield comma
            yield e.close


def _inner_comments(group: _Group) -> bool:
    """Whether comments sit inside a group (a comment after its closing bracket does not count)."""
    toks = list(_flat_tokens([group]))
    return any(t.lead for t in toks[1:]) or any(t.trail for t in toks[:-1])


# --- statements to element trees ---------------------------------------------------------------


def _tree(toks: list[_Tok]) -> list:
    """Nest a statement's tokens into groups by their brackets."""
    prev: _Tok | None = None
    for tok in toks:
        tok.prev = prev
        tok.unary = tok.value in ("-", "+") and not (prev is not None and prev.ends_operand)
        prev = tok
    pos = 0

    def seq(depth: int, stop: str | None) -> list:
        nonlocal pos
        out: list = []
        while pos < len(toks):
            tok = toks[pos]
            if stop is not None and tok.value in (stop, ","):
                return out
            tok.depth = depth
            pos += 1
            if tok.value in ("(", "["):
                close = _OPENERS[tok.value]
                items: list[tuple[list, _Tok | None]] = []
                while True:
                    item = seq(depth + 1, close)
                    if pos >= len(toks):  # unbalanced: cannot happen after a good parse
                        raise _Unformattable("unbalanced brackets")
                    sep = toks[pos]
                    sep.depth = depth + 1
                    pos += 1
                    if sep.value == ",":
                        items.append((item, sep))
                        continue
                    if item or not items:
                        items.append((item, None))
                    sep.depth = depth
                    out.append(_Group(tok, [i for i in items if i[0] or i[1]], sep))
                    break
            else:
                out.append(tok)
        return out

    return seq(0, None)


class _Unformattable(Exception):
    pass


# --- the emitter -------------------------------------------------------------------------------


@dataclass
class _Line:
    indent: int
    code: str = ""
    comment: str | None = None
    blank_before: bool = False
    own_comment: bool = False  # a comment on a line of its own


class _Emitter:
    """Collects output lines; a trailing comment forces a break before the next token."""

    def __init__(self) -> None:
        self.lines: list[_Line] = []
        self.begin(0)

    def begin(self, indent: int) -> None:
        self.line: _Line | None = None
        self.next_indent = indent
        self.force_break: int | None = None
        self.started = False

    @property
    def column(self) -> int:
        if self.line is None:
            return len(_INDENT) * self.next_indent
        return len(_INDENT) * self.line.indent + len(self.line.code)

    def newline(self, indent: int) -> None:
        self.line = None
        self.force_break = None
        self.next_indent = indent

    def comment_lines(self, comments: list[tuple[str, bool]], indent: int) -> None:
        for text, _ in comments:
            self.lines.append(_Line(indent, text, None, False, own_comment=True))
        self.line = None
        self.next_indent = indent

    def token(self, tok: _Tok, cont: int) -> None:
        if self.line is not None and self.force_break is not None:
            self.newline(self.force_break)
        if tok.lead and self.started:
            self.comment_lines(tok.lead, self.next_indent if self.line is None else cont)
        if self.line is None:
            self.line = _Line(self.next_indent, tok.value)
            self.lines.append(self.line)
        else:
            self.line.code += (" " if _space(tok.prev, tok) else "") + tok.value
        self.started = True
        if tok.trail is not None:
            self.line.comment = tok.trail
            self.force_break = cont


def _render_statement(em: _Emitter, toks: list[_Tok], indent: int) -> None:
    elems = _tree(toks)
    em.begin(indent)
    inner_comments = any(t.lead for t in toks[1:]) or any(t.trail for t in toks[:-1])
    if not inner_comments and len(_INDENT) * indent + len(_flat(elems)) <= WIDTH:
        _seq(em, elems, indent, fits=True)
        return
    segments: list[list] = [[]]
    for e in elems:
        if isinstance(e, _Tok) and e.value == "->":
            segments.append([])
        segments[-1].append(e)
    _seq(em, segments[0], indent)
    for seg in segments[1:]:
        em.newline(indent + 1)
        _seq(em, seg, indent + 1)


def _seq(em: _Emitter, elems: list, indent: int, fits: bool = False) -> None:
    for k, e in enumerate(elems):
        if isinstance(e, _Tok):
            em.token(e, indent + 1)
            continue
        if fits or (not _inner_comments(e) and em.column + len(_flat(elems[k:], first=em.line is None)) <= WIDTH):
            _seq(em, list(_flat_tokens([e])), indent, fits=True)
            continue
        em.token(e.open, indent + 1)
        if not e.items:
            em.token(e.close, indent + 1)
            continue
        for item, comma in e.items:
            em.newline(indent + 1)
            _seq(em, item, indent + 1)
            if comma is not None:
                em.token(comma, indent + 2)
        if e.close.lead:
            em.comment_lines(e.close.lead, indent + 1)
            e.close.lead = []
        em.newline(indent)
        em.token(e.close, indent + 1)


# --- the whole file ----------------------------------------------------------------------------


def _drop_trailing_commas(toks: list[_Tok]) -> list[_Tok]:
    """Drop a comma before a closing bracket where the bracket holds more than one item."""
    out: list[_Tok] = []
    commas: list[int] = []  # commas at each open bracket level
    for i, tok in enumerate(toks):
        if tok.value in ("(", "["):
            commas.append(0)
        elif tok.value == "," and commas:
            commas[-1] += 1
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if (nxt is not None and nxt.value in (")", "]") and commas[-1] >= 2 and tok.trail is None
                    and not tok.lead and not nxt.lead):
                continue
        elif tok.value in (")", "]") and commas:
            commas.pop()
        out.append(tok)
    return out


def _layout(text: str) -> str:
    toks = _drop_trailing_commas(_tokens(text))
    em = _Emitter()
    indent = 0
    brackets: list[str] = []  # ( and [ open in the current statement
    stmt: list[_Tok] = []
    body_start = True  # at the start of the file or of a body: no blank line
    item_closed = False  # the last top-level statement closed a body

    def flush() -> None:
        nonlocal stmt, body_start, item_closed
        if not stmt:
            return
        first = stmt[0]
        if indent == 0 and not body_start and first.value != "}" and (item_closed or stmt[-1].value == "{"):
            if first.lead:  # one blank line between top-level items
                first.lead[0] = (first.lead[0][0], True)
            else:
                first.blank = True
        if indent == 0:
            item_closed = first.value == "}"
        if first.lead:
            lead_indent = indent + 1 if first.value == "}" else indent
            for j, (comment, blank) in enumerate(first.lead):
                em.lines.append(_Line(lead_indent, comment, None, blank and not (body_start and j == 0), True))
                body_start = False
        start = len(em.lines)
        _render_statement(em, stmt, indent)
        if start < len(em.lines):
            em.lines[start].blank_before = first.blank and not body_start and first.value != "}"
        body_start = stmt[-1].value == "{"
        stmt = []

    for tok in toks:
        if tok.type == "$END":
            flush()
            for j, (comment, blank) in enumerate(tok.lead):
                em.lines.append(_Line(0, comment, None, blank and not (body_start and j == 0), True))
                body_start = False
            break
        if not brackets:
            if tok.nl and stmt and tok.value not in ("->", "else"):
                flush()
            if tok.value == ";":
                if tok.lead:
                    raise _Unformattable("a comment before ';'")
                if tok.trail is not None and stmt and stmt[-1].trail is None:
                    stmt[-1].trail = tok.trail
                elif tok.trail is not None:
                    raise _Unformattable("a comment after ';'")
                flush()
                continue
            if tok.value == "}":
                flush()
                indent -= 1
                if indent < 0:
                    raise _Unformattable("unbalanced braces")
                stmt.append(tok)
                continue
            if tok.value == "{":
                stmt.append(tok)
                flush()
                indent += 1
                continue
        if tok.value in ("(", "["):
            brackets.append(tok.value)
        elif tok.value in (")", "]") and brackets:
            brackets.pop()
        stmt.append(tok)
    return _join(_merge_empty_bodies(em.lines))


def _merge_empty_bodies(lines: list[_Line]) -> list[_Line]:
    """``{`` and a ``}`` right below it, with nothing between, become ``{}``."""
    out: list[_Line] = []
    for line in lines:
        prev = out[-1] if out else None
        if (prev is not None and not prev.own_comment and prev.comment is None and prev.code.endswith("{")
                and not line.own_comment and line.code.startswith("}") and not line.blank_before):
            prev.code += line.code
            prev.comment = line.comment
            continue
        out.append(line)
    return out


def _join(lines: list[_Line]) -> str:
    # Align the trailing comments of consecutive code lines.
    col: dict[int, int] = {}
    run: list[int] = []

    def close_run() -> None:
        if run:
            width = max(len(_INDENT) * lines[i].indent + len(lines[i].code) for i in run)
            for i in run:
                col[i] = width + 2
            run.clear()

    for i, line in enumerate(lines):
        if line.comment is not None and not line.own_comment and not (line.blank_before and run):
            run.append(i)
        elif line.comment is not None and not line.own_comment:
            close_run()
            run.append(i)
        else:
            close_run()
    close_run()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.blank_before and out:
            out.append("")
        text = _INDENT * line.indent + line.code
        if line.comment is not None:
            text = text.ljust(col[i]) + line.comment
        out.append(text.rstrip())
    return "\n".join(out) + "\n" if out else ""


# --- verification and entry points -------------------------------------------------------------


def _comments(text: str) -> list[str]:
    from lark.lexer import LexerThread

    return [str(t.value).rstrip() for t in LexerThread.from_text(_lexer()[0], text).lex(None) if t.type == "COMMENT"]


def format_source(text: str, filename: str = "<string>") -> str:
    """The canonical layout of ``.net`` text.

    Raises :class:`NetspecError` with the located syntax error when the text
    does not parse, and an E110 error if the formatted text would not mean
    the same (a formatter bug: the text is then left as it is).

    >>> print(format_source("block b(n=2){repeat n as i{dense(n*2)->relu()}}"), end="")
    block b(n=2) {
        repeat n as i {
            dense(n * 2) -> relu()
        }
    }
    >>> format_source("network n {\\n  dense(2\\n}\\n", "m.net")
    Traceback (most recent call last):
    ...
    netspec.core.diagnostics.NetspecError: m.net:3:1: error[E101]: unexpected '}'; expected ')' or ','
        }
        ^
    """
    from ..frontend.syntax import parse_source

    before = parse_source(text, filename)  # a syntax error is reported as check reports it
    try:
        out = _layout(text)
    except (_Unformattable, RecursionError) as err:
        raise _refusal(text, filename, str(err) or "input nested too deeply") from None
    try:
        after = parse_source(out, filename)
    except NetspecError as err:
        raise _refusal(text, filename, "the result does not parse: " + err.diagnostics[0].message) from None
    if not _same_tree(before, after):
        raise _refusal(text, filename, "the result parses differently")
    if sorted(_comments(out)) != sorted(_comments(text)):
        raise _refusal(text, filename, "a comment would be lost")
    return out


def _same_tree(a: object, b: object) -> bool:
    """Syntax trees equal field by field, spans aside (iterative: expressions may be 10,000 deep).

    >>> from netspec.frontend.syntax import parse_source
    >>> _same_tree(parse_source("network n {\\n input x: [4]\\n}\\n"), parse_source("network n{input x:[4]}"))
    True
    """
    from ..frontend.surface import _Node

    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, _Node) or isinstance(y, _Node):
            if type(x) is not type(y):
                return False
            stack.extend((getattr(x, f), getattr(y, f)) for f in x._compared)
        elif isinstance(x, (tuple, list)) or isinstance(y, (tuple, list)):
            if type(x) is not type(y) or len(x) != len(y):  # type: ignore[arg-type]
                return False
            stack.extend(zip(x, y))  # type: ignore[call-overload]
        elif type(x) is not type(y) or x != y:
            return False
    return True


def _refusal(text: str, filename: str, why: str) -> NetspecError:
    return NetspecError([Diagnostic.error(
        "E110", f"netspec fmt cannot format this file safely ({why}); it is left unchanged. "
        "Please report this as a bug.", Span(Source(filename, text), 0, 0))])


def unified_diff(before: str, after: str, path: str) -> str:
    """A unified diff from ``before`` to ``after``, as ``diff -u`` shows it.

    >>> print(unified_diff("a\\n", "b\\n", "m.net"), end="")
    --- m.net
    +++ m.net (formatted)
    @@ -1 +1 @@
    -a
    +b
    """
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        path, path + " (formatted)"))


@dataclass(frozen=True)
class FormatResult:
    """What :func:`format_file` did to one file.

    >>> FormatResult("m.net", "a\\n", "a\\n").changed
    False
    """

    path: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        """Whether the canonical layout differs from the file."""
        return self.before != self.after


def format_file(path: str | os.PathLike, write: bool = True) -> FormatResult:
    """Format one file; with ``write``, replace it atomically when its layout changes.

    Raises :class:`NetspecError` (E603 unreadable, E103 not UTF-8, or the
    syntax error) and then leaves the file untouched.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "m.net")
    >>> _ = open(p, "w").write("network n{input x:[4]\\ndense(2)}")
    >>> format_file(p).changed, open(p).read()
    (True, 'network n {\\n    input x: [4]\\n    dense(2)\\n}\\n')
    """
    from ..frontend.elaborate import _Program, read_spec_bytes

    name = os.fspath(path)
    try:
        data = read_spec_bytes(Path(name))
    except OSError as err:
        raise NetspecError([Diagnostic.error("E603", f"cannot read {name}: {err.strerror or err}")]) from None
    text = _Program.decode(data, name)
    if isinstance(text, Diagnostic):
        raise NetspecError([text])
    after = format_source(text, name)
    result = FormatResult(name, data.decode("utf-8", "replace"), after)
    if write and result.changed:
        try:
            with atomic_output(name) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(after)
        except OSError as err:
            raise NetspecError([Diagnostic.error("E603", f"cannot write {name}: {err.strerror or err}")]) from None
    return result


def run_fmt(files: Iterable[str], check: bool = False, stdout: IO[str] | None = None,
            stderr: IO[str] | None = None) -> int:
    """The ``netspec fmt`` command: format FILES in place, or with ``check`` show what would change.

    ``-`` formats standard input to standard output.  Returns the exit
    status: 0 when all is well, 1 when a file has a syntax error or (with
    ``check``) is not formatted.

    >>> import io, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "m.net")
    >>> _ = open(p, "w").write("network n {\\n  input x: [4]\\n}\\n")
    >>> out = io.StringIO()
    >>> run_fmt([p], check=True, stdout=out, stderr=io.StringIO()), out.getvalue().count("+    input")
    (1, 1)
    """
    from ..core.diagnostics import render_all

    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    status = 0
    for name in files:
        try:
            if name == "-":
                text = sys.stdin.read()
                after = format_source(text, "<stdin>")
                if check:
                    if after != text:
                        stdout.write(unified_diff(text, after, "<stdin>"))
                        status = 1
                else:
                    stdout.write(after)
                continue
            result = format_file(name, write=not check)
        except NetspecError as err:
            stderr.write(render_all(err.diagnostics) + "\n")
            status = 1
            continue
        if result.changed:
            if check:
                stdout.write(unified_diff(result.before, result.after, name))
                status = 1
            else:
                stderr.write(f"reformatted {name}\n")
    return status
