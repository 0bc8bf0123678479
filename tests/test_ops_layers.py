"""Version 2's layer ops: Keras layer by layer, all three targets, the language around them.

- Every row of tests/layer_rows.py is built as the Keras layer itself (not
  through a netspec target) on a symbolic input: output shape,
  ``count_params()`` and the trainable split must equal ``check``'s.
- Small networks that use every op (and every activation, as an op, as
  ``activation('NAME')`` and as ``activation=``) run through NumPy, Keras
  and ONNX, which must agree within the differential test's tolerance.
- Number operands of merges, ``trainable=false``, ``threshold`` as a
  string, and the weights of ``layer_scale`` / ``normalization`` through a
  ``.keras`` file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from layer_rows import LAYER_ROWS

import netspec
from netspec.core.argtypes import ACTIVATIONS
from netspec.core.check import analyze_node
from netspec.core.diagnostics import NetspecError
from netspec.core.ops import OPS, canonical_op, make_attrs

CL, CF = "channels_last", "channels_first"


def _attrs(op: str, args: dict, fmt: str) -> Any:
    opdef = OPS[canonical_op(op)]
    return opdef.normalize(make_attrs(opdef.attrs, args), fmt)


# --- Keras, layer by layer --------------------------------------------------------------------------


def keras_layer(keras: Any, op: str, a: Any) -> Any:
    """The Keras layer a user would write for one row."""
    L = keras.layers
    if op == "layernorm":
        kw = {"rms_scaling": True} if a.rms_scaling else {}
        return L.LayerNormalization(axis=list(a.axis) if isinstance(a.axis, tuple) else a.axis,
                                    epsilon=a.epsilon, center=a.center, scale=a.scale, **kw)
    if op == "groupnorm":
        return L.GroupNormalization(a.groups, a.axis, a.epsilon, a.center, a.scale)
    if op == "normalization":
        return L.Normalization(axis=a.axis, mean=a.mean, variance=a.variance, invert=a.invert)
    if op == "rescaling":
        return L.Rescaling(a.scale, a.offset)
    if op == "unit_normalization":
        return L.UnitNormalization(axis=list(a.axis) if isinstance(a.axis, tuple) else a.axis)
    if op == "layer_scale":
        from keras.src.applications.convnext import LayerScale

        return LayerScale(a.init_values, None)
    if op == "prelu":
        return L.PReLU(shared_axes=list(a.shared_axes) if a.shared_axes else None)
    if op in ("add", "subtract", "multiply", "average", "maximum", "minimum"):
        return getattr(L, op.capitalize())()
    if op.startswith("spatial_dropout"):
        return getattr(L, f"SpatialDropout{op[-2:].upper()}")(a.rate)
    if op == "gaussian_noise":
        return L.GaussianNoise(a.stddev)
    if op == "gaussian_dropout":
        return L.GaussianDropout(a.rate)
    if op == "alpha_dropout":
        return L.AlphaDropout(a.rate)
    if op == "permute":
        return L.Permute(a.dims)
    if op == "conv2d":
        return L.Conv2D(a.filters, a.kernel_size, activation=a.activation)
    if op == "activation":
        return L.Activation(a.activation)
    fields = {f: getattr(a, f) for f in a.__dataclass_fields__}
    if fields:  # an activation with arguments (Keras's Activation layer cannot pass them)
        from netspec.targets.keras_layers import custom_objects

        return custom_objects()["ActivationWithArgs"](op, fields)
    return L.Activation(op)


@pytest.fixture(scope="module")
def keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("tensorflow")
    from netspec.targets.keras_model import import_keras

    return import_keras()


@pytest.mark.keras
@pytest.mark.parametrize(("op", "args", "shapes", "fmt", "shape", "params"), LAYER_ROWS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(LAYER_ROWS)])
def test_row_matches_keras(keras: Any, op: str, args: dict, shapes: list, fmt: str, shape: tuple,
                           params: int) -> None:
    name = canonical_op(op)
    a = _attrs(op, args, fmt)
    info, _ = analyze_node(name, a, list(shapes), [None] * len(shapes))
    if getattr(a, "constants", ()):
        pytest.skip("number operands have no Keras merge layer of their own (see test_number_operands_*)")
    layer = keras_layer(keras, name, a)
    if name == "layer_scale":
        layer.projection_dim = shapes[0][-1]
    inputs = [keras.Input(shape=s) for s in shapes]
    out = layer(inputs if len(inputs) > 1 else inputs[0])
    if name in ("glu", "activation") or getattr(a, "activation", None) == "glu":
        # Keras's symbolic shape does not halve glu's axis; its value does.
        x = [np.zeros((1, *s), np.float32) for s in shapes]
        got = tuple(np.asarray(layer(x if len(x) > 1 else x[0])).shape[1:])
    else:
        got = tuple(out.shape[1:])
    assert got == info.shape == shape
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert (layer.count_params(), trainable) == (info.params, info.trainable) == (params, info.trainable)


def test_every_activation_is_an_op() -> None:
    for name in ACTIVATIONS:
        assert canonical_op(name) is not None, name
    assert canonical_op("hard_swish") == "hard_silu" and canonical_op("silu") == "swish"


# --- all three targets -----------------------------------------------------------------------------

NETS = {
    "norms": ("""
network norms {
    input x: [6, 5, 8]
    rescaling((0.5, 0.25, 2.0, 1.0, 1.5, 0.75, 1.25, 3.0), offset=-1.0)
    normalization()
    normalization(mean=(1, 2, 3, 4, 5, 6, 7, 8), variance=(1, 4, 9, 16, 0.5, 2, 3, 4))
    normalization(axis=(1, 2), invert=true)
    layernorm()
    layernorm(axis=(1, 2), epsilon=1e-5)
    layernorm(rms_scaling=true)
    layernorm(center=false)
    groupnorm(4)
    groupnorm(2, scale=false)
    unit_normalization()
    unit_normalization(axis=(1, 2))
    layer_scale(init_values=0.5)
    prelu(shared_axes=(1, 2))
    prelu()
}
""", (6, 5, 8)),
    "cf_norms": ("""
network cf_norms {
    input x: [4, 5, 6] channels_first
    conv2d(4, 3, padding='same')
    layernorm(axis=1)
    groupnorm(2, axis=1)
    normalization(axis=1)
    prelu(shared_axes=(2, 3))
    layer_scale()
    permute((2, 3, 1))
    layernorm()
}
""", (4, 5, 6)),
    "merges": ("""
network merges {
    input x: [6, 6, 4]
    a = conv2d(4, 3, padding='same')
    b = conv2d(4, 1, activation='sigmoid')
    s = a -> global_avgpool2d()
    k = b -> global_avgpool2d(keepdims=true)
    m1 = subtract(a, b)
    m2 = average(m1, b, x)
    m3 = maximum(m2, k)
    m4 = minimum(m3, s, b)
    m5 = multiply(m4, s)
    m6 = add(m5, 3)
    m7 = multiply(1 / 6, m6)
    m8 = subtract(1, m7)
    m9 = average(m8, 2, b, 0.5)
    m10 = maximum(0, m9, b)
    c = minimum(m10, 6, 0.5)
    c -> add(a) -> relu6() -> add(s, 1)
}
""", (6, 6, 4)),
    "activations": ("""
network activations {
    input x: [4, 12]
    y = dense(12, activation='relu6')
    dense(12, activation='hard_swish') -> activation('mish') -> hard_tanh() -> log_sigmoid()
    tanh_shrink() -> sparse_plus() -> sparse_sigmoid() -> relu6() -> hard_silu() -> mish()
    celu() -> celu(alpha=0.5) -> soft_shrink() -> soft_shrink(threshold=0.1) -> hard_shrink(0.2)
    squareplus() -> squareplus(b=1) -> threshold(0.1, -2) -> activation('celu') -> log_softmax()
    dense(12, activation='sparsemax') -> sparsemax() -> sparsemax(axis=1) -> log_softmax(axis=1)
    dense(12, activation='log_softmax') -> activation('sparsemax') -> glu() -> glu(axis=1)
    dense(12) -> activation('glu') -> activation('soft_shrink')
    flatten()
    dense(12, activation='log_sigmoid') -> activation('squareplus') -> activation('hard_shrink')
    activation('tanh_shrink') -> activation('sparse_sigmoid') -> activation('sparse_plus')
    activation('hard_tanh') -> silu() -> swish() -> activation('silu') -> hard_swish()
}
""", (4, 12)),
    "cf_conv_activations": ("""
network cf_conv_activations {
    input x: [4, 6, 6] channels_first
    conv2d(4, 3, padding='same', activation='elu')
    conv2d(6, 1, activation='log_softmax')
    depthwise_conv2d(3, activation='sparsemax')
    conv2d(4, 1, activation='relu6')
    spatial_dropout2d(0.3)
    gaussian_noise(0.2)
    gaussian_dropout(0.2)
    t = alpha_dropout(0.1)
    add(3, t)
}
""", (4, 6, 6)),
    "unknown_sizes": ("""
network unknown_sizes {
    input x: [?, ?, 4]
    groupnorm(2) -> layernorm() -> prelu(shared_axes=(1, 2)) -> unit_normalization(axis=(1, 2))
    sparsemax(axis=1) -> sparsemax() -> log_softmax(axis=2) -> add(1)
}
""", (6, 5, 4)),
    "noise_1d_3d": ("""
network noise_1d_3d {
    input x: [4, 3, 5, 2]
    spatial_dropout3d(0.5)
    reshape((20, 6))
    spatial_dropout1d(0.5)
    permute((2, 1))
    dense(4, activation='celu')
}
""", (4, 3, 5, 2)),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_targets_agree(name: str) -> None:
    from test_differential import differential

    text, shape = NETS[name]
    differential(text, shape, keras=True)


def test_fused_glu_halves_the_layers_last_axis() -> None:
    # NumPy and ONNX layer by layer; Keras runs it as the layer then a helper 'NAME_glu' (its own
    # activation= would report the unhalved shape), so it is compared at the output below.
    from test_differential import differential

    text = ("network g {\n input x: [4, 6, 6] channels_first\n conv2d(4, 3, padding='same', activation='glu')\n"
            " conv2d(6, 1, activation='glu', data_format='channels_last')\n dense(4, activation='glu')\n}\n")
    net = differential(text, (4, 6, 6), keras=False)
    assert [net.layers[n.name].shape for n in net.graph.nodes] == [(4, 6, 3), (4, 6, 3), (4, 6, 2)]


@pytest.mark.keras
def test_fused_glu_in_keras(keras: Any) -> None:
    from netspec.targets.keras_model import to_keras
    from netspec.targets.numpy_exec import executor

    net = _check("network g {\n input x: [6, 6, 4]\n conv2d(8, 3, activation='glu', name='c')\n dense(3)\n}\n")
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 4)).astype(np.float32)
    model = to_keras(net, seed=1)
    assert type(model.get_layer("c_glu")).__name__ == "ActivationWithArgs"
    np.testing.assert_allclose(model(x).numpy(), executor(net, seed=1)(x), rtol=1e-4, atol=1e-5)


def test_every_layer_op_is_exercised() -> None:
    from netspec.core.ops_layers import DEFS

    used = set()
    for text, _ in NETS.values():
        net = netspec.load_source(text)
        used |= {n.op for n in net.graph.nodes}
    assert {d.name for d in DEFS} - used == set()


# --- the language around them -------------------------------------------------------------------------


def _check(text: str) -> Any:
    return netspec.check_source(text).networks[0]


def test_number_operands_anywhere() -> None:
    net = _check("network n {\n input x: [6, 6, 4]\n d = x -> dropout(0.1) -> subtract(2)\n"
                 " y = add(3, d, 0.5)\n multiply(y, 1 / 6)\n}\n")
    nodes = {n.name: n for n in net.graph.nodes}
    assert nodes["add"].inputs == ("subtract",) and nodes["add"].attrs.constants == ((0, 3.0), (2, 0.5))
    assert nodes["multiply"].attrs.constants == ((1, 1 / 6),)
    assert nodes["subtract"].inputs == ("dropout",) and nodes["subtract"].attrs.constants == ((1, 2.0),)


@pytest.mark.parametrize(("body", "code", "text"), [
    ("add(1, 2)", "E302", "at least one tensor"),
    ("subtract(x, x, 1)", "E302", "exactly two"),
    ("add(x)", "E302", "at least two"),
    ("concat(x, 1)", "E302", "tensor names"),
    ("add(x, 'a')", "E302", "tensor names or numbers"),
    ("activation('threshold')", "E303", "threshold(threshold, default_value)"),
    ("dense(3, activation='threshold')", "E303", "threshold"),
    ("glu()", "E415", "odd"),
    ("groupnorm(2)", "E402", "does not divide"),
    ("normalization(mean=1)", "E301", "together"),
    ("normalization(mean=(1, 2), variance=(1, 2))", "E403", "3"),
    ("permute((1, 3))", "E306", "permutation"),
    ("permute((2, 1))", "E405", "3 axes"),
    ("prelu(shared_axes=4)", "E306", "out of range"),
    ("rescaling((1, 2))", "E403", "last axis"),
    ("dense(3, trainable=1)", "E302", "trainable"),
])
def test_errors_are_located(body: str, code: str, text: str) -> None:
    source = f"network n {{\n    input x: [4, 4, 3]\n    {body}\n}}\n"
    net = _check(source)
    errors = [d for d in net.diagnostics if d.is_error]
    assert errors and errors[0].code == code and text in errors[0].message, errors
    assert errors[0].span is not None and errors[0].span.line == 3


def test_trainable_false_moves_counts() -> None:
    net = _check("network n {\n input x: [4]\n dense(3, trainable=false)\n dense(2)\n batchnorm(trainable=false)\n}\n")
    assert net.params == (3 * 2 + 2, 4 * 3 + 3 + 4 * 2)
    assert [n.trainable for n in net.graph.nodes] == [False, True, False]


def test_trainable_in_a_default() -> None:
    net = _check("network n {\n input x: [4]\n default dense(trainable=false)\n dense(3)\n"
                 " dense(2, trainable=true)\n}\n")
    assert net.ok and [n.trainable for n in net.graph.nodes] == [False, True]
    assert net.params == (3 * 2 + 2, 4 * 3 + 3)


@pytest.mark.keras
def test_trainable_false_reaches_keras(keras: Any) -> None:
    from netspec.targets.keras_model import to_keras

    net = _check("network n {\n input x: [4]\n dense(3, trainable=false, name='frozen')\n dense(2)\n}\n")
    model = to_keras(net)
    assert not model.get_layer("frozen").trainable
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == net.params[0]


@pytest.mark.keras
def test_weights_round_trip_through_keras(keras: Any, tmp_path: Any) -> None:
    from netspec.targets.keras_model import compile_keras, weights_from_keras
    from netspec.targets.weights import init_weights

    net = _check("network n {\n input x: [4, 4, 3]\n normalization(name='norm')\n layer_scale(name='ls')\n"
                 " prelu(name='p')\n layernorm(name='ln')\n groupnorm(3, name='gn')\n}\n")
    weights = init_weights(net, 3)
    weights["norm/count"] = np.asarray(7, np.float32)
    weights["ls/gamma"] = np.arange(3, dtype=np.float32)
    np.savez(tmp_path / "w.npz", **weights)
    compile_keras(net, tmp_path / "m.keras", weights=tmp_path / "w.npz")
    back = weights_from_keras(net, tmp_path / "m.keras")
    assert sorted(back) == sorted(weights)
    for key in weights:
        np.testing.assert_array_equal(back[key], weights[key], err_msg=key)


def test_unknown_activation_string_suggests() -> None:
    net = _check("network n {\n input x: [4]\n dense(3, activation='hard_swsh')\n}\n")
    assert "hard_swish" in net.diagnostics[0].message


def test_threshold_needs_both_arguments() -> None:
    with pytest.raises(NetspecError):
        netspec.load_source("network n {\n input x: [4]\n threshold(0.5)\n}\n")


@pytest.mark.parametrize(("op", "shape"), [("spatial_dropout1d", (5, 3)), ("spatial_dropout3d", (2, 3, 4, 5))])
def test_other_ranks_round_trip(op: str, shape: tuple) -> None:
    from netspec import Graph, Input, Node
    from netspec.frontend.printer import to_source

    graph = Graph(op, Input("x", shape), (Node("n", op, ("x",), make_attrs(OPS[op].attrs, {"rate": 0.3})),))
    assert netspec.load_source(to_source(graph)).graph == netspec.check_graph(graph).graph
