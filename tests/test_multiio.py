"""Several inputs and outputs, end to end: language, IR, check's JSON, executor, run, train.

The targets (Keras, ONNX) are compared with the executor on these networks
in tests/test_keras_target.py, tests/test_onnx_target.py (through the specs
detector.net and image_metadata.net) and tests/test_differential.py
(through the generator, which draws several inputs and outputs).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_runner

import netspec
from netspec.cli import main
from netspec.core import ops
from netspec.core.ir import Graph, Input, Node

TWO = """\
network two {
    input image: [8, 8, 3]
    input meta: [5]
    conv2d(4, 3, padding='same', activation='relu')
    feat = global_avgpool2d()
    m = meta -> dense(4, activation='tanh')
    both = concat(feat, m)
    cls = both -> dense(3, activation='softmax', name='cls')
    box = both -> dense(4, name='box')
    output cls, box
}
"""


def _write(tmp_path: Path, text: str = TWO, name: str = "two.net") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _inputs(tmp_path: Path, batch: int = 3) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.standard_normal((batch, 8, 8, 3)).astype(np.float32)
    meta = rng.standard_normal((batch, 5)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "meta.npy", meta)
    return tmp_path / "image.npy", tmp_path / "meta.npy", image, meta


# --- language and IR ----------------------------------------------------------------------------


def test_inputs_and_outputs_in_the_ir() -> None:
    net = netspec.load_source(TWO)
    graph = net.graph
    assert [i.name for i in graph.inputs] == ["image", "meta"]
    assert graph.outputs == ("cls", "box")
    assert (graph.input.name, graph.output) == ("image", "cls")  # the first of each
    assert net.output_shapes == ((3,), (4,)) and net.output_shape == (3,)
    assert net.input_shape == (8, 8, 3)


def test_without_output_statement_the_output_is_the_current_tensor() -> None:
    net = netspec.load_source("network n {\n input a: [4]\n input b: [4]\n add(a, b)\n dense(2)\n}\n")
    assert net.graph.outputs == ("dense",)


def test_an_input_may_be_an_output() -> None:
    net = netspec.load_source("network n {\n input a: [4]\n input b: [3]\n d = a -> dense(2)\n output d, b\n}\n")
    assert net.graph.outputs == ("dense", "b") and net.output_shapes == ((2,), (3,))


def test_output_inside_an_if_body() -> None:
    text = "network n {\n input a: [4]\n x = dense(2)\n y = a -> dense(3)\n if true { output y, x }\n}\n"
    assert netspec.load_source(text).graph.outputs == ("dense_1", "dense")


def test_output_in_a_repeat_that_runs_twice_is_an_error() -> None:
    text = "network n {\n input a: [4]\n x = dense(2)\n repeat 2 { output x }\n}\n"
    assert [d.code for d in netspec.check_source(text).all_diagnostics] == ["E231"]


def test_w105_counts_every_output() -> None:
    text = "network n {\n input a: [4]\n x = dense(2)\n y = a -> dense(3)\n z = a -> dense(5)\n output x, y\n}\n"
    net = netspec.check_source(text).networks[0]
    assert [(d.code, d.span.line) for d in net.diagnostics] == [("W105", 5)]
    assert net.total_params == 10 + 15  # the unused dense(5) is not counted
    assert "reaches none of the outputs 'dense', 'dense_1'" in net.diagnostics[0].message


def test_graph_built_in_python_with_several_outputs() -> None:
    g = Graph("g", (Input("a", (4,)), Input("b", (4,))), (
        Node("s", "add", ("a", "b"), ops.OPS["add"].attrs()),
        Node("d", "dense", ("s",), ops.Dense(units=2)),
        Node("e", "dense", ("s",), ops.Dense(units=3)),
    ), ("d", "e"))
    report = netspec.check_graph(g)
    assert report.ok and report.output_shapes == ((2,), (3,)) and report.graph == g
    assert netspec.load_source(netspec.to_source(g)).graph == g


def test_graph_needs_an_input() -> None:
    with pytest.raises(ValueError):
        Graph("g", ())


# --- check's JSON ------------------------------------------------------------------------------


def test_check_json_lists_inputs_and_outputs(tmp_path: Path) -> None:
    result = cli_runner().invoke(main, ["check", str(_write(tmp_path)), "--format", "json"])
    assert result.exit_code == 0, result.output
    (net,) = json.loads(result.stdout)["networks"]
    assert net["inputs"] == [{"name": "image", "shape": [None, 8, 8, 3]}, {"name": "meta", "shape": [None, 5]}]
    assert net["outputs"] == [{"name": "cls", "shape": [None, 3]}, {"name": "box", "shape": [None, 4]}]
    assert (net["input_shape"], net["output_shape"]) == ([None, 8, 8, 3], [None, 3])


# --- the executor -------------------------------------------------------------------------------


def test_executor_takes_every_input_and_returns_every_output(tmp_path: Path) -> None:
    from netspec.targets.numpy_exec import executor

    net = netspec.load_source(TWO)
    *_, image, meta = _inputs(tmp_path)
    run = executor(net, seed=1)
    cls, box = run(image, meta)
    assert cls.shape == (3, 3) and box.shape == (3, 4)
    np.testing.assert_allclose(cls.sum(axis=1), 1, rtol=1e-5)
    by_name = run({"meta": meta, "image": image}, by_name=True)
    assert list(by_name) == ["cls", "box"]
    np.testing.assert_array_equal(by_name["box"], box)
    acts = run.activations(image, meta)
    np.testing.assert_array_equal(acts["meta"], meta)
    np.testing.assert_allclose(acts["box"], box, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda run, i, m: run(i), "takes 2 input(s) (image, meta), got 1"),
    (lambda run, i, m: run(i, m[:2]), "different batch sizes (image: 3, meta: 2)"),
    (lambda run, i, m: run(i, m[:, :4]), "input 'meta' has shape (3, 4)"),
    (lambda run, i, m: run({"image": i}), "needs input 'meta' too"),
    (lambda run, i, m: run({"image": i, "meta": m, "extra": m}), "has no input 'extra'"),
])
def test_executor_refuses_inputs_that_do_not_fit(call, message: str, tmp_path: Path) -> None:
    from netspec.targets.numpy_exec import executor

    *_, image, meta = _inputs(tmp_path)
    with pytest.raises(netspec.NetspecError) as err:
        call(executor(netspec.load_source(TWO)), image, meta)
    assert err.value.diagnostics[0].code == "E602" and message in err.value.diagnostics[0].message


# --- netspec run --------------------------------------------------------------------------------


def test_run_writes_an_npz_keyed_by_output_name(tmp_path: Path) -> None:
    from netspec.targets.numpy_exec import executor

    spec = _write(tmp_path)
    image_path, meta_path, image, meta = _inputs(tmp_path)
    out = tmp_path / "y.npz"
    result = cli_runner().invoke(main, ["run", str(spec), "--input", f"meta={meta_path}",
                                        "--input", f"image={image_path}", "-o", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    want = executor(netspec.load(spec), seed=2)(image, meta, by_name=True)
    assert sorted(got.files) == ["box", "cls"]
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


@pytest.mark.parametrize("args, message, line", [
    (["--input", "image=IMG"], "has no input file for 'meta': give --input meta=FILE.npy", 3),
    (["--input", "image=IMG", "--input", "meta=META", "--input", "meta=META"], "input 'meta' is given twice", 3),
    (["--input", "image=IMG", "--input", "mtea=META"], "has no input 'mtea' (its inputs: image, meta); "
     "did you mean 'meta'?", 2),
    (["--input", "IMG", "--input", "meta=META"], "name each file as --input NAME=FILE.npy", 2),
])
def test_run_refuses_inputs_that_do_not_match(args: list[str], message: str, line: int, tmp_path: Path) -> None:
    spec = _write(tmp_path)
    image_path, meta_path, *_ = _inputs(tmp_path)
    args = [a.replace("IMG", str(image_path)).replace("META", str(meta_path)) for a in args]
    out = tmp_path / "y.npz"
    result = cli_runner().invoke(main, ["run", str(spec), *args, "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "error[E610]" in result.output and message in result.output
    assert f"two.net:{line}:" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_run_refuses_an_npy_output_for_several_outputs(tmp_path: Path) -> None:
    spec = _write(tmp_path)
    image_path, meta_path, *_ = _inputs(tmp_path)
    out = tmp_path / "y.npy"
    result = cli_runner().invoke(main, ["run", str(spec), "--input", f"image={image_path}",
                                        "--input", f"meta={meta_path}", "-o", str(out)])
    assert result.exit_code == 1 and "error[E610]" in result.output and "2 outputs (cls, box)" in result.output
    assert not out.exists()


def test_run_one_input_one_output_as_before(tmp_path: Path) -> None:
    spec = _write(tmp_path, "network n {\n input x: [3]\n dense(2)\n}\n", "n.net")
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    for given in (str(tmp_path / "x.npy"), f"x={tmp_path / 'x.npy'}"):
        result = cli_runner().invoke(main, ["run", str(spec), "--input", given, "-o", str(tmp_path / "y.npy")])
        assert result.exit_code == 0, result.output
        assert np.load(tmp_path / "y.npy").shape == (4, 2)
    result = cli_runner().invoke(main, ["run", str(spec), "--input", str(tmp_path / "x.npy"),
                                        "-o", str(tmp_path / "y.npz")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "y.npz")["dense"].shape == (4, 2)


# --- netspec train ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, where, what", [
    (TWO, "two.net:3:5", "has 2 inputs (image, meta)"),
    (TWO.replace("    input meta: [5]\n", "").replace("meta -> dense", "feat -> dense"), "two.net:1:9",
     "has 2 outputs (cls, box)"),
])
def test_train_refuses_several_inputs_or_outputs(text: str, where: str, what: str, tmp_path: Path) -> None:
    spec = _write(tmp_path, text)
    out = tmp_path / "m.keras"
    result = cli_runner().invoke(main, ["train", str(spec), "-o", str(out), "--epochs", "1"])
    assert result.exit_code == 1, result.output
    assert f"{where}: error[E611]" in result.output and what in result.output
    assert "Traceback" not in result.output and not out.exists()


# --- one weights file for every target ----------------------------------------------------------


def test_one_weights_file_runs_the_same_in_every_target(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tensorflow")
    import onnxruntime as ort

    from netspec.targets.keras_model import to_keras
    from netspec.targets.numpy_exec import compile_numpy, executor
    from netspec.targets.onnx_model import to_onnx

    net = netspec.load_source(TWO)
    weights = tmp_path / "w.npz"
    compile_numpy(net, weights, seed=5)
    assert sorted(np.load(weights).files) == sorted(
        f"{n.name}/{w.name}" for n in net.graph.nodes for w in net.layers[n.name].weights)
    *_, image, meta = _inputs(tmp_path)
    want = executor(net, weights)(image, meta)
    keras_out = to_keras(net, weights).predict({"image": image, "meta": meta}, verbose=0)
    sess = ort.InferenceSession(to_onnx(net, weights).SerializeToString(), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["cls", "box"]
    onnx_out = sess.run(None, {"image": image, "meta": meta})
    for w, k, o in zip(want, keras_out, onnx_out):
        np.testing.assert_allclose(k, w, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(o, w, rtol=1e-4, atol=1e-5)
