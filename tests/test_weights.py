"""Weights: Keras's initializer formulas, the .npz format, validation and the compile command."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import netspec
from netspec.core.argtypes import KerasObject
from netspec.core.diagnostics import NetspecError
from netspec.core.initializers import TRUNCATED_STDDEV, InitializerError, compute_fans, initialize
from netspec.core.ops import WeightSpec
from netspec.targets.weights import (
    expected_weights,
    init_weights,
    load_weights,
    resolve_weights,
    save_weights,
    validate_weights,
)

SPEC = """
network small {
    input x: [8, 8, 3]
    conv2d(4, 3, padding='same', kernel_initializer='he_normal', name='conv')
    batchnorm(name='bn')
    depthwise_conv2d(3, depth_multiplier=2, name='dw')
    separable_conv2d(5, 3, name='sep')
    flatten()
    dense(6, kernel_initializer=orthogonal(gain=2.0), bias_initializer=constant(0.25), name='fc')
}
"""


def obj(name, **kwargs):
    return KerasObject(name, tuple(kwargs.items()))


def draw(name, shape, seed=0, **kwargs):
    w = initialize(WeightSpec("w", shape, True, obj(name, **kwargs)), np.random.default_rng(seed))
    assert w.dtype == np.float32 and w.shape == tuple(shape)
    return w.astype(np.float64)


# --- fans and formulas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, fans", [
    ((3, 3, 16, 32), (144, 288)),  # conv kernel: receptive field 9
    ((5, 1, 2, 7), (10, 35)),
    ((784, 10), (784, 10)),  # dense kernel
    ((7,), (7, 7)),
    ((), (1, 1)),
])
def test_fans_as_keras_counts_them(shape, fans):
    assert compute_fans(shape) == fans


SHAPE = (3, 3, 64, 96)  # fan_in 576, fan_out 864, 55,296 draws
FAN_IN, FAN_OUT = 576, 864


@pytest.mark.parametrize("name, scale, fan", [
    ("glorot_uniform", 1.0, (FAN_IN + FAN_OUT) / 2),
    ("he_uniform", 2.0, FAN_IN),
    ("lecun_uniform", 1.0, FAN_IN),
])
def test_uniform_variance_scaling(name, scale, fan):
    w = draw(name, SHAPE)
    limit = math.sqrt(3 * scale / fan)
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert abs(w.mean()) < 0.02 * limit


@pytest.mark.parametrize("name, scale, fan", [
    ("glorot_normal", 1.0, (FAN_IN + FAN_OUT) / 2),
    ("he_normal", 2.0, FAN_IN),
    ("lecun_normal", 1.0, FAN_IN),
])
def test_truncated_normal_variance_scaling(name, scale, fan):
    w = draw(name, SHAPE)
    # Keras draws from a normal of stddev sqrt(scale/fan)/0.8796 cut at two of those stddevs,
    # so that the draws' own stddev is sqrt(scale/fan).
    stddev = math.sqrt(scale / fan)
    assert np.abs(w).max() <= 2 * stddev / TRUNCATED_STDDEV * (1 + 1e-6)
    assert np.abs(w).max() > 1.9 * stddev / TRUNCATED_STDDEV
    assert w.std() == pytest.approx(stddev, rel=0.02)


@pytest.mark.parametrize("mode, fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", (FAN_IN + FAN_OUT) / 2)])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling(mode, fan, distribution):
    w = draw("variance_scaling", SHAPE, scale=3.0, mode=mode, distribution=distribution)
    assert w.std() == pytest.approx(math.sqrt(3.0 / fan), rel=0.02)
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(9.0 / fan) * (1 + 1e-6)
    if distribution == "untruncated_normal":
        assert np.abs(w).max() > 3.5 * math.sqrt(3.0 / fan)  # real tails, no cut at two stddevs


def test_bad_variance_scaling_arguments():
    with pytest.raises(InitializerError, match="mode"):
        draw("variance_scaling", (3, 3), scale=1.0, mode="fan_sideways", distribution="uniform")
    with pytest.raises(InitializerError, match="distribution"):
        draw("variance_scaling", (3, 3), scale=1.0, mode="fan_in", distribution="cauchy")


def test_plain_random_initializers():
    w = draw("random_normal", (200, 300), mean=1.5, stddev=0.2)
    assert w.mean() == pytest.approx(1.5, abs=0.005) and w.std() == pytest.approx(0.2, rel=0.02)
    w = draw("random_uniform", (200, 300), minval=-0.5, maxval=2.0)
    assert w.min() >= -0.5 and w.max() <= 2.0 and w.min() < -0.49 and w.max() > 1.99
    w = draw("truncated_normal", (200, 300), mean=-1.0, stddev=0.5)
    assert w.min() >= -2.0 - 1e-6 and w.max() <= 1e-6
    assert w.std() == pytest.approx(0.5 * TRUNCATED_STDDEV, rel=0.02)


def test_constant_initializers():
    assert (draw("zeros", (2, 3)) == 0).all() and (draw("ones", (4,)) == 1).all()
    assert (draw("constant", (2, 2), value=-0.75) == -0.75).all()
    assert draw("identity", (3, 4), gain=2.0).tolist() == (2 * np.eye(3, 4)).tolist()
    with pytest.raises(InitializerError, match="2-D"):
        draw("identity", (3, 3, 2, 2))


@pytest.mark.parametrize("shape", [(3, 3, 16, 32), (10, 4), (4, 10), (6, 6)])
def test_orthogonal(shape):
    w = draw("orthogonal", shape, gain=1.5).reshape(-1, shape[-1])
    small = min(w.shape)
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(small), atol=1e-5)


def test_seeded_initializers_ignore_the_generator():
    spec = WeightSpec("kernel", (5, 7), True, obj("glorot_normal", seed=42))
    a = initialize(spec, np.random.default_rng(0))
    b = initialize(spec, np.random.default_rng(99))
    np.testing.assert_array_equal(a, b)
    unseeded = WeightSpec("kernel", (5, 7), True, obj("glorot_normal", seed=None))
    assert not np.array_equal(initialize(unseeded, np.random.default_rng(0)),
                              initialize(unseeded, np.random.default_rng(1)))


# --- init_weights, files, validation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net():
    return netspec.load_source(SPEC)


def test_init_weights_follow_the_network(net):
    w = init_weights(net, seed=3)
    want = expected_weights(net)
    assert list(w) == list(want)
    assert all(w[k].shape == want[k][2] and w[k].dtype == np.float32 for k in w)
    assert (w["bn/gamma"] == 1).all() and (w["bn/moving_variance"] == 1).all() and (w["bn/beta"] == 0).all()
    assert (w["fc/bias"] == 0.25).all()
    assert w["conv/kernel"].std() == pytest.approx(math.sqrt(2 / 27), rel=0.35)  # he_normal, only 108 draws
    kernel = w["fc/kernel"].astype(np.float64)  # (80, 6) orthogonal, gain 2
    np.testing.assert_allclose(kernel.T @ kernel, 4 * np.eye(6), atol=1e-4)
    again = init_weights(net, seed=3)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    other = init_weights(net, seed=4)
    assert not np.array_equal(w["conv/kernel"], other["conv/kernel"])


def test_identity_on_a_conv_kernel_is_a_clear_error():
    net = netspec.load_source("network n { input x: [4, 4, 1]\n conv2d(2, 3, kernel_initializer='identity', name='c') }")
    with pytest.raises(NetspecError, match="E605.*'c'.*kernel"):
        init_weights(net)


def test_save_and_load_round_trip(net, tmp_path):
    w = init_weights(net, seed=1)
    path = tmp_path / "weights"  # no extension: the file is written under exactly this name
    save_weights(w, path)
    assert sorted(os.listdir(tmp_path)) == ["weights"]
    loaded = load_weights(net, path)
    assert list(loaded) == list(w) and all(np.array_equal(loaded[k], w[k]) for k in w)
    assert resolve_weights(net, str(path))["fc/kernel"].tolist() == w["fc/kernel"].tolist()
    assert resolve_weights(net, None, seed=1)["fc/kernel"].tolist() == w["fc/kernel"].tolist()


def test_save_is_atomic(net, tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    save_weights(init_weights(net, seed=1), path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(NetspecError, match="E603.*disk full"):
        save_weights(init_weights(net, seed=2), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.npz"]


def test_validation_names_layer_weight_and_both_shapes(net):
    w = init_weights(net)
    bad = dict(w)
    bad["conv/kernel"] = np.zeros((3, 3, 3, 5), np.float32)
    del bad["bn/beta"]
    bad["fc/gamma"] = np.zeros(6, np.float32)
    bad["nowhere/kernel"] = np.zeros(2, np.float32)
    with pytest.raises(NetspecError) as err:
        validate_weights(net, bad, "w.npz")
    messages = sorted(d.message for d in err.value.diagnostics)
    assert all(d.code == "E601" for d in err.value.diagnostics) and len(messages) == 4
    assert any("'conv/kernel'" in m and "'conv'" in m and "(3, 3, 3, 5)" in m and "(3, 3, 3, 4)" in m
               and "w.npz" in m for m in messages)
    assert any(m.startswith("missing weight 'bn/beta'") and "(4,)" in m for m in messages)
    assert any("'fc/gamma'" in m and "has no weight 'gamma'" in m and "kernel, bias" in m for m in messages)
    assert any("no layer 'nowhere'" in m for m in messages)


def test_validation_converts_and_accepts_the_old_depthwise_name(net):
    w = {k: v.astype(np.float64) for k, v in init_weights(net).items()}
    w["dw/depthwise_kernel"] = w.pop("dw/kernel")
    out = validate_weights(net, w)
    assert "dw/kernel" in out and all(v.dtype == np.float32 for v in out.values())
    both = dict(w, **{"dw/kernel": w["dw/depthwise_kernel"]})
    with pytest.raises(NetspecError, match="given twice"):
        validate_weights(net, both)
    with pytest.raises(NetspecError, match="not numbers"):
        validate_weights(net, dict(w, **{"fc/bias": np.array(["a"] * 6)}))


def test_unreadable_weights_are_a_clear_error(net, tmp_path):
    with pytest.raises(NetspecError, match="E603.*no such file"):
        load_weights(net, tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(NetspecError, match="E603"):
        load_weights(net, tmp_path / "junk.npz")


@pytest.mark.keras
def test_keras_files_are_read_as_data_by_the_importer(net, tmp_path):
    """--weights model.keras reads the archive with h5py (no TensorFlow), to the same arrays Keras holds."""
    pytest.importorskip("keras")
    import subprocess

    from netspec.targets.keras_model import compile_keras, weights_from_keras

    path = tmp_path / "model.keras"
    compile_keras(net, path, seed=5)
    got = load_weights(net, str(path))
    want = weights_from_keras(net, str(path))
    assert sorted(got) == sorted(want)
    for key in got:
        np.testing.assert_array_equal(got[key], want[key])
        assert got[key].dtype == np.float32
    code = ("import sys, netspec; from netspec.targets.weights import load_weights; "
            "net = netspec.load_source(sys.argv[2]); load_weights(net, sys.argv[1]); "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code, str(path), SPEC], timeout=120).returncode == 0


# --- the compile command ----------------------------------------------------------------------------------------


def test_compile_numpy_writes_fresh_or_given_weights(tmp_path):
    from netspec.cli import main

    spec = tmp_path / "small.net"
    spec.write_text(SPEC)
    runner = CliRunner()
    for name, seed in (("a.npz", "1"), ("b.npz", "1"), ("c.npz", "2")):
        result = runner.invoke(main, ["compile", str(spec), "--target", "numpy", "-o", str(tmp_path / name),
                                      "--seed", seed])
        assert result.exit_code == 0, result.output
    a, b, c = (dict(np.load(tmp_path / n)) for n in ("a.npz", "b.npz", "c.npz"))
    assert list(a) == list(expected_weights(netspec.load(str(spec))))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["conv/kernel"], c["conv/kernel"])
    result = runner.invoke(main, ["compile", str(spec), "--target", "numpy", "-o", str(tmp_path / "d.npz"),
                                  "--weights", str(tmp_path / "c.npz")])
    assert result.exit_code == 0, result.output
    d = dict(np.load(tmp_path / "d.npz"))
    assert all(np.array_equal(c[k], d[k]) for k in c)
    bad = dict(c, **{"fc/kernel": np.zeros((3, 6), np.float32)})
    np.savez(tmp_path / "bad.npz", **bad)
    result = runner.invoke(main, ["compile", str(spec), "--target", "numpy", "-o", str(tmp_path / "e.npz"),
                                  "--weights", str(tmp_path / "bad.npz")])
    assert result.exit_code == 1
    assert "error[E601]" in result.output and "(3, 6)" in result.output and "(80, 6)" in result.output
    assert not (tmp_path / "e.npz").exists()


# --- against Keras's own initializers --------------------------------------------------------------------------


@pytest.mark.keras
@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_normal", "lecun_uniform", "orthogonal"])
def test_same_distribution_as_keras(name):
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    ours = draw(name, SHAPE)
    theirs = np.asarray(keras.initializers.get({"class_name": name, "config": {"seed": 1}})(SHAPE)).astype(np.float64)
    assert ours.std() == pytest.approx(theirs.std(), rel=0.03)
    assert np.abs(ours).max() == pytest.approx(np.abs(theirs).max(), rel=0.15)
