"""Training: data sets fitted to a network's input, a short run that learns, the CLI, tf.distribute.

Everything runs offline on the 8x8 digits that scikit-learn ships.  The
full 20-epoch run is a bench (bench/bench_train.py), not a test.  The
multi-worker test starts two ``netspec train`` processes that find each
other through TF_CONFIG on free ports of 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netspec
from netspec.core.check import NetworkReport

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from netspec.targets import training  # noqa: E402

pytestmark = pytest.mark.keras

ROOT = Path(__file__).resolve().parents[1]
NETSPEC = [sys.executable, "-m", "netspec.cli"]
ACCURACY_LINE = re.compile(r"test accuracy: (0\.\d{4}|1\.0000)")

SMALL_CNN = """
network small_cnn {
    input x: [8, 8, 1]
    conv2d(16, 3, padding='same', activation='relu')
    maxpool2d(2)
    conv2d(32, 3, padding='same', activation='relu')
    flatten()
    dropout(0.2)
    dense(10, activation='softmax')
}
"""


def _codes(err: pytest.ExceptionInfo) -> list[str]:
    return [d.code for d in err.value.diagnostics]


@pytest.fixture(scope="module")
def digits() -> training.Dataset:
    return training.load_dataset("digits")


@pytest.fixture(scope="module")
def small_cnn() -> NetworkReport:
    return netspec.load_source(SMALL_CNN)


# --- data sets -------------------------------------------------------------------------------------------


def test_digits_ship_with_the_install(digits: training.Dataset) -> None:
    assert digits.x_train.shape[1:] == (8, 8) and digits.x_train.dtype == np.float32
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 1.0
    assert digits.num_classes == 10
    assert set(np.unique(digits.y_test)) == set(range(10))  # the split is stratified


def test_npz_in_the_keras_datasets_layout(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (20, 6, 6, 3), dtype=np.uint8), y_train=np.arange(20).reshape(20, 1) % 4,
             x_test=rng.integers(0, 256, (8, 6, 6, 3), dtype=np.uint8), y_test=np.eye(4)[np.arange(8) % 4])
    data = training.load_dataset(path)
    assert data.num_classes == 4
    assert data.y_train.tolist() == (np.arange(20) % 4).tolist()
    assert data.y_test.tolist() == (np.arange(8) % 4).tolist()  # one-hot rows become indices


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((2, 4, 4)), "y_train": np.zeros(2)}, "lacks x_test, y_test"),
    ({"x_train": np.zeros((2, 4, 4)), "y_train": np.zeros(3), "x_test": np.zeros((1, 4, 4)),
      "y_test": np.zeros(1)}, "has 2 samples but y_train has 3"),
    ({"x_train": np.zeros((2, 4, 4)), "y_train": np.array([0.5, 1]), "x_test": np.zeros((1, 4, 4)),
      "y_test": np.zeros(1)}, "class indices"),
])
def test_bad_npz_is_e604(tmp_path: Path, arrays: dict, message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(netspec.NetspecError) as err:
        training.load_dataset(path)
    assert _codes(err) == ["E604"] and message in str(err.value)


def test_unknown_and_missing_data_sets(tmp_path: Path) -> None:
    with pytest.raises(netspec.NetspecError) as err:
        training.load_dataset("imagenet")
    assert _codes(err) == ["E604"] and "digits" in str(err.value)
    with pytest.raises(netspec.NetspecError) as err:
        training.load_dataset(tmp_path / "nope.npz")
    assert _codes(err) == ["E603"]


def test_failed_download_is_a_clear_e604(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline() -> None:
        raise Exception("URL fetch failure on https://storage.googleapis.com/mnist.npz: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(netspec.NetspecError) as err:
        training.load_dataset("mnist")
    assert _codes(err) == ["E604"]
    assert "internet" in str(err.value) and "--data digits" in str(err.value)


# --- fitting images to the input --------------------------------------------------------------------------


def test_digits_become_28x28_for_the_mnist_network(digits: training.Dataset) -> None:
    x = training.fit_images(digits.x_train[:5], (28, 28, 1), "channels_last")
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 + 1e-6
    # the same picture: brought back to 8x8 it matches the original
    import tensorflow as tf

    back = tf.image.resize(x, (8, 8), antialias=True).numpy()[..., 0]
    for got, want in zip(back, digits.x_train[:5]):
        assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9


def test_grey_to_colour_channels_first() -> None:
    x = training.fit_images(np.full((2, 8, 8), 255, np.uint8), (3, 32, 32), "channels_first")
    assert x.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(x, 1.0, atol=1e-6)


def test_colour_to_grey_by_luminance() -> None:
    red = np.zeros((1, 4, 4, 3), np.uint8)
    red[..., 0] = 255
    x = training.fit_images(red, (4, 4, 1), "channels_last")
    np.testing.assert_allclose(x, 0.299, atol=1e-6)


def test_aspect_ratio_is_kept_and_the_rest_padded() -> None:
    x = training.fit_images(np.ones((1, 2, 4), np.float32), (8, 8, 1), "channels_last")[0, :, :, 0]
    assert (x[2:6] > 0.99).all() and (x[:2] == 0).all() and (x[6:] == 0).all()


def test_unknown_sizes_take_the_images_own_and_flat_inputs_take_them_flattened() -> None:
    x = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    assert training.fit_images(x, (None, None, 1), "channels_last").shape == (2, 5, 3, 1)
    flat = training.fit_images(x, (15,), "channels_last")
    np.testing.assert_allclose(flat, x.reshape(2, 15) / 255, rtol=1e-6)


@pytest.mark.parametrize("shape, input_shape, fmt, message", [
    ((2, 8, 8, 2), (8, 8, 3), "channels_last", "2 channels"),
    ((2, 8, 8), (60,), "channels_last", "64 values"),
    ((2, 8, 8, 3, 1), (8, 8, 3), "channels_last", "not images"),
    ((2, 8, 8), (4, 8, 8, 1), "channels_last", "neither an image"),
])
def test_what_cannot_fit_is_e604(shape: tuple, input_shape: tuple, fmt: str, message: str) -> None:
    with pytest.raises(netspec.NetspecError) as err:
        training.fit_images(np.zeros(shape, np.uint8), input_shape, fmt)
    assert _codes(err) == ["E604"] and message in str(err.value)


@pytest.mark.parametrize("spec, message", [
    ("network n { input x: [8, 8, 1]\n flatten()\n dense(5) }", "5 entries but digits has 10 classes"),
    ("network n { input x: [8, 8, 1]\n conv2d(10, 3) }", "not a vector of class scores"),
])
def test_a_network_that_cannot_classify_the_data_is_e604(spec: str, message: str) -> None:
    with pytest.raises(netspec.NetspecError) as err:
        training.train(netspec.load_source(spec), "digits", epochs=1, verbose=0)
    assert _codes(err) == ["E604"] and message in str(err.value)


# --- training ----------------------------------------------------------------------------------------------


def test_a_short_run_on_the_digits_learns(small_cnn: NetworkReport, digits: training.Dataset,
                                          tmp_path: Path) -> None:
    result = training.train(small_cnn, digits, epochs=4, batch_size=32, lr=3e-3, seed=0, verbose=0)
    assert result.test_accuracy > 0.8, result.test_accuracy  # chance is 0.1
    assert len(result.history["loss"]) == 4 and result.history["loss"][-1] < result.history["loss"][0]
    assert result.model.count_params() == small_cnn.total_params
    path = tmp_path / "m.keras"
    from netspec.targets.keras_model import save_model

    save_model(result.model, path)
    again = keras.models.load_model(path)
    x = training.fit_images(digits.x_test[:16], (8, 8, 1), "channels_last")
    np.testing.assert_allclose(again.predict(x, verbose=0), result.model.predict(x, verbose=0), atol=1e-6)


def test_logits_are_trained_as_logits(digits: training.Dataset) -> None:
    net = netspec.load_source("network n { input x: [8, 8, 1]\n flatten()\n dense(10) }")
    result = training.train(net, digits, epochs=2, lr=1e-2, verbose=0)
    assert result.model.loss.get_config()["from_logits"] is True
    assert result.test_accuracy > 0.6


def test_mirrored_strategy(small_cnn: NetworkReport, digits: training.Dataset) -> None:
    result = training.train(small_cnn, digits, epochs=1, distribute="mirrored", verbose=0)
    assert type(result.model.distribute_strategy).__name__ == "MirroredStrategy"
    assert 0.0 <= result.test_accuracy <= 1.0 and result.chief


def test_malformed_tf_config_is_a_command_line_error(monkeypatch: pytest.MonkeyPatch, small_cnn: NetworkReport,
                                                     tmp_path: Path) -> None:
    import click

    for config, message in (("{not json", "not valid JSON"),
                            ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
                             "not in its cluster")):
        monkeypatch.setenv("TF_CONFIG", config)
        with pytest.raises(click.UsageError, match=message):
            training.train_cli(small_cnn, "digits", tmp_path / "m.keras", epochs=1, distribute="multiworker")
    assert not os.listdir(tmp_path)


def test_cli_trains_a_spec_offline_and_the_model_reloads(tmp_path: Path) -> None:
    out = tmp_path / "mnist.keras"
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "keras_home")}  # no cached downloads to lean on
    run = subprocess.run([*NETSPEC, "train", str(ROOT / "specs" / "mnist.net"), "--epochs", "2", "-o", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert "Epoch 2/2" in run.stdout  # Keras's own progress bar
    last = run.stdout.strip().splitlines()[-1]
    match = ACCURACY_LINE.fullmatch(last)
    assert match, last
    assert float(match.group(1)) > 0.5  # chance is 0.1
    model = keras.models.load_model(out)
    assert model.count_params() == netspec.load(str(ROOT / "specs" / "mnist.net")).total_params
    assert (tmp_path / "mnist.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_rejects_data_that_cannot_fit(tmp_path: Path) -> None:
    data = tmp_path / "rgba.npz"
    np.savez(data, x_train=np.zeros((4, 8, 8, 4), np.uint8), y_train=np.zeros(4, np.int64),
             x_test=np.zeros((2, 8, 8, 4), np.uint8), y_test=np.zeros(2, np.int64))
    run = subprocess.run([*NETSPEC, "train", str(ROOT / "specs" / "mnist.net"), "--data", str(data),
                          "-o", str(tmp_path / "m.keras")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 1
    assert "error[E604]" in run.stderr and "4 channels" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "m.keras").exists()


# --- beyond one machine -----------------------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_training_with_two_local_workers(tmp_path: Path, digits: training.Dataset) -> None:
    spec = tmp_path / "small.net"
    spec.write_text(SMALL_CNN)
    data = tmp_path / "slice.npz"
    np.savez(data, x_train=digits.x_train[:256], y_train=digits.y_train[:256],
             x_test=digits.x_test[:64], y_test=digits.y_test[:64])
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [*NETSPEC, "train", str(spec), "--data", str(data), "--epochs", "1", "--batch-size", "32",
             "--distribute", "multiworker", "-o", str(tmp_path / "m.keras")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env={**os.environ, "TF_CONFIG": config}))
    outputs = []
    try:
        for p in processes:
            stdout, stderr = p.communicate(timeout=240)
            outputs.append((p.returncode, stdout, stderr))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    for code, _, stderr in outputs:
        assert code == 0, stderr[-3000:]
        assert "Traceback" not in stderr
    accuracies = [ACCURACY_LINE.fullmatch(stdout.strip().splitlines()[-1]) for _, stdout, _ in outputs]
    assert all(accuracies), [o[1][-300:] for o in outputs]
    # one model trained in step: both workers evaluate the same weights on the same test set
    assert accuracies[0].group(1) == accuracies[1].group(1)
    # 230 training images (26 held out) in global batches of 32 is 8 steps, however the workers share them
    assert "8/8" in outputs[0][1]
    assert "saved" in outputs[0][1] and "the chief writes" in outputs[1][1]
    model = keras.models.load_model(tmp_path / "m.keras")
    assert model.count_params() == netspec.load_source(SMALL_CNN).total_params
