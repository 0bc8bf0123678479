"""The decoder, 1-D and 3-D specs against the same networks built by hand in Keras, layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_specs import _keras_layers, _netspec_layers

import netspec

SPECS = Path(__file__).resolve().parent.parent / "specs"

pytestmark = pytest.mark.keras


@pytest.fixture(scope="module")
def L() -> Any:
    pytest.importorskip("tensorflow")
    import keras

    return keras.layers


def _unet(L: Any) -> Any:
    import keras

    def double(x: Any, f: int) -> Any:
        x = L.Conv2D(f, 3, padding="same", activation="relu")(x)
        return L.Conv2D(f, 3, padding="same", activation="relu")(x)

    inp = keras.Input((256, 256, 3))
    skips, x = [], inp
    for f in (64, 128, 256, 512):
        x = double(x, f)
        skips.append(x)
        x = L.MaxPooling2D(2)(x)
    x = double(x, 1024)
    for f, skip in zip((512, 256, 128, 64), reversed(skips)):
        x = double(L.Concatenate()([L.Conv2DTranspose(f, 2, strides=2)(x), skip]), f)
    return keras.Model(inp, L.Conv2D(1, 1, activation="sigmoid")(x))


def _unet_valid(L: Any) -> Any:
    import keras

    def double(x: Any, f: int) -> Any:
        return L.Conv2D(f, 3, activation="relu")(L.Conv2D(f, 3, activation="relu")(x))

    inp = keras.Input((572, 572, 1))
    skips, x = [], inp
    for f in (64, 128, 256, 512):
        x = double(x, f)
        skips.append(x)
        x = L.MaxPooling2D(2)(x)
    x = double(x, 1024)
    for f, skip in zip((512, 256, 128, 64), reversed(skips)):
        up = L.Conv2DTranspose(f, 2, strides=2)(x)
        crop = (skip.shape[1] - up.shape[1]) // 2
        x = double(L.Concatenate()([L.Cropping2D(crop)(skip), up]), f)
    return keras.Model(inp, L.Conv2D(2, 1)(x))


def _autoencoder(L: Any) -> Any:
    import keras

    layers = [keras.Input((128, 128, 3))]
    layers += [L.Conv2D(f, 3, strides=2, padding="same", activation="relu") for f in (32, 64, 128)]
    for f in (128, 64, 32):
        layers += [L.UpSampling2D(2, interpolation="bilinear"), L.Conv2D(f, 3, padding="same", activation="relu")]
    layers.append(L.Conv2D(3, 3, padding="same", activation="sigmoid"))
    return keras.Sequential(layers)


def _tcn(L: Any) -> Any:
    import keras

    return keras.Sequential([
        keras.Input((16000, 1)),
        L.Conv1D(32, 3, padding="causal", activation="relu"),
        L.Conv1D(32, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.Conv1D(32, 3, padding="causal", dilation_rate=4, activation="relu"),
        L.MaxPooling1D(4),
        L.Conv1D(64, 3, padding="causal", dilation_rate=8, activation="relu"),
        L.MaxPooling1D(4),
        L.Conv1D(128, 3, padding="same", activation="relu"),
        L.GlobalAveragePooling1D(),
        L.Dense(10, activation="softmax"),
    ])


def _c3d(L: Any) -> Any:
    import keras

    return keras.Sequential([
        keras.Input((16, 112, 112, 3)),
        L.Conv3D(32, 3, padding="same", activation="relu"),
        L.MaxPooling3D((1, 2, 2)),
        L.Conv3D(64, 3, padding="same", activation="relu"),
        L.MaxPooling3D(2),
        L.Conv3D(128, 3, padding="same", activation="relu"),
        L.Conv3D(128, 3, padding="same", activation="relu"),
        L.MaxPooling3D(2),
        L.GlobalAveragePooling3D(),
        L.Dense(101, activation="softmax"),
    ])


@pytest.mark.parametrize(("spec", "build"), [
    ("unet.net", _unet), ("unet_valid.net", _unet_valid), ("autoencoder.net", _autoencoder), ("tcn1d.net", _tcn),
    ("c3d.net", _c3d),
])
def test_spec_matches_keras_layer_by_layer(spec: str, build: Any, L: Any) -> None:
    net = netspec.load(SPECS / spec)
    model = build(L)
    ours = [(s, p) for _, s, p in _netspec_layers(net)]
    theirs = [(s, p) for _, s, p in _keras_layers(model)]
    # A functional model lists its layers by depth, not as written: compare as multisets, then the totals.
    assert sorted(ours, key=repr) == sorted(theirs, key=repr)
    assert model.count_params() == net.total_params
