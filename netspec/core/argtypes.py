"""Argument kinds: how a value written in a spec becomes a typed attribute.

Each op's attribute dataclass (in :mod:`netspec.core.ops`) names a kind for each
field; the kind's converter checks the value and returns its normal form
(``kernel_size=3`` becomes ``(3, 3)``, ``padding=1`` becomes
``((1, 1), (1, 1))``, ``'HeNormal'`` becomes ``KerasObject('he_normal', ...)``).
A converter raises :class:`ArgError` with a code and a message naming the
value it received.

>>> int_pair(3)
(3, 3)
>>> padding("SAME")
'same'
>>> padding((1, 2))
((1, 1), (2, 2))
>>> initializer("HeNormal")
KerasObject(name='he_normal', kwargs=(('seed', None),))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "ArgError",
    "CallValue",
    "KerasObject",
    "PaddingSpec",
    "activation",
    "boolean",
    "constraint",
    "data_format",
    "clip",
    "did_you_mean",
    "initializer",
    "int_pair",
    "padding",
    "regularizer",
]

#: Largest size or count netspec will build (2**31 - 1, TensorFlow's int32 limit).
MAX_SIZE = 2**31 - 1

PaddingSpec = str | tuple[tuple[int, int], tuple[int, int]]


class ArgError(Exception):
    """A value does not fit its argument; ``code`` is a diagnostic code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CallValue:
    """An unevaluated call written as a value, such as ``l2(1e-4)`` or ``he_normal(seed=1)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class KerasObject:
    """A Keras initializer, regularizer or constraint with all its arguments.

    ``kwargs`` holds every argument in Keras's order, defaults filled in, so
    two spellings of the same object compare equal.

    >>> regularizer(CallValue("l2", (1e-4,))) == regularizer(CallValue("L2", (), (("l2", 1e-4),)))
    True
    """

    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        """One argument's value.

        >>> KerasObject("constant", (("value", 0.5),)).get("value")
        0.5
        """
        for k, v in self.kwargs:
            if k == key:
                return v
        return default

    def to_source(self) -> str:
        """The object as ``.net`` text.

        >>> KerasObject("l2", (("l2", 0.0001),)).to_source()
        'l2(l2=0.0001)'
        """
        if not self.kwargs:
            return repr(self.name)
        return f"{self.name}({', '.join(f'{k}={format_value(v)}' for k, v in self.kwargs)})"


def format_value(value: Any) -> str:
    """A value as ``.net`` source text.

    >>> format_value((1, 'same', None, True, 0.5))
    "(1, 'same', none, true, 0.5)"
    """
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("1e999" if value > 0 else "-1e999")
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, KerasObject):
        return value.to_source()
    return str(value)


def type_name(value: Any) -> str:
    """The language's name for a value's type, for messages."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, (CallValue, KerasObject)):
        return "a call"
    return type(value).__name__


def clip(text: str, limit: int = 60) -> str:
    """Shorten a user's name for a message.

    >>> clip("a" * 100, 10)
    'aaaaaaa...'
    """
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str:
    """A ``; did you mean 'x'?`` suffix, or the empty string.

    >>> did_you_mean("conv2", ["conv2d", "dense"])
    "; did you mean 'conv2d'?"
    """
    if len(name) > 100:  # difflib is quadratic; nothing that long is a typo of a short name
        return ""
    import difflib  # only when there is a mistake: keeps `netspec check` start-up short

    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            match = [lowered[name.lower()]]
    return f"; did you mean '{match[0]}'?" if match else ""


# --- scalars -----------------------------------------------------------------


def integer(value: Any, what: str = "value", minimum: int | None = None) -> int:
    """An integer, at least ``minimum``.

    >>> integer(4, "filters", 1)
    4
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            raise ArgError(
                "E305", f"{what} must be an integer, got the float {format_value(value)} "
                "(use // for integer division)"
            )
        if value is None:
            raise ArgError("E302", f"{what} must be an integer, got none (an unknown ? size?)")
        raise ArgError("E302", f"{what} must be an integer, got {type_name(value)} {_show(value)}")
    if minimum is not None and value < minimum:
        raise ArgError("E306", f"{what} must be at least {minimum}, got {value}")
    if abs(value) > MAX_SIZE:
        raise ArgError("E501", f"{what} = {value} is too large to build (limit {MAX_SIZE})")
    return value


def positive_int(value: Any, what: str = "value") -> int:
    """An integer of at least 1.

    >>> positive_int(3)
    3
    """
    return integer(value, what, 1)


def number(value: Any, what: str = "value") -> float:
    """A number (int or float), returned as a float.

    >>> number(1)
    1.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgError("E302", f"{what} must be a number, got {type_name(value)} {_show(value)}")
    if not math.isfinite(value):
        raise ArgError("E306", f"{what} must be finite, got {value}")
    return float(value)


def optional_number(value: Any, what: str = "value") -> float | None:
    """A number or ``none``."""
    return None if value is None else number(value, what)


def non_negative(value: Any, what: str = "value") -> float:
    """A number of at least 0 (Keras refuses negative slopes, thresholds and penalties).

    >>> non_negative(0.3)
    0.3
    """
    v = number(value, what)
    if v < 0:
        raise ArgError("E306", f"{what} must be at least 0, got {format_value(value)} (Keras refuses it)")
    return v


def optional_non_negative(value: Any, what: str = "value") -> float | None:
    """Like :func:`non_negative`, or ``none``."""
    return None if value is None else non_negative(value, what)


def rate(value: Any, what: str = "rate") -> float:
    """A dropout rate in ``[0, 1)``.

    >>> rate(0.5)
    0.5
    """
    r = number(value, what)
    if not 0.0 <= r < 1.0:
        raise ArgError("E306", f"{what} must be in [0, 1), got {format_value(value)}")
    return r


def boolean(value: Any, what: str = "value") -> bool:
    """``true`` or ``false``.

    >>> boolean(True)
    True
    """
    if not isinstance(value, bool):
        raise ArgError("E302", f"{what} must be true or false, got {type_name(value)} {_show(value)}")
    return value


def optional_seed(value: Any, what: str = "seed") -> int | None:
    """An integer seed or ``none``."""
    return None if value is None else integer(value, what, 0)


def axis(value: Any, what: str = "axis") -> int:
    """An axis index (negative counts from the end).

    >>> axis(-1)
    -1
    """
    return integer(value, what)


def int_pair(value: Any, what: str = "value") -> tuple[int, int]:
    """An int or a pair of ints of at least 1, as a pair.

    >>> int_pair((2, 3))
    (2, 3)
    """
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ArgError("E302", f"{what} must be an integer or a pair, got a tuple of {len(value)}")
        return positive_int(value[0], what), positive_int(value[1], what)
    v = positive_int(value, what)
    return v, v


def optional_int_pair(value: Any, what: str = "value") -> tuple[int, int] | None:
    """Like :func:`int_pair`, or ``none``."""
    return None if value is None else int_pair(value, what)


def int_tuple(value: Any, what: str = "target_shape") -> tuple[int, ...]:
    """A tuple of integers (``-1`` allowed once, for reshape).

    >>> int_tuple((7, 7, -1))
    (7, 7, -1)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, tuple):
        raise ArgError("E302", f"{what} must be a tuple of integers, got {type_name(value)}")
    out = tuple(integer(v, what) for v in value)
    if sum(1 for v in out if v == -1) > 1:
        raise ArgError("E306", f"{what} may hold -1 at most once, got {format_value(out)}")
    for v in out:
        if v == 0 or v < -1:
            raise ArgError("E306", f"{what} sizes must be positive (or -1 once), got {format_value(out)}")
    return out


def optional_int_tuple(value: Any, what: str = "noise_shape") -> tuple[int | None, ...] | None:
    """A tuple of integers or ``none`` entries, or ``none``."""
    if value is None:
        return None
    if not isinstance(value, tuple):
        raise ArgError("E302", f"{what} must be a tuple, got {type_name(value)}")
    return tuple(None if v is None else positive_int(v, what) for v in value)


# --- enums -------------------------------------------------------------------


def _enum(value: Any, what: str, choices: tuple[str, ...], lower: bool = True) -> str:
    if not isinstance(value, str):
        raise ArgError(
            "E302", f"{what} must be one of {', '.join(map(repr, choices))}, got {type_name(value)} {_show(value)}"
        )
    v = value.lower() if lower else value
    if v not in choices:
        raise ArgError(
            "E303",
            f"bad {what} {value!r}: expected one of {', '.join(map(repr, choices))}"
            + did_you_mean(v, choices),
        )
    return v


def padding(value: Any, what: str = "padding") -> PaddingSpec:
    """``'valid'``, ``'same'``, ``P``, ``(P_h, P_w)`` or ``((top, bottom), (left, right))``.

    >>> padding(((0, 1), (2, 3)))
    ((0, 1), (2, 3))
    """
    if isinstance(value, str):
        return _enum(value, what, ("valid", "same"))
    return explicit_padding(value, what)


def explicit_padding(value: Any, what: str = "padding") -> tuple[tuple[int, int], tuple[int, int]]:
    """An int, a pair or a pair of pairs of non-negative ints, as a pair of pairs.

    >>> explicit_padding(1)
    ((1, 1), (1, 1))
    """
    def side(v: Any) -> int:
        return integer(v, what, 0)

    if isinstance(value, tuple):
        if len(value) != 2:
            raise ArgError("E302", f"{what} must be an int, a pair or a pair of pairs, got a tuple of {len(value)}")
        parts = []
        for part in value:
            if isinstance(part, tuple):
                if len(part) != 2:
                    raise ArgError("E302", f"{what} pairs must have two entries, got {format_value(part)}")
                parts.append((side(part[0]), side(part[1])))
            else:
                parts.append((side(part), side(part)))
        return parts[0], parts[1]
    if isinstance(value, int) and not isinstance(value, bool):
        p = side(value)
        return (p, p), (p, p)
    raise ArgError(
        "E302", f"{what} must be 'valid', 'same', an int, a pair or a pair of pairs, got {type_name(value)} {_show(value)}"
    )


def data_format(value: Any, what: str = "data_format") -> str | None:
    """``'channels_last'``, ``'channels_first'`` or ``none`` (the network's layout).

    >>> data_format("channels_first")
    'channels_first'
    """
    if value is None:
        return None
    return _enum(value, what, ("channels_last", "channels_first"))


#: Activation names accepted by ``activation=`` and ``activation(...)``, as in ``keras.activations``.
ACTIVATIONS: tuple[str, ...] = (
    "linear", "relu", "leaky_relu", "elu", "gelu", "selu", "sigmoid", "hard_sigmoid",
    "softmax", "softplus", "softsign", "swish", "tanh", "exponential",
    # version 2: the rest of keras.activations (threshold needs arguments: only the op threshold(...))
    "relu6", "hard_silu", "mish", "log_softmax", "celu", "glu", "hard_tanh", "log_sigmoid", "soft_shrink",
    "hard_shrink", "tanh_shrink", "squareplus", "sparse_plus", "sparse_sigmoid", "sparsemax",
)
_ACTIVATION_ALIASES = {"silu": "swish", "hard_swish": "hard_silu"}


def activation(value: Any, what: str = "activation") -> str:
    """An activation name; ``none`` means ``'linear'``.

    >>> activation(None), activation("silu")
    ('linear', 'swish')
    """
    if value is None:
        return "linear"
    if isinstance(value, str) and value in _ACTIVATION_ALIASES:
        return _ACTIVATION_ALIASES[value]
    if value == "threshold":
        raise ArgError("E303", f"{what} 'threshold' needs its threshold and default_value arguments, so it "
                       "cannot be named as a string (Keras refuses it too); use the op threshold(threshold, "
                       "default_value)")
    return _enum(value, what, ACTIVATIONS + tuple(_ACTIVATION_ALIASES), lower=False)


# --- Keras objects -------------------------------------------------------------

# canonical name -> (argument names in Keras order, defaults)
_INITIALIZERS: dict[str, tuple[tuple[str, Any], ...]] = {
    "zeros": (),
    "ones": (),
    "constant": (("value", 0.0),),
    "random_normal": (("mean", 0.0), ("stddev", 0.05), ("seed", None)),
    "random_uniform": (("minval", -0.05), ("maxval", 0.05), ("seed", None)),
    "truncated_normal": (("mean", 0.0), ("stddev", 0.05), ("seed", None)),
    "glorot_uniform": (("seed", None),),
    "glorot_normal": (("seed", None),),
    "he_uniform": (("seed", None),),
    "he_normal": (("seed", None),),
    "lecun_uniform": (("seed", None),),
    "lecun_normal": (("seed", None),),
    "orthogonal": (("gain", 1.0), ("seed", None)),
    "identity": (("gain", 1.0),),
    "variance_scaling": (
        ("scale", 1.0), ("mode", "fan_in"), ("distribution", "truncated_normal"), ("seed", None),
    ),
}
_INITIALIZER_ALIASES = {
    "Zeros": "zeros", "Ones": "ones", "Constant": "constant", "RandomNormal": "random_normal",
    "RandomUniform": "random_uniform", "TruncatedNormal": "truncated_normal",
    "GlorotUniform": "glorot_uniform", "GlorotNormal": "glorot_normal", "HeUniform": "he_uniform",
    "HeNormal": "he_normal", "LecunUniform": "lecun_uniform", "LecunNormal": "lecun_normal",
    "Orthogonal": "orthogonal", "Identity": "identity", "VarianceScaling": "variance_scaling",
    "normal": "random_normal", "uniform": "random_uniform", "zero": "zeros", "one": "ones",
    "xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal",
}
_REGULARIZERS: dict[str, tuple[tuple[str, Any], ...]] = {
    "l1": (("l1", 0.01),),
    "l2": (("l2", 0.01),),
    "l1_l2": (("l1", 0.0), ("l2", 0.0)),
    "orthogonal_regularizer": (("factor", 0.01), ("mode", "rows")),
}
_REGULARIZER_ALIASES = {"L1": "l1", "L2": "l2", "L1L2": "l1_l2", "OrthogonalRegularizer": "orthogonal_regularizer"}
_CONSTRAINTS: dict[str, tuple[tuple[str, Any], ...]] = {
    "max_norm": (("max_value", 2.0), ("axis", 0)),
    "min_max_norm": (("min_value", 0.0), ("max_value", 1.0), ("rate", 1.0), ("axis", 0)),
    "non_neg": (),
    "unit_norm": (("axis", 0),),
}
_CONSTRAINT_ALIASES = {"MaxNorm": "max_norm", "MinMaxNorm": "min_max_norm", "NonNeg": "non_neg", "UnitNorm": "unit_norm"}

_ENUM_KWARGS = {
    ("variance_scaling", "mode"): ("fan_in", "fan_out", "fan_avg"),
    ("variance_scaling", "distribution"): ("truncated_normal", "untruncated_normal", "uniform"),
    ("orthogonal_regularizer", "mode"): ("rows", "columns"),
}


def _keras_object(
    value: Any,
    what: str,
    kind: str,
    table: dict[str, tuple[tuple[str, Any], ...]],
    aliases: dict[str, str],
    allow_none: bool,
) -> KerasObject | None:
    if value is None:
        if allow_none:
            return None
        raise ArgError("E302", f"{what} must be a {kind}, got none")
    if isinstance(value, KerasObject):
        value = CallValue(value.name, (), value.kwargs)
    if isinstance(value, str):
        call = CallValue(value)
    elif isinstance(value, CallValue):
        call = value
    else:
        raise ArgError("E302", f"{what} must be a {kind} name or call, got {type_name(value)} {_show(value)}")
    name = aliases.get(call.name, call.name)
    if name not in table:
        raise ArgError(
            "E303",
            f"unknown {kind} {call.name!r} for {what}" + did_you_mean(call.name, list(table) + list(aliases)),
        )
    params = table[name]
    if len(call.args) > len(params):
        raise ArgError("E304", f"{kind} {name!r} takes at most {len(params)} positional argument(s), got {len(call.args)}")
    given: dict[str, Any] = dict(zip((p for p, _ in params), call.args))
    for key, val in call.kwargs:
        if key not in dict(params):
            raise ArgError(
                "E202", f"{kind} {name!r} has no argument {key!r}" + did_you_mean(key, [p for p, _ in params])
            )
        if key in given:
            raise ArgError("E304", f"{kind} argument {key!r} given twice")
        given[key] = val
    out = []
    for key, default in params:
        val = given.get(key, default)
        label = f"{name}({key}=...)"
        if key in ("seed",):
            val = optional_seed(val, label)
        elif key == "axis":
            val = axis(val, label)
        elif (name, key) in _ENUM_KWARGS:
            val = _enum(val, label, _ENUM_KWARGS[(name, key)])
        elif kind == "regularizer":
            val = non_negative(val, label)
        else:
            val = number(val, label)
        if (name, key) == ("variance_scaling", "scale") and val <= 0:
            raise ArgError("E306", f"{label} must be above 0, got {format_value(val)} (Keras refuses it)")
        out.append((key, val))
    return KerasObject(name, tuple(out))


def initializer(value: Any, what: str = "initializer") -> KerasObject:
    """A ``keras.initializers`` name or call.

    >>> initializer(CallValue("constant", (0.1,))).to_source()
    'constant(value=0.1)'
    """
    return _keras_object(value, what, "initializer", _INITIALIZERS, _INITIALIZER_ALIASES, False)  # type: ignore[return-value]


def regularizer(value: Any, what: str = "regularizer") -> KerasObject | None:
    """A ``keras.regularizers`` name or call, or ``none``.

    >>> regularizer("l2").get("l2")
    0.01
    """
    return _keras_object(value, what, "regularizer", _REGULARIZERS, _REGULARIZER_ALIASES, True)


def constraint(value: Any, what: str = "constraint") -> KerasObject | None:
    """A ``keras.constraints`` name or call, or ``none``.

    >>> constraint(CallValue("max_norm", (2,))).get("max_value")
    2.0
    """
    return _keras_object(value, what, "constraint", _CONSTRAINTS, _CONSTRAINT_ALIASES, True)


def _show(value: Any) -> str:
    text = format_value(value) if not isinstance(value, CallValue) else f"{value.name}(...)"
    return text if len(text) <= 40 else text[:37] + "..."


Converter = Callable[[Any, str], Any]
