"""Syntax: ``.net`` text to the surface AST, with Lark.

The grammar lives in ``grammar/netspec.lark`` (shipped inside the wheel as
``netspec/grammar/netspec.lark``).  The LALR tables are cached on disk by
Lark so a run does not rebuild them.  Syntax errors become
:class:`~netspec.diagnostics.NetspecError` with a span; so do inputs that
nest too deeply to handle safely.

>>> f = parse_source("block b(n=2) {\\n  dense(n)\\n}\\n", "m.net")
>>> f.items[0].name, f.items[0].params[0].default.value
('b', 2)
>>> parse_source("network n {\\n  dense(2\\n}\\n", "m.net")
Traceback (most recent call last):
...
netspec.diagnostics.NetspecError: m.net:3:1: error[E101]: unexpected '}'; expected ')', ',' or an operator
    }
    ^
"""

from __future__ import annotations

import ast as pyast
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import surface as S
from .diagnostics import Diagnostic, NetspecError
from .source import Source, Span

__all__ = ["MAX_NESTING", "grammar_path", "parse_source"]

#: Deepest nesting of brackets, braces and expressions netspec accepts.
MAX_NESTING = 100

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")", "]", "}"}


def grammar_path() -> Path:
    """Where the grammar file is: inside the installed package, else the repository's ``grammar/``.

    >>> grammar_path().name
    'netspec.lark'
    """
    packaged = Path(__file__).with_name("grammar") / "netspec.lark"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "grammar" / "netspec.lark"


class _PostLex:
    """Drops newlines that do not end a statement; bounds nesting depth."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.source: Source | None = None

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth: list[str] = []
        pending: Token | None = None
        for tok in stream:
            if tok.type == "_NL":
                if depth and depth[-1] != "{":
                    continue
                if pending is None:
                    pending = tok
                continue
            if pending is not None:
                if tok.type not in ("_ARROW", "_ELSE"):
                    yield pending
                pending = None
            if tok.type != "STRING":
                if tok.value in _OPEN:
                    depth.append(tok.value)
                    if len(depth) > MAX_NESTING:
                        raise _TooDeep(tok)
                elif tok.value in _CLOSE and depth and _OPEN[depth[-1]] == tok.value:
                    depth.pop()
            yield tok
        if pending is not None:
            yield pending


class _TooDeep(Exception):
    def __init__(self, token: Token):
        self.token = token


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    cache: bool | str = True
    cache_dir = os.environ.get("NETSPEC_CACHE_DIR")
    if cache_dir:
        cache = str(Path(cache_dir) / "netspec-grammar.lark.cache")
    elif not os.access(tempfile.gettempdir(), os.W_OK):
        cache = False
    return Lark(
        grammar_path().read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        postlex=_PostLex(),
        propagate_positions=True,
        maybe_placeholders=True,
        cache=cache,
    )


def parse_source(text: str, filename: str = "<string>") -> S.File:
    """Parse ``.net`` text into a :class:`netspec.surface.File`.

    Raises :class:`NetspecError` with one syntax error on bad input.
    """
    source = Source(filename, text)
    if "\x00" in text:
        pos = text.index("\x00")
        raise NetspecError([Diagnostic.error("E101", "unexpected NUL character; is this a binary file?",
                                             Span(source, pos, pos + 1))])
    try:
        tree = _parser().parse(text)
    except _TooDeep as err:
        start = err.token.start_pos or 0
        raise NetspecError([Diagnostic.error(
            "E502", f"brackets nested more than {MAX_NESTING} deep", Span(source, start, start + 1))]) from None
    except UnexpectedInput as err:
        raise NetspecError([_syntax_error(err, source)]) from None
    try:
        return _ToAst(source).transform(tree)
    except _ExprTooDeep as err:
        raise NetspecError([Diagnostic.error(
            "E502", f"expression nested more than {MAX_NESTING} deep", err.span)]) from None


# --- syntax error messages -------------------------------------------------------------------

_DISPLAY = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "_NL": "a newline",
    "$END": "end of file",
}


def _display(term: str) -> str:
    if term in _DISPLAY:
        return _DISPLAY[term]
    try:
        pattern = _parser().get_terminal(term).pattern
    except KeyError:
        return term
    if pattern.type == "str":
        return repr(pattern.value)
    return term.lower()


_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "_POW", "LSQB", "AND", "OR",
              "EQEQUAL", "NOTEQUAL", "LESSEQUAL", "MOREEQUAL", "LESSTHAN", "MORETHAN"}


def _expected(names: set[str] | frozenset[str]) -> str:
    names = {n for n in names if not n.startswith("__")}
    operators = names & _OPERATORS
    shown = sorted({_display(n) for n in names - _OPERATORS})
    if len(operators) > 2:
        shown.append("an operator")
    if not shown:
        return ""
    if len(shown) > 8:
        return "; expected a statement or expression here"
    if len(shown) == 1:
        return f"; expected {shown[0]}"
    return "; expected " + ", ".join(shown[:-1]) + " or " + shown[-1]


def _syntax_error(err: UnexpectedInput, source: Source) -> Diagnostic:
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        char = source.text[pos : pos + 1]
        return Diagnostic.error(
            "E101", f"unexpected character {char!r}" + _expected(err.allowed or set()), Span(source, pos, pos + 1)
        )
    if isinstance(err, (UnexpectedToken, UnexpectedEOF)):
        tok = getattr(err, "token", None)
        expected = set(getattr(err, "expected", None) or getattr(err, "accepts", None) or ())
        if isinstance(err, UnexpectedToken) and err.accepts:
            expected = set(err.accepts)
        if tok is None or tok.type == "$END":
            end = len(source.text)
            return Diagnostic.error("E102", "unexpected end of file" + _expected(expected),
                                    Span(source, max(0, end - 1), end))
        start = tok.start_pos or 0
        end = tok.end_pos or start + 1
        shown = "newline" if tok.type == "_NL" else repr(str(tok.value))
        return Diagnostic.error("E101", f"unexpected {shown}" + _expected(expected),
                                Span(source, start, max(end if tok.type != "_NL" else start + 1, start + 1)))
    return Diagnostic.error("E101", str(err).splitlines()[0], Span(source, 0, 1))


# --- tree to AST --------------------------------------------------------------------------------


class _ExprTooDeep(Exception):
    def __init__(self, span: Span):
        self.span = span


def _unescape(text: str) -> str:
    try:
        value = pyast.literal_eval(text)
        return value if isinstance(value, str) else text[1:-1]
    except (ValueError, SyntaxError):
        return text[1:-1]


@v_args(meta=True, inline=True)
class _ToAst(Transformer_NonRecursive):
    """Builds surface nodes bottom-up without recursion (deep inputs are safe)."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source
        self.depth: dict[int, int] = {}

    # helpers
    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.source, 0, 0)
        return Span(self.source, meta.start_pos, meta.end_pos)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.source, tok.start_pos or 0, tok.end_pos or (tok.start_pos or 0))

    def _expr(self, node, *children):
        d = 1 + max((self.depth.get(id(c), 0) for c in children), default=0)
        if d > MAX_NESTING:
            raise _ExprTooDeep(node.span)
        self.depth[id(node)] = d
        return node

    # items
    def start(self, meta, *items):
        return S.File(tuple(i for i in items if i is not None), self.source)

    def import_(self, meta, path):
        return S.Import(_unescape(str(path)), self._span(meta))

    def network(self, meta, name, body):
        return S.NetworkDef(str(name), body, self._span(meta), self._tok_span(name))

    def block(self, meta, name, *rest):
        body = rest[-1]
        params = tuple(p for p in rest[:-1] if p is not None)
        return S.BlockDef(str(name), params, body, self._span(meta), self._tok_span(name))

    def param(self, meta, name, default):
        return S.Param(str(name), default, self._span(meta))

    def body(self, meta, *stmts):
        return tuple(s for s in stmts if s is not None)

    # statements
    def input_stmt(self, meta, name, *rest):
        layout = rest[-1]
        dims = tuple(None if isinstance(d, _Unknown) else d for d in rest[:-1] if d is not None)
        return S.InputStmt(str(name), dims, None if layout is None else str(layout), self._span(meta),
                           None if layout is None else self._tok_span(layout))

    def unknown_dim(self, meta):
        return _Unknown()

    def default_stmt(self, meta, name, args):
        return S.DefaultStmt(str(name), args or (), self._span(meta), self._tok_span(name))

    def repeat_stmt(self, meta, count, var, body):
        return S.RepeatStmt(count, None if var is None else str(var), body, self._span(meta))

    def if_stmt(self, meta, cond, then, orelse=None):
        if isinstance(orelse, S.IfStmt):
            orelse = (orelse,)
        return S.IfStmt(cond, then, orelse, self._span(meta))

    def bind_stmt(self, meta, name, chain):
        return S.BindStmt(str(name), chain, self._span(meta), self._tok_span(name))

    def chain(self, meta, *steps):
        steps = tuple(S.Ref(s.id, s.span) if isinstance(s, S.Name) else s for s in steps)
        return S.Chain(steps, self._span(meta))

    def call(self, meta, name, args):
        return S.Call(str(name), args or (), self._span(meta), self._tok_span(name))

    def ref(self, meta, name):
        return S.Ref(str(name), self._span(meta))

    def arglist(self, meta, *args):
        return tuple(a for a in args if a is not None)

    def pos_arg(self, meta, value):
        return S.Arg(None, value, self._span(meta))

    def kw_arg(self, meta, name, value):
        return S.Arg(str(name), value, self._span(meta))

    # expressions
    def in_ref(self, meta):
        node = S.Name("in", self._span(meta))
        return node

    def number(self, meta, tok):
        text = str(tok)
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return self._expr(S.Const(value, self._span(meta)))

    def string(self, meta, tok):
        return self._expr(S.Const(_unescape(str(tok)), self._span(meta)))

    def true(self, meta):
        return self._expr(S.Const(True, self._span(meta)))

    def false(self, meta):
        return self._expr(S.Const(False, self._span(meta)))

    def none(self, meta):
        return self._expr(S.Const(None, self._span(meta)))

    def name(self, meta, tok):
        return self._expr(S.Name(str(tok), self._span(meta)))

    def funcall(self, meta, name, args):
        args = args or ()
        return self._expr(S.FunCall(str(name), args, self._span(meta)), *(a.value for a in args))

    def tuple_(self, meta, *items):
        items = tuple(i for i in items if i is not None)
        return self._expr(S.TupleExpr(items, self._span(meta)), *items)

    def index(self, meta, target, idx):
        return self._expr(S.Index(target, idx, self._span(meta)), target, idx)

    def neg(self, meta, _op, operand):
        return self._expr(S.Unary("-", operand, self._span(meta)), operand)

    def pos(self, meta, _op, operand):
        return self._expr(S.Unary("+", operand, self._span(meta)), operand)

    def not_(self, meta, operand):
        return self._expr(S.Unary("not", operand, self._span(meta)), operand)

    def pow_(self, meta, base, exp=None):
        if exp is None:
            return base
        return self._expr(S.Binary("**", base, exp, self._span(meta)), base, exp)

    def compare(self, meta, left, op=None, right=None):
        if op is None:
            return left
        return self._expr(S.Binary(str(op), left, right, self._span(meta)), left, right)

    def binary(self, meta, first, *rest):
        node = first
        for i in range(0, len(rest), 2):
            op, right = rest[i], rest[i + 1]
            span = Span(self.source, node.span.start, right.span.end)
            node = self._expr(S.Binary(str(op), node, right, span), node, right)
        return node

    def _fold(self, meta, op, items):
        node = items[0]
        for right in items[1:]:
            span = Span(self.source, node.span.start, right.span.end)
            node = self._expr(S.Binary(op, node, right, span), node, right)
        return node

    def or_(self, meta, *items):
        return self._fold(meta, "or", items)

    def and_(self, meta, *items):
        return self._fold(meta, "and", items)


class _Unknown:
    """Marks a ``?`` dimension while building the AST."""
