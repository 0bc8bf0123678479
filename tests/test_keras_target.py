"""The Keras target: the model is exactly the network the spec describes.

For every spec in specs/: Keras's parameter counts and every layer's output
shape equal the checker's, and on the same weights every layer's output
equals the NumPy executor's (relative error <= 1e-4).  Small networks
written here cover every op and argument (channels_first, groups,
dilation, explicit padding, every activation, batchnorm's options, merges
that broadcast, unknown sizes), with random weights so that batchnorm and
biases are not trivially 1 and 0.  Weights travel both ways: ``.npz`` into
the model, a trained ``.keras`` back to ``.npz`` that the NumPy executor
(and the ONNX graph) run unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import load_first

import netspec
from netspec.core.argtypes import KerasObject
from netspec.core.check import NetworkReport
from netspec.core.ops import OPS

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from netspec.targets import keras_model as km  # noqa: E402  (after the skip: it needs TensorFlow)

pytestmark = pytest.mark.keras

# Exact float32 on a GPU too (TensorFloat-32 would cost three digits).
__import__("tensorflow").config.experimental.enable_tensor_float_32_execution(False)

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.net"))
NETSPEC = [sys.executable, "-m", "netspec.cli"]
#: The output check runs a spec only when one sample costs at most this many MACs (all of specs/ today).
MAX_TEST_MACS = 20e9
TOLERANCE = 1e-4


def _numpy_exec() -> Any:
    try:
        from netspec.targets import numpy_exec
    except ImportError as err:  # written by another developer; the lead runs everything at the end
        pytest.skip(f"netspec.targets.numpy_exec is not available yet: {err}")
    return numpy_exec


def _random_weights(net: NetworkReport, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights with no structure to hide behind: every batchnorm statistic and bias random."""
    rng = np.random.default_rng(seed)
    out = {}
    for node in net.graph.nodes:
        for spec in net.layers[node.name].weights:
            w = rng.standard_normal(spec.shape).astype(np.float32)
            if spec.name == "moving_variance":
                w = np.abs(w) + 0.5
            elif spec.name in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                w *= 1 / np.sqrt(max(1, int(np.prod(spec.shape[:-1]))))
            out[f"{node.name}/{spec.name}"] = w
    return out


def _layer_outputs(model: Any, names: list[str], x: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    out = probe(x if isinstance(x, list) else [x], training=False)
    return [np.asarray(y) for y in (out if isinstance(out, (list, tuple)) else [out])]


def _assert_same_as_numpy(net: NetworkReport, weights: dict[str, np.ndarray], x: np.ndarray | list[np.ndarray]
                          ) -> None:
    """Every layer's Keras output equals the NumPy executor's, relative to the layer's largest value.

    ``x`` is one batch, or a list of one batch per input.
    """
    numpy_exec = _numpy_exec()
    model = km.to_keras(net, weights)
    names = [n.name for n in net.graph.nodes]
    xs = x if isinstance(x, list) else [x]
    reference = numpy_exec.executor(net, weights).activations(*xs)
    for name, got in zip(names, _layer_outputs(model, names, x)):
        want = reference[name]
        assert got.shape == want.shape, f"{name}: Keras {got.shape} vs NumPy {want.shape}"
        scale = max(float(np.abs(want).max()), 1e-30)
        err = float(np.abs(got - want).max()) / scale
        assert err <= TOLERANCE, f"{net.name}/{name}: relative error {err:.2e} > {TOLERANCE}"
    # and in graph mode, as predict() and fit() run it, every output in order
    got = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    assert len(got) == len(net.graph.outputs)
    for output, y in zip(net.graph.outputs, got):
        want = reference[output]
        err = float(np.abs(y - want).max()) / max(float(np.abs(want).max()), 1e-30)
        assert err <= TOLERANCE, f"{net.name}: predict() output {output!r} relative error {err:.2e} > {TOLERANCE}"


def _assert_counts_and_shapes(net: NetworkReport, model: Any) -> None:
    assert model.count_params() == net.total_params
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    assert (trainable, non_trainable) == net.params
    assert [t.name for t in model.inputs] == [i.name for i in net.graph.inputs]
    assert [tuple(t.shape[1:]) for t in model.inputs] == [i.shape for i in net.graph.inputs]
    for node in net.graph.nodes:
        layer = model.get_layer(node.name)
        assert tuple(layer.output.shape[1:]) == net.layers[node.name].shape, node.name
        assert sum(int(np.prod(w.shape)) for w in layer.weights) == net.layers[node.name].params, node.name
    assert [tuple(t.shape[1:]) for t in model.outputs] == list(net.output_shapes)
    assert list(model.output_names) == list(net.graph.outputs)


# --- the lowering table ------------------------------------------------------------------------------


def test_every_op_has_a_lowering() -> None:
    assert set(km.LOWERINGS) == set(OPS)


def test_importing_netspec_does_not_import_tensorflow() -> None:
    code = ("import sys, netspec, netspec.targets, netspec.targets.keras_model, netspec.targets.training; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- specs/ ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_counts_and_shapes(path: Path) -> None:
    net = load_first(path)
    _assert_counts_and_shapes(net, km.build_model(net))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_outputs_equal_numpy(path: Path) -> None:
    net = load_first(path)
    if net.macs is None or net.macs > MAX_TEST_MACS:
        pytest.skip(f"{path.name}: {net.macs} MACs per sample is more than a test's time allows")
    from netspec.targets.weights import init_weights

    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, *i.shape)).astype(np.float32) for i in net.graph.inputs]
    _assert_same_as_numpy(net, init_weights(net, seed=0), xs if len(xs) > 1 else xs[0])


def test_spec_list_is_not_empty() -> None:
    assert SPECS, "specs/ holds no .net files"


# --- every op and argument ------------------------------------------------------------------------

FEATURES = """
network convs {
    input x: [11, 11, 4]
    conv2d(8, 3, padding=1, groups=2, activation='relu', name='grouped')
    conv2d(8, 3, dilation_rate=2, padding='same', activation='elu', use_bias=false, name='dilated')
    conv2d(6, (2, 3), strides=(2, 1), padding=((0, 1), (2, 0)), activation='leaky_relu', name='asym')
    depthwise_conv2d(3, strides=2, padding='same', depth_multiplier=2, activation='gelu', name='dw')
    separable_conv2d(5, 3, padding=1, depth_multiplier=2, activation='swish', name='sep')
    depthwise_conv2d(3, padding='same', dilation_rate=2, use_bias=false, name='dw_dilated')
    separable_conv2d(4, 3, padding='same', dilation_rate=(1, 2), activation='selu', name='sep_dilated')
    conv2d(4, 1, strides=2, padding='same', activation='hard_sigmoid', name='pointwise')
    conv2d(4, 3, strides=2, padding=((1, 1), (1, 2)), groups=4, activation='tanh', name='strided_grouped')
}

network pools {
    input x: [9, 10, 3]
    a = maxpool2d(3, strides=2, padding='same', name='max_same')
    b = x -> avgpool2d(3, strides=2, padding='same', name='avg_same')
    c = x -> maxpool2d(3, strides=2, padding=1, name='max_pad')
    d = x -> avgpool2d(3, strides=2, padding=1, name='avg_pad')
    e = x -> avgpool2d(2, strides=2, name='avg_valid') -> zeropad2d(((1, 0), (0, 0)), name='zp')
    g = x -> global_avgpool2d(keepdims=true, name='gap')
    s = add(a, b, name='sum')
    m = multiply(c, g, name='scaled')
    concat(s, m, d, e, axis=-1, name='cat')
    global_maxpool2d(name='gmp')
}

network heads {
    input x: [6, 6, 2]
    conv2d(4, 3, padding='same', name='c')
    batchnorm(momentum=0.9, epsilon=0.01, name='bn')
    relu(max_value=2.0, negative_slope=0.1, threshold=0.5, name='relu')
    leaky_relu(0.2, name='leaky')
    elu(0.5, name='elu')
    batchnorm(center=false, scale=false, name='bn_plain')
    batchnorm(axis=1, name='bn_rows')
    reshape((36, 4), name='rs')
    dense(5, activation='selu', name='dense3d')
    softmax(axis=1, name='sm')
    activation('softplus', name='sp')
    softplus(name='sp2')
    softsign(name='ss')
    gelu(name='ge')
    swish(name='sw')
    hard_sigmoid(name='hs')
    selu(name='se')
    tanh(name='th')
    sigmoid(name='sg')
    exponential(name='ex')
    linear(name='lin')
    dropout(0.3, name='drop')
    flatten(name='flat')
    dense(3, activation='softmax', name='out')
}

network first {
    input x: [3, 10, 9] channels_first
    conv2d(6, 3, padding='same', groups=3, activation='relu', name='cf_grouped')
    conv2d(6, 3, dilation_rate=2, padding=1, name='cf_dilated')
    batchnorm(axis=1, name='cf_bn')
    depthwise_conv2d(3, padding='same', name='cf_dw')
    separable_conv2d(4, 3, strides=2, padding='same', name='cf_sep')
    t = maxpool2d(2, padding=((0, 1), (1, 0)), name='cf_maxpad')
    u = t -> avgpool2d(2, strides=1, padding='same', name='cf_avgsame')
    v = t -> global_maxpool2d(keepdims=true, name='cf_gmp')
    add(u, v, name='cf_add')
    zeropad2d(1, name='cf_zp')
    w = flatten(name='cf_flat')
    dense(4, name='cf_out')
}

network unknown {
    input x: [?, ?, 3]
    conv2d(4, 3, padding='same', activation='relu', name='u_conv')
    maxpool2d(2, padding='same', name='u_pool')
    global_avgpool2d(name='u_gap')
    dense(2, name='u_out')
}

network flat {
    input v: [12]
    dense(8, activation='exponential', use_bias=false, name='fc')
    reshape((2, -1), name='rows')
    softmax(axis=-1, name='sm')
    flatten(name='again')
}

network signal {
    input x: [24, 3]
    conv1d(4, 3, padding='causal', dilation_rate=2, activation='relu', name='causal')
    conv1d(6, 3, strides=2, padding=(1, 0), groups=2, name='strided1d')
    a = depthwise_conv1d(3, padding='same', depth_multiplier=2, name='dw1d')
    b = a -> separable_conv1d(4, 3, padding='same', activation='tanh', name='sep1d')
    c = b -> maxpool1d(2, padding='same', name='max1d') -> upsampling1d(2, name='up1d')
    d = b -> avgpool1d(3, strides=1, padding='same', name='avg1d')
    concat(c, d, name='cat1d')
    conv1d_transpose(4, 3, strides=2, padding='same', output_padding=1, name='deconv1d')
    zeropad1d((1, 2), name='zp1d')
    cropping1d((2, 1), name='crop1d')
    e = global_maxpool1d(keepdims=true, name='gmp1d')
    global_avgpool1d(name='gap1d')
}

network volume {
    input x: [2, 6, 7, 5] channels_first
    conv3d(4, 3, padding='same', activation='relu', name='c3')
    conv3d(4, (1, 3, 3), strides=(1, 2, 2), padding=((0, 0), (1, 1), (0, 1)), groups=2, name='c3s')
    conv3d_transpose(3, 2, strides=(1, 2, 2), name='deconv3d')
    zeropad3d((1, 0, (1, 2)), name='zp3d')
    cropping3d(((0, 1), 1, 0), name='crop3d')
    upsampling3d((1, 2, 1), name='up3d')
    a = maxpool3d(2, padding='same', name='max3d')
    b = a -> avgpool3d((1, 2, 2), strides=1, padding='same', name='avg3d')
    c = b -> global_maxpool3d(keepdims=true, name='gmp3d')
    add(b, c, name='add3d')
    global_avgpool3d(name='gap3d')
}

network decoder {
    input x: [8, 10, 3]
    conv2d_transpose(4, 3, strides=2, padding='same', activation='relu', name='deconv')
    conv2d_transpose(4, (2, 3), strides=(2, 1), output_padding=(1, 0), name='deconv_op')
    conv2d_transpose(2, 3, dilation_rate=2, use_bias=false, name='deconv_dilated')
    cropping2d(((1, 2), (0, 3)), name='crop')
    a = upsampling2d(2, interpolation='bilinear', name='up_bilinear')
    b = a -> upsampling2d((2, 1), name='up_nearest') -> center_crop(20, 30, name='cc')
    c = a -> resizing(20, 30, name='rs_bilinear')
    d = a -> resizing(20, 30, interpolation='bicubic', crop_to_aspect_ratio=true, name='rs_bicubic')
    e = a -> upsampling2d(2, interpolation='lanczos3', name='up_lanczos') -> center_crop(20, 30, name='cc2')
    f = a -> center_crop(40, 40, name='cc_resize') -> resizing(20, 30, interpolation='area', name='rs_area')
    add(b, c, d, e, f, name='sum')
}
"""


def _features() -> dict[str, NetworkReport]:
    report = netspec.check_source(FEATURES)
    nets = {n.name: n for n in report.networks}
    for net in nets.values():
        net.raise_for_errors()
    return nets


@pytest.fixture(scope="module")
def features() -> dict[str, NetworkReport]:
    return _features()


@pytest.mark.parametrize("name", ["convs", "pools", "heads", "first", "unknown", "flat", "signal", "volume", "decoder"])
def test_feature_outputs_equal_numpy(features: dict[str, NetworkReport], name: str) -> None:
    net = features[name]
    shape = tuple(7 if d is None else d for d in net.graph.input.shape)
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    _assert_same_as_numpy(net, _random_weights(net), x)


@pytest.mark.parametrize("name", ["convs", "pools", "heads", "first", "unknown", "flat", "signal", "volume", "decoder"])
def test_feature_counts_and_shapes(features: dict[str, NetworkReport], name: str) -> None:
    _assert_counts_and_shapes(features[name], km.build_model(features[name]))


def test_every_op_is_exercised(features: dict[str, NetworkReport]) -> None:
    used = {node.op for net in features.values() for node in net.graph.nodes}
    from test_ops_layers import NETS  # version 2's layer ops: through Keras (and NumPy, ONNX) there

    used |= {node.op for text, _ in NETS.values() for node in netspec.load_source(text).graph.nodes}
    assert used == set(OPS), f"ops without a Keras test: {sorted(set(OPS) - used)}"


def test_explicit_padding_is_a_named_zero_padding_layer(features: dict[str, NetworkReport]) -> None:
    model = km.build_model(features["pools"])
    pad = model.get_layer("max_pad_pad")
    assert type(pad).__name__ == "ZeroPadding2D"
    assert tuple(map(tuple, pad.padding)) == ((1, 1), (1, 1))
    assert model.get_layer("max_pad").padding == "valid"
    assert model.get_layer("max_same").padding == "same"


def test_channels_first_bias_lands_on_channels_when_width_equals_filters() -> None:
    # Keras 3.15 eagerly adds a channels_first bias along the width when W == filters (see _fix_bias_add).
    net = netspec.load_source("network n { input x: [3, 5, 4] channels_first\n conv2d(4, 3, padding='same', name='c') }")
    weights = _random_weights(net, seed=6)
    model = km.to_keras(net, weights)
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 4)).astype(np.float32)
    no_bias = km.to_keras(net, {**weights, "c/bias": np.zeros(4, np.float32)})
    np.testing.assert_allclose(np.asarray(model(x)) - np.asarray(no_bias(x)),
                               np.broadcast_to(weights["c/bias"][None, :, None, None], (2, 4, 5, 4)), atol=1e-5)


def test_helper_names_never_clash() -> None:
    net = netspec.load_source("""
network n {
    input x: [6, 6, 1]
    conv2d(2, 3, padding=1, name='c')
    conv2d(2, 1, name='c_pad')
}""")
    model = km.build_model(net)
    assert [layer.name for layer in model.layers] == ["x", "c_pad_1", "c", "c_pad"]
    assert type(model.get_layer("c_pad")).__name__ == "Conv2D"


OBJECTS = """
network objects {
    input x: [6, 6, 2]
    conv2d(4, 3, padding='same', kernel_initializer=he_normal(seed=3), bias_initializer=constant(0.1),
           kernel_regularizer=l1_l2(l1=0.01, l2=0.02), bias_regularizer='l2', activity_regularizer=l1(0.001),
           kernel_constraint=max_norm(3), bias_constraint='non_neg', name='c')
    depthwise_conv2d(3, padding='same', depthwise_initializer=random_uniform(-0.1, 0.1, seed=1),
                     depthwise_regularizer=l2(0.001), depthwise_constraint=unit_norm(axis=0),
                     bias_initializer='ones', activity_regularizer='l2', name='dw')
    separable_conv2d(3, 3, pointwise_initializer='lecun_normal', depthwise_initializer=glorot_normal(seed=5),
                     pointwise_regularizer=l1_l2(0.01),
                     pointwise_constraint=min_max_norm(0.1, 1.5, 0.5), depthwise_constraint='non_neg',
                     bias_regularizer=l1(0.3), bias_constraint=max_norm(1.0, axis=0), name='sep')
    batchnorm(gamma_initializer=random_normal(1.0, 0.02), beta_initializer=truncated_normal(stddev=0.1),
              moving_mean_initializer='zeros', moving_variance_initializer=constant(2.0),
              beta_regularizer='l2', gamma_regularizer=l1(0.05), gamma_constraint='non_neg',
              beta_constraint=max_norm(2), name='bn')
    flatten()
    dense(3, kernel_initializer=variance_scaling(2.0, 'fan_out', 'uniform', seed=9),
          bias_initializer=he_uniform(seed=4), kernel_regularizer=orthogonal_regularizer(0.02, 'columns'),
          activity_regularizer=l2(0.5),
          kernel_constraint=unit_norm(), bias_constraint=min_max_norm(), use_bias=true, name='fc')
}
"""


def _config(obj: Any) -> dict:
    config = dict(obj.get_config())
    return config


def test_initializers_regularizers_constraints_reach_the_layers() -> None:
    net = netspec.load_source(OBJECTS)
    model = km.build_model(net)
    checked = 0
    for node in net.graph.nodes:
        layer = model.get_layer(node.name)
        for field in type(node.attrs).__dataclass_fields__:
            value = getattr(node.attrs, field)
            if not isinstance(value, KerasObject) and not (
                    value is None and field.endswith(("_regularizer", "_constraint"))):
                continue
            got = getattr(layer, field)
            if value is None:
                assert got is None, f"{node.name}.{field}"
                continue
            table = (km._INITIALIZERS if field.endswith("_initializer") else
                     km._REGULARIZERS if field.endswith("_regularizer") else km._CONSTRAINTS)
            assert type(got).__name__ == table[value.name], f"{node.name}.{field}"
            config = _config(got)
            for key, want in value.kwargs:
                assert config[key] == pytest.approx(want) if isinstance(want, float) else config[key] == want, (
                    f"{node.name}.{field}.{key}: {config[key]!r} != {want!r}")
            checked += 1
    assert checked >= 25


def test_activity_regularizers_add_losses() -> None:
    net = netspec.load_source(OBJECTS)
    model = km.to_keras(net)
    model(np.ones((2, 6, 6, 2), np.float32), training=True)
    regularized = [(node.name, f) for node in net.graph.nodes for f in type(node.attrs).__dataclass_fields__
                   if f.endswith("_regularizer") and getattr(node.attrs, f) is not None]
    assert any(f == "activity_regularizer" for _, f in regularized)
    assert len(model.losses) == len(regularized)


def test_layer_arguments_are_carried(features: dict[str, NetworkReport]) -> None:
    model = km.build_model(features["convs"])
    grouped = model.get_layer("grouped").get_config()
    assert (grouped["groups"], grouped["activation"], tuple(grouped["kernel_size"])) == (2, "relu", (3, 3))
    dilated = model.get_layer("dilated").get_config()
    assert (tuple(dilated["dilation_rate"]), dilated["use_bias"], dilated["padding"]) == ((2, 2), False, "same")
    assert model.get_layer("dw").get_config()["depth_multiplier"] == 2
    assert model.get_layer("sep_dilated").get_config()["dilation_rate"] == (1, 2)
    first = km.build_model(features["first"])
    assert {first.get_layer(n).get_config()["data_format"] for n in ("cf_grouped", "cf_dw", "cf_sep",
                                                                     "cf_maxpad", "cf_flat")} == {"channels_first"}
    heads = km.build_model(features["heads"])
    relu = heads.get_layer("relu").get_config()
    assert (relu["max_value"], relu["negative_slope"], relu["threshold"]) == (2.0, 0.1, 0.5)
    bn = heads.get_layer("bn").get_config()
    assert (bn["momentum"], bn["epsilon"], bn["axis"]) == (0.9, 0.01, -1)
    assert heads.get_layer("drop").get_config()["rate"] == 0.3


# --- weights both ways ------------------------------------------------------------------------------------


SMALL = """
network small {
    input x: [10, 10, 1]
    conv2d(4, 3, padding=1, activation='relu', name='conv')
    batchnorm(name='bn')
    depthwise_conv2d(3, name='dw')
    maxpool2d(2, name='pool')
    flatten(name='flat')
    dense(5, activation='softmax', name='fc')
}
"""


@pytest.fixture(scope="module")
def lenet() -> NetworkReport:
    return netspec.load_source(SMALL)


def test_npz_weights_load_into_the_model(lenet: NetworkReport, tmp_path: Path) -> None:
    from netspec.targets.weights import save_weights

    weights = _random_weights(lenet, seed=3)
    npz = tmp_path / "w.npz"
    save_weights(weights, npz)
    out = tmp_path / "m.keras"
    km.compile_keras(lenet, out, weights=npz)
    model = keras.models.load_model(out)
    for key, value in weights.items():
        layer, name = key.split("/")
        got = {v.name: v.numpy() for v in model.get_layer(layer).weights}[name]
        np.testing.assert_array_equal(got, value)


def test_depthwise_kernel_is_read_under_either_name(lenet: NetworkReport) -> None:
    weights = _random_weights(lenet, seed=4)
    weights["dw/depthwise_kernel"] = weights.pop("dw/kernel")
    model = km.to_keras(lenet, weights)
    np.testing.assert_array_equal(model.get_layer("dw").kernel.numpy(), weights["dw/depthwise_kernel"])


def test_trained_keras_weights_run_in_numpy_and_onnx(lenet: NetworkReport, tmp_path: Path) -> None:
    numpy_exec = _numpy_exec()
    model = km.to_keras(lenet, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(5).standard_normal((16, 10, 10, 1)).astype(np.float32)
    model.fit(x, np.arange(16) % 5, epochs=2, verbose=0)  # moves every weight, batchnorm statistics too
    trained = tmp_path / "trained.keras"
    km.save_model(model, trained)

    exported = km.weights_from_keras(lenet, trained)
    in_memory = km.weights_from_keras(lenet, model)
    assert all(np.array_equal(in_memory[k], exported[k]) for k in exported)
    for layer in ("conv", "bn", "dw", "fc"):
        for var in model.get_layer(layer).weights:
            np.testing.assert_array_equal(exported[f"{layer}/{var.name}"], var.numpy())
    assert not np.allclose(exported["bn/moving_mean"], 0)

    want = model.predict(x, verbose=0)
    np.testing.assert_allclose(numpy_exec.executor(lenet, str(trained))(x), want, rtol=1e-4, atol=1e-6)
    try:
        import onnxruntime as ort

        from netspec.targets.onnx_model import to_onnx
    except ImportError as err:
        pytest.skip(f"ONNX target not available: {err}")
    graph = to_onnx(lenet, str(trained))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_cli_compile_keras_and_export_back(lenet: NetworkReport, tmp_path: Path) -> None:
    spec = tmp_path / "small.net"
    spec.write_text(SMALL)
    out = tmp_path / "m.keras"
    run = subprocess.run([*NETSPEC, "compile", str(spec), "--target", "keras", "-o", str(out), "--seed", "7"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "", f"TensorFlow noise on stderr: {run.stderr!r}"
    model = keras.models.load_model(out)
    assert model.count_params() == lenet.total_params
    from netspec.targets.weights import init_weights

    seeded = init_weights(lenet, seed=7)
    np.testing.assert_array_equal(model.get_layer("conv").kernel.numpy(), seeded["conv/kernel"])

    npz = tmp_path / "w.npz"
    back = subprocess.run([*NETSPEC, "compile", str(spec), "--target", "numpy", "--weights", str(out),
                           "-o", str(npz)], capture_output=True, text=True, cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    with np.load(npz) as data:
        assert sorted(data.files) == sorted(seeded)
        for key in data.files:
            np.testing.assert_array_equal(data[key], seeded[key])


# --- errors ------------------------------------------------------------------------------------------------


def _codes(err: pytest.ExceptionInfo) -> list[str]:
    return [d.code for d in err.value.diagnostics]


def test_wrong_weights_are_e601(lenet: NetworkReport) -> None:
    weights = _random_weights(lenet)
    weights["conv/kernel"] = np.zeros((3, 3, 2, 4), np.float32)
    del weights["fc/bias"]
    with pytest.raises(netspec.NetspecError) as err:
        km.to_keras(lenet, weights)
    assert set(_codes(err)) == {"E601"}
    text = str(err.value)
    assert "conv/kernel" in text and "(3, 3, 2, 4)" in text and "(3, 3, 1, 4)" in text and "fc/bias" in text


def test_keras_model_of_another_network_is_e601(lenet: NetworkReport, tmp_path: Path) -> None:
    other = netspec.load_source("network o { input x: [10, 10, 1]\n conv2d(4, 5, name='conv') }")
    path = tmp_path / "other.keras"
    km.compile_keras(other, path)
    with pytest.raises(netspec.NetspecError) as err:
        km.weights_from_keras(lenet, path)
    assert set(_codes(err)) == {"E601"}
    assert "'bn'" in str(err.value) and "other.keras" in str(err.value)


def test_unreadable_keras_file_is_e603(lenet: NetworkReport, tmp_path: Path) -> None:
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    for path in (bad, tmp_path / "missing.keras"):
        with pytest.raises(netspec.NetspecError) as err:
            km.weights_from_keras(lenet, path)
        assert _codes(err) == ["E603"]


def test_output_must_be_a_keras_file(lenet: NetworkReport, tmp_path: Path) -> None:
    with pytest.raises(netspec.NetspecError) as err:
        km.compile_keras(lenet, tmp_path / "model.h5")
    assert _codes(err) == ["E603"] and "model.keras" in str(err.value)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("layer", [
    "conv2d(2, 3, kernel_regularizer=orthogonal_regularizer())",
    "conv2d(2, 3, activity_regularizer=orthogonal_regularizer())",
    "conv2d(2, 3, kernel_constraint=max_norm(axis=4))",
    "conv2d(2, 3, bias_constraint=unit_norm(axis=1))",
])
def test_what_keras_rejects_when_training_is_e605_up_front(layer: str) -> None:
    net = netspec.load_source(f"network n {{ input x: [5, 5, 1]\n {layer} }}")
    with pytest.raises(netspec.NetspecError) as err:
        km.build_model(net)
    assert _codes(err) == ["E605"] and "conv2d" in str(err.value)


def test_a_graph_built_in_python_is_checked_then_built() -> None:
    from netspec.core import ops
    from netspec.core.ir import Graph, Input, Node

    graph = Graph("py", Input("x", (4,)), (Node("fc", "dense", ("x",), ops.Dense(units=3, activation="tanh")),))
    model = km.to_keras(graph, {"fc/kernel": np.eye(4, 3, dtype=np.float32), "fc/bias": np.zeros(3, np.float32)})
    np.testing.assert_allclose(model.predict(np.ones((1, 4), np.float32), verbose=0), np.tanh([[1.0, 1.0, 1.0]]),
                               rtol=1e-6)
    bad = Graph("bad", Input("x", (4, 4, 1)), (Node("c", "conv2d", ("x",), ops.Conv2D(filters=2, kernel_size=(5, 5))),))
    with pytest.raises(netspec.NetspecError):
        km.to_keras(bad)


@pytest.mark.parametrize("name", ["signal", "volume", "decoder"])
def test_spatial_weights_round_trip_through_a_keras_file(features: dict[str, NetworkReport], name: str,
                                                         tmp_path: Path) -> None:
    # Keras's weight names and layouts both ways: a transposed kernel (F..., filters, C_in), a 1-D
    # depthwise kernel (F, C, multiplier), a 3-D kernel, written into a .keras file and read back.
    net = features[name]
    weights = _random_weights(net, seed=3)
    path = tmp_path / f"{name}.keras"
    km.compile_keras(net, path, weights=_save(weights, tmp_path / "w.npz"))
    back = km.weights_from_keras(net, path)
    assert set(back) == set(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


def _save(weights: dict[str, np.ndarray], path: Path) -> Path:
    from netspec.targets.weights import save_weights

    save_weights(weights, path)
    return path
