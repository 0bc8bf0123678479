"""The surface AST: what a ``.net`` file says, before any name is resolved.

Produced by :mod:`netspec.frontend.syntax`, consumed by :mod:`netspec.frontend.elaborate`.
Every node carries its :class:`~netspec.core.source.Span` (excluded from
equality).

>>> from netspec.frontend.syntax import parse_source
>>> f = parse_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n", "m.net")
>>> type(f.items[0].body[1]).__name__, f.items[0].body[1].steps[0].name
('Chain', 'dense')
"""

from __future__ import annotations

__all__ = [
    "AllowStmt", "Arg", "AssertStmt", "Binary", "BindStmt", "BlockDef", "Call", "Chain", "CondExpr", "Const",
    "DefaultStmt", "Expr", "File", "FnDef", "ForStmt", "FunCall", "IfStmt", "Import", "Index", "InputStmt",
    "InstanceDef", "LetStmt", "Name", "NetworkDef", "OutputStmt", "Param", "Ref", "RepeatStmt", "Stmt", "TupleExpr",
    "Unary",
]


class _Node:
    """Plain slotted records: cheap to define (``netspec check`` starts fast) and to build.

    Equality compares every field but the spans; ``repr`` shows the same fields.
    """

    __slots__: tuple[str, ...] = ()
    _compared: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self._compared)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, f) for f in self._compared)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self._compared)})"



# --- expressions -----------------------------------------------------------------------


class Const(_Node):
    """A literal: number, string, ``true``, ``false`` or ``none``."""

    __slots__ = ('value', 'span')
    _compared = ('value',)

    def __init__(self, value, span) -> None:
        self.value = value
        self.span = span


class Name(_Node):
    """A name in an expression: a block parameter, a repeat counter or a tensor (``in`` too)."""

    __slots__ = ('id', 'span')
    _compared = ('id',)

    def __init__(self, id, span) -> None:
        self.id = id
        self.span = span


class Unary(_Node):
    """``-x``, ``+x`` or ``not x``."""

    __slots__ = ('op', 'operand', 'span')
    _compared = ('op', 'operand')

    def __init__(self, op, operand, span) -> None:
        self.op = op
        self.operand = operand
        self.span = span


class Binary(_Node):
    """Arithmetic, comparison, ``and`` and ``or``."""

    __slots__ = ('op', 'left', 'right', 'span')
    _compared = ('op', 'left', 'right')

    def __init__(self, op, left, right, span) -> None:
        self.op = op
        self.left = left
        self.right = right
        self.span = span


class Index(_Node):
    """``t[i]``."""

    __slots__ = ('target', 'index', 'span')
    _compared = ('target', 'index')

    def __init__(self, target, index, span) -> None:
        self.target = target
        self.index = index
        self.span = span


class TupleExpr(_Node):
    """``(a, b, ...)``."""

    __slots__ = ('items', 'span')
    _compared = ('items',)

    def __init__(self, items, span) -> None:
        self.items = items
        self.span = span


class FunCall(_Node):
    """A call inside an expression: ``channels(x)``, ``shape(x)``, ``l2(1e-4)``."""

    __slots__ = ('name', 'args', 'span')
    _compared = ('name', 'args')

    def __init__(self, name, args, span) -> None:
        self.name = name
        self.args = args
        self.span = span


class CondExpr(_Node):
    """``A if COND else B``: only the branch taken is evaluated."""

    __slots__ = ('then', 'cond', 'orelse', 'span')
    _compared = ('then', 'cond', 'orelse')

    def __init__(self, then, cond, orelse, span) -> None:
        self.then = then
        self.cond = cond
        self.orelse = orelse
        self.span = span


Expr = Const | Name | Unary | Binary | Index | TupleExpr | FunCall | CondExpr


class Arg(_Node):
    """One argument of a call: positional (``name`` is None) or keyword."""

    __slots__ = ('name', 'value', 'span')
    _compared = ('name', 'value')

    def __init__(self, name, value, span) -> None:
        self.name = name
        self.value = value
        self.span = span


# --- statements --------------------------------------------------------------------------


class Call(_Node):
    """A chain step that applies an op or a block."""

    __slots__ = ('name', 'args', 'span', 'name_span')
    _compared = ('name', 'args')

    def __init__(self, name, args, span, name_span) -> None:
        self.name = name
        self.args = args
        self.span = span
        self.name_span = name_span


class Ref(_Node):
    """A chain step that names a tensor (``x`` or ``in``)."""

    __slots__ = ('name', 'span')
    _compared = ('name',)

    def __init__(self, name, span) -> None:
        self.name = name
        self.span = span


class Chain(_Node):
    """``a -> b -> c``; a single step is a chain of one."""

    __slots__ = ('steps', 'span')
    _compared = ('steps',)

    def __init__(self, steps, span) -> None:
        self.steps = steps
        self.span = span


class BindStmt(_Node):
    """``NAME = CHAIN``."""

    __slots__ = ('name', 'chain', 'span', 'name_span')
    _compared = ('name', 'chain')

    def __init__(self, name, chain, span, name_span) -> None:
        self.name = name
        self.chain = chain
        self.span = span
        self.name_span = name_span


class InputStmt(_Node):
    """``input x: [d1, d2, d3] [channels_first]``; a ``None`` dim is ``?``."""

    __slots__ = ('name', 'dims', 'layout', 'span', 'layout_span')
    _compared = ('name', 'dims', 'layout')

    def __init__(self, name, dims, layout, span, layout_span) -> None:
        self.name = name
        self.dims = dims
        self.layout = layout
        self.span = span
        self.layout_span = layout_span


class OutputStmt(_Node):
    """``output a, b, ...``: the network's outputs, in order; ``name_spans`` point at each name."""

    __slots__ = ('names', 'span', 'name_spans')
    _compared = ('names',)

    def __init__(self, names, span, name_spans) -> None:
        self.names = names
        self.span = span
        self.name_spans = name_spans


class DefaultStmt(_Node):
    """``default op(arg=value, ...)``."""

    __slots__ = ('op', 'args', 'span', 'op_span')
    _compared = ('op', 'args')

    def __init__(self, op, args, span, op_span) -> None:
        self.op = op
        self.args = args
        self.span = span
        self.op_span = op_span


class RepeatStmt(_Node):
    """``repeat N [as i] [carry a, b] { ... }``; ``carry`` is a tuple of :class:`Name`."""

    __slots__ = ('count', 'var', 'body', 'span', 'carry')
    _compared = ('count', 'var', 'body', 'carry')

    def __init__(self, count, var, body, span, carry=()) -> None:
        self.count = count
        self.var = var
        self.body = body
        self.span = span
        self.carry = carry


class ForStmt(_Node):
    """``for v in EXPR [carry ...] { ... }`` or ``for (a, b) in EXPR { ... }``.

    ``names`` is a tuple of :class:`Name`; ``unpack`` is true for the parenthesised form.
    """

    __slots__ = ('names', 'unpack', 'iterable', 'body', 'span', 'carry')
    _compared = ('names', 'unpack', 'iterable', 'body', 'carry')

    def __init__(self, names, unpack, iterable, body, span, carry=()) -> None:
        self.names = names
        self.unpack = unpack
        self.iterable = iterable
        self.body = body
        self.span = span
        self.carry = carry


class LetStmt(_Node):
    """``let NAME = EXPR`` (in a body or at file level)."""

    __slots__ = ('name', 'value', 'span', 'name_span')
    _compared = ('name', 'value')

    def __init__(self, name, value, span, name_span) -> None:
        self.name = name
        self.value = value
        self.span = span
        self.name_span = name_span


class AllowStmt(_Node):
    """``allow W104, W102``; ``codes`` is a tuple of :class:`Name`."""

    __slots__ = ('codes', 'span')
    _compared = ('codes',)

    def __init__(self, codes, span) -> None:
        self.codes = codes
        self.span = span


class AssertStmt(_Node):
    """``assert COND[, MESSAGE]``."""

    __slots__ = ('cond', 'message', 'span')
    _compared = ('cond', 'message')

    def __init__(self, cond, message, span) -> None:
        self.cond = cond
        self.message = message
        self.span = span


class IfStmt(_Node):
    """``if COND { ... } else { ... }``."""

    __slots__ = ('cond', 'then', 'orelse', 'span')
    _compared = ('cond', 'then', 'orelse')

    def __init__(self, cond, then, orelse, span) -> None:
        self.cond = cond
        self.then = then
        self.orelse = orelse
        self.span = span


Stmt = (InputStmt | OutputStmt | DefaultStmt | RepeatStmt | ForStmt | IfStmt | LetStmt | AllowStmt | AssertStmt
        | BindStmt | Chain)


# --- items ------------------------------------------------------------------------------------


class Param(_Node):
    """A block, network or fn parameter with its optional default; ``tensor`` marks ``t: tensor``."""

    __slots__ = ('name', 'default', 'span', 'tensor')
    _compared = ('name', 'default', 'tensor')

    def __init__(self, name, default, span, tensor=False) -> None:
        self.name = name
        self.default = default
        self.span = span
        self.tensor = tensor


class NetworkDef(_Node):
    """``network NAME { ... }``, or ``network NAME(params) { ... }`` (``params`` None without a list)."""

    __slots__ = ('name', 'body', 'span', 'name_span', 'params')
    _compared = ('name', 'body', 'params')

    def __init__(self, name, body, span, name_span, params=None) -> None:
        self.name = name
        self.body = body
        self.span = span
        self.name_span = name_span
        self.params = params


class InstanceDef(_Node):
    """``network NAME = OTHER(args)``: a named instance of a parameterised network."""

    __slots__ = ('name', 'target', 'args', 'span', 'name_span', 'target_span')
    _compared = ('name', 'target', 'args')

    def __init__(self, name, target, args, span, name_span, target_span) -> None:
        self.name = name
        self.target = target
        self.args = args
        self.span = span
        self.name_span = name_span
        self.target_span = target_span


class FnDef(_Node):
    """``fn NAME(params) = EXPR`` at file level."""

    __slots__ = ('name', 'params', 'body', 'span', 'name_span')
    _compared = ('name', 'params', 'body')

    def __init__(self, name, params, body, span, name_span) -> None:
        self.name = name
        self.params = params
        self.body = body
        self.span = span
        self.name_span = name_span


class BlockDef(_Node):
    """``block NAME(params) { ... }``."""

    __slots__ = ('name', 'params', 'body', 'span', 'name_span')
    _compared = ('name', 'params', 'body')

    def __init__(self, name, params, body, span, name_span) -> None:
        self.name = name
        self.params = params
        self.body = body
        self.span = span
        self.name_span = name_span


class Import(_Node):
    """``import "path.net"``."""

    __slots__ = ('path', 'span')
    _compared = ('path',)

    def __init__(self, path, span) -> None:
        self.path = path
        self.span = span


class File(_Node):
    """A whole parsed file."""

    __slots__ = ('items', 'source')
    _compared = ('items',)

    def __init__(self, items, source) -> None:
        self.items = items
        self.source = source
