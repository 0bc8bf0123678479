"""specs/ for ConvNeXtTiny, EfficientNetB0 and MobileNetV3Small against keras.applications, every layer.

Each Keras model is built with ``weights=None``; its layers (those of the
Sequential sub-models ConvNeXt uses included) are compared with the spec's
nodes: a named layer by its name, Keras's numbered unnamed ones
(``activation_17``, ``re_lu_3``) by their base name and order.  Output
shape, parameter count and trainable count must be equal for every layer.
The only nodes a spec may have beyond Keras's layers are the weightless
merges that Keras writes as tensor operators (``x + 3.0``, ``inputs + x``),
which are not Keras layers.  The specs run through all three targets too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import netspec

SPECS = Path(__file__).resolve().parents[1] / "specs"

APPLICATIONS = {
    "convnext_tiny.net": ("ConvNeXtTiny", {}),
    "efficientnetb0.net": ("EfficientNetB0", {}),
    "mobilenetv3small.net": ("MobileNetV3Small", {"input_shape": (224, 224, 3)}),
}


def _base(name: str) -> str:
    return re.sub(r"_\d+$", "", name)


def keras_rows(model: Any) -> list[tuple[str, tuple, int, int]]:
    """(name, output shape, params, trainable params) of every layer, nested models flattened."""
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind in ("Sequential", "Functional"):
            out += keras_rows(layer)
            continue
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        out.append((layer.name, tuple(layer.output.shape[1:]), layer.count_params(), trainable))
    return out


def spec_rows(net: Any) -> list[tuple[str, tuple, int, int, str]]:
    return [(n.name, tuple(net.layers[n.name].shape), net.layers[n.name].params, net.layers[n.name].trainable, n.op)
            for n in net.graph.nodes]


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("tensorflow")
    from netspec.targets.keras_model import import_keras

    return import_keras()


@pytest.mark.keras
@pytest.mark.parametrize("spec", sorted(APPLICATIONS))
def test_spec_matches_keras_applications(keras: Any, spec: str) -> None:
    name, kwargs = APPLICATIONS[spec]
    model = getattr(keras.applications, name)(weights=None, **kwargs)
    net = netspec.load(SPECS / spec)
    ours = spec_rows(net)
    theirs = keras_rows(model)
    from netspec.core.ops import OPS

    # Layers the spec names itself; the rest got netspec's automatic names, as Keras's got its own.
    auto = {n.name for n in net.graph.nodes if re.fullmatch(rf"{OPS[n.op].auto_name}(_\d+)?", n.name)}
    by_name = {row[0]: row for row in ours if row[0] not in auto}
    unmatched_ours = {row[0] for row in ours}
    numbered: dict[str, list] = {}
    for k_name, shape, params, trainable in theirs:
        if k_name in by_name:
            assert by_name[k_name][1:4] == (shape, params, trainable), k_name
            unmatched_ours.discard(k_name)
        else:
            numbered.setdefault(_base(k_name), []).append((shape, params, trainable))
    # Keras's unnamed layers, in order, against the spec's unnamed nodes of the same kind.
    for base, rows in numbered.items():
        mine = [r for r in ours if r[0] in unmatched_ours and _base(r[0]) == base]
        assert [r[1:4] for r in mine] == rows, base
        unmatched_ours -= {r[0] for r in mine}
    extra = [r for r in ours if r[0] in unmatched_ours]
    assert all(op in ("add", "multiply") and params == 0 for _, _, params, _, op in extra), extra
    assert model.count_params() == net.total_params
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params() - trainable) == net.params


@pytest.mark.keras
@pytest.mark.parametrize("spec", sorted(APPLICATIONS))
def test_spec_runs_in_every_target(keras: Any, spec: str) -> None:
    # NumPy, ONNX and Keras agree on the whole network (layer by layer) with lively weights.
    from test_differential import differential

    differential((SPECS / spec).read_text(), (224, 224, 3))
