"""``to_source`` round trips: printing a graph and parsing it back gives an equal graph.

Random valid graphs are built in Python (every op, DAGs with merges, both
data formats, unknown sizes, non-default initializers, regularizers and
constraints) and checked with ``check_graph``; the printed text must load
(``load_source``) to the same normalized graph, and printing that again
must give the same text.  Every network in ``specs/`` goes round too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_rows import ROUND_TRIP_ARGS, ROUND_TRIP_ELSEWHERE

from netspec import (
    Graph,
    Input,
    NetspecError,
    Node,
    check_file,
    check_graph,
    load_source,
    to_source,
)
from netspec.core import argtypes as at
from netspec.core import ops
from netspec.core.argtypes import CallValue, KerasObject
from netspec.core.check import NodeProblem, analyze_node
from netspec.core.ops import OPS, make_attrs

SPECS = Path(__file__).resolve().parent.parent / "specs"

CL, CF = "channels_last", "channels_first"
# A trailing underscore keeps generated names clear of the keywords.
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).map(lambda s: s + "_")
FLOATS = st.one_of(
    st.floats(-8, 8, allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.0, 1e-3, 1.001e-5, 0.1 + 0.2, 1e300, -2.5e-300]),
)
SEEDS = st.none() | st.integers(0, 2**31 - 1)

INITIALIZERS = ["zeros", "ones", "constant", "random_normal", "random_uniform", "truncated_normal",
                "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal",
                "orthogonal", "identity", "variance_scaling"]


@st.composite
def initializers(draw: st.DrawFn) -> KerasObject:
    obj = at.initializer(draw(st.sampled_from(INITIALIZERS)))
    kwargs = []
    for key, value in obj.kwargs:
        if key == "seed":
            value = draw(SEEDS)
        elif key == "mode":
            value = draw(st.sampled_from(["fan_in", "fan_out", "fan_avg"]))
        elif key == "distribution":
            value = draw(st.sampled_from(["truncated_normal", "untruncated_normal", "uniform"]))
        elif (obj.name, key) == ("variance_scaling", "scale"):
            value = draw(st.floats(1e-3, 8))  # Keras refuses a scale of 0 or below (E306)
        else:
            value = draw(FLOATS)
        kwargs.append((key, value))
    return at.initializer(CallValue(obj.name, (), tuple(kwargs)))


REGULARIZERS = st.one_of(
    st.none(), st.sampled_from(["l1", "l2", "l1_l2", "orthogonal_regularizer"]),
    st.builds(lambda a, b: CallValue("l1_l2", (), (("l1", a), ("l2", b))), FLOATS, FLOATS),
    st.builds(lambda a: CallValue("L2", (a,)), FLOATS),
)
CONSTRAINTS = st.one_of(
    st.none(), st.sampled_from(["max_norm", "non_neg", "unit_norm", "min_max_norm"]),
    st.builds(lambda v, ax: CallValue("max_norm", (v, ax)), FLOATS, st.integers(-3, 3)),
)
ACTIVATIONS = st.sampled_from(at.ACTIVATIONS)
EXPLICIT_PADDINGS = st.one_of(
    st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)
PADDINGS = st.sampled_from(["valid", "same"]) | EXPLICIT_PADDINGS
PAIRS = st.integers(1, 3) | st.tuples(st.integers(1, 3), st.integers(1, 3))


def _conv_common(draw: st.DrawFn, prefix: str = "kernel") -> dict[str, Any]:
    args: dict[str, Any] = dict(kernel_size=draw(PAIRS), padding=draw(PADDINGS))
    if draw(st.booleans()):
        args["strides"] = draw(PAIRS)
    else:
        args["dilation_rate"] = draw(PAIRS)
    args["activation"] = draw(ACTIVATIONS)
    args["use_bias"] = draw(st.booleans())
    args[f"{prefix}_initializer"] = draw(initializers())
    args["bias_initializer"] = draw(initializers())
    args[f"{prefix}_regularizer"] = draw(REGULARIZERS)
    args["activity_regularizer"] = draw(REGULARIZERS)
    args[f"{prefix}_constraint"] = draw(CONSTRAINTS)
    return args


@st.composite
def op_args(draw: st.DrawFn, op: str) -> dict[str, Any]:
    """Written arguments for one op (they may not fit the input: the caller checks)."""
    if op == "conv2d":
        return dict(filters=draw(st.integers(1, 8)), groups=draw(st.sampled_from([1, 1, 2])), **_conv_common(draw))
    if op == "depthwise_conv2d":
        return dict(depth_multiplier=draw(st.integers(1, 3)), **_conv_common(draw, "depthwise"))
    if op == "separable_conv2d":
        args = _conv_common(draw, "depthwise")
        args.update(filters=draw(st.integers(1, 8)), depth_multiplier=draw(st.integers(1, 2)),
                    pointwise_initializer=draw(initializers()), pointwise_regularizer=draw(REGULARIZERS))
        return args
    if op in ("maxpool2d", "avgpool2d"):
        return dict(pool_size=draw(PAIRS), strides=draw(st.none() | PAIRS), padding=draw(PADDINGS))
    if op in ("global_avgpool2d", "global_maxpool2d"):
        return dict(keepdims=draw(st.booleans()))
    if op == "zeropad2d":
        return dict(padding=draw(EXPLICIT_PADDINGS))
    if op == "reshape":
        return dict(target_shape=(-1,))
    if op == "dense":
        return dict(units=draw(st.integers(1, 8)), activation=draw(ACTIVATIONS), use_bias=draw(st.booleans()),
                    kernel_initializer=draw(initializers()), kernel_regularizer=draw(REGULARIZERS),
                    bias_constraint=draw(CONSTRAINTS))
    if op == "dropout":
        return dict(rate=draw(st.floats(0, 0.99)), seed=draw(SEEDS))
    if op == "batchnorm":
        return dict(momentum=draw(FLOATS), epsilon=draw(FLOATS), center=draw(st.booleans()),
                    scale=draw(st.booleans()), gamma_initializer=draw(initializers()),
                    beta_regularizer=draw(REGULARIZERS), gamma_constraint=draw(CONSTRAINTS))
    if op == "activation":
        return dict(activation=draw(ACTIVATIONS))
    if op == "relu":
        return dict(max_value=draw(st.none() | FLOATS), negative_slope=draw(FLOATS), threshold=draw(FLOATS))
    if op == "leaky_relu":
        return dict(negative_slope=draw(FLOATS))
    if op == "elu":
        return dict(alpha=draw(FLOATS))
    if op in ("softmax", "concat"):
        return dict(axis=draw(st.sampled_from([-1, 1])))
    return {}


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """A random graph that checks without errors."""
    fmt = draw(st.sampled_from([CL, CF]))
    dims = [draw(st.none() | st.integers(1, 12)) for _ in range(2)]
    channels = draw(st.integers(1, 6))
    shape = (*dims, channels) if fmt == CL else (channels, *dims)
    if draw(st.integers(0, 4)) == 0:
        shape = (draw(st.integers(1, 12)),)
    names = iter(draw(st.lists(IDENT, min_size=14, max_size=14, unique=True)))
    graph_inputs = [Input(next(names), shape, fmt)]
    for _ in range(draw(st.integers(0, 2))):  # several inputs, each with its own shape and layout
        graph_inputs.append(Input(next(names), (*[draw(st.integers(1, 6)) for _ in range(2)], channels),
                                  draw(st.sampled_from([CL, CF]))))
    tensors: dict[str, tuple] = {i.name: i.shape for i in graph_inputs}
    nodes: list[Node] = []
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(sorted(OPS)))
        opdef = OPS[op]
        src = draw(st.sampled_from(sorted(tensors)))
        inputs = [src]
        if opdef.merge:
            inputs.append(draw(st.sampled_from(sorted(tensors))))
        args = draw(op_args(op))
        if "data_format" in {f for f in opdef.attrs.__dataclass_fields__} and draw(st.integers(0, 5)) == 0:
            args["data_format"] = draw(st.sampled_from([CL, CF]))
        try:
            attrs = make_attrs(opdef.attrs, args)
            info, _ = analyze_node(op, opdef.normalize(attrs, fmt), [tensors[i] for i in inputs],
                                   [None] * len(inputs))
        except (at.ArgError, NodeProblem):
            continue  # does not fit this input: draw another layer
        name = next(names)
        nodes.append(Node(name, op, tuple(inputs), attrs))
        tensors[name] = info.shape
    # No output (the last node), one, or several (an `output a, b` statement).
    outputs = draw(st.lists(st.sampled_from(sorted(tensors)), max_size=3, unique=True))
    return Graph(draw(IDENT), tuple(graph_inputs), tuple(nodes), tuple(outputs))


def assert_round_trip(graph: Graph) -> None:
    """Print, parse, compare; print again, compare the text."""
    report = check_graph(graph)
    assert report.ok, report.diagnostics
    text = to_source(graph)
    loaded = load_source(text)
    assert loaded.graph == report.graph, text
    assert (loaded.output_shape, loaded.params) == (report.output_shape, report.params)
    assert (loaded.inputs, loaded.outputs, loaded.output_shapes) == (report.inputs, report.outputs,
                                                                      report.output_shapes)
    assert to_source(loaded.graph) == to_source(report.graph)


@given(graphs())
def test_random_graphs_round_trip(graph: Graph) -> None:
    assert_round_trip(graph)


def test_every_op_round_trips() -> None:
    # Deterministic cover of the whole op table with default arguments where possible.
    rows = {
        "conv2d": dict(filters=4, kernel_size=3), "depthwise_conv2d": dict(kernel_size=3),
        "separable_conv2d": dict(filters=4, kernel_size=3), "dense": dict(units=3),
        "dropout": dict(rate=0.25), "reshape": dict(target_shape=(-1,)), "activation": dict(activation="tanh"),
        "center_crop": dict(height=4, width=4), "resizing": dict(height=4, width=6),
        **{f"{op}{d}": dict(filters=4, kernel_size=3) for op in ("conv", "separable_conv") for d in ("1d", "2d", "3d")},
        **{f"conv{d}_transpose": dict(filters=4, kernel_size=3) for d in ("1d", "2d", "3d")},
        "depthwise_conv1d": dict(kernel_size=3),
    }
    rows.update(ROUND_TRIP_ARGS)  # version 2's layer ops (tests/layer_rows.py)
    for op in OPS:  # the 1-D / 3-D forms of the 2-D ops take the same arguments
        if op.endswith("_transpose"):
            rows.setdefault(op, dict(filters=4, kernel_size=3))
        for n in ("1d", "3d"):
            if op.endswith(n):
                rows.setdefault(op, rows.get(op.replace(n, "2d"), {}))
    rows.update({"resizing": dict(height=4, width=4), "center_crop": dict(height=4, width=4)})
    for op, opdef in sorted(OPS.items()):
        if op in ROUND_TRIP_ELSEWHERE:
            continue
        inputs = ("x", "x") if opdef.merge else ("x",)
        attrs = make_attrs(opdef.attrs, rows.get(op, {}))
        # Each op on the first input rank it takes (2-D ops on (C, H, W), 1-D on (C, L), 3-D on (C, D, H, W)).
        for shape in ((3, 8, 8), (3, 8), (3, 8, 8, 8), (8,)):
            graph = Graph(op, Input("x", shape, CF), (Node("n", op, inputs, attrs),))
            if check_graph(graph).ok:
                assert_round_trip(graph)
                break
        else:
            raise AssertionError(f"{op}: checks on none of the input shapes tried")


def test_source_text_round_trips() -> None:
    text = """
block stage(f, s=1) {
    conv2d(f, 3, strides=s, padding='same', kernel_regularizer=l2(1e-4)) -> batchnorm() -> relu(max_value=6)
}
network n {
    input x: [32, 32, 3]
    default conv2d(use_bias=false, kernel_initializer=he_normal(seed=7))
    a = stage(16)
    b = a -> stage(16)
    add(a, b)
    repeat 2 as i { stage(32 * (i + 1), s=2) }
    global_avgpool2d()
    dense(10, activation='softmax')
}
"""
    assert_round_trip(load_source(text).graph)


def test_several_inputs_and_outputs_round_trip() -> None:
    text = """
network two {
    input image: [16, 16, 3]
    input meta: [5] channels_first
    feat = conv2d(8, 3) -> global_avgpool2d()
    m = meta -> dense(8)
    both = concat(feat, m)
    cls = both -> dense(10, name='cls')
    output cls, meta, feat
    dense(3)
}
"""
    graph = load_source(text).graph
    assert [i.name for i in graph.inputs] == ["image", "meta"] and graph.outputs == ("cls", "meta",
                                                                                     "global_average_pooling2d")
    assert graph.input_named("meta").data_format == "channels_first"
    assert "dense_1" not in [n.name for n in graph.nodes]  # reaches no output: left out (W105)
    printed = to_source(graph)
    assert "    input meta: [5] channels_first\n" in printed and "    output cls, meta, " in printed
    assert_round_trip(graph)


@pytest.mark.parametrize("name", ["layer-1", "default", "block 1", "input", "output"])
def test_layer_names_that_are_not_identifiers_round_trip(name: str) -> None:
    graph = Graph("g", Input("x", (4,)), (Node(name, "dense", ("x",), ops.Dense(units=2)),))
    assert_round_trip(graph)


def _spec_networks() -> list:
    files = sorted(SPECS.glob("**/*.net")) if SPECS.is_dir() else []
    return [pytest.param(path, id=str(path.relative_to(SPECS))) for path in files]


@pytest.mark.parametrize("path", _spec_networks())
def test_specs_round_trip(path: Path) -> None:
    report = check_file(path)
    assert report.ok, "\n".join(d.render() for d in report.all_diagnostics)
    for net in report.networks:
        assert net.graph is not None
        assert_round_trip(net.graph)


def test_load_source_rejects_what_to_source_cannot_mean() -> None:
    # A guard that the round trip is not vacuous: a changed argument changes the graph.
    base = load_source("network n {\n  input x: [4]\n  dense(2)\n}\n").graph
    other = load_source("network n {\n  input x: [4]\n  dense(2, use_bias=false)\n}\n").graph
    assert base != other
    with pytest.raises(NetspecError):
        load_source(to_source(base).replace("dense(", "dense2("))


# Version 2 of the language: let, fn, tensor parameters, carry, for, the conditional
# expression, instances.  The printed graph loads back equal, and equals the same network
# written out by hand without any of those constructs.
V2_SOURCE = """
let widths = (4, 8)
fn twice(n) = n * 2
block fuse(units, skip: tensor) {
    conv2d(units, 1, name='fuse_' + str(units)) -> add(skip)
}
network family(size=8, act='relu') {
    input x: [size, size, 3]
    h = conv2d(4, 3, padding='same', name='stem')
    for (i, w) in ((0, widths[0]), (1, widths[1])) carry h {
        s = h -> conv2d(w, 1, name='proj_' + str(i))
        h = s -> fuse(w, s)
    }
    repeat 2 as r carry h {
        h = h -> activation(act if r == 0 else 'tanh', name='act_' + str(r))
    }
    dense(twice(3), name='head')
}
network small = family(size=1_0, act='elu')
"""

V2_UNROLLED = """
network small {
    input x: [10, 10, 3]
    conv2d(4, 3, padding='same', name='stem')
    s0 = conv2d(4, 1, name='proj_0')
    s0 -> conv2d(4, 1, name='fuse_4') -> add(s0)
    s1 = conv2d(8, 1, name='proj_1')
    s1 -> conv2d(8, 1, name='fuse_8') -> add(s1)
    activation('elu', name='act_0') -> activation('tanh', name='act_1')
    dense(6, name='head')
}
"""


def test_version2_constructs_round_trip() -> None:
    report = check_file_text(V2_SOURCE)
    assert [n.name for n in report.networks] == ["family", "small"]
    for net in report.networks:
        assert net.graph is not None
        assert_round_trip(net.graph)
    assert report.network("small").graph == load_source(V2_UNROLLED).graph


def check_file_text(text: str):
    from netspec import check_source

    report = check_source(text)
    assert report.ok, "\n".join(d.render() for d in report.all_diagnostics)
    return report
