"""The expression evaluator: values of arguments, repeat counts, conditions.

Numbers, strings, tuples, booleans and ``none``; arithmetic with overflow
bounds, comparisons, ``and``/``or`` that short-circuit, indexing, and the
built-in functions.  It is a mixin of the statement elaborator, which
supplies tensor lookup (for ``channels(x)`` / ``shape(x)``) and argument
evaluation.

>>> from netspec import load_source
>>> load_source("network n {\\n input x: [4]\\n dense(max(2, 3) ** 2 // 4)\\n}\\n").output_shape
(2,)
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any

from ..core.argtypes import CallValue, clip, did_you_mean, format_value, type_name
from ..core.diagnostics import Diagnostic, Note
from ..core.shapes import channel_axis
from . import surface as S
from .scope import (
    BUILTINS,
    MAX_BLOCK_DEPTH,
    MAX_INT,
    MAX_STRING,
    POISON_VALUE,
    TOTALS,
    Abort,
    Scope,
)

if TYPE_CHECKING:
    from ..core.check import GraphChecker
    from ..core.source import Span

__all__ = ["ExpressionEvaluator", "quote_hint"]


#: Words that are string values of some argument: written unquoted, they are names.
_STRING_WORDS = frozenset((
    "same", "valid", "causal", "full", "channels_last", "channels_first", "nearest", "bilinear", "bicubic",
    "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic", "fan_in", "fan_out", "fan_avg", "uniform",
    "normal", "truncated_normal", "untruncated_normal",
))


def quote_hint(name: str) -> str:
    """A hint for an unbound name that is a Python constant or an unquoted string value ('' if none).

    >>> quote_hint("relu"), quote_hint("False"), quote_hint("filters")
    ("; strings are quoted: did you mean 'relu'?", '; netspec writes false (lower case)', '')
    """
    if name in ("True", "False", "None", "TRUE", "FALSE", "NONE", "Null", "null", "nil"):
        word = {"true": "true", "false": "false"}.get(name.lower(), "none")
        return f"; netspec writes {word} (lower case)"
    from ..core import argtypes as at

    words = set(_STRING_WORDS) | set(at.ACTIVATIONS) | set(getattr(at, "_ACTIVATION_ALIASES", {}))
    for table in ("_INITIALIZERS", "_INITIALIZER_ALIASES", "_REGULARIZERS", "_REGULARIZER_ALIASES",
                  "_CONSTRAINTS", "_CONSTRAINT_ALIASES"):
        words |= set(getattr(at, table, {}))
    if name in words or name.lower() in words:
        return f"; strings are quoted: did you mean {name!r}?"
    return ""


class ExpressionEvaluator:
    """Evaluates expressions; the subclass provides ``checker``, ``tensor`` and ``eval_args``."""

    checker: GraphChecker | None

    fn_stack: list[str]

    def tensor(self, name: str, span: Span, scope: Scope) -> str:
        raise NotImplementedError

    def unit_of(self, call: Any) -> Any:
        raise NotImplementedError

    def bind_args(self, callee: str, names: list[str], positional: Any, keyword: Any, allow_name: bool = True) -> dict:
        raise NotImplementedError

    def param_scope(self, params: Any, values: Any, parent: Scope, what: str, owner: Any,
                    call_span: Any = None) -> Scope:
        raise NotImplementedError

    def eval_args(self, args: Any, scope: Scope, tensors: bool = False) -> tuple[list, dict]:
        raise NotImplementedError

    def eval(self, expr: S.Expr, scope: Scope) -> Any:
        if isinstance(expr, S.Const):
            return expr.value
        if isinstance(expr, S.Name):
            found = scope.find(expr.id)
            if found is None:
                hint = quote_hint(expr.id) or did_you_mean(expr.id, scope.visible())
                raise Abort(Diagnostic.error("E203", f"unbound name {clip(expr.id)!r}" + hint, expr.span))
            kind, value = found
            if kind == "tensor":
                raise Abort(Diagnostic.error(
                    "E308", f"{expr.id!r} is a tensor, where a value is expected; use channels({expr.id}) or "
                    f"shape({expr.id}) for its sizes", expr.span))
            if value is POISON_VALUE:
                raise Abort(None)
            return value
        if isinstance(expr, S.Unary):
            v = self.eval(expr.operand, scope)
            if expr.op == "not":
                if not isinstance(v, bool):
                    raise Abort(Diagnostic.error("E307", f"'not' needs true or false, got {type_name(v)}", expr.span))
                return not v
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise Abort(Diagnostic.error("E307", f"unary {expr.op} needs a number, got {type_name(v)}", expr.span))
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
            if not isinstance(target, (tuple, str)):
                raise Abort(Diagnostic.error(
                    "E307", f"only tuples and strings can be indexed, got {type_name(target)}", expr.target.span))
            if isinstance(index, bool) or not isinstance(index, int):
                raise Abort(Diagnostic.error("E307", f"an index must be an integer, got {type_name(index)}", expr.index.span))
            if not -len(target) <= index < len(target):
                what = "a tuple" if isinstance(target, tuple) else "a string"
                raise Abort(Diagnostic.error(
                    "E307", f"index {index} is out of range for {what} of {len(target)}", expr.index.span))
            return target[index]
        if isinstance(expr, S.FunCall):
            return self.funcall(expr, scope)
        if isinstance(expr, S.CondExpr):
            cond = self.eval(expr.cond, scope)
            if not isinstance(cond, bool):
                raise Abort(Diagnostic.error(
                    "E307", f"the condition of 'if ... else' needs true or false, got {type_name(cond)}", expr.cond.span))
            return self.eval(expr.then if cond else expr.orelse, scope)
        raise Abort(Diagnostic.error("E307", "bad expression", getattr(expr, "span", None)))

    def funcall(self, expr: S.FunCall, scope: Scope) -> Any:
        if expr.name in ("channels", "shape"):
            if len(expr.args) != 1 or expr.args[0].name is not None or not isinstance(expr.args[0].value, S.Name):
                raise Abort(Diagnostic.error("E302", f"{expr.name}() takes one tensor name", expr.span))
            ref = expr.args[0].value
            tensor = self.tensor(ref.id, ref.span, scope)
            assert self.checker is not None
            shape = self.checker.shapes.get(tensor)
            if shape is None:
                raise Abort(None)
            if expr.name == "shape":
                return tuple(shape)
            if len(shape) != 3:
                return shape[-1]
            return shape[channel_axis(self.checker.format)]
        if expr.name in BUILTINS:
            return self.builtin(expr, scope)
        if expr.name in TOTALS:
            return self.totals(expr)
        fn = self.unit_of(expr).fns.get(expr.name)
        if fn is not None:
            return self.call_fn(fn, expr, scope)
        positional, keyword = self.eval_args(expr.args, scope)
        return CallValue(expr.name, tuple(v for v, _ in positional), tuple((k, v) for k, (v, _) in keyword.items()))

    def totals(self, expr: S.FunCall) -> Any:
        """``params()``, ``trainable_params()``, ``macs()``: totals over the layers built so far."""
        if expr.args:
            raise Abort(Diagnostic.error("E302", f"{expr.name}() takes no arguments", expr.span))
        if self.checker is None:
            raise Abort(Diagnostic.error("E302", f"{expr.name}() counts layers, so it is only known inside a network",
                                         expr.span))
        layers = self.checker.layers.values()
        if expr.name == "params":
            return sum(info.trainable + info.non_trainable for info in layers)
        if expr.name == "trainable_params":
            return sum(info.trainable for info in layers)
        macs = [info.macs for info in layers]
        return None if any(m is None for m in macs) else sum(macs)  # type: ignore[arg-type]

    def call_fn(self, entry: Any, expr: S.FunCall, scope: Scope) -> Any:
        """Evaluate a file-level ``fn`` in its own file's scope (it sees its parameters and file-level values)."""
        fn, unit = entry
        if fn.name in self.fn_stack:
            raise Abort(None)  # reported once per file (E218) when the file is read
        if len(self.fn_stack) >= MAX_BLOCK_DEPTH:
            raise Abort(Diagnostic.error("E502", f"fn calls nested more than {MAX_BLOCK_DEPTH} deep", expr.span))
        positional, keyword = self.eval_args(expr.args, scope)
        values = self.bind_args(fn.name, [p.name for p in fn.params], positional, keyword, allow_name=False)
        self.fn_stack.append(fn.name)
        try:
            params = self.param_scope(fn.params, values, unit.scope, "fn", fn, expr.span)
            return self.eval(fn.body, params)
        except Abort as err:
            if err.diag is None or (err.diag.span is not None and err.diag.span.source is expr.span.source
                                    and expr.span.start <= err.diag.span.start < expr.span.end):
                raise
            d = err.diag
            raise Abort(Diagnostic(d.severity, d.code, d.message, d.span,
                                   d.notes + (Note(f"in the fn {fn.name} called here", expr.span),))) from None
        finally:
            self.fn_stack.pop()

    def builtin(self, expr: S.FunCall, scope: Scope) -> Any:
        """``str len min max int round ceil floor abs``, as Python's."""
        positional, keyword = self.eval_args(expr.args, scope)
        args = [v for v, _ in positional]
        name = expr.name
        one = name in ("str", "len", "int", "ceil", "floor", "abs")
        if keyword or not args or (one and len(args) != 1) or (name == "round" and len(args) > 2):
            count = ("one argument" if one else "one or two arguments" if name == "round"
                     else "one or more arguments")
            raise Abort(Diagnostic.error("E302", f"{name}() takes {count}, without keywords", expr.span))
        if name == "str":
            if not isinstance(args[0], (int, float, str)) or isinstance(args[0], bool):
                raise Abort(Diagnostic.error("E307", f"str() takes a number or a string, got {type_name(args[0])}", expr.span))
            return args[0] if isinstance(args[0], str) else format_value(args[0])
        if name == "len":
            if not isinstance(args[0], (tuple, str)):
                raise Abort(Diagnostic.error("E307", f"len() takes a tuple or a string, got {type_name(args[0])}", expr.span))
            return len(args[0])
        if name in _NUMERIC:
            return self.numeric(expr, args)
        items = args[0] if len(args) == 1 and isinstance(args[0], tuple) else tuple(args)
        if not items or not all(_is_num(v) for v in items):
            raise Abort(Diagnostic.error("E307", f"{name}() takes numbers", expr.span))
        return min(items) if name == "min" else max(items)

    def numeric(self, expr: S.FunCall, args: list[Any]) -> Any:
        """``int``, ``round`` (half to even; ``round(x, n)`` keeps n digits), ``ceil``, ``floor``, ``abs``."""
        x = args[0]
        if expr.name == "int" and isinstance(x, str):
            try:
                x = int(x.strip().replace("_", ""), 10) if len(x) < 100 else None
            except ValueError:
                x = None
            if x is None:
                raise Abort(Diagnostic.error("E307", f"int() cannot read {format_value(args[0])} as an integer", expr.span))
        if not _is_num(x):
            raise Abort(Diagnostic.error("E307", f"{expr.name}() takes a number, got {type_name(x)}", expr.span))
        if expr.name == "round" and len(args) == 2:
            digits = args[1]
            if isinstance(digits, bool) or not isinstance(digits, int) or abs(digits) > 100:
                raise Abort(Diagnostic.error("E307", "round(x, n) takes an integer n", expr.span))
            result = round(x, digits)
        else:
            result = _NUMERIC[expr.name](x)
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise Abort(Diagnostic.error("E501", f"{expr.name}() result is too large (over {MAX_INT})", expr.span))
        return result

    def binary(self, expr: S.Binary, scope: Scope) -> Any:
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

    def binary_step(self, expr: S.Binary, left: Any, scope: Scope) -> Any:
        op = expr.op
        if op in ("and", "or"):
            if not isinstance(left, bool):
                raise Abort(Diagnostic.error("E307", f"'{op}' needs true or false, got {type_name(left)}", expr.left.span))
            if (op == "and" and not left) or (op == "or" and left):
                return left
            right = self.eval(expr.right, scope)
            if not isinstance(right, bool):
                raise Abort(Diagnostic.error("E307", f"'{op}' needs true or false, got {type_name(right)}", expr.right.span))
            return right
        right = self.eval(expr.right, scope)
        if op in ("==", "!="):
            same = left == right and type(left) is type(right) or (
                _is_num(left) and _is_num(right) and left == right)
            return same if op == "==" else not same
        if op in ("<", "<=", ">", ">="):
            if not ((_is_num(left) and _is_num(right)) or (isinstance(left, str) and isinstance(right, str))):
                raise Abort(Diagnostic.error(
                    "E307", f"cannot compare {type_name(left)} with {type_name(right)} using {op}", expr.span))
            return _COMPARE[op](left, right)
        if op == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > MAX_STRING:
                raise Abort(Diagnostic.error("E501", "string too long", expr.span))
            return left + right
        if op == "+" and isinstance(left, tuple) and isinstance(right, tuple):
            if len(left) + len(right) > MAX_STRING:
                raise Abort(Diagnostic.error("E501", "tuple too long", expr.span))
            return left + right
        if not (_is_num(left) and _is_num(right)):
            raise Abort(Diagnostic.error(
                "E307", f"cannot apply {op} to {type_name(left)} and {type_name(right)}", expr.span))
        try:
            if op == "**":
                result = _power(left, right)
            elif op in ("/", "//", "%") and right == 0:
                raise Abort(Diagnostic.error("E307", f"division by zero in {format_value(left)} {op} {format_value(right)}", expr.span))
            else:
                result = _ARITH[op](left, right)
        except OverflowError:
            result = math.inf
        except _TooBig:
            raise Abort(Diagnostic.error(
                "E501", f"{format_value(left)} ** {format_value(right)} is too large", expr.span)) from None
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise Abort(Diagnostic.error("E501", f"value {op} result is too large (over {MAX_INT})", expr.span))
        if isinstance(result, float) and not math.isfinite(result):
            raise Abort(Diagnostic.error("E501", f"result of {op} is too large or not a number", expr.span))
        if isinstance(result, complex):
            raise Abort(Diagnostic.error("E307", "result is not a real number", expr.span))
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


_NUMERIC = {"int": int, "round": round, "ceil": math.ceil, "floor": math.floor, "abs": abs}
_LEFT_ASSOCIATIVE = frozenset({"+", "-", "*", "/", "//", "%", "and", "or"})
_ARITH = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}
_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


