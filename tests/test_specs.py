"""The specs in specs/ and the contract fixtures in tests/fixtures/contract/.

Every spec must check cleanly through the command line and the library and
give the parameter counts of the network it describes.  Where TensorFlow is
installed, each spec is also compared layer by layer with the same network
built in Keras: keras.applications for VGG16, ResNet50 and MobileNetV2, and
keras.layers for the small ones.  No test touches the network
(``weights=None`` everywhere).

The contract fixtures are small specs written from LANGUAGE.md as an
outside user would write them; their expected shapes and counts below were
worked out by hand (the arithmetic is in the comments).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import load_first

import netspec
from netspec.core.check import NetworkReport

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
CONTRACT = Path(__file__).resolve().parent / "fixtures" / "contract"


# --- independent counts ------------------------------------------------------------------------


def _conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def _dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def resnet18_counts() -> tuple[int, int]:
    """(trainable, non-trainable) of ResNet-18 with bias-free convs, from its architecture.

    >>> resnet18_counts()[0]  # torchvision's resnet18 has the same trainable count
    11689512
    """
    trainable = _conv(7, 3, 64, bias=False) + 2 * 64
    bn_channels = 64
    c_in = 64
    for filters in (64, 128, 256, 512):
        for _ in range(2):
            trainable += _conv(3, c_in, filters, False) + _conv(3, filters, filters, False) + 4 * filters
            bn_channels += 2 * filters
            if c_in != filters:  # projection shortcut: 1x1 conv + batchnorm
                trainable += _conv(1, c_in, filters, False) + 2 * filters
                bn_channels += filters
            c_in = filters
    trainable += _dense(512, 1000)
    return trainable, 2 * bn_channels


def detector_counts() -> tuple[int, int]:
    """(trainable, non-trainable) of specs/detector.net, from its architecture.

    >>> detector_counts()[1]  # the batchnorms' moving statistics: 2 * (16 + 32 + 32 + 64 + 128 + 256)
    1056
    """
    trainable, bn_channels, c_in = 0, 0, 3
    for filters in (16, 32, 32, 64, 128, 256):
        trainable += _conv(3, c_in, filters, bias=False) + 2 * filters
        bn_channels += filters
        c_in = filters
    for per_anchor in (20, 4, 1):  # class, box and objectness heads
        for c in (64, 128, 256):  # on each scale
            trainable += _conv(3, c, 64) + _conv(1, 64, 3 * per_anchor)
    return trainable, 2 * bn_channels


def image_metadata_counts() -> tuple[int, int]:
    """(trainable, non-trainable) of specs/image_metadata.net."""
    convs = _conv(3, 3, 32, False) + _conv(3, 32, 64, False) + _conv(3, 64, 128, False)
    bn = 32 + 64 + 128
    trainable = convs + 2 * bn + _dense(12, 32) + _dense(128 + 32, 64) + _dense(64, 5)
    return trainable, 2 * bn


# name -> (total, trainable): the published counts, or computed above
EXPECTED: dict[str, tuple[int, int]] = {
    "mnist.net": (421_642, 421_642),
    "cifar10.net": (_conv(3, 3, 32) + _conv(3, 32, 64) + _dense(8 * 8 * 64, 128) + _dense(128, 10),) * 2,
    "lenet5.net": (61_706, 61_706),
    "vgg16.net": (138_357_544, 138_357_544),
    "resnet18.net": (sum(resnet18_counts()), resnet18_counts()[0]),
    "resnet50.net": (25_636_712, 25_583_592),
    "mobilenetv2.net": (3_538_984, 3_504_872),
    "detector.net": (sum(detector_counts()), detector_counts()[0]),
    "image_metadata.net": (sum(image_metadata_counts()), image_metadata_counts()[0]),
    "unet.net": (31031745, 31031745),
    "tcn1d.net": (38538, 38538),
    "c3d.net": (734821, 734821),
    "unet_valid.net": (31030658, 31030658),
    "autoencoder.net": (333955, 333955),
    "nasnet.net": (5_326_716, 5_289_978),
    "mobilenetv3small.net": (2_554_968, 2_542_856),       # keras.applications' count_params()
    "efficientnetb0.net": (5_330_571, 5_288_548),
    "convnext_tiny.net": (28_589_128, 28_589_128),
    "efficientnet.net": (5_330_571, 5_288_548),  # the first of its networks, B0
    "mobilenetv3.net": (2_554_968, 2_542_856),  # the first of its networks, Small
}


def _spec_files() -> list[Path]:
    return sorted(SPECS.glob("*.net"))


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netspec.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_every_spec_has_expected_counts() -> None:
    assert {p.name for p in _spec_files()} == set(EXPECTED)


@pytest.mark.parametrize("path", _spec_files(), ids=lambda p: p.name)
def test_spec_checks_on_the_command_line(path: Path, tmp_path: Path) -> None:
    # Run from elsewhere so nothing depends on the working directory.
    proc = _cli("check", str(path), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert not [d for d in report["diagnostics"] if d["severity"] == "error"]
    net = report["networks"][0]  # a file of instances (efficientnet.net) is checked by its first
    total, trainable = EXPECTED[path.name]
    assert net["params"] == {"total": total, "trainable": trainable, "non_trainable": total - trainable}
    assert sum(layer["params"] for layer in net["layers"]) == total


@pytest.mark.parametrize("path", _spec_files(), ids=lambda p: p.name)
def test_spec_loads_in_the_library(path: Path) -> None:
    net = load_first(path)
    total, trainable = EXPECTED[path.name]
    assert net.total_params == total
    assert net.params == (trainable, total - trainable)
    assert net.graph is not None and len(net.graph.nodes) == len(net.layers)


def test_table_output_is_exit_zero() -> None:
    proc = _cli("check", str(SPECS / "mnist.net"))
    assert proc.returncode == 0, proc.stderr
    assert "421,642" in proc.stdout


# --- layer-by-layer comparison with Keras ------------------------------------------------------


def _kept(shape: tuple, in_shape: tuple | None, has_weights: bool) -> bool:
    return has_weights or shape != in_shape


def _netspec_layers(net: NetworkReport) -> list[tuple[str, tuple, int]]:
    """(name, output shape, params) of the layers that have weights or change the shape."""
    assert net.graph is not None
    shapes: dict[str, tuple] = {i.name: tuple(i.shape) for i in net.graph.inputs}
    out = []
    for node in net.graph.nodes:
        info = net.layers[node.name]
        shapes[node.name] = tuple(info.shape)
        if _kept(tuple(info.shape), shapes[node.inputs[0]], bool(info.weights)):
            out.append((node.name, tuple(info.shape), info.params))
    return out


def _keras_layers(model: Any) -> list[tuple[str, tuple, int]]:
    """The same list for a built Keras model."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        shape = tuple(layer.output.shape[1:])
        if _kept(shape, tuple(inputs[0].shape[1:]), bool(layer.weights)):
            out.append((layer.name, shape, layer.count_params()))
    return out


def _base_name(name: str) -> str:
    # Keras numbers unnamed layers per session (global_average_pooling2d_3).
    return re.sub(r"_\d+$", "", name)


def _assert_matches_keras(net: NetworkReport, model: Any, names: bool) -> None:
    """Same layers, output shapes and counts; matched by name when the spec names its layers.

    Keras lists a functional model's layers by graph depth, not in the order
    they were written, so named layers are matched by name and listed in the
    spec's order; a Sequential model is compared in order.
    """
    ours, theirs = _netspec_layers(net), _keras_layers(model)
    if names:
        by_name = {name: (shape, params) for name, shape, params in theirs}
        by_base = {_base_name(name): v for name, v in by_name.items()}
        assert len(by_name) == len(by_base) == len(ours)
        theirs = [(name, *by_name.get(name, by_base.get(_base_name(name), (None, None)))) for name, _, _ in ours]
    assert [(s, p) for _, s, p in ours] == [(s, p) for _, s, p in theirs]
    trainable, non_trainable = net.params
    assert model.count_params() == trainable + non_trainable
    assert sum(math.prod(w.shape) for w in model.trainable_weights) == trainable


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def vgg16(keras: Any) -> Any:
    return keras.applications.VGG16(weights=None)


@pytest.fixture(scope="module")
def resnet50(keras: Any) -> Any:
    return keras.applications.ResNet50(weights=None)


@pytest.fixture(scope="module")
def mobilenetv2(keras: Any) -> Any:
    return keras.applications.MobileNetV2(weights=None)


@pytest.mark.keras
@pytest.mark.parametrize("spec, fixture", [
    ("vgg16.net", "vgg16"), ("resnet50.net", "resnet50"), ("mobilenetv2.net", "mobilenetv2"),
])
def test_application_matches_keras(spec: str, fixture: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(fixture)
    _assert_matches_keras(netspec.load(SPECS / spec), model, names=True)


def _lecture_cnn(keras: Any, shape: tuple[int, int, int]) -> Any:
    L = keras.layers
    return keras.Sequential([
        keras.Input(shape),
        L.Conv2D(32, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2, strides=2, padding="same"),
        L.Conv2D(64, 3, padding="same", activation="relu"),
        L.MaxPooling2D(2, strides=2, padding="same"),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dropout(0.5),
        L.Dense(10, activation="softmax"),
    ])


def _lenet5(keras: Any) -> Any:
    L = keras.layers
    return keras.Sequential([
        keras.Input((32, 32, 1)),
        L.Conv2D(6, 5, activation="tanh"), L.AveragePooling2D(2),
        L.Conv2D(16, 5, activation="tanh"), L.AveragePooling2D(2),
        L.Flatten(),
        L.Dense(120, activation="tanh"), L.Dense(84, activation="tanh"), L.Dense(10, activation="softmax"),
    ])


def _resnet18(keras: Any) -> Any:
    # Built from the architecture with keras.layers; the names are the spec's,
    # so that the layers can be matched up (Keras orders them by graph depth).
    L = keras.layers

    def conv_bn(x: Any, filters: int, k: int, stride: int, name: str) -> Any:
        if stride == 1 and k > 1:
            x = L.Conv2D(filters, k, padding="same", use_bias=False, name=name + "_conv")(x)
        else:
            x = L.ZeroPadding2D(k // 2, name=name + "_pad")(x) if k > 1 else x
            x = L.Conv2D(filters, k, strides=stride, use_bias=False, name=name + "_conv")(x)
        return L.BatchNormalization(name=name + "_bn")(x)

    inputs = keras.Input((224, 224, 3))
    x = L.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = L.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = L.Activation("relu", name="conv1_relu")(L.BatchNormalization(name="conv1_bn")(x))
    x = L.MaxPooling2D(3, strides=2, name="pool1_pool")(L.ZeroPadding2D(1, name="pool1_pad")(x))
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            name = f"conv{stage + 2}_block{block + 1}"
            stride = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, 3, stride, name + "_1")
            y = conv_bn(L.Activation("relu", name=name + "_1_relu")(y), filters, 3, 1, name + "_2")
            if stride != 1 or x.shape[-1] != filters:
                x = conv_bn(x, filters, 1, stride, name + "_0")
            x = L.Activation("relu", name=name + "_out")(L.Add(name=name + "_add")([x, y]))
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(inputs, L.Dense(1000, activation="softmax", name="predictions")(x))


@pytest.mark.keras
@pytest.mark.parametrize("spec", ["mnist.net", "cifar10.net", "lenet5.net", "resnet18.net"])
def test_small_net_matches_keras(spec: str, keras: Any) -> None:
    build = {
        "mnist.net": lambda: _lecture_cnn(keras, (28, 28, 1)),
        "cifar10.net": lambda: _lecture_cnn(keras, (32, 32, 3)),
        "lenet5.net": lambda: _lenet5(keras),
        "resnet18.net": lambda: _resnet18(keras),
    }[spec]
    _assert_matches_keras(netspec.load(SPECS / spec), build(), names=spec == "resnet18.net")


def _detector(keras: Any) -> Any:
    """specs/detector.net built with keras.layers: three heads on three scales, three outputs."""
    L = keras.layers

    def conv_bn(x: Any, filters: int, strides: int, name: str) -> Any:
        x = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name + "_conv")(x)
        return L.ReLU(name=name + "_relu")(L.BatchNormalization(name=name + "_bn")(x))

    def head(x: Any, per_anchor: int, activation: str, name: str) -> Any:
        x = L.Conv2D(64, 3, padding="same", activation="relu", name=name + "_conv")(x)
        x = L.Conv2D(3 * per_anchor, 1, name=name + "_pred")(x)
        return L.Activation(activation, name=name + "_act")(L.Reshape((-1, per_anchor), name=name + "_flat")(x))

    image = keras.Input((256, 256, 3), name="image")
    x = conv_bn(conv_bn(conv_bn(image, 16, 2, "stem1"), 32, 2, "stem2"), 32, 1, "stage1")
    c3 = conv_bn(x, 64, 2, "stage2")
    c4 = conv_bn(c3, 128, 2, "stage3")
    c5 = conv_bn(c4, 256, 2, "stage4")
    outputs = []
    for kind, per_anchor, activation in (("cls", 20, "softmax"), ("box", 4, "linear"), ("obj", 1, "sigmoid")):
        heads = [head(c, per_anchor, activation, f"{kind}{s}") for s, c in zip((3, 4, 5), (c3, c4, c5))]
        name = {"cls": "classes", "box": "boxes", "obj": "objectness"}[kind]
        outputs.append(L.Concatenate(axis=1, name=name)(heads))
    return keras.Model(image, outputs)


def _image_metadata(keras: Any) -> Any:
    """specs/image_metadata.net built with keras.layers: two inputs joined after global pooling."""
    L = keras.layers
    image = keras.Input((64, 64, 3), name="image")
    metadata = keras.Input((12,), name="metadata")
    x = image
    for filters, name in ((32, "block1"), (64, "block2"), (128, "block3")):
        x = L.Conv2D(filters, 3, padding="same", use_bias=False, name=name + "_conv")(x)
        x = L.ReLU(name=name + "_relu")(L.BatchNormalization(name=name + "_bn")(x))
        x = L.MaxPooling2D(2, name=name + "_pool")(x)
    features = L.GlobalAveragePooling2D(name="image_pool")(x)
    meta = L.Dense(32, activation="relu", name="meta_dense")(metadata)
    x = L.Concatenate(name="merged")([features, meta])
    x = L.Dropout(0.3, name="fc_dropout")(L.Dense(64, activation="relu", name="fc")(x))
    return keras.Model([image, metadata], L.Dense(5, activation="softmax", name="predictions")(x))


@pytest.mark.keras
@pytest.mark.parametrize("spec", ["detector.net", "image_metadata.net"])
def test_several_inputs_or_outputs_match_keras(spec: str, keras: Any) -> None:
    model = {"detector.net": _detector, "image_metadata.net": _image_metadata}[spec](keras)
    net = netspec.load(SPECS / spec)
    _assert_matches_keras(net, model, names=True)
    assert [i.name for i in net.inputs] == [t.name for t in model.inputs]
    assert list(net.outputs) == list(model.output_names)
    assert [tuple(s) for s in net.output_shapes] == [tuple(t.shape[1:]) for t in model.outputs]
    assert [tuple(i.shape) for i in net.inputs] == [tuple(t.shape[1:]) for t in model.inputs]


# --- contract fixtures -------------------------------------------------------------------------

# (file, network) -> (total, trainable, [(op, output shape, params), ...] for every node in order)
N = None
CONTRACT_EXPECTED: dict[tuple[str, str], tuple[int, int, list[tuple[str, tuple, int]]]] = {
    ("chains.net", "chains"): (6282, 6250, [
        ("conv2d", (32, 32, 16), 432),          # 3*3*3*16, no bias
        ("batchnorm", (32, 32, 16), 64),        # 4*16, half of it moving statistics
        ("relu", (32, 32, 16), 0),
        ("conv2d", (32, 32, 16), 272),          # left: 16*16 + 16
        ("conv2d", (32, 32, 16), 2320),         # right: 9*16*16 + 16
        ("add", (32, 32, 16), 0),
        ("activation", (32, 32, 16), 0),
        ("maxpool2d", (16, 16, 16), 0),
        ("conv2d", (16, 16, 32), 544),          # gate: 16*32 + 32
        ("conv2d", (16, 16, 16), 2320),         # wide, from the bare name `pooled`
        ("concat", (16, 16, 32), 0),
        ("multiply", (16, 16, 32), 0),
        ("global_avgpool2d", (32,), 0),
        ("dense", (10,), 330),
    ]),
    ("control.net", "control"): (12470, 12470, [
        ("conv2d", (64, 64, 8), 224),           # i=0: 8*2**0 filters, 9*3*8 + 8
        ("maxpool2d", (32, 32, 8), 0),          # default: 3x3, stride 2, same
        ("conv2d", (32, 32, 16), 1168),         # i=1: 9*8*16 + 16
        ("avgpool2d", (16, 16, 16), 0),         # the maxpool default does not apply
        ("conv2d", (16, 16, 32), 4640),         # i=2: 9*16*32 + 32
        ("maxpool2d", (8, 8, 32), 0),
        ("conv2d", (8, 8, 32), 1056),           # 1x1 given: 32*32 + 32
        ("conv2d", (8, 8, 32), 1056),
        ("conv2d", (8, 8, 6), 1728),            # 3*4//3 + 12%5 = 6 filters, use_bias=false: 9*32*6
        ("conv2d", (8, 8, 4), 28),              # bias back after the if: 6*4 + 4
        ("flatten", (256,), 0),
        ("dropout", (256,), 0),
        ("dense", (10,), 2570),                 # 10 - 2*2 + -(-4) = 10 units: 256*10 + 10
    ]),
    ("imports.net", "with_imports"): (6302, 6174, [
        ("conv2d", (16, 16, 16), 432),          # conv_bn_relu(16, strides=2)
        ("batchnorm", (16, 16, 16), 64),
        ("relu", (16, 16, 16), 0),
        ("conv2d", (16, 16, 16), 2304),         # residual: conv_bn_relu(16) ...
        ("batchnorm", (16, 16, 16), 64),
        ("relu", (16, 16, 16), 0),
        ("conv2d", (16, 16, 16), 2320),         # ... -> conv2d(16, 3)
        ("add", (16, 16, 16), 0),
        ("relu", (16, 16, 16), 0),
        ("global_avgpool2d", (1, 1, 16), 0),    # squeeze_excite: keepdims
        ("conv2d", (1, 1, 4), 68),              # 16 // 4 = 4: 16*4 + 4
        ("conv2d", (1, 1, 16), 80),             # 4*16 + 16
        ("multiply", (16, 16, 16), 0),          # broadcast over H, W
        ("conv2d", (16, 16, 32), 512),          # default conv_bn_relu(kernel_size=1): 16*32
        ("batchnorm", (16, 16, 32), 128),
        ("relu", (16, 16, 32), 0),
        ("global_maxpool2d", (32,), 0),
        ("dense", (10,), 330),
    ]),
    ("unknown.net", "any_size"): (4178, 4178, [
        ("conv2d", (N, N, 16), 448),            # 9*3*16 + 16
        ("conv2d", (N, N, 24), 3480),           # channels(x)*8 = 24: 9*16*24 + 24
        ("global_avgpool2d", (24,), 0),
        ("reshape", (2, 3, 4), 0),
        ("flatten", (24,), 0),
        ("dense", (10,), 250),
    ]),
    ("unknown.net", "fixed_width"): (568, 568, [
        ("conv2d", (N, 18, 8), 368),            # W: (39 - 5)//2 + 1 = 18; 3*5*3*8 + 8
        ("maxpool2d", (N, 9, 8), 0),
        ("conv2d", (N, 7, 8), 200),             # 9-1 = 8 filters, kernel (1, 9//4 + 1 = 3): 3*8*8 + 8
        ("global_maxpool2d", (8,), 0),
    ]),
    ("channels_first.net", "chw"): (10758, 10742, [
        ("conv2d", (8, 32, 32), 224),           # 9*3*8 + 8
        ("batchnorm", (8, 32, 32), 32),         # axis=1 (counts the batch axis): channels
        ("activation", (8, 32, 32), 0),
        ("maxpool2d", (8, 16, 16), 0),
        ("zeropad2d", (8, 17, 19), 0),          # H 16+1+0, W 16+2+1
        ("conv2d", (4, 15, 17), 292),           # channels(x)+1 = 4 filters: 9*8*4 + 4
        ("flatten", (1020,), 0),
        ("dropout", (1020,), 0),
        ("dense", (10,), 10210),                # 1020*10 + 10
    ]),
}


def test_every_contract_fixture_is_covered() -> None:
    files = {p.name for p in CONTRACT.glob("*.net")}
    assert files == {f for f, _ in CONTRACT_EXPECTED} | {"lib.net"}


@pytest.mark.parametrize("key", list(CONTRACT_EXPECTED), ids=lambda k: f"{k[0]}:{k[1]}")
def test_contract_fixture(key: tuple[str, str]) -> None:
    file, name = key
    total, trainable, layers = CONTRACT_EXPECTED[key]
    net = netspec.load(CONTRACT / file, name)
    assert net.graph is not None
    got = [(n.op, tuple(net.layers[n.name].shape), net.layers[n.name].params) for n in net.graph.nodes]
    assert got == layers
    assert net.params == (trainable, total - trainable)
    assert net.output_shape == layers[-1][1]


@pytest.mark.parametrize("file", sorted({f for f, _ in CONTRACT_EXPECTED}))
def test_contract_fixture_on_the_command_line(file: str, tmp_path: Path) -> None:
    # From another directory: the import path is relative to the importing file.
    proc = _cli("check", str(CONTRACT / file), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = {n["name"]: n for n in json.loads(proc.stdout)["networks"]}
    want = {name: v for (f, name), v in CONTRACT_EXPECTED.items() if f == file}
    assert set(got) == set(want)
    for name, (total, trainable, layers) in want.items():
        assert got[name]["params"]["total"] == total
        assert got[name]["params"]["trainable"] == trainable
        assert [tuple(layer["output_shape"][1:]) for layer in got[name]["layers"]] == [s for _, s, _ in layers]


def test_block_library_alone_checks_with_no_networks() -> None:
    report = netspec.check_file(CONTRACT / "lib.net")
    assert report.ok and report.networks == ()

