"""Syntax: ``.net`` text to the surface AST, with Lark.

The grammar lives in ``grammar/netspec.lark`` (shipped inside the wheel as
``netspec/grammar/netspec.lark``).  The LALR tables are cached on disk by
Lark so a run does not rebuild them.  Syntax errors become
:class:`~netspec.core.diagnostics.NetspecError` with a span; so do inputs that
nest too deeply to handle safely.

>>> f = parse_source("block b(n=2) {\\n  dense(n)\\n}\\n", "m.net")
>>> f.items[0].name, f.items[0].params[0].default.value
('b', 2)
>>> parse_source("network n {\\n  dense(2\\n}\\n", "m.net")
Traceback (most recent call last):
...
netspec.core.diagnostics.NetspecError: m.net:3:1: error[E101]: unexpected '}'; expected ')' or ','
    }
    ^
"""

from __future__ import annotations

import ast as pyast
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..core.diagnostics import Diagnostic, NetspecError, Note
from ..core.source import Source, Span
from . import surface as S

__all__ = ["MAX_NESTING", "grammar_path", "parse_source"]

#: Deepest nesting of brackets, braces and expressions netspec accepts.
MAX_NESTING = 100
#: Most terms (operands, operators, calls) one expression may have.
MAX_EXPR_TERMS = 10_000

_OPEN = {"(": ")", "[": "]", "{": "}"}
#: Words that are never names.
_KEYWORDS = frozenset("network block input repeat as if else default in and or not true false none import "
                      "output let fn tensor carry for allow assert".split())
_CLOSE = {")", "]", "}"}


def grammar_path() -> Path:
    """Where the grammar file is: inside the installed package, else the repository's ``grammar/``.

    >>> grammar_path().name
    'netspec.lark'
    """
    packaged = Path(__file__).resolve().parents[1] / "grammar" / "netspec.lark"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "grammar" / "netspec.lark"


class _PostLex:
    """Drops newlines that do not end a statement; bounds nesting depth."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.source: Source | None = None

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth: list[str] = []
        openers: list[Token] = []
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
                    openers.append(tok)
                    if len(depth) > MAX_NESTING:
                        raise _TooDeep(tok)
                elif tok.value in _CLOSE and depth and _OPEN[depth[-1]] == tok.value:
                    depth.pop()
                    openers.pop()
            yield tok
        if pending is not None:
            yield pending
        if openers:  # name the bracket that is never closed rather than every possible next token
            raise _Unclosed(openers[-1])


class _Unclosed(Exception):
    def __init__(self, token: Token):
        self.token = token


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
        transformer=_TRANSFORMER,
        maybe_placeholders=True,
        cache=cache,
    )



def parse_source(text: str, filename: str = "<string>") -> S.File:
    """Parse ``.net`` text into a :class:`netspec.frontend.surface.File`.

    Raises :class:`NetspecError` with one syntax error on bad input.
    """
    source = Source(filename, text)
    if "\x00" in text:
        pos = text.index("\x00")
        raise NetspecError([Diagnostic.error("E101", "unexpected NUL character; is this a binary file?",
                                             Span(source, pos, pos + 1))])
    parser = _parser()
    _TRANSFORMER.source = source
    _TRANSFORMER.depth = {}
    try:
        return parser.parse(text)
    except _Unclosed as err:
        opener = err.token
        line, col = source.line_col(opener.start_pos or 0)
        closer = _OPEN[str(opener.value)]
        raise NetspecError([Diagnostic.error(
            "E102", f"unexpected end of file: {str(opener.value)!r} at line {line}, column {col} is never closed; "
            f"expected {closer!r}", _eof_span(source),
            [Note(f"{str(opener.value)!r} opened here", Span(source, opener.start_pos or 0, (opener.start_pos or 0) + 1))],
        )]) from None
    except _TooDeep as err:
        start = err.token.start_pos or 0
        raise NetspecError([Diagnostic.error(
            "E502", f"brackets nested more than {MAX_NESTING} deep", Span(source, start, start + 1))]) from None
    except UnexpectedInput as err:
        raise NetspecError([_syntax_error(err, source)]) from None
    except _LiteralTooLong as err:
        raise NetspecError([Diagnostic.error(
            "E501", f"number literal of {err.digits:,} digits is too large", err.span)]) from None
    except _ExprTooLong as err:
        raise NetspecError([Diagnostic.error(
            "E502", f"expression has more than {MAX_EXPR_TERMS:,} terms", err.span)]) from None
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


_OPERATORS = {"_AND", "_OR", "PLUS", "MINUS", "STAR", "SLASH", "DSLASH", "PERCENT", "_POW", "LSQB", "AND", "OR",
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


def _eof_span(source: Source) -> Span:
    """Just past the last character (on the last line when the file ends with a newline)."""
    end = len(source.text)
    if source.text.endswith("\n"):
        end -= 1
    return Span(source, end, end)


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
            return Diagnostic.error("E102", "unexpected end of file" + _expected(expected), _eof_span(source))
        start = tok.start_pos or 0
        end = tok.end_pos or start + 1
        if tok.type == "_NL" and source.text[:start].rstrip(" \t").endswith("->"):
            arrow = source.text[:start].rstrip(" \t").rindex("->")
            return Diagnostic.error(
                "E101", "a line cannot end with '->': write the next step on the same line, or begin the "
                "next line with '->' to continue the chain", Span(source, arrow, arrow + 2))
        shown = "newline" if tok.type == "_NL" else repr(str(tok.value))
        hint = ""
        before = re.search(r"([A-Za-z_]\w*)\s*$", source.text[max(0, start - 200):start])
        if str(tok.value) in _KEYWORDS and "NAME" in expected:
            hint = f" ({str(tok.value)!r} is a keyword, so it cannot be a name)"
        elif str(tok.value) == "=" and before and before.group(1) in _KEYWORDS:
            hint = f" ({before.group(1)!r} is a keyword, so it cannot be a name)"
        return Diagnostic.error("E101", f"unexpected {shown}" + _expected(expected) + hint,
                                Span(source, start, max(end if tok.type != "_NL" else start + 1, start + 1)))
    return Diagnostic.error("E101", str(err).splitlines()[0], Span(source, 0, 1))


# --- tree to AST --------------------------------------------------------------------------------


class _ExprTooDeep(Exception):
    def __init__(self, span: Span):
        self.span = span


class _ExprTooLong(_ExprTooDeep):
    pass


class _LiteralTooLong(Exception):
    def __init__(self, span: Span, digits: int):
        self.span = span
        self.digits = digits


class _Unknown:
    """Marks a ``?`` dimension while building the AST."""

    def __init__(self, span: Span):
        self.span = span


def _unescape(text: str) -> str:
    try:
        value = pyast.literal_eval(text)
        return value if isinstance(value, str) else text[1:-1]
    except (ValueError, SyntaxError):
        return text[1:-1]


def _start(child: object) -> int | None:
    if isinstance(child, Token):
        return child.start_pos
    if isinstance(child, tuple):
        for c in child:
            pos = _start(c)
            if pos is not None:
                return pos
        return None
    span = getattr(child, "span", None)
    return span.start if span is not None else None


def _end(child: object) -> int | None:
    if isinstance(child, Token):
        return child.end_pos
    if isinstance(child, tuple):
        for c in reversed(child):
            pos = _end(c)
            if pos is not None:
                return pos
        return None
    span = getattr(child, "span", None)
    return span.end if span is not None else None


@v_args(inline=True)
class _ToAst(Transformer):
    """Builds surface nodes during the LALR parse (no parse tree is built).

    Each node's span runs from its first child's start to its last child's
    end; the grammar keeps the bounding tokens (keywords, closing brackets).
    """

    def __init__(self) -> None:
        super().__init__()
        self.source: Source = Source("<string>", "")
        self.depth: dict[int, int] = {}

    def _span(self, *children: object) -> Span:
        start = next((p for p in map(_start, children) if p is not None), 0)
        end = next((p for p in map(_end, reversed(children)) if p is not None), start)
        return Span(self.source, start, end)

    def _tok(self, tok: Token) -> Span:
        return Span(self.source, tok.start_pos or 0, tok.end_pos or 0)

    def _expr(self, node, *children, spine=None):
        """Bound an expression's nesting and size while it is being built.

        ``spine`` is the left operand of a left-associative operator: the
        evaluator walks such chains iteratively, so ``1 + 1 + ... + 1`` does
        not count as nesting, only as size.
        """
        d = max([1 + self.depth.get(id(c), (0, 1))[0] for c in children]
                + ([self.depth.get(id(spine), (0, 1))[0]] if spine is not None else []), default=1)
        size = 1 + sum(self.depth.get(id(c), (0, 1))[1] for c in children)
        if spine is not None:
            size += self.depth.get(id(spine), (0, 1))[1]
        if d > MAX_NESTING:
            raise _ExprTooDeep(node.span)
        if size > MAX_EXPR_TERMS:
            raise _ExprTooLong(node.span)
        self.depth[id(node)] = (d, size)
        return node

    # items
    def start(self, *items):
        return S.File(tuple(i for i in items if i is not None), self.source)

    def import_(self, kw, path):
        return S.Import(_unescape(str(path)), self._span(kw, path))

    def network(self, kw, name, params, body, rbrace):
        return S.NetworkDef(str(name), body, self._span(kw, rbrace), self._tok(name), params)

    def instance(self, kw, name, target, args, rpar):
        return S.InstanceDef(str(name), str(target), args or (), self._span(kw, rpar), self._tok(name),
                             self._tok(target))

    def params(self, lpar, *rest):
        return tuple(p for p in rest if isinstance(p, S.Param))

    def block(self, kw, name, params, body, rbrace):
        return S.BlockDef(str(name), params, body, self._span(kw, rbrace), self._tok(name))

    def fn_def(self, kw, name, params, body):
        return S.FnDef(str(name), params, body, self._span(kw, body), self._tok(name))

    def param(self, name, default):
        return S.Param(str(name), default, self._span(name, default))

    def tensor_param(self, name, kw):
        return S.Param(str(name), None, self._span(name, kw), True)

    def body(self, *stmts):
        return tuple(s for s in stmts if s is not None)

    # statements
    def input_stmt(self, kw, name, *rest):
        layout = rest[-1]
        dims = tuple(None if isinstance(d, _Unknown) else d for d in rest[:-2] if d is not None)
        return S.InputStmt(str(name), dims, None if layout is None else str(layout),
                           self._span(kw, rest[-2], layout), None if layout is None else self._tok(layout))

    def output_stmt(self, kw, *names):
        return S.OutputStmt(tuple(str(n) for n in names), self._span(kw, *names),
                            tuple(self._tok(n) for n in names))

    def unknown_dim(self, tok):
        return _Unknown(self._tok(tok))

    def default_stmt(self, kw, name, args, rpar):
        return S.DefaultStmt(str(name), args or (), self._span(kw, rpar), self._tok(name))

    def repeat_stmt(self, kw, count, var, carry, body, rbrace):
        return S.RepeatStmt(count, None if var is None else str(var), body, self._span(kw, rbrace), carry or ())

    def for_stmt(self, kw, target, in_kw, iterable, carry, body, rbrace):
        if isinstance(target, Token):
            names, unpack = (S.Name(str(target), self._tok(target)),), False
        else:
            names, unpack = target, True
        return S.ForStmt(names, unpack, iterable, body, self._span(kw, rbrace), carry or ())

    def for_names(self, lpar, *rest):
        return tuple(S.Name(str(t), self._tok(t)) for t in rest if isinstance(t, Token) and t.type == "NAME")

    def carry(self, kw, *names):
        return tuple(S.Name(str(t), self._tok(t)) for t in names)

    def let_stmt(self, kw, name, value):
        return S.LetStmt(str(name), value, self._span(kw, value), self._tok(name))

    def allow_stmt(self, kw, *codes):
        return S.AllowStmt(tuple(S.Name(str(t), self._tok(t)) for t in codes), self._span(kw, *codes))

    def assert_stmt(self, kw, cond, message):
        return S.AssertStmt(cond, message, self._span(kw, cond, message))

    def if_stmt(self, kw, cond, then, rbrace, *rest):
        rest = tuple(r for r in rest if r is not None)
        orelse = None
        if rest and isinstance(rest[0], S.IfStmt):
            orelse = (rest[0],)
        elif rest:
            orelse = rest[0]
        return S.IfStmt(cond, then, orelse, self._span(kw, rbrace, *rest))

    def bind_stmt(self, name, chain):
        return S.BindStmt(str(name), chain, self._span(name, chain), self._tok(name))

    def chain(self, *steps):
        steps = tuple(S.Ref(s.id, s.span) if isinstance(s, S.Name) else s for s in steps)
        return S.Chain(steps, self._span(*steps))

    def call(self, name, args, rpar):
        return S.Call(str(name), args or (), self._span(name, rpar), self._tok(name))

    def ref(self, name):
        return S.Ref(str(name), self._tok(name))

    def arglist(self, *args):
        return tuple(a for a in args if a is not None)

    def pos_arg(self, value):
        return S.Arg(None, value, value.span)

    def kw_arg(self, name, value):
        return S.Arg(str(name), value, self._span(name, value))

    # expressions
    def in_ref(self, tok):
        return S.Name("in", self._tok(tok))

    def number(self, tok):
        text = str(tok)
        if len(text) > 1000:  # int() refuses over 4,300 digits; no size needs a tenth of that
            raise _LiteralTooLong(self._tok(tok), len(text))
        text = text.replace("_", "")
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return S.Const(value, self._tok(tok))

    def string(self, tok):
        return S.Const(_unescape(str(tok)), self._tok(tok))

    def true(self, tok):
        return S.Const(True, self._tok(tok))

    def false(self, tok):
        return S.Const(False, self._tok(tok))

    def none(self, tok):
        return S.Const(None, self._tok(tok))

    def name(self, tok):
        return S.Name(str(tok), self._tok(tok))

    def funcall(self, name, args, rpar):
        args = args or ()
        return self._expr(S.FunCall(str(name), args, self._span(name, rpar)), *(a.value for a in args))

    def tuple_(self, lpar, *rest):
        items = tuple(i for i in rest[:-1] if i is not None)
        return self._expr(S.TupleExpr(items, self._span(lpar, rest[-1])), *items)

    def index(self, target, idx, rsqb):
        return self._expr(S.Index(target, idx, self._span(target, rsqb)), target, idx)

    def neg(self, op, operand):
        return self._expr(S.Unary("-", operand, self._span(op, operand)), operand)

    def pos(self, op, operand):
        return self._expr(S.Unary("+", operand, self._span(op, operand)), operand)

    def not_(self, kw, operand):
        return self._expr(S.Unary("not", operand, self._span(kw, operand)), operand)

    def pow_(self, base, exp):
        return self._expr(S.Binary("**", base, exp, self._span(base, exp)), base, exp)

    def compare(self, left, op, right):
        return self._expr(S.Binary(str(op), left, right, self._span(left, right)), left, right)

    def binary(self, left, op, right):
        return self._expr(S.Binary(str(op), left, right, self._span(left, right)), right, spine=left)

    def or_(self, left, right):
        return self._expr(S.Binary("or", left, right, self._span(left, right)), right, spine=left)

    def cond(self, then, kw, cond, orelse):
        return self._expr(S.CondExpr(then, cond, orelse, self._span(then, orelse)), then, cond, orelse)

    def and_(self, left, right):
        return self._expr(S.Binary("and", left, right, self._span(left, right)), right, spine=left)


_TRANSFORMER = _ToAst()
