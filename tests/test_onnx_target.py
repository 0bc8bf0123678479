"""The ONNX target: valid graphs whose values match ``netspec check`` and the NumPy executor.

Every network here is checked three ways: ``onnx.checker`` (full check),
ONNX's own strict shape inference against the shapes ``check`` reports
(for every layer's value, not only the output), and onnxruntime against
the NumPy reference executor on the same weights, layer by layer, at batch
sizes 3 and 1 (relative error <= 1e-4).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import lively_weights, load_first

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import netspec  # noqa: E402
from netspec.core.diagnostics import NetspecError  # noqa: E402
from netspec.core.ops import OPS  # noqa: E402
from netspec.targets import onnx_model  # noqa: E402
from netspec.targets.onnx_model import (  # noqa: E402
    compile_onnx,
    default_opset,
    inferred_shapes,
    newest_opset,
    to_onnx,
)
from netspec.targets.weights import init_weights, save_weights  # noqa: E402

pytestmark = pytest.mark.onnx

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.net"))
TOLERANCE = 1e-4

try:
    from netspec.targets.numpy_exec import executor
except ImportError:  # pragma: no cover - only while the NumPy target is being written
    executor = None


# --- helpers ------------------------------------------------------------------------------------


def layouts(model) -> dict[str, list[int]]:
    props = {p.key: p.value for p in model.metadata_props}
    return json.loads(props["netspec.layouts"])


def layer_values(model, net) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each layer -> (the value holding its output, its axis order)."""
    stored = layouts(model)
    out = {}
    for node in net.graph.nodes:
        rank = len(net.layers[node.name].shape) + 1
        out[node.name] = (node.name, tuple(stored.get(node.name, range(rank))))
    return out


def feeds(net, x) -> dict[str, np.ndarray]:
    """onnxruntime's feed: ``x`` is one batch (the first input) or a list of one per input."""
    xs = x if isinstance(x, list) else [x]
    return {i.name: v for i, v in zip(net.graph.inputs, xs)}


def run_layers(model, net, x) -> dict[str, np.ndarray]:
    """onnxruntime's value for every layer, in the spec's layout."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    values = layer_values(model, net)
    have = {o.name for o in probe.graph.output}
    for value, _ in values.values():
        if value not in have:
            probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(value))
    names = [o.name for o in probe.graph.output]
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    results = dict(zip(names, sess.run(names, feeds(net, x))))
    return {layer: results[value].transpose(np.argsort(perm)) for layer, (value, perm) in values.items()}


def run_output(model, net, x) -> np.ndarray:
    """The first output; ``x`` as for :func:`feeds`."""
    return run_outputs(model, net, x)[0]


def run_outputs(model, net, x) -> list[np.ndarray]:
    """Every graph output, in order."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds(net, x))


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return float(np.max(np.abs(got - want))) / scale if scale > 0 else float(np.max(np.abs(got), initial=0.0))


def sample(net, batch: int, seed: int = 0, unknown: int = 11):
    """A random batch for the input, or a list of one per input when the network has several."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((batch, *[unknown + i if d is None else d for i, d in enumerate(inp.shape)])
                              ).astype(np.float32) for inp in net.graph.inputs]
    return xs if len(xs) > 1 else xs[0]




def check_shapes(model, net) -> None:
    dims = inferred_shapes(model)
    for layer, (value, perm) in layer_values(model, net).items():
        want = (None, *net.layers[layer].shape)
        assert value in dims, f"shape inference gave no shape for {layer!r}"
        assert dims[value] == [want[p] for p in perm], f"{layer}: inferred {dims[value]}, check says {want}"


def check_all(net, weights, batch_sizes=(3, 1), unknown: int = 11) -> None:
    """Checker, shape inference, and onnxruntime == NumPy executor for every layer."""
    model = to_onnx(net, weights)
    onnx.checker.check_model(model, full_check=True)
    check_shapes(model, net)
    if executor is None:
        pytest.skip("netspec.targets.numpy_exec is not written yet")
    run = executor(net, weights)
    x = sample(net, max(batch_sizes), unknown=unknown)
    xs = x if isinstance(x, list) else [x]
    want = run.activations(*xs)
    got = run_layers(model, net, x)
    for layer, value in got.items():
        assert value.shape == want[layer].shape, layer
        assert rel_err(value, want[layer]) <= TOLERANCE, f"{layer}: relative error {rel_err(value, want[layer])}"
    assert len(model.graph.output) == len(net.graph.outputs)
    for batch in batch_sizes:
        outs = run_outputs(model, net, [v[:batch] for v in xs])
        for output, out in zip(net.graph.outputs, outs):
            assert rel_err(out, want[output][:batch]) <= TOLERANCE, output


# --- hand-written networks, every op and argument form -----------------------------------------

CASES = {
    "conv_forms": """
network conv_forms {
    input x: [9, 10, 3]
    conv2d(4, 3, strides=2, padding='same', activation='relu')
    conv2d(6, (2, 3), padding='same', dilation_rate=2, activation='elu')
    conv2d(6, 3, groups=3, padding=((1, 0), (2, 1)), use_bias=false, activation='tanh')
    depthwise_conv2d(3, depth_multiplier=2, strides=2, padding='same', activation='selu')
    separable_conv2d(5, 3, depth_multiplier=2, padding='same', activation='swish')
    separable_conv2d(4, (1, 2), use_bias=false, dilation_rate=(1, 2), padding='valid')
    maxpool2d(3, strides=2, padding='same')
    flatten()
    dense(7, activation='gelu')
    dense(5, activation='softmax')
}""",
    "pools": """
network pools {
    input x: [8, 9, 2]
    zeropad2d(((1, 2), (0, 1)))
    a = maxpool2d(3, strides=2, padding=1)
    b = x -> avgpool2d(2, padding=((1, 0), (0, 1)))
    c = x -> avgpool2d(3, strides=2, padding='same')
    d = x -> maxpool2d(2, strides=1, padding='same') -> avgpool2d(2, strides=3)
    e = a -> global_maxpool2d(keepdims=true)
    f = b -> global_avgpool2d()
    g = c -> global_avgpool2d(keepdims=true)
    h = d -> global_maxpool2d()
    concat(e, g) -> flatten()
    concat(f, h)
}""",
    "channels_first": """
network channels_first {
    input x: [3, 10, 10] channels_first
    conv2d(4, 3, padding='same', name='conv')
    batchnorm(axis=1) -> relu(max_value=6)
    maxpool2d(2, padding='same')
    conv2d(5, 3, data_format='channels_last', activation='sigmoid')
    zeropad2d(1)
    avgpool2d(2, data_format='channels_last', padding='same')
    softmax(axis=1)
    flatten()
    dense(6)
}""",
    "dense_any_rank": """
network dense_any_rank {
    input x: [6, 5, 4]
    dense(3)
    conv2d(4, 1)
    dense(3, activation='relu')
    batchnorm(axis=2, center=false)
    softmax(axis=1)
    reshape((-1, 3))
    dense(2, use_bias=false, activation='leaky_relu')
    batchnorm(scale=false)
    flatten()
    batchnorm()
}""",
    "merges": """
network merges {
    input x: [8, 8, 3]
    a = conv2d(4, 3, padding='same')
    b = x -> conv2d(4, 3, padding='same')
    gate = a -> global_avgpool2d(keepdims=true) -> sigmoid()
    m = multiply(a, gate)
    s = add(a, b, m)
    t = concat(x, s, axis=-1)
    v = x -> conv2d(7, 1)
    u = concat(t, v, axis=1)
    w = multiply(u, u, u)
    w -> dropout(0.5) -> activation('hard_sigmoid') -> activation('softplus') -> softsign()
    exponential() -> linear() -> leaky_relu() -> activation('leaky_relu') -> elu(alpha=0.5)
    gelu() -> selu() -> swish() -> tanh() -> hard_sigmoid() -> softplus()
    activation('linear') -> activation('exponential') -> softmax()
}""",
    "relu_forms": """
network relu_forms {
    input x: [12]
    h = dense(16)
    a = h -> relu(max_value=6)
    b = h -> relu(negative_slope=0.1)
    c = h -> relu(threshold=0.5)
    d = h -> relu(max_value=2, negative_slope=0.1, threshold=0.5)
    e = h -> relu(max_value=6, threshold=0.3)
    f = h -> relu(max_value=0.7)
    g = h -> relu(negative_slope=0.3, max_value=1.5)
    k = h -> relu()
    concat(a, b, c, d, e, f, g, k)
}""",
    "unknown_sizes": """
network unknown_sizes {
    input x: [?, ?, 3]
    conv2d(4, 3, padding='same', dilation_rate=2)
    maxpool2d(2, padding='same')
    avgpool2d(3, strides=2, padding='same')
    conv2d(4, 3, strides=2, padding='same')
    depthwise_conv2d(3, padding='same')
    batchnorm()
    global_avgpool2d()
    dense(3)
}""",
    "vector_to_image": """
network vector_to_image {
    input x: [12]
    dense(48) -> reshape((4, 4, 3))
    conv2d(2, 3, padding='same')
    reshape((4, -1))
    softmax()
}""",
    "signal": """
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
""",
    "volume": """
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
""",
    "decoder": """
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
""",
    "unknown_spatial": """
network unknown_spatial {
    input x: [?, 3]
    conv1d(4, 3, padding='causal', dilation_rate=2, name='u_causal')
    maxpool1d(3, strides=2, padding='same', name='u_max1d')
    conv1d_transpose(4, 3, strides=2, padding='same', name='u_deconv1d')
    upsampling1d(2, name='u_up1d')
    cropping1d((1, 2), name='u_crop1d')
    reshape((-1, 4, 1), name='u_img')
    conv2d_transpose(2, 2, strides=2, name='u_deconv2d')
    upsampling2d(2, interpolation='bilinear', name='u_bilinear')
    global_avgpool2d(name='u_gap')
}
""",
}


@pytest.fixture(scope="module")
def nets():
    return {name: netspec.load_source(text, filename=f"{name}.net") for name, text in CASES.items()}


def test_every_op_has_a_lowering():
    assert set(onnx_model.LOWERINGS) == set(OPS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hand_written_networks(nets, name):
    net = nets[name]
    check_all(net, lively_weights(net))


@pytest.mark.parametrize("unknown", [11, 8])
def test_unknown_sizes_run_at_several_sizes(nets, unknown):
    net = nets["unknown_sizes"]
    check_all(net, lively_weights(net), batch_sizes=(2,), unknown=unknown)


@pytest.mark.parametrize("opset", sorted({onnx_model.MIN_OPSET, 17, 19, 20, newest_opset(), default_opset()}))
def test_opsets(nets, opset):
    """The activations network (gelu composed before opset 20, Reduce* axes as inputs from 18)."""
    if opset > default_opset():
        pytest.skip(f"onnxruntime {ort.__version__} does not run opset {opset}")
    for name in ("merges", "pools", "decoder", "signal"):
        net = nets[name]
        weights = lively_weights(net)
        model = to_onnx(net, weights, opset=opset)
        assert model.opset_import[0].version == opset
        onnx.checker.check_model(model, full_check=True)
        check_shapes(model, net)
        x = sample(net, 2)
        assert rel_err(run_output(model, net, x), executor(net, weights)(x)) <= TOLERANCE
        ops = {n.op_type for n in model.graph.node}
        if name == "merges":
            assert ("Gelu" in ops) == (opset >= 20)


# --- every spec -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_specs(path):
    net = load_first(path)
    # The segmentation nets do 30-150 GMACs per image: one image is enough to compare every layer.
    check_all(net, lively_weights(net), batch_sizes=(1,) if (net.macs or 0) > 10**10 else (3, 1))


def test_specs_exist():
    assert len(SPECS) >= 7, f"expected the seven reference specs in {ROOT / 'specs'}"


# --- semantics checked by hand ------------------------------------------------------------------


def _run_source(text: str, x: np.ndarray, weights=None) -> np.ndarray:
    net = netspec.load_source(text)
    model = to_onnx(net, weights)
    return run_output(model, net, x)


def test_flatten_order_follows_keras():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    identity = {"c/kernel": np.eye(4, dtype=np.float32).reshape(1, 1, 4, 4), "c/bias": np.zeros(4, np.float32)}
    last = _run_source("network n { input x: [2, 3, 4]\n conv2d(4, 1, name='c')\n flatten() }", x, identity)
    # A 1x1 identity conv forces the NCHW detour; flatten must still read NHWC order.
    np.testing.assert_array_equal(last, x.reshape(1, -1))
    first = _run_source("network n { input x: [2, 3, 4] channels_first\n flatten() }", x)
    np.testing.assert_array_equal(first, x.transpose(0, 2, 3, 1).reshape(1, -1))


def test_pool_padding_semantics():
    x = -np.ones((1, 2, 2, 1), np.float32)
    # Explicit padding is zero padding the max pool sees.
    np.testing.assert_array_equal(
        _run_source("network n { input x: [2, 2, 1]\n maxpool2d(2, padding=1) }", x)[..., 0],
        np.zeros((1, 2, 2)))
    # 'same' max ignores the padding; 'same' average divides by the real cells only.
    np.testing.assert_array_equal(
        _run_source("network n { input x: [2, 2, 1]\n maxpool2d(2, strides=1, padding='same') }", x), x)
    y = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)
    got = _run_source("network n { input x: [2, 2, 1]\n avgpool2d(2, strides=1, padding='same') }", y)
    np.testing.assert_allclose(got[0, :, :, 0], [[1.5, 2.0], [2.5, 3.0]])
    # Explicit padding on an average pool divides by the whole window.
    got = _run_source("network n { input x: [2, 2, 1]\n avgpool2d(2, strides=1, padding=((0, 1), (0, 1))) }", y)
    np.testing.assert_allclose(got[0, :, :, 0], [[1.5, 1.0], [1.25, 0.75]])


def test_same_padding_is_asymmetric():
    # A 2x2 window, stride 2 on 3 cells: one pad cell, at the end (bottom/right).
    net = netspec.load_source("network n { input x: [3, 3, 1]\n conv2d(1, 2, strides=2, padding='same', "
                              "kernel_initializer='ones', use_bias=false) }")
    x = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    got = run_output(to_onnx(net), net, x)[0, :, :, 0]
    np.testing.assert_array_equal(got, [[0 + 1 + 3 + 4, 2 + 5], [6 + 7, 8]])
    conv = next(n for n in to_onnx(net).graph.node if n.op_type == "Conv")
    assert [list(a.ints) for a in conv.attribute if a.name == "pads"] == [[0, 0, 1, 1]]


# Keras refuses negative thresholds, slopes and max values, and so does check (E306).
@pytest.mark.parametrize("args", ["max_value=6", "negative_slope=0.1, threshold=0.5",
                                  "max_value=2, negative_slope=0.1, threshold=1.5", "threshold=1.0", "max_value=0"])
def test_relu_matches_the_keras_formula(args):
    x = np.linspace(-3, 8, 23, dtype=np.float32).reshape(1, -1)
    kw = dict(eval(f"dict({args})"))
    slope, top, thr = kw.get("negative_slope", 0.0), kw.get("max_value"), kw.get("threshold", 0.0)
    # keras.activations.relu: x above the threshold, clipped to max_value, minus slope * relu(thr - x).
    want = np.where(x > thr, x, 0.0) if thr != 0 else np.maximum(x, 0.0)
    if top is not None:
        want = np.clip(want, 0.0, top)
    want = want - slope * np.maximum(thr - x, 0.0)
    got = _run_source(f"network n {{ input x: [23]\n relu({args}) }}", x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# --- the graph itself ---------------------------------------------------------------------------


def test_input_keeps_the_spec_layout_and_few_transposes(nets):
    model = to_onnx(nets["conv_forms"])
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 9, 10, 3]
    out = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == ["batch", 5]
    # One transpose into NCHW after the input, one back before flatten.
    assert [n.op_type for n in model.graph.node].count("Transpose") == 2


def test_image_output_is_in_the_spec_layout():
    net = netspec.load_source("network n { input x: [6, 6, 2]\n conv2d(3, 3, name='last') }")
    model = to_onnx(net)
    assert model.graph.output[0].name == "last"
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 4, 4, 3]
    x = sample(net, 2)
    assert rel_err(run_output(model, net, x), executor(net, init_weights(net))(x)) <= TOLERANCE


def test_resnet50_needs_one_transpose():
    net = netspec.load(ROOT / "specs" / "resnet50.net")
    model = to_onnx(net)
    assert [n.op_type for n in model.graph.node].count("Transpose") == 1


def test_names_and_doc_strings_follow_the_spec(nets):
    net = nets["conv_forms"]
    model = to_onnx(net)
    node_names = {n.name for n in model.graph.node}
    values = {o for n in model.graph.node for o in n.output}
    for node in net.graph.nodes:
        assert node.name in values, f"no value named after layer {node.name!r}"
        assert any(name == node.name or name.startswith(node.name + "/") for name in node_names)
    dense = next(n for n in model.graph.node if n.name == "dense_1/gemm")
    assert dense.doc_string.startswith("conv_forms.net:13:5: dense(5, activation='softmax')")
    assert "conv_forms.net" in model.graph.doc_string
    infos = {v.name: v.doc_string for v in model.graph.value_info}
    assert infos["conv2d"].startswith("conv_forms.net:4:5") and "stored as NCHW" in infos["conv2d"]


def test_block_call_sites_in_doc_strings():
    net = netspec.load_source("block unit(n) {\n    conv2d(n, 3, padding='same')\n}\n"
                              "network n {\n    input x: [4, 4, 1]\n    unit(2)\n}\n", filename="blocks.net")
    conv = next(n for n in to_onnx(net).graph.node if n.op_type == "Conv")
    assert conv.doc_string.startswith("blocks.net:2:5:")
    assert "in the block called at blocks.net:6:5" in conv.doc_string


def test_weights_become_initializers_in_onnx_layout(nets):
    net = nets["conv_forms"]
    weights = lively_weights(net)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in to_onnx(net, weights).graph.initializer}
    np.testing.assert_array_equal(inits["conv2d/kernel"], weights["conv2d/kernel"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(inits["dense/kernel"], weights["dense/kernel"])


# --- errors, the file and the command line -------------------------------------------------------


@pytest.mark.parametrize("opset", [onnx_model.MIN_OPSET - 1, newest_opset() + 1, True])
def test_unsupported_opsets_are_refused(nets, opset):
    with pytest.raises(NetspecError) as err:
        to_onnx(nets["relu_forms"], opset=opset)
    assert err.value.diagnostics[0].code == "E605"


def test_default_opset():
    assert 17 <= default_opset() <= newest_opset()
    assert to_onnx(netspec.load_source("network n { input x: [2]\n relu() }")).opset_import[0].version \
        == default_opset()


def test_wrong_weights_are_e601(nets):
    net = nets["relu_forms"]
    weights = init_weights(net)
    weights["dense/kernel"] = weights["dense/kernel"][:3]
    with pytest.raises(NetspecError) as err:
        to_onnx(net, weights)
    assert {d.code for d in err.value.diagnostics} == {"E601"}


def test_compile_writes_whole_files_or_nothing(tmp_path, nets):
    out = tmp_path / "m.onnx"
    compile_onnx(nets["pools"], out, opset=17)
    before = out.read_bytes()
    with pytest.raises(NetspecError):
        compile_onnx(nets["conv_forms"], out, opset=3)
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.onnx"]


def test_cli_compile_with_weights_and_opset(tmp_path):
    from click.testing import CliRunner

    from netspec.cli import main

    spec = tmp_path / "net.net"
    spec.write_text(CASES["vector_to_image"])
    net = netspec.load(spec)
    weights = lively_weights(net, seed=4)
    save_weights(weights, tmp_path / "w.npz")
    out = tmp_path / "net.onnx"
    result = CliRunner().invoke(main, ["compile", str(spec), "--target", "onnx", "-o", str(out),
                                       "--weights", str(tmp_path / "w.npz"), "--opset", "18"])
    assert result.exit_code == 0, result.output
    model = onnx.load(out)
    assert model.opset_import[0].version == 18
    x = sample(net, 3)
    assert rel_err(run_output(model, net, x), executor(net, weights)(x)) <= TOLERANCE

    bad = CliRunner().invoke(main, ["compile", str(spec), "--target", "onnx", "-o", str(out), "--opset", "7"])
    assert bad.exit_code == 1
    assert "error[E605]" in bad.output and "Traceback" not in bad.output


def test_weights_from_a_trained_keras_file(tmp_path):
    pytest.importorskip("keras")
    keras_model = pytest.importorskip("netspec.targets.keras_model")
    net = netspec.load_source("network k { input x: [6, 6, 2]\n conv2d(3, 3, name='c') -> batchnorm(name='bn')\n"
                              " depthwise_conv2d(3, padding='same', name='dw')\n flatten()\n dense(4, name='fc') }")
    weights = lively_weights(net, seed=7)
    model = keras_model.to_keras(net, weights)
    path = tmp_path / "trained.keras"
    model.save(path)
    onnx_model_ = to_onnx(net, weights=str(path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in onnx_model_.graph.initializer}
    np.testing.assert_array_equal(inits["bn/moving_variance"], weights["bn/moving_variance"])
    x = sample(net, 3)
    assert rel_err(run_output(onnx_model_, net, x), model.predict(x, verbose=0)) <= TOLERANCE


def test_importing_netspec_does_not_load_onnx():
    import subprocess
    import sys

    code = "import sys, netspec, netspec.targets; print('onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
