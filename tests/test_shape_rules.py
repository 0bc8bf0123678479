"""Shape and parameter rules of every op, as tables: ``(op, args, inputs, format) -> (shape, params)``.

The numbers come from the lecture (``W2 = (W1 - F + 2P) / S + 1``), from
Keras ``count_params()`` (worked out by hand below each row) and from the
contract's padding rules.  Each row runs through the library: the op's
attributes are built from written arguments (``make_attrs``), normalized
to a data format and checked; single-input rows also go through
``check_graph`` on a graph built in Python.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from layer_rows import LAYER_ROWS

from netspec import Graph, Input, NetspecError, Node, check_graph, load_source
from netspec.core.argtypes import ArgError
from netspec.core.check import NodeProblem, analyze_node
from netspec.core.ops import OPS, canonical_op, make_attrs
from netspec.core.shapes import SizeError, same_padding, window_output

CL, CF = "channels_last", "channels_first"

# (op, written args, input shapes, data format, output shape, params)
ROWS: list[tuple[str, dict, list[tuple], str, tuple, int]] = [
    # --- the lecture: W2 = (W1 - F + 2P)/S + 1 ---
    ("conv2d", dict(filters=1, kernel_size=2), [(6, 6, 1)], CL, (5, 5, 1), 2 * 2 * 1 + 1),  # (6-2+0)/1+1 = 5
    ("conv2d", dict(filters=1, kernel_size=2, strides=2), [(6, 6, 1)], CL, (3, 3, 1), 5),  # (6-2)/2+1 = 3
    ("conv2d", dict(filters=1, kernel_size=2, strides=2, padding=1), [(6, 6, 1)], CL, (4, 4, 1), 5),  # (6-2+2)/2+1 = 4
    ("conv2d", dict(filters=96, kernel_size=11, strides=6), [(128, 128, 3)], CL, (20, 20, 96),
     11 * 11 * 3 * 96 + 96),  # valid: floor((128-11)/6)+1 = 20
    ("conv2d", dict(filters=96, kernel_size=11, strides=6, padding="same"), [(128, 128, 3)], CL, (22, 22, 96),
     34944),  # same: ceil(128/6) = 22
    ("conv2d", dict(filters=1, kernel_size=5), [(32, 32, 3)], CL, (28, 28, 1), 5 * 5 * 3 + 1),  # 75 + 1
    ("conv2d", dict(filters=4, kernel_size=5), [(32, 32, 3)], CL, (28, 28, 4), 5 * 5 * 3 * 4 + 4),  # 300 + 4
    # --- conv2d: formats, groups, dilation, every padding form, unknown sizes ---
    ("conv2d", dict(filters=8, kernel_size=3, padding="same"), [(3, 32, 32)], CF, (8, 32, 32), 3 * 3 * 3 * 8 + 8),
    ("conv2d", dict(filters=8, kernel_size=3, data_format="channels_first"), [(3, 32, 32)], CL, (8, 30, 30), 224),
    ("conv2d", dict(filters=8, kernel_size=3, groups=2), [(10, 10, 4)], CL, (8, 8, 8), 3 * 3 * 2 * 8 + 8),
    ("conv2d", dict(filters=8, kernel_size=3, groups=4), [(4, 10, 10)], CF, (8, 8, 8), 3 * 3 * 1 * 8 + 8),
    ("conv2d", dict(filters=4, kernel_size=3, dilation_rate=2), [(10, 10, 1)], CL, (6, 6, 4), 9 * 4 + 4),
    ("conv2d", dict(filters=4, kernel_size=3, dilation_rate=(2, 3), padding="same"), [(10, 9, 1)], CL,
     (10, 9, 4), 40),
    ("conv2d", dict(filters=2, kernel_size=3, padding=(1, 2)), [(5, 5, 1)], CL, (5, 7, 2), 3 * 3 * 2 + 2),
    ("conv2d", dict(filters=1, kernel_size=3, padding=((0, 1), (2, 3))), [(5, 5, 1)], CL, (4, 8, 1), 10),
    ("conv2d", dict(filters=1, kernel_size=3, strides=2, padding="same"), [(7, 8, 1)], CL, (4, 4, 1), 10),
    ("conv2d", dict(filters=1, kernel_size=(1, 7), strides=(1, 2)), [(9, 19, 2)], CL, (9, 7, 1), 7 * 2 + 1),
    ("conv2d", dict(filters=4, kernel_size=3, use_bias=False), [(8, 8, 3)], CL, (6, 6, 4), 3 * 3 * 3 * 4),
    ("conv2d", dict(filters=4, kernel_size=3), [(None, 8, 3)], CL, (None, 6, 4), 112),
    ("conv2d", dict(filters=4, kernel_size=3, strides=2, padding="same"), [(3, None, None)], CF,
     (4, None, None), 112),
    ("Conv2D", dict(filters=4, kernel_size=1), [(2, 2, 3)], CL, (2, 2, 4), 16),
    # --- depthwise / separable ---
    ("depthwise_conv2d", dict(kernel_size=3, depth_multiplier=2), [(8, 8, 4)], CL, (6, 6, 8), 3 * 3 * 4 * 2 + 8),
    ("depthwise_conv2d", dict(kernel_size=3, depth_multiplier=2), [(4, 8, 8)], CF, (8, 6, 6), 80),
    ("depthwise_conv2d", dict(kernel_size=3, strides=2, padding="same"), [(5, 5, 4)], CL, (3, 3, 4), 9 * 4 + 4),
    ("depthwise_conv2d", dict(kernel_size=3, padding=1, use_bias=False), [(5, 5, 4)], CL, (5, 5, 4), 36),
    ("separable_conv2d", dict(filters=8, kernel_size=3), [(10, 10, 4)], CL, (8, 8, 8), 9 * 4 + 4 * 8 + 8),
    ("separable_conv2d", dict(filters=8, kernel_size=3, depth_multiplier=2), [(10, 10, 4)], CL, (8, 8, 8),
     9 * 4 * 2 + 8 * 8 + 8),
    ("separable_conv2d", dict(filters=8, kernel_size=3, padding="same", strides=2), [(4, 9, 9)], CF,
     (8, 5, 5), 76),
    ("separable_conv2d", dict(filters=8, kernel_size=3, dilation_rate=2), [(None, 10, 4)], CL, (None, 6, 8), 76),
    # --- pooling: strides default to pool_size; explicit padding is zero padding ---
    ("maxpool2d", dict(), [(8, 8, 3)], CL, (4, 4, 3), 0),
    ("maxpool2d", dict(pool_size=3, strides=2), [(7, 7, 1)], CL, (3, 3, 1), 0),
    ("maxpool2d", dict(pool_size=3, strides=2, padding="same"), [(8, 8, 1)], CL, (4, 4, 1), 0),
    ("maxpool2d", dict(pool_size=3, strides=2, padding=1), [(8, 8, 1)], CL, (4, 4, 1), 0),
    ("maxpool2d", dict(pool_size=(2, 3)), [(3, 8, 9)], CF, (3, 4, 3), 0),
    ("maxpool2d", dict(pool_size=2), [(None, None, 3)], CL, (None, None, 3), 0),
    ("avgpool2d", dict(pool_size=2, strides=1), [(5, 5, 2)], CL, (4, 4, 2), 0),
    ("avgpool2d", dict(pool_size=3, padding="same"), [(7, 7, 2)], CL, (3, 3, 2), 0),
    ("avgpool2d", dict(pool_size=2, padding=((0, 1), (1, 0))), [(2, 5, 5)], CF, (2, 3, 3), 0),
    # --- global pooling ---
    ("global_avgpool2d", dict(), [(7, 7, 32)], CL, (32,), 0),
    ("global_avgpool2d", dict(keepdims=True), [(32, 7, 7)], CF, (32, 1, 1), 0),
    ("global_maxpool2d", dict(), [(32, 7, 7)], CF, (32,), 0),
    ("global_maxpool2d", dict(keepdims=True), [(None, None, 8)], CL, (1, 1, 8), 0),
    # --- zero padding ---
    ("zeropad2d", dict(), [(5, 5, 2)], CL, (7, 7, 2), 0),
    ("zeropad2d", dict(padding=(1, 2)), [(5, 5, 2)], CL, (7, 9, 2), 0),
    ("zeropad2d", dict(padding=((0, 1), (2, 3))), [(2, 5, 5)], CF, (2, 6, 10), 0),
    ("zeropad2d", dict(padding=2), [(None, 5, 2)], CL, (None, 9, 2), 0),
    # --- flatten / reshape / dense ---
    ("flatten", dict(), [(7, 7, 64)], CL, (3136,), 0),
    ("flatten", dict(), [(64, 7, 7)], CF, (3136,), 0),
    ("flatten", dict(), [(None, 7, 3)], CL, (None,), 0),
    ("reshape", dict(target_shape=(7, 7, -1)), [(3136,)], CL, (7, 7, 64), 0),
    ("reshape", dict(target_shape=-1), [(4, 4, 2)], CL, (32,), 0),
    ("reshape", dict(target_shape=(-1, 2)), [(None, 4)], CL, (None, 2), 0),
    ("dense", dict(units=128), [(3136,)], CL, (128,), 3136 * 128 + 128),
    ("dense", dict(units=10, use_bias=False), [(128,)], CL, (10,), 1280),
    ("dense", dict(units=10), [(8, 8, 3)], CL, (8, 8, 10), 3 * 10 + 10),  # Keras: last axis only
    # --- identity-shaped ops ---
    ("dropout", dict(rate=0.5), [(128,)], CL, (128,), 0),
    ("batchnorm", dict(), [(8, 8, 16)], CL, (8, 8, 16), 4 * 16),
    ("batchnorm", dict(axis=1), [(16, 8, 8)], CF, (16, 8, 8), 4 * 16),
    ("batchnorm", dict(center=False, scale=False), [(10,)], CL, (10,), 2 * 10),
    ("batchnorm", dict(axis=1), [(10, None)], CL, (10, None), 40),
    ("activation", dict(activation="relu"), [(4, 4, 2)], CL, (4, 4, 2), 0),
    ("relu", dict(max_value=6.0), [(4,)], CL, (4,), 0),
    ("leaky_relu", dict(), [(4,)], CL, (4,), 0),
    ("elu", dict(alpha=0.5), [(None, 4)], CL, (None, 4), 0),
    ("softmax", dict(axis=1), [(3, 4)], CL, (3, 4), 0),
    *[(op, dict(), [(2, 3, 4)], CF, (2, 3, 4), 0) for op in (
        "gelu", "selu", "sigmoid", "hard_sigmoid", "softplus", "softsign", "swish", "tanh", "exponential",
        "linear")],
    # --- 1-D and 3-D convolutions (Keras count_params() by hand) ---
    ("conv1d", dict(filters=8, kernel_size=3), [(100, 4)], CL, (98, 8), 3 * 4 * 8 + 8),
    ("conv1d", dict(filters=8, kernel_size=3, padding="causal", dilation_rate=4), [(100, 4)], CL, (100, 8), 104),
    ("conv1d", dict(filters=8, kernel_size=3, strides=2, padding="causal"), [(9, 4)], CL, (5, 8), 104),  # (9+2-3)/2+1
    ("conv1d", dict(filters=8, kernel_size=3, padding="same", strides=2), [(4, 9)], CF, (8, 5), 104),
    ("conv1d", dict(filters=6, kernel_size=5, padding=(1, 3), groups=2), [(10, 4)], CL, (10, 6), 5 * 2 * 6 + 6),
    ("Conv1D", dict(filters=2, kernel_size=1), [(None, 3)], CL, (None, 2), 8),
    ("conv3d", dict(filters=8, kernel_size=3), [(16, 16, 16, 1)], CL, (14, 14, 14, 8), 27 * 8 + 8),
    ("conv3d", dict(filters=8, kernel_size=(1, 3, 3), strides=(1, 2, 2), padding="same"), [(3, 8, 32, 32)], CF,
     (8, 8, 16, 16), 9 * 3 * 8 + 8),
    ("conv3d", dict(filters=4, kernel_size=3, padding=((1, 0), 1, (0, 2))), [(4, 4, 4, 2)], CL, (3, 4, 4, 4),
     27 * 2 * 4 + 4),
    # --- transposed convolutions: Keras's deconv_output_length; kernel (F..., filters, C_in) ---
    ("conv2d_transpose", dict(filters=64, kernel_size=2, strides=2), [(16, 16, 128)], CL, (32, 32, 64),
     2 * 2 * 64 * 128 + 64),
    ("conv2d_transpose", dict(filters=4, kernel_size=3, strides=2), [(7, 7, 2)], CL, (15, 15, 4), 76),  # 6*2+3
    ("conv2d_transpose", dict(filters=4, kernel_size=3, strides=2, padding="same"), [(7, 7, 2)], CL, (14, 14, 4),
     76),
    ("conv2d_transpose", dict(filters=4, kernel_size=3, strides=2, padding="same", output_padding=0), [(7, 7, 2)],
     CL, (13, 13, 4), 76),  # 6*2 + 3%2 + 0
    ("conv2d_transpose", dict(filters=4, kernel_size=1, strides=3), [(2, 5, 5)], CF, (4, 15, 15), 12),  # 5*3 (S>K)
    ("conv2d_transpose", dict(filters=4, kernel_size=3, dilation_rate=2), [(5, 5, 1)], CL, (9, 9, 4), 40),
    ("conv1d_transpose", dict(filters=3, kernel_size=4, strides=2, output_padding=1), [(10, 2)], CL, (23, 3),
     4 * 3 * 2 + 3),  # 9*2 + 4 + 1
    ("conv3d_transpose", dict(filters=2, kernel_size=2, strides=2, use_bias=False), [(4, 3, 3, 3)], CF,
     (2, 6, 6, 6), 8 * 2 * 4),
    ("Conv2DTranspose", dict(filters=1, kernel_size=3), [(None, 4, 1)], CL, (None, 6, 1), 10),
    # --- depthwise / separable in 1-D ---
    ("depthwise_conv1d", dict(kernel_size=3, depth_multiplier=2), [(10, 4)], CL, (8, 8), 3 * 4 * 2 + 8),
    ("separable_conv1d", dict(filters=8, kernel_size=3, padding="same"), [(4, 10)], CF, (8, 10),
     3 * 4 + 4 * 8 + 8),
    # --- 1-D and 3-D pools ---
    ("maxpool1d", dict(), [(9, 3)], CL, (4, 3), 0),
    ("avgpool1d", dict(pool_size=3, strides=1, padding="same"), [(3, 9)], CF, (3, 9), 0),
    ("maxpool3d", dict(), [(8, 9, 10, 2)], CL, (4, 4, 5, 2), 0),
    ("avgpool3d", dict(pool_size=(1, 2, 2), padding="same"), [(2, 5, 5, 5)], CF, (2, 5, 3, 3), 0),
    ("global_avgpool1d", dict(), [(None, 7)], CL, (7,), 0),
    ("global_maxpool1d", dict(keepdims=True), [(7, 20)], CF, (7, 1), 0),
    ("global_avgpool3d", dict(keepdims=True), [(4, 4, 4, 5)], CL, (1, 1, 1, 5), 0),
    ("global_maxpool3d", dict(), [(5, 4, 4, 4)], CF, (5,), 0),
    # --- padding and cropping: an int, a tuple per axis, a pair per axis ---
    ("zeropad1d", dict(), [(5, 2)], CL, (7, 2), 0),
    ("zeropad1d", dict(padding=(0, 3)), [(2, 5)], CF, (2, 8), 0),
    ("zeropad3d", dict(padding=(1, (0, 2), 3)), [(2, 2, 2, 1)], CL, (4, 4, 8, 1), 0),
    ("cropping1d", dict(), [(9, 3)], CL, (7, 3), 0),
    ("cropping1d", dict(cropping=(1, 0)), [(3, 9)], CF, (2, 9), 0),  # Keras: always axis 1
    ("cropping2d", dict(cropping=((88, 88), (88, 88))), [(568, 568, 64)], CL, (392, 392, 64), 0),
    ("cropping2d", dict(cropping=(1, 2)), [(3, 8, 8)], CF, (3, 6, 4), 0),
    ("cropping2d", dict(cropping=2), [(None, 8, 3)], CL, (None, 4, 3), 0),
    ("cropping3d", dict(), [(4, 4, 4, 1)], CL, (2, 2, 2, 1), 0),
    ("cropping3d", dict(cropping=((0, 1), 0, (2, 0))), [(1, 4, 4, 4)], CF, (1, 3, 4, 2), 0),
    # --- resampling ---
    ("upsampling1d", dict(size=3), [(5, 2)], CL, (15, 2), 0),
    ("upsampling1d", dict(), [(2, 5)], CF, (4, 5), 0),  # Keras: always axis 1
    ("upsampling2d", dict(), [(4, 5, 3)], CL, (8, 10, 3), 0),
    ("upsampling2d", dict(size=(2, 3), interpolation="bilinear"), [(3, 4, 5)], CF, (3, 8, 15), 0),
    ("upsampling3d", dict(size=(1, 2, 2)), [(2, 3, 3, 1)], CL, (2, 6, 6, 1), 0),
    ("resizing", dict(height=224, width=200), [(None, None, 3)], CL, (224, 200, 3), 0),
    ("resizing", dict(height=5, width=6, crop_to_aspect_ratio=True), [(3, 9, 13)], CF, (3, 5, 6), 0),
    ("center_crop", dict(height=4, width=6), [(9, 13, 3)], CL, (4, 6, 3), 0),
    ("center_crop", dict(height=12, width=6), [(3, 9, 13)], CF, (3, 12, 6), 0),
    # --- merges: add/multiply broadcast size-1 axes; concat's axis counts the batch ---
    ("add", dict(), [(4, 4, 8), (4, 4, 8)], CL, (4, 4, 8), 0),
    ("add", dict(), [(4, 4, 8), (1, 1, 8), (4, 4, 1)], CL, (4, 4, 8), 0),
    ("add", dict(), [(None, 4, 8), (4, 4, 8)], CL, (4, 4, 8), 0),
    ("multiply", dict(), [(8, 4, 4), (8, 1, 1)], CF, (8, 4, 4), 0),
    ("concat", dict(), [(4, 4, 8), (4, 4, 3)], CL, (4, 4, 11), 0),
    ("concat", dict(axis=1), [(2, 4, 8), (3, 4, 8), (1, 4, 8)], CF, (6, 4, 8), 0),
    ("concat", dict(), [(None, 4, 8), (4, 4, 3)], CL, (4, 4, 11), 0),
]


ROWS += LAYER_ROWS  # version 2's layer ops (tests/layer_rows.py)


def _canonical(op: str) -> str:
    name = canonical_op(op)
    assert name is not None
    return name


def analyze(op: str, args: dict, shapes: list[tuple], fmt: str):
    """Build the op's attributes from written args, normalize, and check them on the input shapes."""
    opdef = OPS[_canonical(op)]
    attrs = opdef.normalize(make_attrs(opdef.attrs, args), fmt)
    info, _ = analyze_node(opdef.name, attrs, list(shapes), [None] * len(shapes))
    return info


@pytest.mark.parametrize(("op", "args", "shapes", "fmt", "shape", "params"), ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_shape_and_params(op: str, args: dict, shapes: list[tuple], fmt: str, shape: tuple, params: int) -> None:
    info = analyze(op, args, shapes, fmt)
    assert (info.shape, info.params) == (shape, params)
    if len(shapes) == 1:
        # The same through a graph built in Python: the checker normalizes data_format itself.
        opdef = OPS[_canonical(op)]
        graph = Graph("g", Input("x", shapes[0], fmt), (Node("n", opdef.name, ("x",), make_attrs(opdef.attrs, args)),))
        report = check_graph(graph)
        assert report.ok, report.diagnostics
        assert (report.output_shape, report.total_params) == (shape, params)


def test_every_op_has_rows() -> None:
    assert {_canonical(r[0]) for r in ROWS} == set(OPS)


def test_batchnorm_splits_trainable() -> None:
    # A batchnorm over C channels has 2C trainable and 2C non-trainable parameters.
    info = analyze("batchnorm", {}, [(8, 8, 16)], CL)
    assert (info.trainable, info.non_trainable) == (32, 32)
    assert [w.name for w in info.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]


def test_conv_weight_layout() -> None:
    # Keras layout: (F_h, F_w, C_in / groups, filters), then the bias.
    info = analyze("conv2d", dict(filters=8, kernel_size=(3, 5), groups=2), [(6, 10, 10)], CF)
    assert [(w.name, w.shape) for w in info.weights] == [("kernel", (3, 5, 3, 8)), ("bias", (8,))]


def test_macs_follow_the_contract() -> None:
    # k*k*C_in/groups multiply-accumulates per output element; bias and pooling count 0.
    conv = analyze("conv2d", dict(filters=8, kernel_size=3, groups=2), [(10, 10, 4)], CL)
    assert conv.macs == 8 * 8 * 8 * (3 * 3 * 4 // 2)
    assert analyze("maxpool2d", {}, [(8, 8, 3)], CL).macs == 0
    assert analyze("dense", dict(units=10), [(128,)], CL).macs == 1280
    assert analyze("conv2d", dict(filters=4, kernel_size=3), [(None, 8, 3)], CL).macs is None


# --- both data formats agree ------------------------------------------------------------

_SPATIAL = [r for r in ROWS if r[3] == CL and len(r[2]) == 1 and len(r[2][0]) == 3 and len(r[4]) == 3
            and "data_format" not in r[1] and _canonical(r[0]) not in ("dense", "batchnorm", "reshape", "softmax")
            and r not in LAYER_ROWS]  # axis-based ops, and glu on the layout's last axis


def _to_cf(shape: tuple) -> tuple:
    return (shape[2], shape[0], shape[1])


@pytest.mark.parametrize(("op", "args", "shapes", "fmt", "shape", "params"), _SPATIAL,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(_SPATIAL)])
def test_channels_first_is_the_transpose(op, args, shapes, fmt, shape, params) -> None:
    info = analyze(op, args, [_to_cf(shapes[0])], CF)
    assert (info.shape, info.params) == (_to_cf(shape), params)


# --- the window formula against counting window positions --------------------------------


def _count_positions(length: int, size: int, stride: int, dilation: int, begin: int, end: int) -> int:
    """How many windows fit: an independent count, not the formula."""
    span = dilation * (size - 1) + 1
    return sum(1 for start in range(0, length + begin + end, stride) if start + span <= length + begin + end)


@given(length=st.integers(1, 60), size=st.integers(1, 7), stride=st.integers(1, 5),
       dilation=st.integers(1, 3), begin=st.integers(0, 4), end=st.integers(0, 4))
def test_window_output_counts_windows(length, size, stride, dilation, begin, end) -> None:
    expected = _count_positions(length, size, stride, dilation, begin, end)
    if expected < 1:
        with pytest.raises(SizeError, match=r"\+ 1 = "):
            window_output(length, size, stride, dilation, (begin, end))
    else:
        assert window_output(length, size, stride, dilation, (begin, end)) == expected


@given(length=st.integers(1, 60), size=st.integers(1, 7), stride=st.integers(1, 5), dilation=st.integers(1, 3))
def test_same_padding_gives_ceil(length, size, stride, dilation) -> None:
    # 'same' is ceil(W/S), and its padding, extra unit at the end, gives exactly that many windows.
    out = window_output(length, size, stride, dilation, "same")
    assert out == math.ceil(length / stride)
    begin, end = same_padding(length, size, stride, dilation)
    assert end - begin in (0, 1)
    assert _count_positions(length, size, stride, dilation, begin, end) == out


# --- errors, through the library API -------------------------------------------------------

# (op, args, input shapes, format, code, text in the message)
ERRORS = [
    ("conv2d", dict(filters=8, kernel_size=5), [(4, 4, 1)], CL, "E401", "floor((4 + 0 + 0 - 1*(5-1) - 1) / 1) + 1 = 0"),
    ("conv2d", dict(filters=8, kernel_size=3, strides=2, padding=((0, 0), (0, 0))), [(8, 2, 1)], CL, "E401", "width"),
    ("maxpool2d", dict(pool_size=3), [(2, 8, 1)], CL, "E401", "height"),
    ("avgpool2d", dict(pool_size=3), [(8, 1, 8)], CF, "E401", "height"),
    ("depthwise_conv2d", dict(kernel_size=3, dilation_rate=3), [(6, 6, 1)], CL, "E401", "dilation 3"),
    ("conv2d", dict(filters=8, kernel_size=3, groups=4), [(8, 8, 6)], CL, "E402", "6 % 4 = 2"),
    ("conv2d", dict(filters=6, kernel_size=3, groups=4), [(8, 8, 8)], CL, "E402", "filters=6"),
    ("conv2d", dict(filters=8, kernel_size=3, strides=2, dilation_rate=2), [(9, 9, 1)], CL, "E306", "dilation"),
    ("conv2d", dict(filters=8, kernel_size=3), [(8, 8, None)], CL, "E404", "channel"),
    ("dense", dict(units=8), [(None,)], CL, "E404", "known"),
    ("batchnorm", dict(), [(4, None)], CL, "E404", "axis"),
    ("conv2d", dict(filters=8, kernel_size=3), [(16,)], CL, "E405", "3-D"),
    ("global_avgpool2d", dict(), [(16, 4)], CL, "E405", "3-D"),
    ("reshape", dict(target_shape=(5, 5)), [(4, 4, 2)], CL, "E406", "32"),
    ("reshape", dict(target_shape=(3, -1)), [(4, 4, 2)], CL, "E406", "multiple of 3"),
    ("batchnorm", dict(axis=4), [(8, 8, 3)], CL, "E306", "axis 4"),
    ("softmax", dict(axis=0), [(8,)], CL, "E306", "batch"),
    # an op given a tensor of a rank it cannot take names both
    ("conv1d", dict(filters=8, kernel_size=3), [(28, 28, 1)], CL, "E405", "conv1d needs a 2-D input (L, C)"),
    ("conv3d", dict(filters=8, kernel_size=3), [(28, 28, 1)], CL, "E405", "of rank 3"),
    ("maxpool3d", dict(), [(3, 28, 28)], CF, "E405", "(C, D, H, W)"),
    ("global_avgpool1d", dict(), [(4, 4, 4)], CL, "E405", "2-D"),
    ("upsampling2d", dict(), [(16, 4)], CL, "E405", "rank 2"),
    ("conv1d", dict(filters=8, kernel_size=5, padding="valid"), [(4, 1)], CL, "E401", "output length would be 0"),
    ("conv3d", dict(filters=8, kernel_size=(1, 1, 5)), [(4, 4, 4, 1)], CL, "E401", "width"),
    ("conv2d_transpose", dict(filters=8, kernel_size=4, strides=2, padding="same", output_padding=0),
     [(4, 4, 1)], CL, "E410", "output_padding"),
    ("conv1d_transpose", dict(filters=8, kernel_size=3, strides=2, output_padding=2), [(4, 1)], CL, "E306",
     "less than strides"),
    ("conv2d_transpose", dict(filters=8, kernel_size=3, strides=2, dilation_rate=2), [(9, 9, 1)], CL, "E306",
     "dilation"),
    ("cropping2d", dict(cropping=((2, 2), (0, 0))), [(4, 4, 1)], CL, "E401", "4 - 2 - 2"),
    ("cropping1d", dict(cropping=(5, 0)), [(5, 2)], CL, "E401", "length"),
    ("center_crop", dict(height=4, width=4), [(None, 8, 3)], CL, "E404", "height and width"),
    ("conv3d", dict(filters=8, kernel_size=3, groups=4), [(8, 8, 8, 6)], CL, "E402", "6 % 4 = 2"),
    ("conv2d", dict(filters=8, kernel_size=1), [(65536, 65536, 1)], CL, "E501", "too large"),
    ("dense", dict(units=2**16), [(2**16,)], CL, "E501", "kernel"),
]


def _graph_for(op: str, args: dict, shapes: list[tuple], fmt: str) -> Graph:
    opdef = OPS[_canonical(op)]
    return Graph("g", Input("x", shapes[0], fmt), (Node("n", opdef.name, ("x",), make_attrs(opdef.attrs, args)),))


@pytest.mark.parametrize(("op", "args", "shapes", "fmt", "code", "text"), ERRORS,
                         ids=[f"{r[4]}-{r[0]}-{i}" for i, r in enumerate(ERRORS)])
def test_errors(op, args, shapes, fmt, code, text) -> None:
    report = check_graph(_graph_for(op, args, shapes, fmt))
    assert not report.ok
    assert [(d.severity, d.code) for d in report.diagnostics] == [("error", code)]
    assert text in report.diagnostics[0].message
    with pytest.raises(NetspecError) as err:
        report.raise_for_errors()
    assert err.value.diagnostics[0].code == code


MERGE_ERRORS = [
    ("add", dict(), [(4, 4, 8), (4, 4, 3)], "E403", "axis 3: 8 vs 3"),
    ("multiply", dict(), [(4, 4, 8), (3, 8)], "E403", "axis 2: 4 vs 3"),
    ("concat", dict(), [(4, 4, 8), (2, 4, 8)], "E403", "axis 1: 4 vs 2"),
    ("concat", dict(axis=3), [(4, 4, 8), (4, 4)], "E403", "ranks"),
]


@pytest.mark.parametrize(("op", "args", "shapes", "code", "text"), MERGE_ERRORS)
def test_merge_errors(op, args, shapes, code, text) -> None:
    opdef = OPS[op]
    with pytest.raises(NodeProblem) as err:
        analyze_node(op, make_attrs(opdef.attrs, args), list(shapes), [None] * len(shapes))
    assert err.value.code == code and text in err.value.message


@pytest.mark.parametrize(("op", "args", "code"), [
    ("conv2d", dict(filters=0, kernel_size=3), "E306"),      # a size below 1
    ("conv2d", dict(filters=8, kernel_size=(3, 0)), "E306"),
    ("conv2d", dict(filters=8, kernel_size=3, strides=0), "E306"),
    ("conv2d", dict(filters=8, kernel_size=3, groups=0), "E306"),
    ("conv2d", dict(filters=8, kernel_size=3, padding=-1), "E306"),
    ("conv2d", dict(filters=8.0, kernel_size=3), "E305"),
    ("conv2d", dict(filters=8), "E301"),
    ("conv2d", dict(filters=8, kernel_size=3, padding="sam"), "E303"),
    ("conv2d", dict(filters=8, kernel_size=(1, 2, 3)), "E302"),
    ("conv2d", dict(filters=8, kernel_size=3, padding="causal"), "E303"),  # causal is conv1d's only
    ("depthwise_conv1d", dict(kernel_size=3, padding="causal"), "E303"),  # as Keras
    ("conv1d", dict(filters=8, kernel_size=(3, 3)), "E302"),
    ("conv3d", dict(filters=8, kernel_size=3, padding=(1, 2)), "E302"),  # a tuple per axis: three
    ("conv2d_transpose", dict(filters=8, kernel_size=3, padding=1), "E302"),  # 'valid' or 'same' only
    ("cropping2d", dict(cropping=(1, 2, 3)), "E302"),
    ("cropping3d", dict(cropping=-1), "E306"),
    ("upsampling2d", dict(interpolation="bilinaer"), "E303"),
    ("upsampling1d", dict(size=0), "E306"),
    ("resizing", dict(height=8), "E301"),
    ("dropout", dict(rate=1.0), "E306"),
    ("dense", dict(units=2**40), "E501"),
])
def test_argument_errors(op: str, args: dict, code: str) -> None:
    with pytest.raises(ArgError) as err:
        make_attrs(OPS[op].attrs, args)
    assert err.value.code == code


def test_groups_and_sizes_through_source() -> None:
    # The same rules end to end: a .net text that breaks two of them reports both.
    text = (
        "network n {\n"
        "    input x: [8, 8, 6]\n"
        "    a = conv2d(8, 3, groups=4)\n"
        "    b = x -> conv2d(8, 9)\n"
        "}\n"
    )
    with pytest.raises(NetspecError) as err:
        load_source(text)
    found = [(d.code, d.span.line, d.span.column) for d in err.value.diagnostics]
    assert found == [("E402", 3, 29), ("E401", 4, 24)]
