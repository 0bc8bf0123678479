"""Generators of ``.net`` text for differential and hostile-input tests.

Two families, both emitting spec TEXT so that the whole pipeline (parser,
elaborator, checker, targets) runs on every case:

- :func:`networks`: random *valid* networks.  Graphs, not only stacks:
  residual adds, concats, broadcasting multiplies, blocks with parameters,
  ``repeat`` with a counter, ``if``/``else`` on ``channels()``/``shape()``,
  ``default`` statements, aliases, positional and keyword arguments,
  expressions in place of numbers, both data formats, groups, dilation,
  every padding form and unknown (``?``) sizes where they are legal.  The
  generator keeps its own shape model (written from LANGUAGE.md, not from
  netspec's code), both as declared (with ``None``) and as executed (the
  concrete sizes of :attr:`GenNet.concrete_input`), so every drawn network
  is valid by construction.
- :func:`bad_specs`: one violation of a rule in LANGUAGE.md's "What check
  must catch" list, with the code, line and column check must report, and
  for shape rules the raw Keras layer that Keras itself refuses (the
  both-or-neither rule).  :func:`near_misses` draws the valid twin of each
  shape rule (output exactly 1, groups that divide, broadcastable merges).

>>> from hypothesis import find
>>> net = find(networks(), lambda n: "add(" in n.text)
>>> "network gen" in net.text and net.concrete_input[0] >= 1
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = ["BadSpec", "GenNet", "RULES", "bad_specs", "near_misses", "networks", "spatial_networks"]

Shape = tuple  # tuple[int | None, ...] without the batch axis

#: Known bugs the generator steers around (``if "name" in KNOWN_BUGS: ...`` where it draws the
#: construct), each pinned by an xfail regression in tests/regressions/; remove the entry and its
#: branch once the bug is fixed, so the generator covers that ground again.  None open today.
KNOWN_BUGS: set[str] = set()

ACTS = ["linear", "relu", "leaky_relu", "elu", "gelu", "selu", "sigmoid", "hard_sigmoid", "softmax", "softplus",
        "softsign", "swish", "silu", "tanh"]
NAMED_ACT_OPS = ["gelu", "selu", "sigmoid", "hard_sigmoid", "softplus", "softsign", "swish", "tanh", "linear"]
ALIASES = {
    "conv2d": ["conv2d", "Conv2D", "Convolution2D"],
    "depthwise_conv2d": ["depthwise_conv2d", "DepthwiseConv2D"],
    "separable_conv2d": ["separable_conv2d", "SeparableConv2D"],
    "maxpool2d": ["maxpool2d", "MaxPooling2D", "MaxPool2D", "max_pooling2d"],
    "avgpool2d": ["avgpool2d", "AveragePooling2D", "AvgPool2D", "average_pooling2d"],
    "global_avgpool2d": ["global_avgpool2d", "GlobalAveragePooling2D"],
    "global_maxpool2d": ["global_maxpool2d", "GlobalMaxPooling2D"],
    "zeropad2d": ["zeropad2d", "ZeroPadding2D"],
    "flatten": ["flatten", "Flatten"],
    "reshape": ["reshape", "Reshape"],
    "dense": ["dense", "Dense"],
    "dropout": ["dropout", "Dropout"],
    "batchnorm": ["batchnorm", "BatchNormalization"],
    "activation": ["activation", "Activation"],
    "relu": ["relu", "ReLU"],
    "leaky_relu": ["leaky_relu", "LeakyReLU"],
    "elu": ["elu", "ELU"],
    "softmax": ["softmax", "Softmax"],
    "add": ["add", "Add"],
    "multiply": ["multiply", "Multiply"],
    "concat": ["concat", "Concatenate"],
}
INITIALIZERS = ["'glorot_uniform'", "'glorot_normal'", "'he_normal'", "'he_uniform'", "'lecun_normal'",
                "'lecun_uniform'", "he_normal(seed=3)", "random_normal(stddev=0.1)", "random_uniform(-0.2, 0.2)",
                "truncated_normal(stddev=0.2, seed=1)", "'orthogonal'", "constant(0.1)", "'ones'", "'zeros'",
                "variance_scaling(scale=2.0, mode='fan_out', distribution='uniform')", "GlorotUniform(seed=7)"]
REGULARIZERS = ["'l2'", "l2(1e-4)", "l1(0.01)", "l1_l2(l1=0.01, l2=0.01)"]
CONSTRAINTS = ["max_norm(2)", "'non_neg'", "unit_norm()", "min_max_norm(0.5, 1.5)"]


# --- shape model (from LANGUAGE.md) --------------------------------------------------------------


def window(length: int | None, size: int, stride: int, dilation: int, pad: Any) -> int | None:
    """Output length of a window op along one axis (``pad`` is 'valid', 'same' or (begin, end)).

    >>> window(8, 3, 2, 1, 'same'), window(8, 3, 1, 2, (1, 0)), window(None, 3, 1, 1, 'valid')
    (4, 5, None)
    """
    if length is None:
        return None
    if pad == "same":
        return -(-length // stride)
    b, e = (0, 0) if pad == "valid" else pad
    return (length + b + e - dilation * (size - 1) - 1) // stride + 1


def image(shape: Shape, fmt: str) -> tuple[Any, Any, Any]:
    """``(h, w, c)`` of a rank-3 shape in layout ``fmt``.

    >>> image((3, 8, 9), 'channels_first')
    (8, 9, 3)
    """
    return (shape[1], shape[2], shape[0]) if fmt == "channels_first" else tuple(shape)


def compose(h: Any, w: Any, c: Any, fmt: str) -> Shape:
    """Inverse of :func:`image`.

    >>> compose(8, 9, 3, 'channels_first')
    (3, 8, 9)
    """
    return (c, h, w) if fmt == "channels_first" else (h, w, c)


@dataclass
class T:
    """A tensor of the generated network: declared shape (``None`` for ``?``) and executed shape."""

    decl: Shape
    conc: Shape

    def img(self, fmt: str) -> tuple[tuple, tuple]:
        return image(self.decl, fmt), image(self.conc, fmt)


@dataclass
class GenNet:
    """A generated valid network: its text and the concrete input shape to run it on.

    ``extra_inputs`` are the shapes of the inputs after the first (a
    metadata vector), in order; ``concrete_inputs`` lists them all.
    """

    text: str
    concrete_input: tuple[int, ...]
    fmt: str
    features: frozenset[str] = field(default_factory=frozenset)
    extra_inputs: tuple[tuple[int, ...], ...] = ()

    @property
    def concrete_inputs(self) -> tuple[tuple[int, ...], ...]:
        return (self.concrete_input, *self.extra_inputs)


# --- rendering helpers ---------------------------------------------------------------------------------


class _Writer:
    """Draws choices and writes lines; keeps names unique and the tracked current tensor."""

    def __init__(self, draw: Callable[[st.SearchStrategy], Any], fmt: str):
        self.draw = draw
        self.fmt = fmt
        self.lines: list[str] = []
        self.indent = 1
        self.uid = 0
        self.features: set[str] = set()
        self.defaults: dict[str, dict[str, Any]] = {}
        self.blocks: dict[str, str] = {}  # template -> emitted block name
        self.top_names: list[str] = []  # tensor names bound in the network's own body (visible at its end)
        self.prelude: list[str] = []  # file-level lines (let) before the blocks

    def fresh(self, prefix: str) -> str:
        self.uid += 1
        return f"{prefix}{self.uid}"

    def emit(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def coin(self, p: float = 0.5) -> bool:
        return self.draw(st.floats(0, 1)) < p

    def pick(self, items: list) -> Any:
        return self.draw(st.sampled_from(items))

    def int_(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def num(self, v: int) -> str:
        """An integer written as a literal or as an expression that evaluates to it."""
        form = self.draw(st.integers(0, 9))  # 0 (where shrinking goes) is the plain literal
        if form == 6:
            return f"({v} + 2) - 2"
        if form == 7:
            return f"{v} * 1"
        if form == 8 and v >= 2:
            return f"2 * ({v} // 2) + {v} % 2"
        if form == 9:
            return f"max({v}, {v - 1})"
        return str(v)

    def pair(self, v: tuple[int, int], allow_int: bool = True) -> str:
        if allow_int and v[0] == v[1] and self.coin(0.6):
            return self.num(v[0])
        return f"({self.num(v[0])}, {self.num(v[1])})"

    def call(self, op: str, args: list[tuple[str | None, str]]) -> str:
        name = self.pick(ALIASES.get(op, [op]))
        if name != op:
            self.features.add("alias")
        return f"{name}({', '.join(v if k is None else f'{k}={v}' for k, v in args)})"


def _padding_text(w: _Writer, pad: Any) -> str:
    if pad in ("valid", "same"):
        return w.pick([f"'{pad}'", f"'{pad.upper()}'", f'"{pad}"']) if w.coin(0.3) else f"'{pad}'"
    (t, b), (left, r) = pad
    if t == b and left == r:
        if t == left and w.coin(0.5):
            return w.num(t)
        return f"({t}, {left})"
    return f"(({t}, {b}), ({left}, {r}))"


def _draw_padding(w: _Writer) -> Any:
    kind = w.pick(["valid", "same", "int", "pair", "pairs"])
    if kind in ("valid", "same"):
        return kind
    if kind == "int":
        p = w.int_(0, 2)
        return ((p, p), (p, p))
    if kind == "pair":
        a, b = w.int_(0, 2), w.int_(0, 2)
        return ((a, a), (b, b))
    return ((w.int_(0, 2), w.int_(0, 2)), (w.int_(0, 2), w.int_(0, 2)))


def _pad_pair(pad: Any, axis: int) -> Any:
    return pad if pad in ("valid", "same") else pad[axis]


# --- layer generators: each returns the new tensor, or None if it cannot apply ---------------------


def _args_with_order(w: _Writer, order: list[str], values: dict[str, str]) -> list[tuple[str | None, str]]:
    """Positional for a prefix of Keras's order (as far as the values are consecutive), keywords after."""
    out: list[tuple[str | None, str]] = []
    positional = True
    limit = w.int_(0, 3)
    for i, name in enumerate(order):
        if name not in values:
            positional = False
            continue
        if positional and i < limit + 1:
            out.append((None, values[name]))
        else:
            positional = False
            out.append((name, values[name]))
    return out


def _extras(w: _Writer, prefix: str, out: dict[str, str]) -> None:
    """Initializers, regularizers and constraints: no effect at inference, all must be accepted."""
    if w.coin(0.2):
        out[f"{prefix}_initializer"] = w.pick(INITIALIZERS)
        w.features.add("initializer")
    if w.coin(0.1):
        out[f"{prefix}_regularizer"] = w.pick(REGULARIZERS)
        w.features.add("regularizer")
    if w.coin(0.1):
        out[f"{prefix}_constraint"] = w.pick(CONSTRAINTS)
        w.features.add("constraint")


def _maybe_fmt(w: _Writer, values: dict[str, str]) -> None:
    if w.coin(0.15):
        values["data_format"] = f"'{w.fmt}'"


def conv_like(w: _Writer, x: T, op: str) -> tuple[str, T] | None:
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    if c is None:
        return None
    d = w.defaults.get(op, {})
    k = (w.int_(1, 3), w.int_(1, 3)) if w.coin(0.3) else (w.pick([1, 3]),) * 2
    strides = (1, 1)
    dil = (1, 1)
    if w.coin(0.3):
        strides = (w.int_(1, 2), w.int_(1, 2))
    elif w.coin(0.25):
        dil = (w.int_(1, 2), w.int_(1, 2))
        w.features.add("dilation")
    pad = _draw_padding(w) if "padding" not in d or w.coin(0.5) else None
    eff_pad = pad if pad is not None else d["padding"]
    ph, pw = _pad_pair(eff_pad, 0), _pad_pair(eff_pad, 1)
    oh = [window(v, k[0], strides[0], dil[0], ph) for v in (h, hc)]
    ow = [window(v, k[1], strides[1], dil[1], pw) for v in (wd, wc)]
    if any(v is not None and v < 1 for v in oh + ow):
        return None
    vals: dict[str, str] = {}
    groups = 1
    if op == "conv2d":
        filters = w.int_(1, 8)
        if w.coin(0.25):
            divisors = [g for g in range(2, c + 1) if c % g == 0]
            if divisors:
                groups = w.pick(divisors)
                filters = groups * w.int_(1, 2)
                vals["groups"] = w.num(groups)
                w.features.add("groups")
        vals["filters"] = w.num(filters)
        out_c = filters
        order = ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                 "activation", "use_bias"]
        _extras(w, "kernel", vals)
    elif op == "depthwise_conv2d":
        mult = w.int_(1, 2)
        if mult != 1 or w.coin(0.2):
            vals["depth_multiplier"] = w.num(mult)
        out_c = c * mult
        order = ["kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                 "activation", "use_bias"]
        _extras(w, "depthwise", vals)
    else:
        filters = w.int_(1, 8)
        vals["filters"] = w.num(filters)
        mult = w.int_(1, 2)
        if mult != 1:
            vals["depth_multiplier"] = w.num(mult)
        out_c = filters
        order = ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
                 "activation", "use_bias"]
        _extras(w, w.pick(["depthwise", "pointwise"]), vals)
    vals["kernel_size"] = w.pair(k)
    if strides != (1, 1) or w.coin(0.1):
        vals["strides"] = w.pair(strides)
    if dil != (1, 1):
        vals["dilation_rate"] = w.pair(dil)
    if pad is not None:
        vals["padding"] = _padding_text(w, pad)
        if pad not in ("valid", "same"):
            w.features.add("explicit_padding")
        w.features.add(f"padding_{pad if pad in ('valid', 'same') else 'explicit'}")
    if w.coin(0.4) or "activation" in d:
        vals["activation"] = f"'{w.pick([a for a in ACTS if a != 'softmax'] + ['softmax'])}'"
    if w.coin(0.15):
        vals["use_bias"] = w.pick(["false", "true"])
    _maybe_fmt(w, vals)
    w.features.add(op)
    return w.call(op, _args_with_order(w, order, vals)), _from_img(w, x, oh, ow, out_c)


def _from_img(w: _Writer, x: T, oh: list, ow: list, c: int) -> T:
    return T(compose(oh[0], ow[0], c, w.fmt), compose(oh[1], ow[1], c, w.fmt))


def pool(w: _Writer, x: T, op: str) -> tuple[str, T] | None:
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    size = (w.int_(1, 3), w.int_(1, 3)) if w.coin(0.3) else (2, 2)
    strides = size if w.coin(0.5) else (w.int_(1, 2), w.int_(1, 2))
    pad = _draw_padding(w)
    oh = [window(v, size[0], strides[0], 1, _pad_pair(pad, 0)) for v in (h, hc)]
    ow = [window(v, size[1], strides[1], 1, _pad_pair(pad, 1)) for v in (wd, wc)]
    if any(v is not None and v < 1 for v in oh + ow):
        return None
    vals: dict[str, str] = {}
    if size != (2, 2) or w.coin(0.5):
        vals["pool_size"] = w.pair(size)
    if strides != size or w.coin(0.2):
        vals["strides"] = w.pair(strides)
    if pad != "valid" or w.coin(0.2):
        vals["padding"] = _padding_text(w, pad)
    _maybe_fmt(w, vals)
    w.features.add(op)
    return w.call(op, _args_with_order(w, ["pool_size", "strides", "padding", "data_format"], vals)), \
        _from_img(w, x, oh, ow, c)


def zeropad(w: _Writer, x: T) -> tuple[str, T]:
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    pad = _draw_padding(w)
    if pad in ("valid", "same"):
        pad = ((1, 1), (1, 1))
    (t, b), (left, r) = pad
    vals = {}
    if pad != ((1, 1), (1, 1)) or w.coin(0.3):
        vals["padding"] = _padding_text(w, pad)
    _maybe_fmt(w, vals)
    w.features.add("zeropad2d")
    add = lambda v, n: None if v is None else v + n  # noqa: E731
    return w.call("zeropad2d", _args_with_order(w, ["padding", "data_format"], vals)), \
        _from_img(w, x, [add(h, t + b), add(hc, t + b)], [add(wd, left + r), add(wc, left + r)], c)


def batchnorm(w: _Writer, x: T) -> tuple[str, T] | None:
    rank = len(x.decl) + 1
    axes = [a for a in range(1, rank) if x.decl[a - 1] is not None]
    if not axes:
        return None
    chan = (1 if w.fmt == "channels_first" else rank - 1) if len(x.decl) == 3 else rank - 1
    axis = chan if chan in axes and w.coin(0.7) else w.pick(axes)
    vals: dict[str, str] = {}
    if axis != rank - 1 or w.coin(0.3):
        vals["axis"] = str(w.pick([axis, axis - rank]))
    if w.coin(0.3):
        vals["epsilon"] = w.pick(["1e-3", "1.001e-5", "0.01"])
    if w.coin(0.2):
        vals["momentum"] = "0.9"
    if w.coin(0.2):
        vals["center"] = "false"
    if w.coin(0.2):
        vals["scale"] = "false"
    w.features.add("batchnorm")
    return w.call("batchnorm", _args_with_order(w, ["axis", "momentum", "epsilon", "center", "scale"], vals)), x


def activation_op(w: _Writer, x: T) -> tuple[str, T]:
    kind = w.int_(0, 7)
    if kind == 0:
        a = w.pick(ACTS)
        w.features.add(f"act_{a}")
        return w.call("activation", [(None, f"'{a}'")] if w.coin(0.7) else [("activation", f"'{a}'")]), x
    if kind == 1:
        vals = {}
        if w.coin(0.4):
            vals["max_value"] = w.pick(["6", "1.5", "none"])
        if w.coin(0.3):
            vals["negative_slope"] = w.pick(["0.1", "0.5"])
        if w.coin(0.3):
            # Keras refuses a negative threshold, and so does check (E306)
            vals["threshold"] = w.pick(["0.5", "0.2", "0"])
        w.features.add("relu_args" if vals else "relu")
        return w.call("relu", [(k, v) for k, v in vals.items()]), x
    if kind == 2:
        return w.call("leaky_relu", [("negative_slope", "0.2")] if w.coin(0.5) else []), x
    if kind == 3:
        return w.call("elu", [("alpha", "0.5")] if w.coin(0.5) else []), x
    if kind == 4:
        rank = len(x.decl) + 1
        axis = w.pick(list(range(1, rank)) + [-1])
        w.features.add("softmax")
        return w.call("softmax", [("axis", str(axis))] if axis != -1 or w.coin(0.3) else []), x
    if kind == 5:
        # exponential overflows on large inputs: bound them first
        w.features.add("exponential")
        return f"{w.pick(['tanh', 'sigmoid'])}() -> exponential()", x
    if kind == 6:
        return f"dropout({w.pick(['0.5', 'rate=0.25', '0.1, seed=3'])})", x
    op = w.pick(NAMED_ACT_OPS)
    w.features.add(f"op_{op}")
    return f"{op}()", x


#: Version 2's elementwise activations (glu, which changes the shape, is drawn as its own op).
NEW_ACTS = ["relu6", "hard_silu", "hard_swish", "mish", "celu", "hard_tanh", "log_sigmoid", "soft_shrink",
            "hard_shrink", "tanh_shrink", "squareplus", "sparse_plus", "sparse_sigmoid", "log_softmax", "sparsemax"]


def layer_op(w: _Writer, x: T) -> tuple[str, T] | None:
    """One of version 2's layer ops (norms, rescaling, prelu, noise, merges with numbers, activations)."""
    rank = len(x.decl) + 1
    last = x.decl[-1]
    kind = w.int_(0, 13)
    if kind == 0 and last is not None:
        vals: dict[str, str] = {}
        known = [a for a in range(1, rank) if x.decl[a - 1] is not None]
        if w.coin(0.3) and len(known) > 1:
            vals["axis"] = f"({', '.join(str(a) for a in w.draw(st.permutations(known))[:2])})"
        if w.coin(0.3):
            vals["epsilon"] = w.pick(["1e-6", "1e-5"])
        flag = w.pick(["", "center", "scale", "rms_scaling"])
        if flag:
            vals[flag] = "true" if flag == "rms_scaling" else "false"
        w.features.add("layernorm")
        return w.call("layernorm", list(vals.items())), x
    if kind == 1 and last is not None:
        groups = w.pick([g for g in range(1, last + 1) if last % g == 0])
        w.features.add("groupnorm")
        return f"groupnorm({groups}{', center=false' if w.coin(0.2) else ''})", x
    if kind == 2 and last is not None:
        w.features.add("normalization")
        if w.coin(0.5):
            means = ", ".join(f"{0.1 * i - 0.2:.1f}" for i in range(last))
            vars_ = ", ".join(f"{0.5 + 0.25 * i}" for i in range(last))
            invert = ", invert=true" if w.coin(0.3) else ""
            return f"normalization(mean=({means},), variance=({vars_},){invert})", x
        return "normalization()", x
    if kind == 3:
        w.features.add("rescaling")
        if last is not None and w.coin(0.4):
            return f"rescaling(({', '.join(str(0.5 + 0.25 * i) for i in range(last))},), offset=-0.5)", x
        return w.pick(["rescaling(1 / 255)", "rescaling(2.0, offset=-1.0)", "Rescaling(scale=0.5)"]), x
    if kind == 4:
        w.features.add("unit_normalization")
        return w.pick(["unit_normalization()", f"unit_normalization(axis={rank - 1})"]), x
    if kind == 5 and last is not None:
        w.features.add("layer_scale")
        return f"layer_scale({w.pick(['0.5', 'init_values=2.0', '1e-6'])})", x
    if kind == 6 and last is not None:
        shared = [a for a in range(1, rank) if x.decl[a - 1] is None or (a < rank - 1 and w.coin(0.5))]
        w.features.add("prelu")
        init = ", alpha_initializer=constant(0.25)" if w.coin(0.5) else ""
        if shared:
            return f"prelu(shared_axes=({', '.join(map(str, shared))},){init})", x
        return f"prelu({init.lstrip(', ')})", x
    if kind == 7:
        w.features.add("noise")
        ops = ["gaussian_noise(0.1)", "gaussian_dropout(0.2)", "alpha_dropout(0.1)"]
        if rank == 4:
            ops.append("spatial_dropout2d(0.3)")
        return w.pick(ops), x
    if kind == 8:
        w.features.add("merge_number")
        op = w.pick(["add", "subtract", "multiply", "average", "maximum", "minimum"])
        number = w.pick(["3", "0.5", "1 / 6", "-1"])
        if op == "subtract" or w.coin(0.5):
            return f"linear() -> {op}({number})", x
        return f"linear() -> {op}({number}, 2)", x
    if kind == 9 and rank == 4:
        w.features.add("permute")
        return "permute((2, 3, 1)) -> permute((3, 1, 2))", x
    if kind == 10 and last is not None and last % 2 == 0:
        w.features.add("glu")
        return "glu()", T((*x.decl[:-1], last // 2), (*x.conc[:-1], last // 2))
    if kind == 11:
        a = w.pick(NEW_ACTS)
        w.features.add(f"act_{a}")
        return w.pick([f"activation('{a}')", f"{a}()"]), x
    if kind == 13 and last is not None:
        a = w.pick(NEW_ACTS)  # as a layer's activation=
        w.features.add("new_act_argument")
        return f"dense({last}, activation='{a}')", x
    if kind == 12:
        w.features.add("shrink_args")
        return w.pick(["celu(alpha=0.5)", "soft_shrink(0.2)", "hard_shrink(threshold=0.1)", "squareplus(b=1)",
                       "threshold(0.1, -1)", "log_softmax(axis=1)", "sparsemax()"]), x
    return None


def dense(w: _Writer, x: T) -> tuple[str, T] | None:
    if x.decl[-1] is None:
        return None
    units = w.int_(1, 10)
    vals = {"units": w.num(units)}
    if w.coin(0.4):
        vals["activation"] = f"'{w.pick(ACTS)}'"
    if w.coin(0.15):
        vals["use_bias"] = "false"
    _extras(w, "kernel", vals)
    if len(x.decl) == 1 and w.coin(0.05):
        vals["kernel_regularizer"] = "orthogonal_regularizer(0.01)"
    w.features.add("dense" if len(x.decl) == 1 else "dense_rank_gt2")
    return w.call("dense", _args_with_order(w, ["units", "activation", "use_bias"], vals)), \
        T((*x.decl[:-1], units), (*x.conc[:-1], units))


def reshape(w: _Writer, x: T) -> tuple[str, T] | None:
    if any(d is None for d in x.decl):
        return None
    n = math.prod(x.decl)
    options: list[tuple[int, ...]] = [(n,), (-1,)]
    for a in range(1, min(n, 6) + 1):
        if n % a == 0:
            options.append((a, n // a))
            for b in range(1, min(n // a, 6) + 1):
                if (n // a) % b == 0:
                    options.append((a, b, n // a // b))
                    options.append((a, -1, n // a // b))
    target = w.pick(options)
    real = tuple(n // math.prod(d for d in target if d != -1) if d == -1 else d for d in target)
    w.features.add("reshape")
    text = ", ".join(str(d) for d in target)
    if len(target) == 1:
        text += ","
    return w.call("reshape", [(None if w.coin(0.5) else "target_shape", f"({text})")]), T(real, real)


# --- graph structure ---------------------------------------------------------------------------------


def _same_conv(w: _Writer, x: T, filters: str | None = None) -> str:
    """A conv that keeps H and W: 'same', stride 1 (its channels may change)."""
    k = w.pick([1, 3])
    f = filters if filters is not None else "channels(in)"
    return f"conv2d({f}, {k}, padding='same', activation='{w.pick(['relu', 'linear', 'tanh'])}')"


def residual(w: _Writer, x: T, cur: str) -> tuple[T, str] | None:
    """``s = cur``; a shape-preserving branch; ``add(s, branch)`` in one of three spellings."""
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    c = image(x.decl, w.fmt)[2]
    s = w.fresh("s")
    w.emit(f"{s} = linear()")
    if w.coin(0.3):
        w.emit(s)  # a bare name makes that tensor the current one
    branch = f"conv2d({w.num(c)}, 3, padding='same')"
    if w.coin(0.5):
        branch += " -> " + w.pick(["relu()", f"batchnorm(axis={1 if w.fmt == 'channels_first' else -1})",
                                   "dropout(0.1)"])
    form = w.int_(0, 2)
    op = w.pick(["add", "Add"])
    if form == 0:
        w.emit(f"{branch} -> {op}({s})")
    elif form == 1:
        b = w.fresh("b")
        w.emit(f"{b} = {s} -> {branch}")
        w.emit(f"{op}({s}, {b})")
    else:
        b = w.fresh("b")
        w.emit(f"{b} = {branch}")
        w.emit(f"{op}({b}, {s}, {s})" if w.coin(0.3) else f"{op}({s}, {b})")
    w.features.add("residual")
    return x, s


def concat(w: _Writer, x: T, cur: str) -> T | None:
    if len(x.decl) != 3:
        return None
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    if c is None:
        return None
    s = w.fresh("c")
    w.emit(f"{s} = linear()")
    f1, f2 = w.int_(1, 6), w.int_(1, 6)
    a, b = w.fresh("a"), w.fresh("a")
    w.emit(f"{a} = {s} -> conv2d({f1}, 1)")
    w.emit(f"{b} = {s} -> conv2d({f2}, 3, padding='same') -> relu()")
    spatial = w.coin(0.2) and f1 == f2
    if spatial:
        axis = w.pick([2, 3]) if w.fmt == "channels_first" else w.pick([1, 2])
    else:
        axis = 1 if w.fmt == "channels_first" else w.pick([-1, 3])
    arg = "" if axis == -1 and w.coin(0.5) else f", axis={axis}"
    w.emit(f"{w.pick(['concat', 'Concatenate'])}({a}, {b}{arg})")
    w.features.add("concat")
    decl = list(compose(h, wd, f1, w.fmt))
    conc = list(compose(hc, wc, f1, w.fmt))
    i = axis % 4 - 1
    decl[i] = None if decl[i] is None else decl[i] * 2 if spatial else f1 + f2
    conc[i] = conc[i] * 2 if spatial else f1 + f2
    return T(tuple(decl), tuple(conc))


def squeeze_excite(w: _Writer, x: T) -> T | None:
    """``multiply`` broadcasting a (1, 1, C) gate over (H, W, C)."""
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    c = image(x.decl, w.fmt)[2]
    s, g = w.fresh("m"), w.fresh("g")
    w.emit(f"{s} = linear()")
    pool_op = w.pick(["global_avgpool2d", "global_maxpool2d"])
    w.emit(f"{g} = {pool_op}(keepdims=true) -> conv2d(max(1, {c} // 2), 1, activation='relu') "
           f"-> conv2d(channels({s}), 1, activation='sigmoid')")
    w.emit(f"{w.pick(['multiply', 'Multiply'])}({s}, {g})" if w.coin(0.7) else f"{s} -> multiply({g})")
    w.features.add("multiply_broadcast")
    return x


BLOCKS = {
    "cbr": ("(f, k=3, s=1, act='relu')",
            "conv2d(f, k, strides=s, padding='same', use_bias=false)\n    batchnorm(axis=AX)\n    activation(act)"),
    "res": ("(act='relu')",
            "y = conv2d(channels(in), 3, padding='same', activation=act)\n    z = y -> conv2d(channels(in), 1)\n"
            "    add(in, z)"),
    "down": ("(f, s=1)",
             "if s > 1 {\n        maxpool2d(s, padding='same')\n    } else if s == 1 {\n        relu()\n"
             "    } else {\n        sigmoid()\n    }\n    conv2d(f, 1)"),
    "fork": ("(f)",
             "a = conv2d(f, 1)\n    b = in -> inner_BLK(f)\n    concat(a, b, axis=AX)"),
    "inner": ("(f)", "depthwise_conv2d(3, padding='same') -> conv2d(f, 1)"),
}


def _block(w: _Writer, kind: str) -> str:
    if kind in w.blocks:
        return w.blocks[kind]
    name = f"{kind}_{len(w.blocks)}"
    w.blocks[kind] = name
    if kind == "fork":
        _block(w, "inner")
    return name


def block_call(w: _Writer, x: T) -> tuple[str, T] | None:
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    kind = w.pick(["cbr", "res", "down", "fork"])
    name = _block(w, kind)
    w.features.add(f"block_{kind}")
    if kind == "cbr":
        f = w.int_(1, 6)
        k = w.pick([1, 3])
        s = w.int_(1, 2)
        args = [w.num(f)]
        if k != 3 or w.coin(0.3):
            args.append(f"k={k}")
        if s != 1 or w.coin(0.3):
            args.append(f"s={s}")
        if w.coin(0.3):
            args.append(f"act='{w.pick(['tanh', 'elu', 'linear'])}'")
        oh = [window(v, k, s, 1, "same") for v in (h, hc)]
        ow = [window(v, k, s, 1, "same") for v in (wd, wc)]
        return f"{name}({', '.join(args)})", _from_img(w, x, oh, ow, f)
    if kind == "res":
        return (f"{name}()" if w.coin(0.5) else f"{name}(act='gelu')"), x
    if kind == "down":
        f, s = w.int_(1, 6), w.int_(1, 2)
        oh = [window(v, s, s, 1, "same") for v in (h, hc)]
        ow = [window(v, s, s, 1, "same") for v in (wd, wc)]
        return f"{name}({f}, s={s})", _from_img(w, x, oh, ow, f)
    f = w.int_(1, 4)
    return f"{name}({f})", _from_img(w, x, [h, hc], [wd, wc], 2 * f)


def repeat(w: _Writer, x: T) -> T | None:
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    n = w.int_(1, 3)
    base, step = w.int_(1, 4), w.int_(0, 2)
    tag = w.fresh("r")
    counter = w.coin(0.8)
    if counter:
        w.emit(f"repeat {w.num(n)} as i {{")
        w.emit(f"    conv2d({base} + {step} * i, 3, padding='same', name='{tag}_' + str(i)) -> relu()")
        f_last = base + step * (n - 1)
        w.features.add("repeat_counter")
    else:
        w.emit(f"repeat {w.num(n)} {{")
        w.emit(f"    conv2d({base}, 1) -> batchnorm(axis={1 if w.fmt == 'channels_first' else -1})")
        f_last = base
    w.emit("}")
    w.features.add("repeat")
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    return _from_img(w, x, [h, hc], [wd, wc], f_last)


def condition(w: _Writer, x: T, cur: str) -> T | None:
    """``if`` on a tensor's channels or shape: the generator evaluates it to know which body runs."""
    if len(x.decl) != 3:
        return None
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    if c is None:
        return None
    s = w.fresh("t")
    w.emit(f"{s} = linear()")
    thr = w.int_(1, 8)
    if w.coin(0.7):
        cond, value = f"channels({s}) >= {thr}", c >= thr
    else:
        idx = w.int_(0, 2)
        d = x.decl[idx]
        if d is None:
            cond, value = f"shape({s})[{idx}] == none", True
        else:
            cond, value = f"shape({s})[{idx}] > {thr} and not false", d > thr
    f1, f2 = w.int_(1, 5), w.int_(1, 5)
    w.emit(f"if {cond} {{")
    w.emit(f"    conv2d({f1}, 1)")
    w.emit("} else {")
    w.emit(f"    conv2d({f2}, 3, padding='same')")
    w.emit("}")
    w.features.add("if")
    return _from_img(w, x, [h, hc], [wd, wc], f1 if value else f2)


def let_value(w: _Writer, x: T) -> T | None:
    """``let f = N`` in the body or at file level, used by a conv (sometimes in a conditional expression)."""
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    name = w.fresh("f")
    f = w.int_(1, 6)
    if w.coin(0.3):
        w.prelude.append(f"let {name} = {f} * 1_000 // 1_000")
        w.features.add("let_file")
    else:
        w.emit(f"let {name} = {w.num(f)}")
        w.features.add("let")
    value = name
    if w.coin(0.4):
        value = f"{name} if channels({_cur_name(w)}) > 0 else {name} + 1"
        w.features.add("cond_expr")
    w.emit(f"conv2d({value}, 1, padding='same')")
    return _from_img(w, x, [h, hc], [wd, wc], f)


def _cur_name(w: _Writer) -> str:
    """Binds the current tensor to a fresh name (for channels() in an expression)."""
    t = w.fresh("k")
    w.emit(f"{t} = linear()")
    return t


def for_loop(w: _Writer, x: T) -> T | None:
    """``for`` over a literal table or a ``let`` tuple, unpacking pairs or not."""
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    (h, wd, c), (hc, wc, cc) = x.img(w.fmt)
    rows = [(w.int_(1, 6), w.pick([1, 3])) for _ in range(w.int_(1, 3))]
    if w.coin(0.5):
        table = "(" + ", ".join(f"({f}, {k})" for f, k in rows) + ("," if len(rows) == 1 else "") + ")"
        if w.coin(0.4):
            name = w.fresh("table")
            w.emit(f"let {name} = {table}")
            table = name
        w.emit(f"for (f, k) in {table} {{")
        w.emit("    conv2d(f, k, padding='same') -> relu()")
        w.features.add("for_unpack")
    else:
        rows = [(f, 1) for f, _ in rows]
        w.emit(f"for f in ({', '.join(str(f) for f, _ in rows)},) {{")
        w.emit("    conv2d(f, 1)")
        w.features.add("for")
    w.emit("}")
    return _from_img(w, x, [h, hc], [wd, wc], rows[-1][0])


def carry_loop(w: _Writer, x: T) -> T | None:
    """A residual stack that carries its running tensor (and a counter) from pass to pass."""
    if len(x.decl) != 3 or image(x.decl, w.fmt)[2] is None:
        return None
    t, n = w.fresh("t"), w.fresh("n")
    w.emit(f"{t} = linear()")
    w.emit(f"let {n} = 0")
    if w.coin(0.5):
        w.emit(f"repeat {w.int_(1, 3)} carry {t}, {n} {{")
    else:
        w.emit(f"for u in ({w.int_(1, 3)}, {w.int_(1, 3)}) carry {n}, {t} {{")
    w.emit(f"    v = {t} -> conv2d(channels({t}), 3, padding='same', name='{t}_' + str({n}))")
    if w.coin(0.5):
        w.emit(f"    if {n} % 2 == 0 {{")
        w.emit(f"        {t} = add({t}, v)")
        w.emit("    } else {")
        w.emit(f"        {t} = v -> relu()")
        w.emit("    }")
    else:
        w.emit(f"    {t} = add({t}, v)")
    w.emit(f"    let {n} = {n} + 1")
    w.emit("}")
    w.emit(t)
    w.features.add("carry")
    return x


# --- networks ------------------------------------------------------------------------------------------


def _outputs(w: _Writer, x: T, meta: int | None) -> None:
    """The network's end: join the metadata input in, and sometimes name several outputs.

    A metadata vector is embedded by ``dense`` and concatenated with a
    vector current tensor, or else becomes an output of its own; an
    ``output`` statement then lists the current tensor and some tensors
    bound earlier in the network's body.
    """
    several = meta is not None or (w.top_names and w.coin(0.3))
    if not several:
        return
    last = w.fresh("t")
    w.emit(f"{last} = linear()")  # names the current tensor
    outputs = [last]
    if meta is not None:
        m = w.fresh("m")
        units = w.int_(1, 5)
        w.emit(f"{m} = meta -> dense({units}, activation='tanh')")
        if len(x.decl) == 1 and x.decl[0] is not None and w.coin(0.6):
            joined = w.fresh("j")
            w.emit(f"{joined} = concat({last}, {m})")
            outputs = [joined]
            w.features.add("concat_inputs")
        else:
            outputs.append(m)
    if w.top_names and w.coin(0.5):
        outputs += w.draw(st.lists(st.sampled_from(w.top_names), min_size=1, max_size=2, unique=True))
    if meta is not None and w.coin(0.2):
        outputs.append("meta")  # an input may be an output too
    if len(outputs) > 1 or w.coin(0.3):
        w.emit("output " + ", ".join(outputs))
        w.features.add("several_outputs" if len(outputs) > 1 else "output_statement")
    elif outputs[0] != last:
        w.emit(outputs[0])


@st.composite
def networks(draw: st.DrawFn, max_statements: int = 8) -> GenNet:
    """A random valid network as ``.net`` text (see the module docstring)."""
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    w = _Writer(draw, fmt)
    unknown = draw(st.sampled_from(["none", "none", "h", "hw"]))
    hc, wc, cc = draw(st.integers(5, 12)), draw(st.integers(5, 12)), draw(st.integers(1, 6))
    hd = None if unknown in ("h", "hw") else hc
    wdd = None if unknown == "hw" else wc
    if unknown != "none":
        w.features.add("unknown_size")
    x = T(compose(hd, wdd, cc, fmt), compose(hc, wc, cc, fmt))
    dims = ", ".join("?" if d is None else w.num(d) for d in x.decl)
    layout = " channels_first" if fmt == "channels_first" else (" channels_last" if w.coin(0.2) else "")
    w.emit(f"input x: [{dims}]{layout}")
    meta = w.int_(1, 6) if w.coin(0.25) else None  # a second input: a metadata vector
    if meta is not None:
        w.emit(f"input meta: [{w.num(meta)}]")
        w.features.add("several_inputs")
    if w.coin(0.3):
        w.defaults["conv2d"] = {"padding": "same"}
        w.emit("default conv2d(padding='same', activation='relu')")
        w.features.add("default")
    cur = "x"
    n = draw(st.integers(1, max_statements))
    phase_image = True
    for _ in range(n):
        if phase_image and len(x.decl) == 3:
            kind = w.pick(["conv2d", "conv2d", "depthwise_conv2d", "separable_conv2d", "maxpool2d", "avgpool2d",
                           "zeropad2d", "batchnorm", "act", "residual", "concat", "se", "block", "repeat", "if",
                           "chain", "global", "flatten", "let", "for", "carry",
                           "layers", "bcast"])
        else:
            kind = w.pick(["dense", "dense", "batchnorm", "act", "dense_res", "reshape", "flatten_1d", "layers"])
        line: str | None = None
        new: T | None = None
        if kind in ("conv2d", "depthwise_conv2d", "separable_conv2d"):
            r = conv_like(w, x, kind)
            if r:
                line, new = r
        elif kind in ("maxpool2d", "avgpool2d"):
            r = pool(w, x, kind)
            if r:
                line, new = r
        elif kind == "zeropad2d":
            line, new = zeropad(w, x)
        elif kind == "batchnorm":
            r = batchnorm(w, x)
            if r:
                line, new = r
        elif kind == "act":
            line, new = activation_op(w, x)
        elif kind == "layers":
            r = layer_op(w, x)
            if r:
                line, new = r
        elif kind == "bcast" and fmt == "channels_last" and x.decl[-1] is not None:
            # Keras's merges align a shorter shape on the right: (H, W, C) with a (C,) vector.
            s, v = w.fresh("s"), w.fresh("g")
            w.emit(f"{s} = linear()")
            w.emit(f"{v} = global_avgpool2d() -> dense({x.decl[-1]}, activation='sigmoid')")
            w.emit(f"{w.pick(['multiply', 'add', 'maximum', 'subtract'])}({s}, {v})")
            w.features.add("merge_broadcast_rank")
            new = x
        elif kind == "residual":
            r2 = residual(w, x, cur)
            if r2:
                new = r2[0]
        elif kind == "concat":
            new = concat(w, x, cur)
        elif kind == "se":
            new = squeeze_excite(w, x)
        elif kind == "block":
            r = block_call(w, x)
            if r:
                line, new = r
        elif kind == "repeat":
            new = repeat(w, x)
        elif kind == "if":
            new = condition(w, x, cur)
        elif kind == "let":
            new = let_value(w, x)
        elif kind == "for":
            new = for_loop(w, x)
        elif kind == "carry":
            new = carry_loop(w, x)
        elif kind == "chain":
            steps = []
            y = x
            for _ in range(w.int_(2, 3)):
                r = w.pick([lambda y: conv_like(w, y, "conv2d"), lambda y: activation_op(w, y),
                            lambda y: batchnorm(w, y)])(y)
                if r:
                    steps.append(r[0])
                    y = r[1]
            if steps:
                name = w.fresh("h")
                sep = "\n" + "    " * w.indent + "-> " if w.coin(0.3) else " -> "
                w.emit(f"{name} = " + sep.join(steps) if w.coin(0.5) else sep.join(steps))
                w.features.add("chain")
                new = y
        elif kind == "global":
            (h, wd, c), _ = x.img(fmt)
            if c is not None:
                op = w.pick(["global_avgpool2d", "global_maxpool2d"])
                keep = w.coin(0.3)
                line = w.call(op, [("keepdims", "true")] if keep else ([("keepdims", "false")] if w.coin(0.2) else []))
                new = T(compose(1, 1, c, fmt), compose(1, 1, x.conc[0 if fmt == "channels_first" else 2], fmt)) \
                    if keep else T((c,), (c,))
                w.features.add(op)
        elif kind == "flatten" and all(d is not None for d in x.decl):
            line = w.call("flatten", [("data_format", f"'{fmt}'")] if w.coin(0.1) else [])
            new = T((math.prod(x.decl),), (math.prod(x.conc),))
            w.features.add(f"flatten_{fmt}")
        elif kind == "dense":
            r = dense(w, x)
            if r:
                line, new = r
        elif kind == "dense_res" and x.decl[-1] is not None:
            s = w.fresh("d")
            w.emit(f"{s} = linear()")
            w.emit(f"{s} -> dense({x.decl[-1]}, activation='tanh') -> "
                   f"{w.pick(['add', 'multiply', 'subtract', 'average', 'maximum', 'minimum'])}({s})")
            new = x
            w.features.add("dense_merge")
        elif kind == "reshape":
            r = reshape(w, x)
            if r:
                line, new = r
        elif kind == "flatten_1d" and all(d is not None for d in x.decl):
            line, new = "flatten()", T((math.prod(x.decl),), (math.prod(x.conc),))
        if new is None:
            continue
        if line is not None:
            if w.coin(0.15):
                bound = w.fresh("v")
                w.emit(f"{bound} = {line}")
                w.top_names.append(bound)
            else:
                w.emit(line + ("  # a comment" if w.coin(0.05) else "") + (";" if w.coin(0.05) else ""))
        x = new
        if len(x.decl) != 3:
            phase_image = False
    if w.coin(0.2) and all(d is not None for d in x.decl):
        w.emit("flatten()" if len(x.decl) != 1 else "dense(3, activation='softmax')")
        x = T((math.prod(x.decl),), (math.prod(x.conc),)) if len(x.decl) != 1 else T((3,), (3,))
    _outputs(w, x, meta)
    blocks = []
    ax = 1 if fmt == "channels_first" else -1
    for kind, name in w.blocks.items():
        params, body = BLOCKS[kind]
        body = body.replace("AX", str(ax)).replace("inner_BLK", w.blocks.get("inner", "inner_x"))
        blocks.append(f"block {name}{params} {{\n    {body}\n}}\n")
    prelude = "".join(line + "\n" for line in w.prelude)
    text = prelude + "".join(blocks) + "network gen {\n" + "\n".join(w.lines) + "\n}\n"
    conc_in = compose(hc, wc, cc, fmt)
    return GenNet(text, conc_in, fmt, frozenset(w.features), ((meta,),) if meta is not None else ())


# --- spatial networks: 1-D signals, 2-D decoders, 3-D volumes ------------------------------------------
# Their shape model, written from LANGUAGE.md and Keras's documentation (not from netspec's code):
# sliding windows as above ('causal' pads D*(F-1) at the start); a transposed convolution's length is
# Keras's deconv_output_length; padding adds, cropping subtracts, upsampling multiplies.

def deconv_length(length: int | None, k: int, s: int, d: int, pad: str, out_pad: int | None) -> int | None:
    """Keras's ``deconv_output_length``.

    >>> deconv_length(16, 2, 2, 1, 'valid', None), deconv_length(7, 3, 2, 1, 'same', 0)
    (32, 13)
    """
    if length is None:
        return None
    k = d * (k - 1) + 1
    if pad == "valid":
        return (length - 1) * s + k + (max(k, s) - k if out_pad is None else out_pad)
    return length * s if out_pad is None else (length - 1) * s + k % 2 + out_pad


@dataclass
class S:
    """A spatial tensor: declared and concrete spatial sizes and channels."""

    decl: tuple
    conc: tuple
    c: int

    def shape(self, fmt: str, which: str) -> tuple:
        dims = self.decl if which == "decl" else self.conc
        return (*dims, self.c) if fmt == "channels_last" else (self.c, *dims)


def _tup(w: _Writer, values: tuple[int, ...]) -> str:
    if len(set(values)) == 1 and w.coin(0.6):
        return w.num(values[0])
    return "(" + ", ".join(w.num(v) for v in values) + ("," if len(values) == 1 else "") + ")"


def _pads_text(w: _Writer, pads: tuple[tuple[int, int], ...]) -> str:
    """An int, a tuple per axis, or a pair per axis (for one axis: the pair itself)."""
    if len({p for pair in pads for p in pair}) == 1 and w.coin(0.5):
        return str(pads[0][0])
    if len(pads) == 1:
        return f"({pads[0][0]}, {pads[0][1]})"
    if all(b == e for b, e in pads) and w.coin(0.5):
        return "(" + ", ".join(str(b) for b, _ in pads) + ")"
    return "(" + ", ".join(f"({b}, {e})" for b, e in pads) + ")"


def _apply(x: S, f: Callable[[int | None, int], int | None]) -> tuple[tuple, tuple]:
    return tuple(f(d, i) for i, d in enumerate(x.decl)), tuple(f(d, i) for i, d in enumerate(x.conc))


def _ok(dims: tuple) -> bool:
    return all(d is None or d >= 1 for d in dims)


def spatial_layer(w: _Writer, x: S, n: int) -> tuple[str, S] | None:
    """One spatial op on an ``n``-axis tensor ``x``, or None if the drawn one does not fit."""
    kinds = ["conv", "conv", "transpose", "pool", "zeropad", "cropping", "upsampling"]
    if n == 1:
        kinds += ["depthwise", "separable", "conv"]
    if n == 2 and None not in x.decl:
        kinds += ["resizing", "center_crop"]
    kind = w.pick(kinds)
    vals: dict[str, str] = {}
    k = tuple(w.int_(1, 3) for _ in range(n))
    if kind in ("conv", "depthwise", "separable"):
        strides, dil = (1,) * n, (1,) * n
        if w.coin(0.3):
            strides = tuple(w.int_(1, 2) for _ in range(n))
        elif w.coin(0.3):
            dil = tuple(w.int_(1, 2) for _ in range(n))
        modes = ["valid", "same", "explicit"] + (["causal"] if n == 1 and kind == "conv" else [])
        mode = w.pick(modes)
        if mode == "explicit":
            pads = tuple((w.int_(0, 2), w.int_(0, 2)) for _ in range(n))
            per_axis = pads
            vals["padding"] = _pads_text(w, pads)
        else:
            per_axis = tuple(mode if mode != "causal" else (dil[i] * (k[i] - 1), 0) for i in range(n))
            vals["padding"] = f"'{mode}'"
        decl, conc = _apply(x, lambda d, i: window(d, k[i], strides[i], dil[i], per_axis[i]))
        if not (_ok(decl) and _ok(conc)):
            return None
        op = {"conv": f"conv{n}d", "depthwise": "depthwise_conv1d", "separable": "separable_conv1d"}[kind]
        vals["kernel_size"] = _tup(w, k)
        if strides != (1,) * n:
            vals["strides"] = _tup(w, strides)
        if dil != (1,) * n:
            vals["dilation_rate"] = _tup(w, dil)
        out_c = x.c
        order = ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
                 "activation", "use_bias"]
        if kind == "conv":
            groups = w.pick([g for g in (1, 1, 2, 3) if x.c % g == 0])
            out_c = groups * w.int_(1, 3)
            vals["filters"] = w.num(out_c)
            if groups > 1:
                vals["groups"] = str(groups)
        elif kind == "depthwise":
            mult = w.int_(1, 2)
            vals["depth_multiplier"] = str(mult)
            out_c = x.c * mult
            order = ["kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                     "activation", "use_bias"]
        else:
            out_c = w.int_(1, 4)
            vals["filters"] = str(out_c)
            order = ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                     "depth_multiplier", "activation", "use_bias"]
        if w.coin(0.4):
            vals["activation"] = f"'{w.pick(['relu', 'tanh', 'swish', 'linear'])}'"
        if w.coin(0.2):
            vals["use_bias"] = "false"
        w.features.add(f"{op}_causal" if mode == "causal" else op)
        return w.call(op, _args_with_order(w, order, vals)), S(decl, conc, out_c)
    if kind == "transpose":
        strides, dil = (1,) * n, (1,) * n
        if w.coin(0.6):
            strides = tuple(w.int_(1, 3) for _ in range(n))
        elif w.coin(0.3):
            dil = tuple(w.int_(1, 2) for _ in range(n))
        pad = w.pick(["valid", "same"])
        out_pad = None
        if w.coin(0.4):
            out_pad = tuple(w.int_(0, s - 1) for s in strides)
            if pad == "same" and any((dil[i] * (k[i] - 1) + 1) % 2 == 0 and out_pad[i] == 0 for i in range(n)):
                return None  # TensorFlow cannot compute it (E410)
        decl, conc = _apply(x, lambda d, i: deconv_length(d, k[i], strides[i], dil[i], pad,
                                                         None if out_pad is None else out_pad[i]))
        if not (_ok(decl) and _ok(conc)) or math.prod(conc) * x.c > 40_000:
            return None
        f = w.int_(1, 4)
        vals = {"filters": str(f), "kernel_size": _tup(w, k), "padding": f"'{pad}'"}
        if strides != (1,) * n:
            vals["strides"] = _tup(w, strides)
        if dil != (1,) * n:
            vals["dilation_rate"] = _tup(w, dil)
        if out_pad is not None:
            vals["output_padding"] = _tup(w, out_pad)
        if w.coin(0.3):
            vals["activation"] = "'relu'"
        op = f"conv{n}d_transpose"
        w.features.add(f"{op}_output_padding" if out_pad is not None else op)
        order = ["filters", "kernel_size", "strides", "padding", "output_padding", "dilation_rate", "activation"]
        assert set(vals) <= set(order)
        return w.call(op, _args_with_order(w, order, vals)), S(decl, conc, f)
    if kind == "pool":
        size = tuple(w.int_(1, 3) for _ in range(n))
        strides = size if w.coin(0.5) else tuple(w.int_(1, 2) for _ in range(n))
        pad = w.pick(["valid", "same"])
        decl, conc = _apply(x, lambda d, i: window(d, size[i], strides[i], 1, pad))
        if not (_ok(decl) and _ok(conc)):
            return None
        op = f"{w.pick(['max', 'avg'])}pool{n}d"
        vals = {"pool_size": _tup(w, size), "strides": _tup(w, strides), "padding": f"'{pad}'"}
        w.features.add(op)
        return w.call(op, _args_with_order(w, ["pool_size", "strides", "padding"], vals)), S(decl, conc, x.c)
    if kind in ("zeropad", "cropping"):
        pads = tuple((w.int_(0, 2), w.int_(0, 2)) for _ in range(n))
        sign = 1 if kind == "zeropad" else -1
        decl, conc = _apply(x, lambda d, i: None if d is None else d + sign * sum(pads[i]))
        if not (_ok(decl) and _ok(conc)):
            return None
        if kind == "cropping" and n == 1 and w.fmt == "channels_first":
            return None  # Keras's Cropping1D always crops axis 1
        op = f"{kind}{n}d"
        w.features.add(op)
        return w.call(op, [(None if w.coin(0.5) else ("padding" if kind == "zeropad" else "cropping"),
                            _pads_text(w, pads))]), S(decl, conc, x.c)
    if kind == "upsampling":
        if n == 1 and w.fmt == "channels_first":
            return None  # Keras's UpSampling1D always repeats axis 1
        size = tuple(w.int_(1, 3) for _ in range(n))
        decl, conc = _apply(x, lambda d, i: None if d is None else d * size[i])
        if math.prod(conc) * x.c > 40_000:
            return None
        args = [(None, _tup(w, size))]
        op = f"upsampling{n}d"
        if n == 2 and w.coin(0.5):
            interp = w.pick(["nearest", "bilinear", "bilinear", "bicubic", "lanczos3", "lanczos5", "area"])
            args.append(("interpolation", f"'{interp}'"))
            w.features.add(f"upsampling2d_{interp}")
        w.features.add(op)
        return w.call(op, args), S(decl, conc, x.c)
    h, wd = w.int_(1, 12), w.int_(1, 12)
    if kind == "resizing":
        args = [(None, str(h)), (None, str(wd))]
        if w.coin(0.6):
            interp = w.pick(["nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area"])
            args.append(("interpolation", f"'{interp}'"))
            w.features.add(f"resizing_{interp}")
        if w.coin(0.3):
            args.append(("crop_to_aspect_ratio", "true"))
            w.features.add("resizing_crop")
        w.features.add("resizing")
        return w.call("resizing", args), S((h, wd), (h, wd), x.c)
    w.features.add("center_crop" if h <= x.conc[0] and wd <= x.conc[1] else "center_crop_resize")
    return w.call("center_crop", [(None, str(h)), (None, str(wd))]), S((h, wd), (h, wd), x.c)


def decoder_skip(w: _Writer, x: S, n: int) -> S | None:
    """U-Net's step: down by 2, up by a 2x transposed convolution, the skip cropped to it, concat."""
    if any(d is None or d < 2 for d in x.decl):
        return None
    ups = tuple(2 * (d // 2) for d in x.decl)
    crops = tuple((0, d - o) for d, o in zip(x.decl, ups))
    if n == 1 and w.fmt == "channels_first" and any(e for _, e in crops):
        return None  # Keras's Cropping1D always crops axis 1
    s, u = w.fresh("skip"), w.fresh("up")
    f = w.int_(1, 4)
    w.emit(f"{s} = linear()")
    w.emit(f"{u} = maxpool{n}d(2) -> conv{n}d_transpose({f}, 2, strides=2)")
    cropped = s
    if any(e for _, e in crops):
        cropped = w.fresh("crop")
        w.emit(f"{cropped} = {s} -> cropping{n}d({_pads_text(w, crops)})")
        w.features.add(f"cropping{n}d")
    return _skip_concat(w, s, cropped, u, x, ups, f, n)


def _skip_concat(w: _Writer, s: str, cropped: str, u: str, x: S, ups: tuple, f: int, n: int) -> S:
    axis = 1 if w.fmt == "channels_first" else -1
    w.emit(f"concat({cropped}, {u}" + (f", axis={axis})" if axis == 1 or w.coin(0.3) else ")"))
    w.features.add("decoder_skip")
    return S(ups, ups, x.c + f)


@st.composite
def spatial_networks(draw: st.DrawFn, max_statements: int = 6) -> GenNet:
    """A random valid network on 1-D, 2-D or 3-D data built from the spatial ops."""
    n = draw(st.sampled_from([1, 1, 2, 2, 3]))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    w = _Writer(draw, fmt)
    lo, hi = {1: (6, 24), 2: (4, 12), 3: (3, 6)}[n]
    conc = tuple(draw(st.integers(lo, hi)) for _ in range(n))
    unknown = n == 1 and draw(st.integers(0, 3)) == 0
    decl = (None,) if unknown else conc
    if unknown:
        w.features.add("unknown_length")
    x = first = S(decl, conc, draw(st.integers(1, 4)))
    dims = ", ".join("?" if d is None else str(d) for d in x.shape(fmt, "decl"))
    w.emit(f"input x: [{dims}]" + (" channels_first" if fmt == "channels_first" else ""))
    w.features.add(f"rank{n + 1}_{fmt}")
    for _ in range(draw(st.integers(1, max_statements))):
        if w.coin(0.15):
            new = decoder_skip(w, x, n)
            if new is not None:
                x = new
            continue
        r = spatial_layer(w, x, n)
        if r is None:
            continue
        line, x = r
        w.emit(line)
    if w.coin(0.5):
        op = f"global_{w.pick(['avg', 'max'])}pool{n}d"
        w.emit(f"{op}()")
        w.features.add(op)
        if w.coin(0.5):
            w.emit(f"dense({w.int_(1, 5)})")
    text = "network gen {\n" + "\n".join(w.lines) + "\n}\n"
    return GenNet(text, first.shape(fmt, "conc"), fmt, frozenset(w.features))


# --- bad specs ---------------------------------------------------------------------------------------------


@dataclass
class BadSpec:
    """A spec with one violation: the code check must report and where (1-based line and column).

    ``keras`` (for shape rules) builds the offending layer with raw Keras and
    must raise: the targets agree that the spec cannot be built.
    ``files`` holds extra files (imports) to write beside the spec.
    """

    rule: str
    text: str
    code: str
    line: int
    column: int
    keras: Callable[[Any], Any] | None = None
    files: dict[str, str] = field(default_factory=dict)
    severity: str = "error"
    file: str = "bad.net"


class _Spec:
    """Builds a spec line by line and remembers where the marked token lands."""

    def __init__(self, draw: st.DrawFn):
        self.draw = draw
        self.lines: list[str] = []
        self.mark: tuple[int, int] | None = None

    def add(self, text: str, marker: str | None = None) -> None:
        """Append a line; ``marker`` is the substring whose first character is the expected location.

        Put ``@@`` in ``text`` right before the token to mark it if it is not unique.
        """
        if "@@" in text:
            col = text.index("@@")
            text = text.replace("@@", "", 1)
            self.mark = (len(self.lines) + 1, col + 1)
        elif marker is not None:
            self.mark = (len(self.lines) + 1, text.index(marker) + 1)
        self.lines.append(text)

    def noise(self) -> None:
        """Blank lines, comments and harmless layers before the violation: positions must still be right."""
        for _ in range(self.draw(st.integers(0, 3))):
            self.lines.append(self.draw(st.sampled_from(
                ["", "    # a comment", "    relu()", "    linear()  # keeps the shape", "\t", "    dropout(0.5)"])))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _indent(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["    ", "  ", "\t", "        ", " "]))


def _layers():
    from netspec.targets.keras_model import import_keras

    return import_keras().layers


@st.composite
def _bad(draw: st.DrawFn, rule: str) -> BadSpec:
    s = _Spec(draw)
    ind = _indent(draw)
    h, w_, c = draw(st.integers(4, 10)), draw(st.integers(4, 10)), draw(st.integers(1, 5))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (h, w_, c) if fmt == "channels_last" else (c, h, w_)
    blocks = draw(st.booleans())
    if blocks and rule not in ("recursive", "unbound_block"):
        s.add("block helper(n) {")
        s.add("    relu()")
        s.add("}")
    s.add("network bad {")
    s.add(f"    input x: [{', '.join(map(str, shape))}]" + (" channels_first" if fmt == "channels_first" else ""))
    s.noise()
    keras_fn = None
    code = RULE_CODES[rule]
    files: dict[str, str] = {}
    where = "bad.net"
    if rule == "unknown_op":
        op = draw(st.sampled_from(["conv2d", "maxpool2d", "dense", "batchnorm", "flatten", "dropout"]))
        i = draw(st.integers(0, len(op) - 1))
        bad = draw(st.sampled_from([op[:i] + op[i + 1:], op[:i] + op[i] + op[i:], op[:i] + "q" + op[i + 1:]]))
        if bad == op or bad in ("conv2D",):
            bad = op + "x"
        s.add(f"{ind}y = @@{bad}(4)")
    elif rule == "unknown_arg":
        arg = draw(st.sampled_from(["paddin", "stride", "kernelsize", "filter", "activaton", "dilation"]))
        s.add(f"{ind}conv2d(4, 3, @@{arg}=1)")
    elif rule == "missing_arg":
        s.add(f"{ind}" + draw(st.sampled_from(["@@conv2d(4)", "@@dense()", "@@conv2d(kernel_size=3)",
                                               "@@separable_conv2d(3)", "@@reshape()", "@@dropout()"])))
    elif rule == "ill_typed":
        s.add(f"{ind}" + draw(st.sampled_from([
            "conv2d(@@'a', 3)", "conv2d(4, 3, use_bias=@@1)", "conv2d(4, @@'k')", "dense(@@true)",
            "conv2d(4, 3, strides=@@(1, 2, 3))", "dropout(@@'half')", "maxpool2d(@@none, strides=1)"])))
    elif rule == "bad_enum":
        s.add(f"{ind}" + draw(st.sampled_from([
            "conv2d(4, 3, padding=@@'sam')", "conv2d(4, 3, activation=@@'rleu')",
            "maxpool2d(2, padding=@@'full')", "conv2d(4, 3, data_format=@@'channel_last')",
            "dense(3, kernel_initializer=@@'he_norml')", "activation(@@'sigmod')"])))
    elif rule == "size_below_1":
        k = max(h, w_) + draw(st.integers(1, 3))
        s.add(f"{ind}conv2d(4, @@{k})")
        keras_fn = lambda L, k=k: L.Conv2D(4, k, data_format=fmt)  # noqa: E731
    elif rule == "groups":
        g = draw(st.integers(2, 4))
        cc = c if c % g else c + 1
        shape = (h, w_, cc) if fmt == "channels_last" else (cc, h, w_)
        s.lines[s.lines.index(next(line for line in s.lines if "input x" in line))] = \
            f"    input x: [{', '.join(map(str, shape))}]" + (" channels_first" if fmt == "channels_first" else "")
        s.add(f"{ind}conv2d({g * 2}, 3, groups=@@{g})")
        keras_fn = lambda L, g=g: L.Conv2D(g * 2, 3, groups=g, data_format=fmt)  # noqa: E731
    elif rule == "merge":
        op = draw(st.sampled_from(["add", "multiply", "concat"]))
        f1, f2 = 2, 3
        s.add(f"{ind}a = conv2d({f1}, 1)")
        s.add(f"{ind}b = x -> conv2d({f2}, 3, padding='valid')" if op != "concat" else
              f"{ind}b = x -> conv2d({f2}, 3)")
        s.add(f"{ind}@@{op}(a, b)")

        def keras_fn(L, op=op, f1=f1, f2=f2):
            import keras

            i = keras.Input(shape)
            a = L.Conv2D(f1, 1, data_format=fmt)(i)
            b = L.Conv2D(f2, 3, data_format=fmt)(i)
            cls = {"add": L.Add, "multiply": L.Multiply, "concat": L.Concatenate}[op]
            return cls()([a, b])
    elif rule == "unknown_size":
        shape = (None, None, c) if fmt == "channels_last" else (c, None, None)
        s.lines[s.lines.index(next(line for line in s.lines if "input x" in line))] = \
            f"    input x: [{', '.join('?' if d is None else str(d) for d in shape)}]" + \
            (" channels_first" if fmt == "channels_first" else "")
        s.add(f"{ind}flatten()")
        s.add(f"{ind}@@dense(3)")

        def keras_fn(L):
            import keras

            return L.Dense(3)(L.Flatten()(keras.Input(shape)))
    elif rule == "unbound":
        name = draw(st.sampled_from(["y", "skip", "xx", "X"]))
        s.add(f"{ind}a = relu()")
        s.add(f"{ind}add(a, @@{name})")
    elif rule == "bound_twice":
        s.add(f"{ind}a = relu()")
        s.noise()
        s.add(f"{ind}@@a = sigmoid()")
    elif rule == "recursive":
        # The error points at the call that closes the cycle: b2's call back into b1.
        s.lines[:0] = ["block b1(f) {", "    relu()", "    b2(f)", "}", "block b2(f) {", "    b1(f)", "}"]
        s.mark = (6, 5)
        s.add(f"{ind}b1(2)")
    elif rule == "import_cycle":
        # The error points at the import that closes the cycle, in the other file.
        s.lines[:0] = ['import "other.net"']
        files["other.net"] = 'import "bad.net"\nblock o(n) {\n    relu()\n}\n'
        s.mark = (1, 1)
        where = "other.net"
        s.add(f"{ind}relu()")
    elif rule == "non_integer":
        s.add(f"{ind}" + draw(st.sampled_from(["conv2d(@@8 / 2, 3)", "dense(@@2.5)", "maxpool2d(@@1.5)",
                                               "conv2d(4, 3, strides=@@(1, 2.0))"])))
    elif rule == "too_large":
        s.add(f"{ind}" + draw(st.sampled_from(["conv2d(@@2 ** 40, 3)", "dense(@@10 ** 12)",
                                               "zeropad2d(@@2 ** 31)", "reshape(@@(2 ** 62, -1))"])))
    elif rule == "too_many":
        s.add(f"{ind}repeat @@{draw(st.sampled_from(['2000000', '10 ** 7', '2 ** 40']))} {{ relu() }}")
    elif rule == "unbound_block":
        s.add(f"{ind}@@missing_block(3)")
    elif rule == "stride_dilation":
        s.add(f"{ind}conv2d(4, 3, strides=2, dilation_rate=@@2)")
        keras_fn = lambda L: L.Conv2D(4, 3, strides=2, dilation_rate=2, data_format=fmt)  # noqa: E731
    s.noise()
    s.add("}")
    if draw(st.booleans()):
        s.add("# trailing comment")
    assert s.mark is not None, rule
    line, col = s.mark
    if keras_fn is not None and rule in ("size_below_1", "groups", "stride_dilation"):
        inner = keras_fn

        def keras_fn(L, inner=inner):
            import keras

            return inner(L)(keras.Input(shape))
    return BadSpec(rule, s.text(), code, line, col, keras_fn, files, file=where)


#: The code each rule must produce.
RULE_CODES = {"unknown_op": "E201", "unknown_arg": "E202", "missing_arg": "E301", "ill_typed": "E302",
            "bad_enum": "E303", "size_below_1": "E401", "groups": "E402", "merge": "E403", "unknown_size": "E404",
            "unbound": "E203", "bound_twice": "E204", "recursive": "E205", "import_cycle": "E206",
            "non_integer": "E305", "too_large": "E501", "too_many": "E503", "unbound_block": "E201",
            "stride_dilation": "E306"}

#: Every rule of LANGUAGE.md's "What check must catch" list, as a generator name.
RULES = ["unknown_op", "unknown_arg", "missing_arg", "ill_typed", "bad_enum", "size_below_1", "groups", "merge",
         "unknown_size", "unbound", "bound_twice", "recursive", "import_cycle", "non_integer", "too_large",
         "too_many", "unbound_block", "stride_dilation"]


def bad_specs(rule: str | None = None) -> st.SearchStrategy[BadSpec]:
    """One violation of ``rule`` (or of any rule).

    >>> from hypothesis import find
    >>> find(bad_specs("groups"), lambda b: True).code
    'E402'
    """
    if rule is not None:
        return _bad(rule)
    return st.sampled_from(RULES).flatmap(_bad)


@st.composite
def _warn(draw: st.DrawFn, code: str) -> BadSpec:
    s = _Spec(draw)
    ind = _indent(draw)
    s.add("network warn {")
    s.add("    input x: [10, 10, 3]")
    s.noise()
    if code == "W101":
        s.add(f"{ind}conv2d(4, 3, strides=@@2)")
    elif code == "W102":
        s.add(f"{ind}@@dense(3)")
    elif code == "W103":
        s.add(f"{ind}conv2d(4, @@{draw(st.sampled_from(['2', '4', '(3, 2)']))}, padding='same')")
    else:
        s.add(f"{ind}maxpool2d(1, strides=@@3, padding='same')")
    s.noise()
    s.add("}")
    assert s.mark is not None
    return BadSpec(code, s.text(), code, *s.mark, severity="warning", file="warn.net")


def warning_specs() -> st.SearchStrategy[BadSpec]:
    """A spec with one warning (W101..W104) at a known place; it must still build.

    >>> from hypothesis import find
    >>> find(warning_specs(), lambda b: b.code == "W103").severity
    'warning'
    """
    return st.sampled_from(["W101", "W102", "W103", "W104"]).flatmap(_warn)


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[str, tuple[int, ...]]:
    """The valid twin of a shape rule, right at its boundary, and the input shape to run it on.

    Check accepts it, so every target must build and run it.

    >>> from hypothesis import find
    >>> "network near" in find(near_misses(), lambda t: True)[0]
    True
    """
    h, w_ = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    c = draw(st.integers(1, 6))
    fmt = draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (h, w_, c) if fmt == "channels_last" else (c, h, w_)
    kind = draw(st.sampled_from(["size_exactly_1", "groups_divide", "broadcast", "same_any", "unknown_global",
                                 "dilated_edge", "pool_full"]))
    suffix = " channels_first" if fmt == "channels_first" else ""
    head = f"network near {{\n    input x: [{', '.join(map(str, shape))}]{suffix}\n"
    if kind == "size_exactly_1":
        body = f"    conv2d(2, ({h}, {w_}))\n"
    elif kind == "groups_divide":
        g = draw(st.sampled_from([d for d in range(1, c + 1) if c % d == 0]))
        body = f"    conv2d({g * draw(st.integers(1, 3))}, 1, groups={g})\n"
    elif kind == "broadcast":
        body = "    g = global_avgpool2d(keepdims=true)\n    multiply(x, g)\n    add(x, g)\n"
    elif kind == "same_any":
        body = f"    conv2d(3, {max(h, w_) + 2}, strides={draw(st.integers(1, 4))}, padding='same')\n"
    elif kind == "unknown_global":
        dims = "[?, ?, 3]" if fmt == "channels_last" else "[3, ?, ?]"
        head = f"network near {{\n    input x: {dims}{suffix}\n"
        body = "    conv2d(4, 3)\n    global_maxpool2d()\n    dense(2)\n"
    elif kind == "dilated_edge":
        d = draw(st.integers(1, 3))
        k = (min(h, w_) - 1) // d + 1
        body = f"    conv2d(2, {k}, dilation_rate={d})\n"
    else:
        body = f"    maxpool2d(({h}, {w_}))\n    flatten()\n"
    return head + body + "}\n", shape
