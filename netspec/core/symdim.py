"""Symbolic sizes: integer expressions in size symbols, and sets of sizes.

An :class:`Expr` is an integer expression in named sizes (``H``, ``W``):
sums of symbols, ``floor(e / m)`` terms, products and guarded choices, with
integer coefficients.  It supports the arithmetic the shape rules of
:mod:`netspec.core.ops` use (``+ - * // %`` and unary minus) and keeps a
canonical, simplified form, so one rule written for ints also computes a
formula:

>>> H = Expr.symbol("H")
>>> print(-(-H // 2))                      # 'same' with stride 2: ceil(H / 2)
floor((H - 1) / 2) + 1
>>> print((H + 3 + 3 - 1 * (7 - 1) - 1) // 2 + 1)
floor((H - 1) / 2) + 1
>>> print(((H - 1) // 2 + 1 - 1) // 2 + 1)  # two of them: ceil(ceil(H / 2) / 2)
floor((H - 1) / 4) + 1
>>> (H - 2) - (H - 2)
0

Comparisons of expressions cannot be answered by Python alone; they go to
the :class:`Oracle` that is active (see :mod:`netspec.core.symbolic`),
which explores both answers where both can happen.

Sets of sizes (:class:`SizeSet`) are bit masks over ``1..LIMIT``, computed
by evaluating a condition at every size; :meth:`SizeSet.describe` folds
one into ``from``/``step``/``residues``/``also`` form.

>>> s = SizeSet.where("H", ((H - 1) // 2 + 1) * 2 - H, "==")   # ceil(H/2)*2 == H
>>> s.summary()
{'from': 2, 'step': 2, 'residues': [0], 'also': []}
>>> s.text("H")
'H >= 2, H % 2 == 0'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "LIMIT",
    "Expr",
    "MixedSymbols",
    "Oracle",
    "SizeSet",
    "SymbolicBudget",
    "SymbolicComparison",
    "active_oracle",
    "flatten_tables",
    "is_symbolic",
    "simplify",
    "with_exceptions",
    "symbols_of",
]

#: Sizes 1..LIMIT are checked one by one; the answer beyond is the period found there.
LIMIT = 8192


class SymbolicComparison(TypeError):
    """A comparison of symbolic sizes was asked where no :class:`Oracle` can answer it."""


class MixedSymbols(TypeError):
    """A size condition involves two different symbols (or is not an integer condition)."""


# --- terms ------------------------------------------------------------------------------------


class _Term:
    __slots__ = ("key", "_hash")

    def __init__(self, key: tuple) -> None:
        self.key = key
        self._hash = hash(key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Term) and self.key == other.key


class _Sym(_Term):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__(("a", name))
        self.name = name

    def text(self) -> str:
        return self.name

    def py(self) -> str:
        return _var(self.name)

    def syms(self) -> set[str]:
        return {self.name}


class _Floor(_Term):
    __slots__ = ("inner", "m")

    def __init__(self, inner: Expr, m: int) -> None:
        super().__init__(("f", inner.key, m))
        self.inner, self.m = inner, m

    def text(self) -> str:
        inner = self.inner
        if inner.const == 0 and len(inner.terms) == 1 and inner.terms[0][1] == 1:
            return f"floor({inner.terms[0][0].text()} / {self.m})"
        return f"floor(({inner}) / {self.m})"

    def py(self) -> str:
        return f"(({self.inner.py()}) // {self.m})"

    def syms(self) -> set[str]:
        return self.inner.syms()


class _Mono(_Term):
    __slots__ = ("factors",)

    def __init__(self, factors: tuple[_Term, ...]) -> None:
        factors = tuple(sorted(factors, key=lambda t: t.key))
        super().__init__(("m", tuple(f.key for f in factors)))
        self.factors = factors

    def text(self) -> str:
        return "*".join(f.text() for f in self.factors)

    def py(self) -> str:
        return "*".join(f.py() for f in self.factors)

    def syms(self) -> set[str]:
        return set().union(*(f.syms() for f in self.factors))


#: A literal of a condition: (h, rel, value) means ``(h == 0) is value`` or ``(h >= 0) is value``.
Literal = tuple["Expr", str, bool]


def _literal_text(lit: Literal) -> str:
    h, rel, value = lit
    rel_text = {("==", True): "==", ("==", False): "!=", (">=", True): ">=", (">=", False): "<"}[(rel, value)]
    return f"{Expr(h.terms, 0)} {rel_text} {-h.const}"


def _literal_py(lit: Literal) -> str:
    h, rel, value = lit
    op = {("==", True): "==", ("==", False): "!=", (">=", True): ">=", (">=", False): "<"}[(rel, value)]
    return f"(({h.py()}) {op} 0)"


class _Select(_Term):
    """``a if every literal holds else b`` (a size that depends on which branch a rule took)."""

    __slots__ = ("cond", "a", "b")

    def __init__(self, cond: tuple[Literal, ...], a: Expr | int, b: Expr | int) -> None:
        key_a = a.key if isinstance(a, Expr) else a
        key_b = b.key if isinstance(b, Expr) else b
        super().__init__(("s", tuple((h.key, r, v) for h, r, v in cond), key_a, key_b))
        self.cond, self.a, self.b = cond, a, b

    def text(self) -> str:
        return f"({self.a} if {' and '.join(_literal_text(c) for c in self.cond)} else {self.b})"

    def py(self) -> str:
        a = self.a.py() if isinstance(self.a, Expr) else str(self.a)
        b = self.b.py() if isinstance(self.b, Expr) else str(self.b)
        return f"(({a}) if ({' and '.join(_literal_py(c) for c in self.cond)}) else ({b}))"

    def syms(self) -> set[str]:
        out: set[str] = set()
        for h, _, _ in self.cond:
            out |= h.syms()
        for e in (self.a, self.b):
            if isinstance(e, Expr):
                out |= e.syms()
        return out


class _Table(_Term):
    """``default``, except at a few sizes of one symbol where the value is given (merges
    that broadcast a size of 1 make such exceptions)."""

    __slots__ = ("name", "points", "default")

    def __init__(self, name: str, points: tuple[tuple[int, int], ...], default: Expr | int) -> None:
        key_d = default.key if isinstance(default, Expr) else default
        super().__init__(("t", name, points, key_d))
        self.name, self.points, self.default = name, points, default

    def text(self) -> str:
        at = ", ".join(f"{v} at {self.name} = {n}" for n, v in self.points)
        return f"({self.default} [{at}])"

    def py(self) -> str:
        d = self.default.py() if isinstance(self.default, Expr) else str(self.default)
        table = "{" + ", ".join(f"{n}: {v}" for n, v in self.points) + "}"
        return f"({table}.get({_var(self.name)}, ({d})))"

    def syms(self) -> set[str]:
        return {self.name} | (self.default.syms() if isinstance(self.default, Expr) else set())


# --- expressions ---------------------------------------------------------------------------------


def _norm(terms: dict[_Term, int], const: int) -> Expr | int:
    items = tuple(sorted(((t, c) for t, c in terms.items() if c), key=lambda tc: tc[0].key))
    if not items:
        return const
    return Expr(items, const)


class Expr:
    """An integer expression in size symbols, in canonical form; see the module doc.

    Arithmetic that cancels every symbol gives a plain int.

    >>> H, W = Expr.symbol("H"), Expr.symbol("W")
    >>> print(H * W * 64), print(2 * (H // 2) + H % 2 - H)
    64*H*W
    0
    (None, None)
    """

    __slots__ = ("terms", "const", "key", "_hash", "_syms")

    def __init__(self, terms: tuple[tuple[_Term, int], ...], const: int = 0) -> None:
        self.terms = terms
        self.const = const
        self.key = (const, tuple((t.key, c) for t, c in terms))
        self._hash = hash(self.key)
        self._syms: set[str] | None = None

    @staticmethod
    def symbol(name: str) -> Expr:
        """The size called ``name``."""
        return Expr(((_Sym(name), 1),), 0)

    # queries
    def syms(self) -> set[str]:
        """The symbols the expression depends on."""
        if self._syms is None:
            out: set[str] = set()
            for t, _ in self.terms:
                out |= t.syms()
            self._syms = out
        return self._syms

    def __hash__(self) -> int:
        return self._hash

    def same(self, other: Any) -> bool:
        """Structural equality (``==`` is a symbolic comparison)."""
        return isinstance(other, Expr) and self.key == other.key

    def __str__(self) -> str:
        parts: list[str] = []
        for t, c in self.terms:
            body = t.text()
            if abs(c) != 1:
                body = f"{abs(c)}*{body}"
            if not parts:
                parts.append(body if c > 0 else "-" + body)
            else:
                parts.append(("+ " if c > 0 else "- ") + body)
        if self.const:
            parts.append(("+ " if self.const > 0 else "- ") + str(abs(self.const)))
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def py(self) -> str:
        """The expression as Python source over ``s_NAME`` variables."""
        parts = [f"{c}*{t.py()}" if c != 1 else t.py() for t, c in self.terms]
        if self.const:
            parts.append(str(self.const))
        return " + ".join(parts)

    def evaluator(self) -> Callable[..., int]:
        """A Python function of the symbols (in sorted order) that evaluates the expression.

        >>> (Expr.symbol("H") // 3).evaluator()(10)
        3
        """
        names = sorted(self.syms())
        return eval(f"lambda {', '.join(_var(n) for n in names)}: {self.py()}", {"__builtins__": {}})

    # arithmetic
    def _dict(self) -> dict[_Term, int]:
        return dict(self.terms)

    def __add__(self, other: Any) -> Expr | int:
        if isinstance(other, bool) or not isinstance(other, (int, Expr)):
            return NotImplemented
        if isinstance(other, int):
            return Expr(self.terms, self.const + other) if other else self
        d = self._dict()
        for t, c in other.terms:
            d[t] = d.get(t, 0) + c
        return _norm(d, self.const + other.const)

    __radd__ = __add__

    def __neg__(self) -> Expr:
        return Expr(tuple((t, -c) for t, c in self.terms), -self.const)

    def __pos__(self) -> Expr:
        return self

    def __sub__(self, other: Any) -> Expr | int:
        if isinstance(other, bool) or not isinstance(other, (int, Expr)):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other: Any) -> Expr | int:
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        return (-self) + other

    def __mul__(self, other: Any) -> Expr | int:
        if isinstance(other, bool) or not isinstance(other, (int, Expr)):
            return NotImplemented
        if isinstance(other, int):
            if other == 0:
                return 0
            return Expr(tuple((t, c * other) for t, c in self.terms), self.const * other)
        d: dict[_Term, int] = {}
        for t, c in self.terms:
            d[t] = d.get(t, 0) + c * other.const
        for u, k in other.terms:
            d[u] = d.get(u, 0) + k * self.const
        for t, c in self.terms:
            for u, k in other.terms:
                m = _Mono(_factors(t) + _factors(u))
                d[m] = d.get(m, 0) + c * k
        return _norm(d, self.const * other.const)

    __rmul__ = __mul__

    def __floordiv__(self, other: Any) -> Expr | int:
        if isinstance(other, Expr) or isinstance(other, bool) or not isinstance(other, int):
            raise TypeError("a size can only be divided by a known integer")
        if other == 0:
            raise ZeroDivisionError("integer division by zero")
        return floor_div(self, other)

    def __rfloordiv__(self, other: Any) -> Any:
        raise TypeError("a size can only be divided by a known integer")

    def __mod__(self, other: Any) -> Expr | int:
        if isinstance(other, Expr) or isinstance(other, bool) or not isinstance(other, int):
            raise TypeError("a size can only be reduced modulo a known integer")
        return self - other * floor_div(self, other)

    def __truediv__(self, other: Any) -> Any:
        raise TypeError("a symbolic size has no true division")

    __rtruediv__ = __truediv__

    def __int__(self) -> int:
        raise TypeError(f"the size {self} is symbolic, not a known integer")

    __index__ = __int__

    # comparisons go to the oracle
    def __eq__(self, other: Any) -> bool:  # type: ignore[override]
        return _compare(self, other, "==")

    def __ne__(self, other: Any) -> bool:  # type: ignore[override]
        return _compare(self, other, "!=")

    def __lt__(self, other: Any) -> bool:
        return _compare(self, other, "<")

    def __le__(self, other: Any) -> bool:
        return _compare(self, other, "<=")

    def __gt__(self, other: Any) -> bool:
        return _compare(self, other, ">")

    def __ge__(self, other: Any) -> bool:
        return _compare(self, other, ">=")

    def __bool__(self) -> bool:
        return _compare(self, 0, "!=")


def _var(name: str) -> str:
    """The Python variable for a symbol (anonymous ones are named ``?1``, ``x?2``, ...)."""
    return "s_" + name.replace("?", "_q_")


def _factors(t: _Term) -> tuple[_Term, ...]:
    return t.factors if isinstance(t, _Mono) else (t,)


def floor_div(e: Expr | int, m: int) -> Expr | int:
    """``floor(e / m)`` in canonical form (``m`` a non-zero integer).

    >>> H = Expr.symbol("H")
    >>> print(floor_div(2 * H + 3, 4)), print(floor_div(H - 2, 2) + 1), print(floor_div(-H, 2))
    floor((H - 1) / 2) + 1
    floor(H / 2)
    -floor((H - 1) / 2) - 1
    (None, None, None)
    """
    if isinstance(e, int):
        return e // m
    if m < 0:
        return floor_div(-e, -m)
    if m == 1:
        return e
    outside: dict[_Term, int] = {}
    inside: dict[_Term, int] = {}
    for t, c in e.terms:
        q = abs(c) // m * (1 if c > 0 else -1)
        r = c - q * m
        if q:
            outside[t] = q
        if r:
            inside[t] = r
    c0 = e.const
    if not inside:
        return _norm(outside, c0 // m)
    items = sorted(inside.items(), key=lambda tc: tc[0].key)
    if items[0][1] < 0:  # floor((-u + c0) / m) = -floor((u - c0 + m - 1) / m)
        u = _norm({t: -c for t, c in inside.items()}, -c0 + m - 1)
        return _norm(outside, 0) - floor_div(u, m) if outside else -floor_div(u, m)  # type: ignore[operator]
    g = m
    for _, c in items:
        g = math.gcd(g, c)
    if g > 1:
        reduced = _norm({t: c // g for t, c in inside.items()}, c0 // g)
        return _plus(outside, floor_div(reduced, m // g))
    q0 = -((-c0) // m)
    r0 = c0 - q0 * m
    if len(items) == 1 and items[0][1] == 1 and isinstance(items[0][0], _Floor):
        f: _Floor = items[0][0]  # type: ignore[assignment]
        return _plus(outside, floor_div(f.inner + r0 * f.m, f.m * m), q0)
    term = _Floor(_norm(inside, r0), m)  # type: ignore[arg-type]
    outside[term] = outside.get(term, 0) + 1
    return _norm(outside, q0)


def _plus(outside: dict[_Term, int], value: Expr | int, const: int = 0) -> Expr | int:
    base = _norm(outside, const)
    return base + value  # type: ignore[operator, return-value]


def simplify(e: Any, region: dict[str, SizeSet]) -> Any:
    """``e`` with each guarded choice whose condition is decided on ``region`` replaced by its branch.

    >>> H = Expr.symbol("H")
    >>> e = Expr(((_Select(((H - 1, "==", True),), H, 2 * H), 1),), 0)
    >>> print(e), print(simplify(e, {"H": SizeSet.where("H", H - 2, ">=")}))
    (H if H == 1 else 2*H)
    2*H
    (None, None)
    """
    if not isinstance(e, Expr) or not any(_has_select(t) for t, _ in e.terms):
        return e
    total: Any = e.const
    for t, c in e.terms:
        total = total + c * _simplify_term(t, region)
    return total


def with_exceptions(main: Expr | int, name: str, points: dict[int, int]) -> Expr | int:
    """``main``, except at the given sizes of ``name`` (exceptions equal to ``main`` are dropped).

    >>> H = Expr.symbol("H")
    >>> print(with_exceptions(H // 2, "H", {3: 2, 4: 2}))
    (floor(H / 2) [2 at H = 3])
    """
    if isinstance(main, Expr) and main.syms() - {name}:
        raise MixedSymbols("exceptions of a size that depends on two symbols")
    base, old = _split_table(main, name)
    f = base.evaluator() if isinstance(base, Expr) else (lambda *_: base)
    merged = {**old, **points}
    keep = tuple(sorted((n, v) for n, v in merged.items() if v != f(*([n] if isinstance(base, Expr) and
                                                                            base.syms() else []))))
    if not keep:
        return base
    return Expr(((_Table(name, keep, base), 1),), 0)


def _split_table(e: Expr | int, name: str) -> tuple[Expr | int, dict[int, int]]:
    """A top-level table's default and points, or (e, {}) for anything else."""
    if isinstance(e, Expr) and e.const == 0 and len(e.terms) == 1 and e.terms[0][1] == 1 \
            and isinstance(e.terms[0][0], _Table) and e.terms[0][0].name == name:
        t: _Table = e.terms[0][0]  # type: ignore[assignment]
        return t.default, dict(t.points)
    return e, {}


def flatten_tables(e: Any) -> Any:
    """Lift tables out of a one-symbol expression: ``floor((T - 1) / 2)`` of a table ``T``
    becomes one table whose default and points are computed; anything else is returned as is.

    >>> H = Expr.symbol("H")
    >>> print(flatten_tables(with_exceptions(H // 2, "H", {3: 2}) * 2 + 1))
    (2*floor(H / 2) + 1 [5 at H = 3])
    """
    if not isinstance(e, Expr) or len(e.syms()) != 1 or not any(_has_table(t) for t, _ in e.terms):
        return e
    (name,) = e.syms()
    if _split_table(e, name)[1] and not _has_table_inside(e):
        return e
    sizes: set[int] = set()
    _collect_points(e, sizes)
    default = _drop_tables(e)
    f = e.evaluator()
    return with_exceptions(default, name, {n: f(n) for n in sizes})


def _has_table(t: _Term) -> bool:
    if isinstance(t, _Table):
        return True
    if isinstance(t, _Floor):
        return any(_has_table(u) for u, _ in t.inner.terms)
    if isinstance(t, _Mono):
        return any(_has_table(u) for u in t.factors)
    return False


def _has_table_inside(e: Expr) -> bool:
    t = e.terms[0][0]
    return isinstance(t, _Table) and isinstance(t.default, Expr) and any(_has_table(u) for u, _ in t.default.terms)


def _collect_points(e: Any, out: set[int]) -> None:
    if not isinstance(e, Expr):
        return
    for t, _ in e.terms:
        if isinstance(t, _Table):
            out.update(n for n, _ in t.points)
            _collect_points(t.default, out)
        elif isinstance(t, _Floor):
            _collect_points(t.inner, out)
        elif isinstance(t, _Mono):
            for f in t.factors:
                _collect_points(Expr(((f, 1),), 0), out)


def _drop_tables(e: Any) -> Any:
    if not isinstance(e, Expr):
        return e
    total: Any = e.const
    for t, c in e.terms:
        total = total + c * _drop_term(t)
    return total


def _drop_term(t: _Term) -> Any:
    if isinstance(t, _Table):
        return _drop_tables(t.default)
    if isinstance(t, _Floor):
        return floor_div(_drop_tables(t.inner), t.m)
    if isinstance(t, _Mono):
        out: Any = 1
        for f in t.factors:
            out = out * _drop_term(f)
        return out
    return Expr(((t, 1),), 0)


def _has_select(t: _Term) -> bool:
    if isinstance(t, _Select):
        return True
    if isinstance(t, _Floor):
        return any(_has_select(u) for u, _ in t.inner.terms)
    if isinstance(t, _Mono):
        return any(_has_select(u) for u in t.factors)
    return False


def _simplify_term(t: _Term, region: dict[str, SizeSet]) -> Any:
    if isinstance(t, _Sym):
        return Expr(((t, 1),), 0)
    if isinstance(t, _Floor):
        return floor_div(simplify(t.inner, region), t.m)
    if isinstance(t, _Mono):
        out: Any = 1
        for f in t.factors:
            out = out * _simplify_term(f, region)
        return out
    assert isinstance(t, _Select)
    a, b = simplify(t.a, region), simplify(t.b, region)
    holds: dict[str, SizeSet] = {}
    try:
        for h, rel, value in t.cond:
            (name,) = h.syms()
            where = SizeSet.where(name, h, rel)
            where = where if value else ~where
            holds[name] = holds.get(name, SizeSet.full()) & where
    except (ValueError, MixedSymbols):
        return Expr(((_Select(t.cond, a, b), 1),), 0)
    names = list(holds)
    if len(names) == 1 and names[0] in region:
        inside = region[names[0]]
        if not (inside & holds[names[0]]):
            return b
        if not (inside & ~holds[names[0]]):
            return a
    return Expr(((_Select(t.cond, a, b), 1),), 0)


def is_symbolic(value: Any) -> bool:
    """True for an :class:`Expr`.

    >>> is_symbolic(Expr.symbol("H")), is_symbolic(3)
    (True, False)
    """
    return isinstance(value, Expr)


def symbols_of(shape: Any) -> set[str]:
    """Every symbol in a shape's dims.

    >>> sorted(symbols_of((Expr.symbol("W"), 3, Expr.symbol("H") + 1)))
    ['H', 'W']
    """
    out: set[str] = set()
    for d in shape or ():
        if isinstance(d, Expr):
            out |= d.syms()
    return out


# --- comparisons and the oracle -----------------------------------------------------------------


class Oracle:
    """Answers comparisons of symbolic sizes; :mod:`netspec.core.symbolic` subclasses it."""

    def decide(self, h: Expr, rel: str) -> bool:
        """Is ``h == 0`` (``rel`` '==') or ``h >= 0`` (``rel`` '>=')?"""
        raise SymbolicComparison(f"cannot tell whether {h} {rel} 0 for every size")


_ACTIVE: list[Oracle] = []


class active_oracle:
    """Context manager that makes ``oracle`` answer symbolic comparisons."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle

    def __enter__(self) -> Oracle:
        _ACTIVE.append(self.oracle)
        return self.oracle

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.pop()


def _compare(lhs: Any, rhs: Any, op: str) -> bool:
    if rhs is None or isinstance(rhs, (str, tuple, float)) or isinstance(rhs, bool):
        if op in ("==", "!="):
            return (op == "!=")
        raise TypeError(f"cannot compare a size with {rhs!r}")
    h = lhs - rhs
    if isinstance(h, int):
        return {"==": h == 0, "!=": h != 0, "<": h < 0, "<=": h <= 0, ">": h > 0, ">=": h >= 0}[op]
    if op in ("==", "!="):
        if h.terms[0][1] < 0:
            h = -h
        value = _decide(h, "==")
        return value if op == "==" else not value
    if op == ">=":
        return _decide(h, ">=")
    if op == "<":
        return not _decide(h, ">=")
    if op == ">":
        return _decide(h - 1, ">=")  # type: ignore[arg-type]
    return not _decide(h - 1, ">=")  # type: ignore[arg-type]


def _decide(h: Any, rel: str) -> bool:
    if isinstance(h, int):
        return h == 0 if rel == "==" else h >= 0
    if _ACTIVE:
        return _ACTIVE[-1].decide(h, rel)
    return Oracle().decide(h, rel)


# --- sets of sizes ---------------------------------------------------------------------------------

#: How many conditions :meth:`SizeSet.where` has evaluated size by size (reset per network).
EVALUATED = 0
#: Most conditions one network may evaluate size by size before the symbolic pass gives up.
MAX_EVALUATIONS = 3000


class SymbolicBudget(Exception):
    """Too many size conditions for one network: the symbolic pass stops (W117)."""


def _linear_mask(coef: int, const: int, rel: str) -> int:
    """The sizes x in 1..LIMIT with ``coef*x + const == 0`` (or ``>= 0``), without evaluating each.

    >>> [x + 1 for x in range(8) if _linear_mask(2, -5, ">=") >> x & 1]
    [3, 4, 5, 6, 7, 8]
    >>> _linear_mask(-1, 3, ">=") == 0b111, _linear_mask(3, -6, "=="), _linear_mask(3, -7, "==")
    (True, 2, 0)
    """
    if rel == "==":
        if const % coef:
            return 0
        x = -const // coef
        return 1 << (x - 1) if 1 <= x <= LIMIT else 0
    if coef > 0:
        lo = max(1, -((const) // coef))  # smallest x with coef*x >= -const
        return 0 if lo > LIMIT else _FULL & ~((1 << (lo - 1)) - 1)
    hi = min(LIMIT, const // (-coef))  # largest x with -coef*x <= const
    return (1 << hi) - 1 if hi >= 1 else 0


_FULL = (1 << LIMIT) - 1
_CACHE: dict[tuple, int] = {}


class SizeSet:
    """A set of sizes of one symbol, exact over ``1..LIMIT``, as a bit mask (bit i: size i + 1).

    >>> H = Expr.symbol("H")
    >>> s = SizeSet.where("H", H - 5, ">=") & SizeSet.where("H", H % 4, "==")
    >>> s.text("H"), 8 in s, 4 in s
    ('H >= 8, H % 4 == 0', True, False)
    """

    __slots__ = ("mask",)

    def __init__(self, mask: int) -> None:
        self.mask = mask & _FULL

    @staticmethod
    def full() -> SizeSet:
        """Every size."""
        return SizeSet(_FULL)

    @staticmethod
    def where(name: str, h: Expr | int, rel: str) -> SizeSet:
        """The sizes of ``name`` at which ``h == 0`` (rel '==') or ``h >= 0`` (rel '>=').

        Raises :class:`MixedSymbols` when ``h`` depends on another symbol.
        """
        if isinstance(h, int):
            holds = h == 0 if rel == "==" else h >= 0
            return SizeSet(_FULL if holds else 0)
        if h.syms() != {name}:
            raise MixedSymbols(f"the condition {h} {rel} 0 involves {', '.join(sorted(h.syms()))}")
        key = (h.key, rel)
        mask = _CACHE.get(key)
        if mask is None and len(h.terms) == 1 and isinstance(h.terms[0][0], _Sym):
            mask = _linear_mask(h.terms[0][1], h.const, rel)
        if mask is None:
            global EVALUATED
            EVALUATED += 1
            f = eval(f"lambda {_var(name)}: ({h.py()}) {rel} 0", {"__builtins__": {}})
            bits = "".join(["1" if f(x) else "0" for x in range(LIMIT, 0, -1)])
            mask = int(bits, 2)
            if len(_CACHE) > 100_000:
                _CACHE.clear()
            _CACHE[key] = mask
        return SizeSet(mask)

    def __and__(self, other: SizeSet) -> SizeSet:
        return SizeSet(self.mask & other.mask)

    def __or__(self, other: SizeSet) -> SizeSet:
        return SizeSet(self.mask | other.mask)

    def __invert__(self) -> SizeSet:
        return SizeSet(~self.mask)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SizeSet) and self.mask == other.mask

    def __hash__(self) -> int:
        return hash(self.mask)

    def __bool__(self) -> bool:
        return self.mask != 0

    def __contains__(self, size: int) -> bool:
        return 1 <= size <= LIMIT and bool(self.mask >> (size - 1) & 1)

    def sizes(self, upto: int = LIMIT) -> list[int]:
        """The member sizes up to ``upto``."""
        return [x for x in range(1, min(upto, LIMIT) + 1) if self.mask >> (x - 1) & 1]

    def summary(self) -> dict[str, Any]:
        """``{"from", "step", "residues", "also"}``: a size N is valid iff
        ``N >= from and N % step in residues``, or ``N in also`` (all below ``from``).

        The period is the smallest one that the upper half of ``1..LIMIT``
        shows; the form reproduces the set exactly over ``1..LIMIT``.
        """
        bits = [bool(self.mask >> i & 1) for i in range(LIMIT)]  # bits[x - 1]: size x
        half = LIMIT // 2
        step = None
        for p in range(1, half // 2 + 1):
            if all(bits[i] == bits[i + p] for i in range(half, LIMIT - p)):
                step = p
                break
        if step is None:  # no period in sight: everything is an exception
            members = [i + 1 for i in range(LIMIT) if bits[i]]
            return {"from": LIMIT + 1, "step": 1, "residues": [], "also": members}
        residues = sorted({(i + 1) % step for i in range(LIMIT - step, LIMIT) if bits[i]})
        rset = set(residues)
        start = LIMIT
        while start > 1 and bits[start - 2] == (((start - 1) % step) in rset):
            start -= 1
        while residues and not bits[start - 1]:  # begin at the first member: 'H >= 32, H % 32 == 0'
            start += 1
        also = [i + 1 for i in range(start - 1) if bits[i]]
        if not residues:
            start = (also[-1] + 1) if also else 1
        return {"from": start, "step": step, "residues": residues, "also": also}

    def text(self, name: str) -> str:
        """The set as a condition on ``name``: ``H >= 32, H % 32 == 0`` (or ``H in {1, 2} only``)."""
        s = self.summary()
        also = s["also"]
        if not s["residues"]:
            if not also:
                return f"no size of {name}"
            return f"{name} in {{{', '.join(map(str, also))}}} only"
        parts = [f"{name} >= {s['from']}"]
        if s["step"] > 1:
            rs = s["residues"]
            if len(rs) == 1:
                parts.append(f"{name} % {s['step']} == {rs[0]}")
            else:
                parts.append(f"{name} % {s['step']} in {{{', '.join(map(str, rs))}}}")
        out = ", ".join(parts)
        if also:
            out += f", or {name} in {{{', '.join(map(str, also))}}}"
        return out
