"""netspec's shapes and parameter counts against Keras, layer by layer.

Hypothesis draws random valid stacks of conv, depthwise, separable, pool,
zero-padding, flatten, batchnorm and dense layers (both data formats,
groups, dilation, every padding form, unknown sizes); each layer is built
directly as a Keras layer (not through any netspec target) on a symbolic
``keras.Input``, so nothing runs and channels_first convolutions are fine
on a CPU.  Explicit padding becomes ``ZeroPadding2D`` then ``'valid'``,
as the contract says.  Every layer's output shape and ``count_params()``
must match what ``check_graph`` reports; where netspec finds an output
size below 1, Keras must refuse the layer too.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netspec import Graph, Input, Node, check_graph
from netspec.core.argtypes import ArgError
from netspec.core.check import NodeProblem, analyze_node
from netspec.core.ops import OPS, make_attrs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

pytestmark = pytest.mark.keras

CL, CF = "channels_last", "channels_first"
PAIRS = st.integers(1, 4) | st.tuples(st.integers(1, 4), st.integers(1, 4))
PADDINGS = st.one_of(
    st.sampled_from(["valid", "same"]), st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


def _pair(v: Any) -> tuple[int, int]:
    return v if isinstance(v, tuple) else (v, v)


@st.composite
def layer_args(draw: st.DrawFn, op: str) -> dict[str, Any]:
    """Written netspec arguments for one layer."""
    if op in ("conv2d", "depthwise_conv2d", "separable_conv2d"):
        args: dict[str, Any] = dict(kernel_size=draw(PAIRS), padding=draw(PADDINGS), use_bias=draw(st.booleans()))
        if draw(st.booleans()):
            args["strides"] = draw(PAIRS)
        else:
            args["dilation_rate"] = draw(PAIRS)
        if op == "conv2d":
            args["groups"] = draw(st.sampled_from([1, 1, 2, 3]))
            args["filters"] = args["groups"] * draw(st.integers(1, 4))
        if op == "separable_conv2d":
            args["filters"] = draw(st.integers(1, 6))
        if op != "conv2d":
            args["depth_multiplier"] = draw(st.integers(1, 3))
        return args
    if op in ("maxpool2d", "avgpool2d"):
        return dict(pool_size=draw(PAIRS), strides=draw(st.none() | PAIRS), padding=draw(PADDINGS))
    if op in ("global_avgpool2d", "global_maxpool2d"):
        return dict(keepdims=draw(st.booleans()))
    if op == "zeropad2d":
        return dict(padding=draw(PADDINGS.filter(lambda p: not isinstance(p, str))))
    if op == "dense":
        return dict(units=draw(st.integers(1, 12)), use_bias=draw(st.booleans()))
    if op == "batchnorm":
        return dict(center=draw(st.booleans()), scale=draw(st.booleans()))
    return {}


IMAGE_OPS = ["conv2d", "conv2d", "depthwise_conv2d", "separable_conv2d", "maxpool2d", "avgpool2d",
             "zeropad2d", "batchnorm", "global_avgpool2d", "global_maxpool2d", "flatten", "dense"]
VECTOR_OPS = ["dense", "batchnorm", "dropout"]


@st.composite
def stacks(draw: st.DrawFn) -> tuple[Input, list[Node], list[tuple[Node, str]]]:
    """A valid chain for netspec, plus the layers netspec rejects for a too-small output (E401)."""
    fmt = draw(st.sampled_from([CL, CF]))
    h, w = (draw(st.none() | st.integers(1, 24)) if draw(st.integers(0, 5)) == 0 else draw(st.integers(1, 24))
            for _ in range(2))
    c = draw(st.integers(1, 6))
    graph_input = Input("x", (h, w, c) if fmt == CL else (c, h, w), fmt)
    shape = graph_input.shape
    nodes: list[Node] = []
    rejected: list[tuple[Node, tuple]] = []
    for i in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(IMAGE_OPS if len(shape) == 3 else VECTOR_OPS))
        opdef = OPS[op]
        args = draw(layer_args(op))
        if "data_format" in opdef.attrs.__dataclass_fields__ and draw(st.integers(0, 4)) == 0:
            args["data_format"] = draw(st.sampled_from([CL, CF]))
        if op == "batchnorm" and len(shape) == 3:
            args["axis"] = -1 if fmt == CL else 1
        try:
            attrs = make_attrs(opdef.attrs, args)
        except ArgError:
            continue
        node = Node(f"l{i}", op, (nodes[-1].name if nodes else "x",), attrs)
        try:
            info, _ = analyze_node(op, opdef.normalize(attrs, fmt), [shape], [None])
        except NodeProblem as problem:
            if problem.code == "E401":
                rejected.append((node, shape))
            continue
        nodes.append(node)
        shape = info.shape
    return graph_input, nodes, rejected


def keras_layers(node: Node, fmt: str) -> list:
    """The Keras layers for one netspec node (explicit padding: ZeroPadding2D, then 'valid')."""
    a = node.attrs
    data_format = getattr(a, "data_format", None) or fmt
    layers: list = []
    padding = getattr(a, "padding", None)
    if node.op != "zeropad2d" and padding is not None and not isinstance(padding, str):
        layers.append(keras.layers.ZeroPadding2D(padding, data_format=data_format))
        padding = "valid"
    if node.op == "conv2d":
        layers.append(keras.layers.Conv2D(a.filters, a.kernel_size, a.strides, padding, data_format,
                                          a.dilation_rate, a.groups, use_bias=a.use_bias))
    elif node.op == "depthwise_conv2d":
        layers.append(keras.layers.DepthwiseConv2D(a.kernel_size, a.strides, padding, a.depth_multiplier,
                                                   data_format, a.dilation_rate, use_bias=a.use_bias))
    elif node.op == "separable_conv2d":
        layers.append(keras.layers.SeparableConv2D(a.filters, a.kernel_size, a.strides, padding, data_format,
                                                   a.dilation_rate, a.depth_multiplier, use_bias=a.use_bias))
    elif node.op == "maxpool2d":
        layers.append(keras.layers.MaxPooling2D(a.pool_size, a.strides, padding, data_format))
    elif node.op == "avgpool2d":
        layers.append(keras.layers.AveragePooling2D(a.pool_size, a.strides, padding, data_format))
    elif node.op == "global_avgpool2d":
        layers.append(keras.layers.GlobalAveragePooling2D(data_format, a.keepdims))
    elif node.op == "global_maxpool2d":
        layers.append(keras.layers.GlobalMaxPooling2D(data_format, a.keepdims))
    elif node.op == "zeropad2d":
        layers.append(keras.layers.ZeroPadding2D(a.padding, data_format))
    elif node.op == "flatten":
        layers.append(keras.layers.Flatten(data_format))
    elif node.op == "dense":
        layers.append(keras.layers.Dense(a.units, use_bias=a.use_bias))
    elif node.op == "batchnorm":
        layers.append(keras.layers.BatchNormalization(a.axis, center=a.center, scale=a.scale))
    elif node.op == "dropout":
        layers.append(keras.layers.Dropout(a.rate))
    else:  # pragma: no cover - the strategy draws only the ops above
        raise AssertionError(node.op)
    return layers


def apply(layers: list, tensor: Any) -> tuple[Any, int]:
    params = 0
    for layer in layers:
        tensor = layer(tensor)
        params += layer.count_params()
    return tensor, params


@given(stacks())
def test_layers_match_keras(stack) -> None:
    graph_input, nodes, rejected = stack
    report = check_graph(Graph("g", graph_input, tuple(nodes)))
    assert report.ok, report.diagnostics
    tensor = keras.Input(shape=graph_input.shape)
    for node in nodes:
        info = report.layers[node.name]
        tensor, params = apply(keras_layers(node, graph_input.data_format), tensor)
        assert (tuple(tensor.shape[1:]), params) == (info.shape, info.params), (node.op, node.attrs)
    for node, shape in rejected:
        # Both refuse, or neither: Keras may not build a layer whose output would be empty.
        with pytest.raises(ValueError):
            apply(keras_layers(node, graph_input.data_format), keras.Input(shape=shape))


def test_lecture_numbers_match_keras() -> None:
    # The lecture's W1=128, F=11, S=6 and the 5x5x3 kernel, straight from Keras.
    x = keras.Input(shape=(128, 128, 3))
    assert tuple(keras.layers.Conv2D(96, 11, 6)(x).shape) == (None, 20, 20, 96)
    assert tuple(keras.layers.Conv2D(96, 11, 6, "same")(x).shape) == (None, 22, 22, 96)
    conv = keras.layers.Conv2D(4, 5)
    conv(keras.Input(shape=(32, 32, 3)))
    assert conv.count_params() == 304
    net = check_graph(Graph("g", Input("x", (32, 32, 3)), (
        Node("c", "conv2d", ("x",), make_attrs(OPS["conv2d"].attrs, dict(filters=4, kernel_size=5))),)))
    assert net.total_params == 304
