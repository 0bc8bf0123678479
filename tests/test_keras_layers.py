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

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from netspec import Graph, Input, Node, check_graph
from netspec.core.argtypes import ArgError
from netspec.core.check import NodeProblem, analyze_node
from netspec.core.ops import OPS, make_attrs
from netspec.core.ops_spatial import INTERPOLATIONS

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


def transpose_args(draw: st.DrawFn, n: int) -> dict[str, Any]:
    """Arguments of a transposed convolution on ``n`` axes that Keras accepts."""
    ints = st.integers(1, 4) | st.tuples(*[st.integers(1, 4)] * n)
    args: dict[str, Any] = dict(filters=draw(st.integers(1, 4)), kernel_size=draw(ints),
                                padding=draw(st.sampled_from(["valid", "same"])), use_bias=draw(st.booleans()))
    if draw(st.booleans()):
        strides = draw(st.tuples(*[st.integers(1, 3)] * n))
        args["strides"] = strides
        if draw(st.booleans()):
            args["output_padding"] = tuple(draw(st.integers(0, s - 1)) for s in strides)
    else:
        args["dilation_rate"] = draw(ints)
    return args


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
    if op == "conv2d_transpose":
        return transpose_args(draw, 2)
    if op == "cropping2d":
        return dict(cropping=draw(PADDINGS.filter(lambda p: not isinstance(p, str))))
    if op == "upsampling2d":
        return dict(size=draw(PAIRS), interpolation=draw(st.sampled_from(INTERPOLATIONS)))
    if op in ("resizing", "center_crop"):
        args = dict(height=draw(st.integers(1, 30)), width=draw(st.integers(1, 30)))
        if op == "resizing":
            args.update(interpolation=draw(st.sampled_from(INTERPOLATIONS)),
                        crop_to_aspect_ratio=draw(st.booleans()))
        return args
    if op == "dense":
        return dict(units=draw(st.integers(1, 12)), use_bias=draw(st.booleans()))
    if op == "batchnorm":
        return dict(center=draw(st.booleans()), scale=draw(st.booleans()))
    return {}


IMAGE_OPS = ["conv2d", "conv2d", "depthwise_conv2d", "separable_conv2d", "maxpool2d", "avgpool2d",
             "zeropad2d", "batchnorm", "global_avgpool2d", "global_maxpool2d", "flatten", "dense",
             "conv2d_transpose", "cropping2d", "upsampling2d", "resizing", "center_crop"]
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
    if not node.op.startswith("zeropad") and padding is not None and not isinstance(padding, str):
        n = len(padding)
        layers.append(getattr(keras.layers, f"ZeroPadding{n}D")(padding[0] if n == 1 else padding,
                                                                data_format=data_format))
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
    elif node.op.startswith("conv") and node.op.endswith("_transpose"):
        cls = getattr(keras.layers, f"Conv{len(a.kernel_size)}DTranspose")
        layers.append(cls(a.filters, a.kernel_size, a.strides, a.padding, output_padding=a.output_padding,
                          data_format=data_format, dilation_rate=a.dilation_rate, use_bias=a.use_bias))
    elif node.op.startswith("cropping"):
        n = len(a.cropping)
        layers.append(keras.layers.Cropping1D(a.cropping[0]) if n == 1 else
                      getattr(keras.layers, f"Cropping{n}D")(a.cropping, data_format))
    elif node.op.startswith("upsampling"):
        n = len(a.size)
        extra = {"interpolation": a.interpolation} if n == 2 else {}
        layers.append(keras.layers.UpSampling1D(a.size[0]) if n == 1 else
                      getattr(keras.layers, f"UpSampling{n}D")(a.size, data_format, **extra))
    elif node.op == "resizing":
        layers.append(keras.layers.Resizing(a.height, a.width, a.interpolation, a.crop_to_aspect_ratio,
                                            data_format=data_format))
    elif node.op == "center_crop":
        layers.append(keras.layers.CenterCrop(a.height, a.width, data_format))
    elif node.op in ("conv1d", "conv3d"):
        layers.append(getattr(keras.layers, f"Conv{node.op[4]}D")(a.filters, a.kernel_size, a.strides, padding,
                                                                    data_format, a.dilation_rate, a.groups,
                                                                    use_bias=a.use_bias))
    elif node.op == "depthwise_conv1d":
        layers.append(keras.layers.DepthwiseConv1D(a.kernel_size, a.strides, padding, a.depth_multiplier,
                                                   data_format, a.dilation_rate, use_bias=a.use_bias))
    elif node.op == "separable_conv1d":
        layers.append(keras.layers.SeparableConv1D(a.filters, a.kernel_size, a.strides, padding, data_format,
                                                   a.dilation_rate, a.depth_multiplier, use_bias=a.use_bias))
    elif node.op in ("maxpool1d", "avgpool1d", "maxpool3d", "avgpool3d"):
        cls = f"{'Max' if node.op.startswith('max') else 'Average'}Pooling{node.op[-2]}D"
        layers.append(getattr(keras.layers, cls)(a.pool_size, a.strides, padding, data_format))
    elif node.op.startswith("global_") and node.op[-2] in "13":
        cls = f"Global{'Max' if 'max' in node.op else 'Average'}Pooling{node.op[-2]}D"
        layers.append(getattr(keras.layers, cls)(data_format, a.keepdims))
    elif node.op in ("zeropad1d", "zeropad3d"):
        layers.append(getattr(keras.layers, f"ZeroPadding{node.op[-2]}D")(
            a.padding[0] if len(a.padding) == 1 else a.padding, data_format))
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


# --- 1-D and 3-D data ---------------------------------------------------------------------------

ND_OPS = {
    1: ["conv1d", "conv1d", "conv1d_transpose", "depthwise_conv1d", "separable_conv1d", "maxpool1d", "avgpool1d",
        "zeropad1d", "cropping1d", "upsampling1d", "global_avgpool1d", "global_maxpool1d", "batchnorm"],
    3: ["conv3d", "conv3d", "conv3d_transpose", "maxpool3d", "avgpool3d", "zeropad3d", "cropping3d",
        "upsampling3d", "global_avgpool3d", "global_maxpool3d", "batchnorm"],
}


@st.composite
def nd_args(draw: st.DrawFn, op: str, n: int) -> dict[str, Any]:
    ints = st.integers(1, 3) | st.tuples(*[st.integers(1, 3)] * n)
    pads = st.integers(0, 2) | st.tuples(*[st.integers(0, 2) | st.tuples(st.integers(0, 2), st.integers(0, 2))] * n)
    if n == 1:
        pads = st.integers(0, 2) | st.tuples(st.integers(0, 2), st.integers(0, 2))
    modes = ["valid", "same", "causal"] if op == "conv1d" else ["valid", "same"]
    if op.endswith("_transpose"):
        return transpose_args(draw, n)
    if op[:-2] in ("conv", "depthwise_conv", "separable_conv"):
        args: dict[str, Any] = dict(kernel_size=draw(ints), padding=draw(st.sampled_from(modes) | pads),
                                    use_bias=draw(st.booleans()))
        if draw(st.booleans()):
            args["strides"] = draw(ints)
        else:
            args["dilation_rate"] = draw(ints)
        if op.startswith("conv"):
            args["groups"] = draw(st.sampled_from([1, 1, 2]))
            args["filters"] = args["groups"] * draw(st.integers(1, 3))
        else:
            args["depth_multiplier"] = draw(st.integers(1, 2))
            if op.startswith("separable"):
                args["filters"] = draw(st.integers(1, 4))
        return args
    if "pool" in op and not op.startswith("global"):
        return dict(pool_size=draw(ints), strides=draw(st.none() | ints),
                    padding=draw(st.sampled_from(["valid", "same"]) | pads))
    if op.startswith("global"):
        return dict(keepdims=draw(st.booleans()))
    if op.startswith("zeropad"):
        return dict(padding=draw(pads))
    if op.startswith("cropping"):
        return dict(cropping=draw(pads))
    if op.startswith("upsampling"):
        return dict(size=draw(ints))
    return dict(center=draw(st.booleans()))


@st.composite
def nd_stacks(draw: st.DrawFn) -> tuple[Input, list[Node]]:
    n = draw(st.sampled_from([1, 3]))
    fmt = draw(st.sampled_from([CL, CF]))
    dims = tuple(draw(st.integers(1, 12 if n == 1 else 7)) for _ in range(n))
    c = draw(st.integers(1, 4))
    graph_input = Input("x", (*dims, c) if fmt == CL else (c, *dims), fmt)
    shape = graph_input.shape
    nodes: list[Node] = []
    for i in range(draw(st.integers(1, 4))):
        if len(shape) != n + 1:
            break
        op = draw(st.sampled_from(ND_OPS[n]))
        args = draw(nd_args(op, n))
        if op == "batchnorm":
            args["axis"] = -1 if fmt == CL else 1
        if op in ("cropping1d", "upsampling1d") and fmt == CF:
            continue  # Keras gives them no data_format: they act on axis 1 whatever the layout
        try:
            attrs = make_attrs(OPS[op].attrs, args)
            info, _ = analyze_node(op, OPS[op].normalize(attrs, fmt), [shape], [None])
        except (ArgError, NodeProblem):
            continue
        nodes.append(Node(f"l{i}", op, (nodes[-1].name if nodes else "x",), attrs))
        shape = info.shape
    return graph_input, nodes


@given(nd_stacks())
def test_1d_and_3d_layers_match_keras(stack) -> None:
    graph_input, nodes = stack
    report = check_graph(Graph("g", graph_input, tuple(nodes)))
    assert report.ok, report.diagnostics
    tensor = keras.Input(shape=graph_input.shape)
    for node in nodes:
        info = report.layers[node.name]
        tensor, params = apply(keras_layers(node, graph_input.data_format), tensor)
        assert (tuple(tensor.shape[1:]), params) == (info.shape, info.params), (node.op, node.attrs)


def _transpose_cases() -> list[tuple]:
    cases = []
    for k in range(1, 5):
        for s, d in [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)]:
            for padding in ("valid", "same"):
                for op in (None, *range(s)):
                    cases.append((k, s, d, padding, op))
    return cases


@pytest.mark.parametrize(("k", "s", "d", "padding", "output_padding"), _transpose_cases())
def test_transposed_output_sizes_match_keras(k, s, d, padding, output_padding) -> None:
    # Every kernel / stride / dilation / padding / output_padding combination Keras accepts, on
    # lengths 1 to 6: netspec's size is Keras's deconv_output_length, or netspec refuses (E410) the
    # 'same' cases TensorFlow cannot run (an even window with output_padding 0).
    opdef = OPS["conv1d_transpose"]
    args = dict(filters=2, kernel_size=k, strides=s, dilation_rate=d, padding=padding, output_padding=output_padding)
    attrs = opdef.normalize(make_attrs(opdef.attrs, args), CL)
    for length in range(1, 7):
        layer = keras.layers.Conv1DTranspose(2, k, s, padding, output_padding, dilation_rate=d)
        expected = tuple(layer(keras.Input(shape=(length, 3))).shape[1:])
        problems = opdef.validate(attrs)
        if problems:
            assert [p[0] for p in problems] == ["E410"]
            if expected[0] > 0:  # (an empty output runs: nothing to compute)
                with pytest.raises(Exception):  # noqa: B017 - TensorFlow's own error, whatever its class
                    layer(np.ones((1, length, 3), np.float32))
            continue
        info, _ = analyze_node("conv1d_transpose", attrs, [(length, 3)], [None])
        assert (info.shape, info.params) == (expected, layer.count_params())


def test_causal_padding_matches_keras() -> None:
    # 'causal' pads D*(F-1) at the start: the output at t sees inputs up to t only.
    x = np.random.default_rng(0).standard_normal((1, 12, 1)).astype(np.float32)
    opdef = OPS["conv1d"]
    for k, d, s in [(3, 1, 1), (3, 2, 1), (2, 4, 1), (5, 1, 2)]:
        attrs = opdef.normalize(make_attrs(opdef.attrs, dict(filters=1, kernel_size=k, dilation_rate=d, strides=s,
                                                             padding="causal")), CL)
        info, _ = analyze_node("conv1d", attrs, [(12, 1)], [None])
        layer = keras.layers.Conv1D(1, k, s, "causal", dilation_rate=d)
        y = np.asarray(layer(x))
        assert y.shape[1:] == info.shape
        # Changing the last input step changes only the last output step.
        x2 = x.copy()
        x2[0, -1, 0] += 1.0
        changed = np.nonzero(np.abs(np.asarray(layer(x2)) - y)[0, :, 0] > 0)[0]
        assert set(changed) <= {info.shape[0] - 1}
