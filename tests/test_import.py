"""``netspec import``: Keras models in, checked specs (and weights) out.

Each imported spec must check to the model's own numbers layer by layer
(names, output shapes, parameter counts), and with ``--weights-out`` every
target must reproduce the model's outputs.  ``keras.applications`` is the
corpus: one model of every family in the CI profile, all of them in the
long profile (``NETSPEC_PROFILE=long``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_runner

from netspec.core.diagnostics import NetspecError
from netspec.importers import import_model

pytestmark = pytest.mark.keras

keras = pytest.importorskip("keras")

LONG = os.environ.get("NETSPEC_PROFILE") == "long"

#: One model of every keras.applications family (all of them in the long profile).
FAMILIES = ["ConvNeXtTiny", "DenseNet121", "EfficientNetB0", "EfficientNetV2B0", "InceptionResNetV2",
            "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Small", "NASNetMobile", "ResNet50",
            "ResNet50V2", "VGG16", "Xception"]
ALL = FAMILIES + ["ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge", "DenseNet169", "DenseNet201",
                  "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4", "EfficientNetB5",
                  "EfficientNetB6", "EfficientNetB7", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
                  "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L", "MobileNetV3Large", "NASNetLarge",
                  "ResNet101", "ResNet152", "ResNet101V2", "ResNet152V2", "VGG19"]
#: Imported with weights and run in every target (small enough for CI).
WITH_WEIGHTS = ["MobileNet", "MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB0", "MobileNetV3Small",
                "NASNetMobile", "ConvNeXtTiny"]


def _config_only(model, path: Path) -> Path:
    """A .keras archive holding only the model's config (what an import without weights reads)."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps({"class_name": "Functional", "config": model.get_config()}))
    return path


def _missing_ops(model) -> list[str]:
    """Keras classes in the model that netspec has no op for (the importer names them as errors)."""
    from netspec.core.ops import canonical_op

    classes = set()
    for layer in model.layers:
        if hasattr(layer, "layers"):
            classes.update(_missing_ops(layer))
        elif layer.__class__.__name__ not in ("InputLayer", "CustomScaleLayer"):  # the importer writes two layers
            if canonical_op(layer.__class__.__name__) is None:
                classes.add(layer.__class__.__name__)
    return sorted(classes)


def _compare_layers(model, report) -> None:
    """Every Keras layer is a netspec layer of the same name, output shape and counts."""
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        if hasattr(layer, "layers"):  # a nested model is imported flat
            _compare_layers(layer, report)
            continue
        assert layer.name in report.layers, f"{layer.name} is missing"
        info = report.layers[layer.name]
        assert tuple(layer.output.shape[1:]) == tuple(info.shape), layer.name
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert (info.trainable, info.non_trainable) == (trainable, layer.count_params() - trainable), layer.name


def _tiny_model():
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    branch = keras.layers.Conv2D(8, 1, name="branch")(x)
    x = keras.layers.Add(name="merge")([x, branch])
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.Concatenate(name="cat")([x, y])
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(0.2, name="drop")(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.3 + (1.0 if "variance" in w.path else 0.0)
                       for w in model.weights])
    return model


def test_tiny_model_imports_with_weights_and_runs_the_same(tmp_path: Path) -> None:
    model = _tiny_model()
    src = tmp_path / "tiny.keras"
    model.save(src)
    spec, weights = tmp_path / "tiny.net", tmp_path / "tiny.npz"
    result = cli_runner().invoke(__import__("netspec.cli").cli.main,
                                 ["import", str(src), "-o", str(spec), "-w", str(weights)])
    assert result.exit_code == 0, result.output
    import netspec

    net = netspec.load(spec)
    _compare_layers(model, net)
    x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype(np.float32)
    want = model.predict(x, verbose=0)
    from netspec.targets.numpy_exec import executor

    got = executor(net, str(weights))(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_import_without_weights_never_imports_tensorflow(tmp_path: Path) -> None:
    path = _config_only(_tiny_model(), tmp_path / "tiny.keras")
    code = ("import sys; from netspec.importers import import_model; import_model(sys.argv[1]); "
            "bad = [m for m in ('tensorflow', 'keras', 'onnx') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_lambda_and_shared_layers_are_named_not_half_written(tmp_path: Path) -> None:
    inputs = keras.Input((8,), name="x")
    dense = keras.layers.Dense(8, name="shared")
    y = dense(dense(inputs))
    y = keras.layers.Lambda(lambda t: t * 2, name="double")(y)
    model = keras.Model(inputs, y)
    path = _config_only(model, tmp_path / "bad.keras")
    out = tmp_path / "bad.net"
    result = cli_runner().invoke(__import__("netspec.cli").cli.main, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 1
    assert "'shared'" in result.output and "called 2 times" in result.output
    assert "'double'" in result.output and "Lambda" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("content, message", [
    (b"not a zip at all", "not a .keras archive"),
    (b"PK\x03\x04" + b"\x00" * 40, "not a .keras archive"),
])
def test_corrupt_archives_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.keras"
    path.write_bytes(content)
    with pytest.raises(NetspecError) as err:
        import_model(path)
    assert message in str(err.value)


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * (80 * 2**20))
    with pytest.raises(NetspecError) as err:
        import_model(path)
    assert "limit" in str(err.value) or "zip bomb" in str(err.value)


def test_output_path_checked_before_any_work(tmp_path: Path) -> None:
    path = _config_only(_tiny_model(), tmp_path / "tiny.keras")
    main = __import__("netspec.cli").cli.main
    for args in (["-o", str(path)], ["-o", str(tmp_path / "nodir" / "x.net")],
                 ["-o", str(tmp_path / "x.net"), "-w", str(tmp_path / "w.onnx")]):
        result = cli_runner().invoke(main, ["import", str(path), *args])
        assert result.exit_code == 1 and "E705" in result.output, result.output


@pytest.mark.parametrize("name", ALL if LONG else FAMILIES)
def test_keras_applications_import_to_their_numbers(name: str, tmp_path: Path) -> None:
    model = getattr(keras.applications, name)(weights=None)
    if _missing_ops(model):
        pytest.skip(f"netspec has no op yet for {', '.join(_missing_ops(model))}")
    result = import_model(_config_only(model, tmp_path / f"{name}.keras"))
    _compare_layers(model, result.report)
    assert result.report.total_params == model.count_params()
    if name in ("ResNet50", "DenseNet121", "MobileNetV2"):
        assert result.folded and len(result.text.splitlines()) <= 120
        assert "block " in result.text


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_WEIGHTS)
def test_keras_applications_weights_reproduce_outputs(name: str, tmp_path: Path) -> None:
    model = getattr(keras.applications, name)(weights=None)
    if _missing_ops(model):
        pytest.skip(f"netspec has no op yet for {', '.join(_missing_ops(model))}")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    result = import_model(path, weights=True)
    shape = [224 if d is None else d for d in model.input_shape[1:]]
    x = np.random.default_rng(0).uniform(0, 255, size=(1, *shape)).astype(np.float32)
    want = model.predict(x, verbose=0)
    from netspec.targets.numpy_exec import executor

    got = executor(result.report, result.weights)(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# --- round trips through netspec's own targets -------------------------------------------------------

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.net"))


#: Ops that are the identity at inference: an ONNX graph has no node for them (nor for a linear activation).
_TRAINING_ONLY = ("dropout", "spatial_dropout1d", "spatial_dropout2d", "spatial_dropout3d", "gaussian_noise",
                  "gaussian_dropout", "alpha_dropout")


def _layers(report, skip: tuple = ()) -> dict[str, tuple]:
    """Each layer's op, shape and counts, by name (the order of independent branches may differ)."""
    def op(n) -> str:  # relu() and activation('relu') are one ONNX Relu (softmax() and activation('softmax') too)
        if n.op == "activation":
            return n.attrs.activation
        return n.op

    return {n.name: (op(n), report.layers[n.name].shape, report.layers[n.name].trainable,
                     report.layers[n.name].non_trainable) for n in report.graph.nodes
            if n.op not in skip and not (skip and op(n) == "linear")}


def _networks(spec: Path) -> list[str]:
    import netspec

    return [n.name for n in netspec.check_file(spec).networks if n.ok]


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_keras_round_trip_gives_the_same_report(spec: Path, tmp_path: Path) -> None:
    import netspec
    from netspec.targets.keras_model import compile_keras

    for name in _networks(spec)[:2]:
        net = netspec.load(spec, network=name)
        path = tmp_path / f"{name}.keras"
        compile_keras(net, path, seed=0)
        back = import_model(path, weights=True)
        assert _layers(back.report) == _layers(net)
        assert back.report.params == net.params


#: Specs whose ONNX graphs compose an op from several ONNX nodes that the importer does not read back
#: (layernorm): importing those must be a clear E701 naming the node (see docs/import.md).
COMPOSED: dict[str, str] = {}
#: Specs whose ONNX graphs import to the same outputs with other layers: swish written as Sigmoid and Mul
#: comes back as an activation and a multiply; ConvNeXt's grouped conv as a depthwise conv, its per-channel
#: layer_scale as a batchnorm with neutral statistics, its dense on (H, W, C) as a 1x1 conv.
RESTRUCTURED = {"efficientnet", "efficientnetb0", "convnext_tiny"}


@pytest.mark.onnx
@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_onnx_round_trip_gives_onnxruntime_outputs(spec: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    import netspec
    from netspec.targets.numpy_exec import executor
    from netspec.targets.onnx_model import compile_onnx

    for name in _networks(spec)[:1]:
        net = netspec.load(spec, network=name)
        if net.graph is None or len(net.graph.inputs) != 1:
            continue
        path = tmp_path / f"{name}.onnx"
        compile_onnx(net, path, seed=3)
        if spec.stem in COMPOSED:
            with pytest.raises(NetspecError) as err:
                import_model(path, weights=True)
            assert all(d.code == "E701" for d in err.value.diagnostics)
            assert f"({COMPOSED[spec.stem]}):" in str(err.value)
            continue
        back = import_model(path, weights=True)
        if spec.stem not in RESTRUCTURED:
            assert _layers(back.report) == _layers(net, _TRAINING_ONLY)
        shape = tuple(8 if d is None else d for d in net.input_shape)
        x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        want = session.run(None, {session.get_inputs()[0].name: x})
        got = executor(back.report, back.weights)(x)
        got = list(got) if isinstance(got, tuple) else [got]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


# --- foreign ONNX graphs ---------------------------------------------------------------------------------


def _nchw_graph():
    """A PyTorch-style NCHW graph: conv (padding 1), batchnorm, relu, padded max pool, global pool, Gemm."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, *shape, positive=False):
        a = rng.normal(size=shape).astype(np.float32)
        return numpy_helper.from_array(np.abs(a) + 0.5 if positive else a, name)

    inits = [init("w", 8, 3, 3, 3), init("b", 8), init("g", 8), init("beta", 8), init("m", 8),
             init("v", 8, positive=True), init("fc", 5, 8), init("fcb", 5)]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv1/Conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "m", "v"], ["n"], name="/bn1/BatchNormalization",
                         epsilon=1e-5),
        helper.make_node("Relu", ["n"], ["r"], name="/relu/Relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="/maxpool/MaxPool", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["p"], ["gap"], name="/avgpool/GlobalAveragePool"),
        helper.make_node("Flatten", ["gap"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(nodes, "torch_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.onnx
def test_nchw_graph_imports_as_channels_first_and_runs_the_same(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from netspec.targets.numpy_exec import executor

    path = tmp_path / "torch.onnx"
    onnx.save(_nchw_graph(), path)
    result = import_model(path, weights=True)
    assert "channels_first" in result.text
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(executor(result.report, result.weights)(x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.onnx
def test_tf2onnx_graph_imports_and_runs_the_same(tmp_path: Path) -> None:
    tf2onnx = pytest.importorskip("tf2onnx")
    import onnxruntime as ort
    import tensorflow as tf

    from netspec.targets.numpy_exec import executor

    model = _tiny_model()
    spec = (tf.TensorSpec((None, 16, 16, 3), tf.float32, name="image"),)

    @tf.function(input_signature=spec)
    def forward(x):
        return model(x, training=False)

    path = tmp_path / "t2o.onnx"
    tf2onnx.convert.from_function(forward, input_signature=spec, opset=17, output_path=str(path))
    result = import_model(path, weights=True)
    x = np.random.default_rng(2).normal(size=(2, 16, 16, 3)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(executor(result.report, result.weights)(x), want, rtol=1e-4, atol=1e-5)


@pytest.mark.onnx
def test_hostile_onnx_graphs_are_clear_errors(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    main = __import__("netspec.cli").cli.main
    # An initializer that claims 2 GB (and holds nothing).
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[32768, 16384])
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32768])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16384])], [huge])
    onnx.save(helper.make_model(graph), tmp_path / "huge.onnx")
    # A cycle.
    cyc = helper.make_graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])], "c",
                            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                            [helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4])])
    onnx.save(helper.make_model(cyc), tmp_path / "cycle.onnx")
    (tmp_path / "trunc.onnx").write_bytes(onnx.load_model_from_string(
        _nchw_graph().SerializeToString()).SerializeToString()[:300])
    for name, words in (("huge", "claims"), ("cycle", "cycle"), ("trunc", "")):
        out = tmp_path / f"{name}.net"
        result = cli_runner().invoke(main, ["import", str(tmp_path / f"{name}.onnx"), "-o", str(out)])
        assert result.exit_code == 1, (name, result.output)
        assert words in result.output and "Traceback" not in result.output
        assert not out.exists()
