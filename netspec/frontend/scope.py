"""Elaboration state shared by statements and expressions: scopes, limits, aborts.

>>> outer = Scope(values={"n": 2})
>>> Scope(outer, tensors={"in": "conv2d"}).find("n")
('value', 2)
"""

from __future__ import annotations

from typing import Any

from ..core.diagnostics import Diagnostic
from ..core.source import Span

__all__ = ["MAX_BLOCK_DEPTH", "MAX_LAYERS", "MAX_REPEAT", "MAX_STEPS", "POISON", "POISON_VALUE", "Abort", "Fatal",
           "Scope"]

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
#: Most diagnostics reported for one network before giving up.
MAX_DIAGNOSTICS = 200

POISON = "\x00error"
#: The value of a ``let`` whose expression failed (already reported).
POISON_VALUE = object()
#: Functions an expression may call besides channels() and shape().
BUILTINS = ("str", "len", "min", "max", "int", "round", "ceil", "floor", "abs")
#: Functions that give the totals of the layers built so far (in ``assert`` and anywhere else).
TOTALS = ("params", "trainable_params", "macs")



class Abort(Exception):
    """Stops one statement; its diagnostic is recorded and the statement's result is poisoned."""

    def __init__(self, diag: Diagnostic | None):
        self.diag = diag


class Fatal(Exception):
    """Stops the whole network (a limit was reached)."""

    def __init__(self, diag: Diagnostic):
        self.diag = diag


_NONE_REBOUND: dict = {}


class Scope:
    """Names bound in one body (tensors and values), its defaults, and the enclosing scope.

    ``kind`` says what body the scope is: ``"body"`` (a network's or block's
    own body, where a name lookup for rebinding stops), ``"pass"`` (one pass
    of a ``repeat`` or ``for``), ``"carry"`` (the names a loop carries,
    between the loop and its passes), ``"if"``, or ``""`` (parameters,
    file-level values).
    """

    __slots__ = ("parent", "tensors", "values", "defaults", "spans", "kind", "rebound", "caller")

    def __init__(self, parent: Scope | None = None, tensors: dict | None = None, values: dict | None = None,
                 kind: str = ""):
        self.parent = parent
        self.tensors: dict[str, str] = tensors or {}
        self.values: dict[str, Any] = values or {}
        self.defaults: dict[str, dict[str, tuple[Any, Span]]] = {}
        self.spans: dict[str, Span] = {}
        self.kind = kind
        #: In a block's body: the scope of the call, whose defaults reach the block (names do not).
        self.caller: Scope | None = None
        #: In a carry scope: the carried names rebound in the current pass, and where (the loop
        #: gives it a fresh dict each pass; other scopes share an empty one they never write).
        self.rebound: dict[str, Span] = _NONE_REBOUND

    def find(self, name: str) -> tuple[str, Any] | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.tensors:
                return "tensor", scope.tensors[name]
            if name in scope.values:
                return "value", scope.values[name]
            scope = scope.parent
        return None

    def site(self, name: str) -> Scope | None:
        """The scope of this body (up to the network's or block's own) that binds ``name``, if any.

        >>> body = Scope(kind="body", values={"n": 1})
        >>> Scope(body, kind="if").site("n") is body, Scope(body).site("m")
        (True, None)
        """
        scope: Scope | None = self
        while scope is not None:
            if name in scope.tensors or name in scope.values:
                return scope
            if scope.kind == "body":
                return None
            scope = scope.parent
        return None

    def bind(self, name: str, kind: str, value: Any) -> None:
        """Bind (or, in a carry scope, rebind) ``name`` here as a tensor or a value."""
        if kind == "tensor":
            self.values.pop(name, None)
            self.tensors[name] = value
        else:
            self.tensors.pop(name, None)
            self.values[name] = value

    def visible(self) -> list[str]:
        out: list[str] = []
        scope: Scope | None = self
        while scope is not None:
            out.extend(scope.tensors)
            out.extend(scope.values)
            scope = scope.parent
        return out

    def defaults_for(self, op: str) -> dict[str, tuple[Any, Span]]:
        """The ``default`` arguments for ``op`` here: this body's and the enclosing ones', then,
        past a block's body, those of the scope that called it; the nearest wins.

        >>> net = Scope(kind="body")
        >>> net.defaults["conv2d"] = {"use_bias": (False, None), "padding": ("same", None)}
        >>> body = Scope(Scope(), kind="body")
        >>> body.caller = net
        >>> body.defaults["conv2d"] = {"padding": ("valid", None)}
        >>> sorted((k, v) for k, (v, _) in body.defaults_for("conv2d").items())
        [('padding', 'valid'), ('use_bias', False)]
        """
        merged: dict[str, tuple[Any, Span]] = {}
        scope: Scope | None = self
        while scope is not None:
            caller: Scope | None = None
            lexical: Scope | None = scope
            while lexical is not None:
                for key, entry in lexical.defaults.get(op, {}).items():
                    merged.setdefault(key, entry)
                if caller is None:
                    caller = lexical.caller
                lexical = lexical.parent
            scope = caller
        return merged
