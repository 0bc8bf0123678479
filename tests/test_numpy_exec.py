"""The NumPy executor against independent computations.

Every op is compared with a direct loop implementation written here from
the contract (not from the executor's code), on shapes, strides, dilations,
groups and paddings drawn by hypothesis; a few small cases are also compared
with Keras when TensorFlow is installed (``-m keras``).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import assume, given
from hypothesis import strategies as st

import netspec
from netspec.core import ops
from netspec.core.check import check_graph
from netspec.core.diagnostics import NetspecError
from netspec.core.ir import Graph, Input, Node
from netspec.targets import numpy_exec as ne
from netspec.targets.numpy_exec import LOWERINGS, executor

RTOL, ATOL = 2e-5, 2e-5

LECTURE_X = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
LECTURE_K = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
LECTURE_Y = [[12, 12, 17], [10, 17, 19], [9, 6, 14]]


# --- helpers -----------------------------------------------------------------------------------------


def one_layer(op: str, attrs, shape, data_format="channels_last", more=()):
    """A checked one-input network: ``op`` on the input, then the nodes in ``more``."""
    nodes = (Node("layer", op, ("x",), attrs), *more)
    report = check_graph(Graph("g", Input("x", tuple(shape), data_format), nodes))
    return report


def random_weights(report, rng, positive=("moving_variance",)):
    """Random weights for every layer (variances kept positive)."""
    out = {}
    for node in report.graph.nodes:
        for spec in report.layers[node.name].weights:
            w = rng.standard_normal(spec.shape).astype(np.float32)
            if spec.name in positive:
                w = np.abs(w) + np.float32(0.1)
            out[f"{node.name}/{spec.name}"] = w
    return out


def run(report, weights, x, **kwargs):
    return executor(report, weights, **kwargs)(x)


def ref_pads(padding, length, size, stride, dilation):
    """(begin, end) padding of one side, from the contract's formula."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        out = -(-length // stride)
        total = max((out - 1) * stride + dilation * (size - 1) + 1 - length, 0)
        return total // 2, total - total // 2
    return padding


def side_pad(padding, side):
    return padding if isinstance(padding, str) else padding[side]


def to_nhwc(x, fmt):
    return x if fmt == "channels_last" else x.transpose(0, 2, 3, 1)


def from_nhwc(x, fmt):
    return x if fmt == "channels_last" else x.transpose(0, 3, 1, 2)


def ref_conv(x, kernel, bias, strides, padding, dilation, groups):
    """Direct convolution of NHWC ``x``: a loop over output pixels and kernel taps, in float64."""
    n, h, w, c = x.shape
    kh, kw, cg, f = kernel.shape
    (t, b) = ref_pads(side_pad(padding, 0), h, kh, strides[0], dilation[0])
    (lft, rgt) = ref_pads(side_pad(padding, 1), w, kw, strides[1], dilation[1])
    xp = np.zeros((n, h + t + b, w + lft + rgt, c))
    xp[:, t:t + h, lft:lft + w] = x
    ho = (h + t + b - dilation[0] * (kh - 1) - 1) // strides[0] + 1
    wo = (w + lft + rgt - dilation[1] * (kw - 1) - 1) // strides[1] + 1
    fg = f // groups
    out = np.zeros((n, ho, wo, f))
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for bb in range(kw):
                    pix = xp[:, i * strides[0] + a * dilation[0], j * strides[1] + bb * dilation[1]]  # (n, c)
                    for g in range(groups):
                        out[:, i, j, g * fg:(g + 1) * fg] += pix[:, g * cg:(g + 1) * cg] @ kernel[a, bb, :, g * fg:(g + 1) * fg]
    if bias is not None:
        out += bias
    return out


def ref_depthwise(x, kernel, strides, padding, dilation):
    """Depthwise convolution as a grouped convolution with one group per input channel."""
    kh, kw, c, m = kernel.shape
    full = np.zeros((kh, kw, 1, c * m))
    for ci in range(c):
        full[:, :, 0, ci * m:(ci + 1) * m] = kernel[:, :, ci, :]
    return ref_conv(x, full, None, strides, padding, dilation, c)


def ref_pool(x, kind, size, strides, padding):
    """Direct pooling of NHWC ``x`` with the contract's rules for padded cells."""
    n, h, w, c = x.shape
    t, b = ref_pads(side_pad(padding, 0), h, size[0], strides[0], 1)
    lft, rgt = ref_pads(side_pad(padding, 1), w, size[1], strides[1], 1)
    same = padding == "same"
    ho = (h + t + b - size[0]) // strides[0] + 1
    wo = (w + lft + rgt - size[1]) // strides[1] + 1
    xp = np.zeros((n, h + t + b, w + lft + rgt, c))
    xp[:, t:t + h, lft:lft + w] = x
    real = np.zeros((h + t + b, w + lft + rgt), bool)
    real[t:t + h, lft:lft + w] = True
    out = np.zeros((n, ho, wo, c))
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * strides[0], i * strides[0] + size[0])
            cols = slice(j * strides[1], j * strides[1] + size[1])
            window = xp[:, rows, cols]
            mask = real[rows, cols] if same else np.ones(size, bool)  # explicit padding counts its zeros
            cells = window[:, mask]  # (n, cells, c)
            out[:, i, j] = cells.max(axis=1) if kind == "max" else cells.mean(axis=1)
    return out


def close(actual, expected, rtol=RTOL, atol=ATOL):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --- the lecture's worked example -------------------------------------------------------------------------


LECTURE_NET = """
network lecture {
    input x: [5, 5, 1]
    conv2d(1, 3, name='conv')
}
"""


@pytest.mark.parametrize("bias", [0.0, 2.0])
def test_lecture_example(bias):
    net = netspec.load_source(LECTURE_NET)
    weights = {"conv/kernel": np.array(LECTURE_K, np.float32).reshape(3, 3, 1, 1),
               "conv/bias": np.array([bias], np.float32)}
    y = executor(net, weights)(np.array(LECTURE_X, np.float32).reshape(1, 5, 5, 1))
    assert y[0, :, :, 0].tolist() == (np.array(LECTURE_Y) + bias).tolist()
    if bias == 2.0:
        assert y[0, 2, 2, 0] == 16


def test_lecture_example_through_the_cli(tmp_path):
    from netspec.cli import main

    spec = tmp_path / "lecture.net"
    spec.write_text(LECTURE_NET)
    np.savez(tmp_path / "w.npz", **{"conv/kernel": np.array(LECTURE_K, np.float32).reshape(3, 3, 1, 1),
                                    "conv/bias": np.array([2.0], np.float32)})
    np.save(tmp_path / "x.npy", np.array(LECTURE_X, np.float32).reshape(1, 5, 5, 1))
    result = CliRunner().invoke(main, ["run", str(spec), "--input", str(tmp_path / "x.npy"),
                                       "--weights", str(tmp_path / "w.npz"), "-o", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    y = np.load(tmp_path / "y.npy")
    assert y[0, :, :, 0].tolist() == [[14, 14, 19], [12, 19, 21], [11, 8, 16]]


def test_every_op_has_a_lowering():
    assert set(LOWERINGS) == set(ops.OPS)


# --- convolutions -------------------------------------------------------------------------------------------


paddings = st.one_of(
    st.sampled_from(["valid", "same"]),
    st.tuples(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.tuples(st.integers(0, 2), st.integers(0, 2))),
)


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cin = groups * draw(st.integers(1, 3))
    filters = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # Keras forbids strides > 1 together with dilation > 1.
    dilation = (1, 1) if max(strides) > 1 else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    return dict(groups=groups, cin=cin, filters=filters, kernel=kernel, strides=strides, dilation=dilation,
                h=h, w=w, padding=draw(paddings), fmt=draw(st.sampled_from(["channels_last", "channels_first"])),
                batch=draw(st.integers(1, 3)), use_bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@given(conv_cases())
def test_conv2d_matches_direct_loops(case):
    fmt = case["fmt"]
    shape = (case["h"], case["w"], case["cin"]) if fmt == "channels_last" else (case["cin"], case["h"], case["w"])
    attrs = ops.Conv2D(filters=case["filters"], kernel_size=case["kernel"], strides=case["strides"],
                       padding=case["padding"], data_format=fmt, dilation_rate=case["dilation"],
                       groups=case["groups"], use_bias=case["use_bias"])
    report = one_layer("conv2d", attrs, shape, fmt)
    assume(report.ok)  # windows larger than the padded input are rejected by check, as in Keras
    rng = np.random.default_rng(case["seed"])
    weights = random_weights(report, rng)
    x = rng.standard_normal((case["batch"], *shape)).astype(np.float32)
    expected = ref_conv(to_nhwc(x, fmt).astype(np.float64), weights["layer/kernel"].astype(np.float64),
                        weights.get("layer/bias"), case["strides"], case["padding"], case["dilation"],
                        case["groups"])
    close(run(report, weights, x), from_nhwc(expected, fmt))
    close(run(report, weights, x, threads=1), from_nhwc(expected, fmt))


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 16, 1 << 30])
@pytest.mark.parametrize("threads", [1, 3])
def test_conv_chunking_is_invisible(monkeypatch, chunk_bytes, threads):
    """Chunks of rows, of whole images, or one product: the same numbers on any thread count."""
    monkeypatch.setattr(ne, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(9)
    for h, w, batch, k, s in ((23, 21, 2, 3, 1), (5, 4, 30, 3, 2), (17, 15, 3, 1, 1), (17, 15, 3, 1, 2)):
        x = rng.standard_normal((batch, h, w, 5)).astype(np.float32)
        kernel = rng.standard_normal((k, k, 5, 7)).astype(np.float32)
        report = one_layer("conv2d", ops.Conv2D(filters=7, kernel_size=(k, k), strides=(s, s), padding="same",
                                                activation="relu"), (h, w, 5))
        bias = rng.standard_normal(7).astype(np.float32)
        y = run(report, {"layer/kernel": kernel, "layer/bias": bias}, x, threads=threads)
        close(y, np.maximum(ref_conv(x, kernel, bias, (s, s), "same", (1, 1), 1), 0), rtol=1e-4, atol=1e-4)


def test_same_padding_with_stride_puts_the_extra_row_at_the_end():
    # 6 rows, window 3, stride 2: 'same' pads 0 on top and 1 at the bottom.
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    report = one_layer("conv2d", ops.Conv2D(filters=1, kernel_size=(3, 3), strides=(2, 2), padding="same",
                                            use_bias=False), (6, 6, 1))
    k = np.zeros((3, 3, 1, 1), np.float32)
    k[0, 0] = 1  # picks the window's top-left cell
    y = run(report, {"layer/kernel": k}, x)
    assert y[0, :, :, 0].tolist() == [[0, 2, 4], [12, 14, 16], [24, 26, 28]]


@st.composite
def depthwise_cases(draw):
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if max(strides) > 1 else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    return dict(c=draw(st.integers(1, 4)), m=draw(st.integers(1, 3)),
                kernel=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), strides=strides, dilation=dilation,
                h=draw(st.integers(1, 8)), w=draw(st.integers(1, 8)), padding=draw(paddings),
                fmt=draw(st.sampled_from(["channels_last", "channels_first"])), filters=draw(st.integers(1, 4)),
                seed=draw(st.integers(0, 2**16)))


@given(depthwise_cases())
def test_depthwise_conv2d_matches_direct_loops(case):
    fmt = case["fmt"]
    shape = (case["h"], case["w"], case["c"]) if fmt == "channels_last" else (case["c"], case["h"], case["w"])
    attrs = ops.DepthwiseConv2D(kernel_size=case["kernel"], strides=case["strides"], padding=case["padding"],
                                depth_multiplier=case["m"], data_format=fmt, dilation_rate=case["dilation"])
    report = one_layer("depthwise_conv2d", attrs, shape, fmt)
    assume(report.ok)
    rng = np.random.default_rng(case["seed"])
    weights = random_weights(report, rng)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    expected = ref_depthwise(to_nhwc(x, fmt), weights["layer/kernel"].astype(np.float64), case["strides"],
                             case["padding"], case["dilation"]) + weights["layer/bias"]
    close(run(report, weights, x), from_nhwc(expected, fmt))
    # Keras 3 names the weight 'kernel'; files written by older Keras say 'depthwise_kernel'.
    alias = {("layer/depthwise_kernel" if k == "layer/kernel" else k): v for k, v in weights.items()}
    close(run(report, alias, x), from_nhwc(expected, fmt))


@given(depthwise_cases())
def test_separable_conv2d_is_depthwise_then_pointwise(case):
    fmt = case["fmt"]
    shape = (case["h"], case["w"], case["c"]) if fmt == "channels_last" else (case["c"], case["h"], case["w"])
    attrs = ops.SeparableConv2D(filters=case["filters"], kernel_size=case["kernel"], strides=case["strides"],
                                padding=case["padding"], data_format=fmt, dilation_rate=case["dilation"],
                                depth_multiplier=case["m"], activation="tanh")
    report = one_layer("separable_conv2d", attrs, shape, fmt)
    assume(report.ok)
    rng = np.random.default_rng(case["seed"])
    weights = random_weights(report, rng)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    mid = ref_depthwise(to_nhwc(x, fmt), weights["layer/depthwise_kernel"].astype(np.float64),
                        case["strides"], case["padding"], case["dilation"])
    expected = np.tanh(mid @ weights["layer/pointwise_kernel"][0, 0] + weights["layer/bias"])
    close(run(report, weights, x), from_nhwc(expected, fmt))


# --- pooling, padding, reshaping ---------------------------------------------------------------------------------


@given(kind=st.sampled_from(["max", "avg"]), size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       strides=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))), padding=paddings,
       h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 3),
       fmt=st.sampled_from(["channels_last", "channels_first"]), seed=st.integers(0, 2**16))
def test_pooling_matches_direct_loops(kind, size, strides, padding, h, w, c, fmt, seed):
    shape = (h, w, c) if fmt == "channels_last" else (c, h, w)
    report = one_layer(f"{kind}pool2d", ops.Pool2D(pool_size=size, strides=strides, padding=padding,
                                                   data_format=fmt), shape, fmt)
    assume(report.ok)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    if kind == "max":
        x -= 5  # all negative: a max that wrongly saw padding cells would show 0
    expected = ref_pool(to_nhwc(x, fmt).astype(np.float64), kind, size, strides or size, padding)
    close(run(report, {}, x), from_nhwc(expected, fmt))


def test_same_average_pooling_divides_by_real_cells_and_explicit_padding_by_the_window():
    x = np.ones((1, 3, 3, 1), np.float32)
    same = run(one_layer("avgpool2d", ops.Pool2D(pool_size=(2, 2), padding="same"), (3, 3, 1)), {}, x)
    assert same[0, :, :, 0].tolist() == [[1, 1], [1, 1]]
    explicit = run(one_layer("avgpool2d", ops.Pool2D(pool_size=(2, 2), padding=((0, 1), (0, 1))), (3, 3, 1)), {}, x)
    assert explicit[0, :, :, 0].tolist() == [[1, 0.5], [0.5, 0.25]]
    x = -np.ones((1, 3, 3, 1), np.float32)
    explicit_max = run(one_layer("maxpool2d", ops.Pool2D(pool_size=(2, 2), padding=((0, 1), (0, 1))), (3, 3, 1)), {}, x)
    assert explicit_max[0, :, :, 0].tolist() == [[-1, 0], [0, 0]]  # the zeros are seen, as ZeroPadding2D + valid


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools_zeropad_and_flatten(fmt, keepdims):
    rng = np.random.default_rng(0)
    shape = (4, 5, 3) if fmt == "channels_last" else (3, 4, 5)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    nhwc = to_nhwc(x, fmt)
    for op, fn in (("global_avgpool2d", np.mean), ("global_maxpool2d", np.max)):
        y = run(one_layer(op, ops.GlobalPool2D(data_format=fmt, keepdims=keepdims), shape, fmt), {}, x)
        expected = fn(nhwc, axis=(1, 2), keepdims=keepdims)
        close(y, from_nhwc(expected, fmt) if keepdims else expected)
    pad = ops.ZeroPad2D(padding=((1, 0), (2, 3)), data_format=fmt)
    y = run(one_layer("zeropad2d", pad, shape, fmt), {}, x)
    expected = np.zeros((2, 5, 10, 3), np.float32)
    expected[:, 1:, 2:7] = nhwc
    close(y, from_nhwc(expected, fmt))
    # Keras 3 flattens a channels_first tensor in channels_last order.
    y = run(one_layer("flatten", ops.Flatten(data_format=fmt), shape, fmt), {}, x)
    close(y, nhwc.reshape(2, -1))


def test_reshape_and_dense_on_any_rank():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 6)).astype(np.float32)
    report = one_layer("reshape", ops.Reshape(target_shape=(2, -1, 3)), (4, 6),
                       more=(Node("d", "dense", ("layer",), ops.Dense(units=5, activation="relu")),))
    weights = random_weights(report, rng)
    y = run(report, weights, x)
    expected = np.maximum(x.reshape(3, 2, 4, 3) @ weights["d/kernel"] + weights["d/bias"], 0)
    close(y, expected)


# --- batchnorm, dropout, activations ----------------------------------------------------------------------------


@given(axis=st.sampled_from([-1, 1, 2, 3, -2]), center=st.booleans(), scale=st.booleans(),
       epsilon=st.sampled_from([1e-3, 1.001e-5, 0.5]), seed=st.integers(0, 2**16))
def test_batchnorm_inference(axis, center, scale, epsilon, seed):
    shape = (3, 4, 5)
    report = one_layer("batchnorm", ops.BatchNorm(axis=axis, center=center, scale=scale, epsilon=epsilon), shape)
    assert report.ok
    rng = np.random.default_rng(seed)
    w = random_weights(report, rng)
    x = rng.standard_normal((2, *shape)).astype(np.float32)
    bshape = [1, 1, 1, 1]
    bshape[axis] = -1

    def get(name, default):
        return w[f"layer/{name}"].reshape(bshape) if f"layer/{name}" in w else default

    expected = ((x - get("moving_mean", 0)) / np.sqrt(get("moving_variance", 1) + epsilon) * get("gamma", 1)
                + get("beta", 0))
    close(run(report, w, x), expected)


def test_dropout_is_identity():
    x = np.random.default_rng(2).standard_normal((4, 7)).astype(np.float32)
    close(run(one_layer("dropout", ops.Dropout(rate=0.5), (7,)), {}, x), x)


def _scalar(fn):
    """Apply a float -> float function from the math module to every element, in float64."""
    return lambda x: np.vectorize(fn, otypes=[np.float64])(x.astype(np.float64))


def _keras_relu(v, max_value=None, negative_slope=0.0, threshold=0.0):
    """keras.activations.relu for one number, following Keras 3's ReLU.static_call."""
    if negative_slope != 0.0 and max_value is None and threshold == 0.0:
        return v if v >= 0 else negative_slope * v
    negative = max(threshold - v, 0.0) if negative_slope != 0.0 else 0.0
    y = (v if v > threshold else 0.0) if threshold != 0.0 else max(v, 0.0)
    if max_value is not None:
        y = min(max(y, 0.0), max_value)
    return y - negative_slope * negative


SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
ACTIVATION_REFS = {
    "linear": _scalar(lambda v: v),
    "relu": _scalar(lambda v: max(v, 0.0)),
    "leaky_relu": _scalar(lambda v: v if v >= 0 else 0.2 * v),  # keras.activations.leaky_relu's default
    "elu": _scalar(lambda v: v if v > 0 else math.expm1(v)),
    "gelu": _scalar(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "selu": _scalar(lambda v: SELU[1] * (v if v > 0 else SELU[0] * math.expm1(v))),
    "sigmoid": _scalar(lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))),
    "hard_sigmoid": _scalar(lambda v: min(max(v + 3, 0.0), 6.0) / 6),
    "softplus": _scalar(lambda v: math.log1p(math.exp(-abs(v))) + max(v, 0.0)),
    "softsign": _scalar(lambda v: v / (1 + abs(v))),
    "swish": _scalar(lambda v: v / (1 + math.exp(-v)) if v >= 0 else v * math.exp(v) / (1 + math.exp(v))),
    "tanh": _scalar(math.tanh),
    "exponential": _scalar(math.exp),
    # version 2: the rest of keras.activations (elementwise ones; softmax-like ones in test_ops_layers.py)
    "relu6": _scalar(lambda v: min(max(v, 0.0), 6.0)),
    "hard_silu": _scalar(lambda v: v * min(max(v + 3, 0.0), 6.0) / 6),
    "mish": _scalar(lambda v: v * math.tanh(math.log1p(math.exp(-abs(v))) + max(v, 0.0))),
    "celu": _scalar(lambda v: v if v >= 0 else math.expm1(v)),
    "hard_tanh": _scalar(lambda v: min(max(v, -1.0), 1.0)),
    "log_sigmoid": _scalar(lambda v: -(math.log1p(math.exp(-abs(v))) + max(-v, 0.0))),
    "soft_shrink": _scalar(lambda v: v - 0.5 if v > 0.5 else (v + 0.5 if v < -0.5 else 0.0)),
    "hard_shrink": _scalar(lambda v: v if abs(v) > 0.5 else 0.0),
    "tanh_shrink": _scalar(lambda v: v - math.tanh(v)),
    "squareplus": _scalar(lambda v: (v + math.sqrt(v * v + 4)) / 2),
    "sparse_plus": _scalar(lambda v: 0.0 if v <= -1 else ((v + 1) ** 2 / 4 if v < 1 else v)),
    "sparse_sigmoid": _scalar(lambda v: 0.0 if v <= -1 else (1.0 if v >= 1 else (v + 1) / 2)),
}


def test_activation_table_covers_the_contract():
    from netspec.core.argtypes import ACTIVATIONS

    assert set(ne.ACTIVATIONS) - {"threshold"} == set(ACTIVATIONS)  # threshold: only as an op with arguments
    assert set(ACTIVATION_REFS) | {"softmax", "log_softmax", "glu", "sparsemax"} == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATION_REFS))
def test_activations_as_ops_strings_and_layer_arguments(name):
    x = np.concatenate([np.linspace(-12, 12, 97), [0.0, -0.5, 0.5, 3.0, -3.0]]).astype(np.float32).reshape(1, -1)
    expected = ACTIVATION_REFS[name](x)
    tol = dict(rtol=1e-5, atol=1e-6)
    close(run(one_layer("activation", ops.Activation(activation=name), (x.shape[1],)), {}, x), expected, **tol)
    if name in ops.OPS and ops.OPS[name].attrs is ops.NoArgs:
        close(run(one_layer(name, ops.NoArgs(), (x.shape[1],)), {}, x), expected, **tol)
    # As a dense layer's activation (identity kernel): applied after the bias, in the fused path too.
    report = one_layer("dense", ops.Dense(units=x.shape[1], activation=name), (x.shape[1],))
    w = {"layer/kernel": np.eye(x.shape[1], dtype=np.float32), "layer/bias": np.zeros(x.shape[1], np.float32)}
    close(run(report, w, x), expected, **tol)


@given(max_value=st.sampled_from([None, 6.0, 2.5, 0.0]), negative_slope=st.sampled_from([0.0, 0.1, 1.5]),
       threshold=st.sampled_from([0.0, 1.0, -1.0]))
def test_relu_arguments_follow_keras(max_value, negative_slope, threshold):
    x = np.linspace(-8, 8, 65, dtype=np.float32).reshape(1, -1)
    report = one_layer("relu", ops.ReLU(max_value=max_value, negative_slope=negative_slope, threshold=threshold),
                       (65,))
    expected = _scalar(lambda v: _keras_relu(v, max_value, negative_slope, threshold))(x)
    close(run(report, {}, x), expected, rtol=1e-6, atol=1e-6)


def test_leaky_relu_elu_layers_and_softmax_on_any_axis():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 4
    close(run(one_layer("leaky_relu", ops.LeakyReLU(), (3, 4, 5)), {}, x), np.where(x >= 0, x, 0.3 * x))
    close(run(one_layer("elu", ops.ELU(alpha=0.7), (3, 4, 5)), {}, x), np.where(x > 0, x, 0.7 * np.expm1(x)))
    for axis in (-1, 1, 2, 3, -3):
        e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
        close(run(one_layer("softmax", ops.Softmax(axis=axis), (3, 4, 5)), {}, x), e / e.sum(axis=axis, keepdims=True))
    e = np.exp(x.astype(np.float64) - x.max(axis=-1, keepdims=True))
    close(run(one_layer("activation", ops.Activation(activation="softmax"), (3, 4, 5)), {}, x),
          e / e.sum(axis=-1, keepdims=True))


# --- merges ---------------------------------------------------------------------------------------------------------


def test_merges_broadcast_and_concat_on_keras_axes():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    g = Graph("m", Input("x", (3, 4, 5)), (
        Node("p", "global_avgpool2d", ("x",), ops.GlobalPool2D(keepdims=True)),  # (1, 1, 5)
        Node("a", "add", ("x", "p"), ops.NoArgs()),
        Node("m", "multiply", ("a", "x", "p"), ops.NoArgs()),
        Node("c", "concat", ("m", "x"), ops.Concat(axis=2)),
    ))
    report = check_graph(g)
    assert report.ok, report.diagnostics
    p = x.mean(axis=(1, 2), keepdims=True)
    expected = np.concatenate([(x + p) * x * p, x], axis=2)
    close(run(report, {}, x), expected)


# --- the executor: fusion, memory reuse, threads, activations, errors --------------------------------------------


RESIDUAL = """
network residual {
    input x: [9, 9, 4]
    c0 = conv2d(8, 3, padding='same', use_bias=false, name='c0') -> batchnorm(name='bn0') -> relu(name='r0')
    d = dropout(0.3, name='drop')
    r = d -> conv2d(8, 3, padding='same', name='c1') -> batchnorm(name='bn1') -> activation('swish', name='a1')
    s = add(d, r, name='add') -> relu(name='out_relu')
    t = c0 -> conv2d(8, 1, name='side')
    concat(s, t, c0, name='cat') -> flatten() -> dense(10, name='fc') -> batchnorm(name='bn_fc') -> softmax()
}
"""


def test_fused_and_in_place_execution_match_layer_by_layer():
    net = netspec.load_source(RESIDUAL)
    rng = np.random.default_rng(5)
    w = random_weights(net, rng)
    x = rng.standard_normal((3, 9, 9, 4)).astype(np.float32)
    x_copy = x.copy()
    run_ = executor(net, w)
    acts = run_.activations(x)
    assert list(acts) == ["x", *(n.name for n in net.graph.nodes)]
    for threads in (1, 2):
        for fuse in (True, False):
            y = executor(net, w, fuse=fuse, threads=threads)(x)
            close(y, acts[net.graph.output], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(x, x_copy)  # the caller's input is never written
    # The unfused activations are what each layer computes on its own.
    bn0 = acts["bn0"]
    inv = w["bn0/gamma"] / np.sqrt(w["bn0/moving_variance"] + 1e-3)
    expected = (acts["c0"] - w["bn0/moving_mean"]) * inv + w["bn0/beta"]
    close(bn0, expected, rtol=1e-5, atol=1e-5)
    close(acts["r0"], np.maximum(bn0, 0))
    fused = [layers for _, _, layers, _ in run_.profile(x)]
    assert ("c0", "bn0", "r0") in fused and ("c1", "bn1", "a1") in fused and ("fc", "bn_fc", "softmax") in fused
    assert ("add", "out_relu") in fused


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_batchnorm_folds_only_along_the_layer_channels(axis):
    net = netspec.load_source(f"""
    network fold {{
        input x: [4, 6, 3]
        conv2d(5, 1, name='c') -> batchnorm(axis={axis}, name='b1') -> reshape((4, 30))
        dense(5, name='d') -> batchnorm(axis={1 if axis == 1 else -1}, name='b2')
    }}""")
    rng = np.random.default_rng(10)
    w = random_weights(net, rng)
    x = rng.standard_normal((2, 4, 6, 3)).astype(np.float32)
    run_ = executor(net, w)
    close(run_(x), run_.activations(x)["b2"], rtol=1e-5, atol=1e-5)
    folded = [layers for _, _, layers, _ in run_.profile(x)]
    assert (("c", "b1") in folded) == (axis == -1)
    assert (("d", "b2") in folded) == (axis != 1)


def test_unknown_sizes_and_any_batch():
    net = netspec.load_source("""
    network any_size {
        input x: [?, ?, 2]
        conv2d(3, 3, strides=2, padding='same', name='c')
        global_maxpool2d()
    }""")
    w = random_weights(net, np.random.default_rng(6))
    run_ = executor(net, w)
    for shape in ((1, 5, 7, 2), (4, 8, 3, 2)):
        x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
        expected = ref_conv(x, w["c/kernel"], w["c/bias"], (2, 2), "same", (1, 1), 1).max(axis=(1, 2))
        close(run_(x), expected)


def test_wrong_input_is_a_clear_error():
    net = netspec.load_source(LECTURE_NET)
    run_ = executor(net, seed=0)
    with pytest.raises(NetspecError) as err:
        run_(np.zeros((1, 5, 5), np.float32))
    assert err.value.diagnostics[0].code == "E602"
    assert "(None, 5, 5, 1)" in str(err.value) and "(1, 5, 5)" in str(err.value)
    with pytest.raises(NetspecError, match="E602"):
        run_(np.zeros((2, 5, 4, 1)))
    with pytest.raises(NetspecError, match="E602"):
        run_(np.array([["a"]]))
    assert run_(np.zeros((2, 5, 5, 1), np.float64)).dtype == np.float32


def test_wrong_weights_are_a_clear_error():
    net = netspec.load_source(LECTURE_NET)
    with pytest.raises(NetspecError) as err:
        executor(net, {"conv/kernel": np.zeros((3, 3, 1, 2), np.float32)})
    text = str(err.value)
    assert "conv/kernel" in text and "(3, 3, 1, 2)" in text and "(3, 3, 1, 1)" in text
    assert "missing weight 'conv/bias'" in text


def test_run_cli_errors_and_output(tmp_path):
    from netspec.cli import main

    spec = tmp_path / "lecture.net"
    spec.write_text(LECTURE_NET)
    np.save(tmp_path / "bad.npy", np.zeros((2, 4, 4, 1), np.float32))
    out = tmp_path / "y.npy"
    result = CliRunner().invoke(main, ["run", str(spec), "--input", str(tmp_path / "bad.npy"), "-o", str(out)])
    assert result.exit_code == 1
    assert "E602" in result.output and "(None, 5, 5, 1)" in result.output and "Traceback" not in result.output
    assert not out.exists()
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    result = CliRunner().invoke(main, ["run", str(spec), "--input", str(tmp_path / "junk.npy"), "-o", str(out)])
    assert result.exit_code == 1 and "E603" in result.output
    np.save(tmp_path / "x.npy", np.ones((3, 5, 5, 1), np.float32))
    result = CliRunner().invoke(main, ["run", str(spec), "--input", str(tmp_path / "x.npy"), "-o", str(out),
                                       "--seed", "4"])
    assert result.exit_code == 0, result.output
    expected = executor(netspec.load_source(LECTURE_NET), seed=4)(np.ones((3, 5, 5, 1), np.float32))
    np.testing.assert_array_equal(np.load(out), expected)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".netspec-")]


def test_specs_run(tmp_path):
    """Every network in specs/ small enough for a quick run executes with fresh weights."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "specs"
    ran = 0
    for path in sorted(root.glob("*.net")):
        for net in netspec.check_file(str(path)).networks:
            if not net.ok or net.macs is None or net.macs > 5e7 or any(
                    d is None for i in net.inputs for d in i.shape):
                continue
            rng = np.random.default_rng(0)
            ys = executor(net, seed=0)(*(rng.random((2, *i.shape), dtype=np.float32) for i in net.inputs),
                                       by_name=True)
            assert list(ys) == list(net.outputs)
            for y, shape in zip(ys.values(), net.output_shapes):
                assert y.shape == (2, *shape) and np.isfinite(y).all()
            ran += 1
    assert ran > 0


# --- against Keras --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


KERAS_CASES = [
    ("conv2d(6, 3, strides=2, padding='same', activation='gelu')", lambda k: k.layers.Conv2D(
        6, 3, strides=2, padding="same", activation="gelu")),
    ("conv2d(6, (2, 3), dilation_rate=(2, 1), groups=2, padding='valid', activation='hard_sigmoid')",
     lambda k: k.layers.Conv2D(6, (2, 3), dilation_rate=(2, 1), groups=2, activation="hard_sigmoid")),
    ("depthwise_conv2d(3, strides=2, padding='same', depth_multiplier=2, activation='leaky_relu')",
     lambda k: k.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                        activation="leaky_relu")),
    ("separable_conv2d(5, 3, padding='same', activation='selu')",
     lambda k: k.layers.SeparableConv2D(5, 3, padding="same", activation="selu")),
    ("avgpool2d(3, strides=2, padding='same')", lambda k: k.layers.AveragePooling2D(3, strides=2, padding="same")),
    ("maxpool2d(2, strides=3, padding='same')", lambda k: k.layers.MaxPooling2D(2, strides=3, padding="same")),
    ("batchnorm(epsilon=0.01)", lambda k: k.layers.BatchNormalization(epsilon=0.01)),
    ("relu(max_value=1.5, negative_slope=0.2, threshold=0.3)",
     lambda k: k.layers.ReLU(max_value=1.5, negative_slope=0.2, threshold=0.3)),
    ("softmax(axis=1)", lambda k: k.layers.Softmax(axis=1)),
    ("dense(3, activation='swish')", lambda k: k.layers.Dense(3, activation="swish")),
    ("flatten(data_format='channels_first')", lambda k: k.layers.Flatten(data_format="channels_first")),
]


@pytest.mark.keras
@pytest.mark.parametrize("spec, make", KERAS_CASES, ids=[c[0].split("(")[0] + str(i) for i, c in enumerate(KERAS_CASES)])
def test_against_keras(keras, spec, make):
    net = netspec.load_source(f"network k {{\n input x: [7, 6, 4]\n {spec}\n}}")
    rng = np.random.default_rng(8)
    w = random_weights(net, rng)
    x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
    layer = make(keras)
    layer.build((None, 7, 6, 4))
    (node,) = net.graph.nodes
    layer.set_weights([w[f"{node.name}/{s.name}"] for s in net.layers[node.name].weights])
    expected = np.asarray(layer(x))
    close(run(net, w, x), expected, rtol=1e-4, atol=1e-5)
