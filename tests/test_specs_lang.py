"""The specs written with the version-2 language (parameterised networks, instances, fn,
for, carry, blocks taking two tensors), each compared with keras.applications layer by layer.

Keras names many layers itself (``zero_padding2d_7``, numbered per session), so layers are
matched by name where the spec and Keras agree on one, and the rest as a multiset of
(output shape, parameter count); the totals must agree too.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import netspec
from netspec.core.check import NetworkReport

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _ours(net: NetworkReport) -> list[tuple[str, tuple, int]]:
    """(name, output shape, params) of the layers that have weights or change the shape."""
    assert net.graph is not None
    shapes = {i.name: tuple(i.shape) for i in net.graph.inputs} if hasattr(net.graph, "inputs") else {
        net.graph.input.name: tuple(net.graph.input.shape)}
    out = []
    for node in net.graph.nodes:
        info = net.layers[node.name]
        shapes[node.name] = tuple(info.shape)
        if info.weights or tuple(info.shape) != shapes[node.inputs[0]]:
            out.append((node.name, tuple(info.shape), info.params))
    return out


def _theirs(model: Any) -> list[tuple[str, tuple, int]]:
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        shape = tuple(layer.output.shape[1:])
        if layer.weights or shape != tuple(inputs[0].shape[1:]):
            out.append((layer.name, shape, layer.count_params()))
    return out


def assert_same_layers(net: NetworkReport, model: Any) -> None:
    """Layer by layer: by name where both name a layer alike, the rest as a multiset."""
    ours, theirs = _ours(net), _theirs(model)
    by_name = {name: (shape, params) for name, shape, params in theirs}
    matched = [(name, shape, params) for name, shape, params in ours if name in by_name]
    for name, shape, params in matched:
        assert (shape, params) == by_name[name], name
    names = {name for name, _, _ in matched}
    rest_ours = Counter((shape, params) for name, shape, params in ours if name not in names)
    rest_theirs = Counter((shape, params) for name, shape, params in theirs if name not in names)
    assert rest_ours == rest_theirs
    assert len(ours) == len(theirs)
    trainable, non_trainable = net.params
    assert model.count_params() == trainable + non_trainable
    assert sum(math.prod(w.shape) for w in model.trainable_weights) == trainable


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    return pytest.importorskip("keras")


# (spec, network) -> the keras.applications builder and its arguments
APPLICATIONS: dict[tuple[str, str], tuple[str, dict]] = {
    ("nasnet.net", "nasnet_mobile"): ("NASNetMobile", {}),
    **{("efficientnet.net", f"efficientnet_b{i}"): (f"EfficientNetB{i}", {}) for i in range(8)},
    ("mobilenetv3.net", "mobilenetv3_small"): ("MobileNetV3Small", {"input_shape": (224, 224, 3)}),
    ("mobilenetv3.net", "mobilenetv3_large"): ("MobileNetV3Large", {"input_shape": (224, 224, 3)}),
}


@pytest.mark.keras
@pytest.mark.parametrize("key", list(APPLICATIONS), ids=lambda k: k[1])
def test_matches_keras_applications(key: tuple[str, str], keras: Any) -> None:
    spec, network = key
    builder, kwargs = APPLICATIONS[key]
    model = getattr(keras.applications, builder)(weights=None, **kwargs)
    assert_same_layers(netspec.load(SPECS / spec, network), model)


def test_efficientnet_is_one_recipe() -> None:
    text = (SPECS / "efficientnet.net").read_text()
    assert len(text.splitlines()) < 120
    assert "fn round_filters" in text and "fn round_repeats" in text and "for (stage" in text
    report = netspec.check_file(SPECS / "efficientnet.net")
    assert [n.name for n in report.networks] == [f"efficientnet_b{i}" for i in range(8)]
    # keras.applications' published totals
    assert [n.total_params for n in report.networks] == [
        5_330_571, 7_856_239, 9_177_569, 12_320_535, 19_466_823, 30_562_527, 43_265_143, 66_658_687]


def test_nasnet_cells_are_not_unrolled() -> None:
    text = (SPECS / "nasnet.net").read_text()
    assert text.count("normal_cell(") == 2 and text.count("reduction_cell(") == 3  # definitions + one call each
    assert "carry x, p" in text
