"""The surface AST: what a ``.net`` file says, before any name is resolved.

Produced by :mod:`netspec.syntax`, consumed by :mod:`netspec.elaborate`.
Every node carries its :class:`~netspec.source.Span` (excluded from
equality).

>>> from netspec.syntax import parse_source
>>> f = parse_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n", "m.net")
>>> type(f.items[0].body[1]).__name__, f.items[0].body[1].steps[0].name
('Chain', 'dense')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .source import Span

__all__ = [
    "Arg", "Binary", "BindStmt", "BlockDef", "Call", "Chain", "Const", "DefaultStmt", "Expr",
    "File", "FunCall", "IfStmt", "Import", "Index", "InputStmt", "Name", "NetworkDef", "Param",
    "Ref", "RepeatStmt", "Stmt", "TupleExpr", "Unary",
]



# --- expressions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    """A literal: number, string, ``true``, ``false`` or ``none``."""

    value: Any
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Name:
    """A name in an expression: a block parameter, a repeat counter or a tensor (``in`` too)."""

    id: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x``, ``+x`` or ``not x``."""

    op: str
    operand: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic, comparison, ``and`` and ``or``."""

    op: str
    left: Expr
    right: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Index:
    """``t[i]``."""

    target: Expr
    index: Expr
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TupleExpr:
    """``(a, b, ...)``."""

    items: tuple[Expr, ...]
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class FunCall:
    """A call inside an expression: ``channels(x)``, ``shape(x)``, ``l2(1e-4)``."""

    name: str
    args: tuple[Arg, ...]
    span: Span = field(compare=False, repr=False)


Expr = Const | Name | Unary | Binary | Index | TupleExpr | FunCall


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a call: positional (``name`` is None) or keyword."""

    name: str | None
    value: Expr
    span: Span = field(compare=False, repr=False)


# --- statements --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A chain step that applies an op or a block."""

    name: str
    args: tuple[Arg, ...]
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Ref:
    """A chain step that names a tensor (``x`` or ``in``)."""

    name: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Chain:
    """``a -> b -> c``; a single step is a chain of one."""

    steps: tuple[Call | Ref, ...]
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BindStmt:
    """``NAME = CHAIN``."""

    name: str
    chain: Chain
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class InputStmt:
    """``input x: [d1, d2, d3] [channels_first]``; a ``None`` dim is ``?``."""

    name: str
    dims: tuple[Expr | None, ...]
    layout: str | None
    span: Span = field(compare=False, repr=False)
    layout_span: Span | None = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DefaultStmt:
    """``default op(arg=value, ...)``."""

    op: str
    args: tuple[Arg, ...]
    span: Span = field(compare=False, repr=False)
    op_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RepeatStmt:
    """``repeat N [as i] { ... }``."""

    count: Expr
    var: str | None
    body: tuple[Stmt, ...]
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IfStmt:
    """``if COND { ... } else { ... }``."""

    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None
    span: Span = field(compare=False, repr=False)


Stmt = InputStmt | DefaultStmt | RepeatStmt | IfStmt | BindStmt | Chain


# --- items ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """A block parameter with its optional default."""

    name: str
    default: Expr | None
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class NetworkDef:
    """``network NAME { ... }``."""

    name: str
    body: tuple[Stmt, ...]
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BlockDef:
    """``block NAME(params) { ... }``."""

    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span = field(compare=False, repr=False)
    name_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Import:
    """``import "path.net"``."""

    path: str
    span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class File:
    """A whole parsed file."""

    items: tuple[NetworkDef | BlockDef | Import, ...]
    source: Any = field(compare=False, repr=False)
