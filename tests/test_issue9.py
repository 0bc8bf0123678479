"""Regression tests for issue 9, "defects found by trying netspec as a new user would".

Each test names the item it reproduces; each failed before its fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_runner

import netspec
from netspec.cli import main

TWO_NETS_ONE_BAD = """\
network a {
    input x: [4]
    dense(2)
}
network b {
    input y: [4]
    dense(foo)
}
"""

TWO_NETS = """\
network a {
    input x: [4]
    dense(2)
}
network b {
    input y: [4]
    dense(3)
}
"""

ONE_NET = """\
network n {
    input x: [4]
    dense(2)
}
"""


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = cli_runner().invoke(main, [str(a) for a in args], prog_name="netspec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    out, err = result.stdout, result.stderr
    assert "Traceback" not in out + err
    return result.exit_code, out, err


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.net").write_text(ONE_NET)
    (tmp_path / "two.net").write_text(TWO_NETS)
    (tmp_path / "two_bad.net").write_text(TWO_NETS_ONE_BAD)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    return tmp_path


# --- item 6: -n isolates a network ---------------------------------------------------------------


@pytest.mark.parametrize("command", [["compile", "two_bad.net", "-t", "numpy", "-o", "w.npz"],
                                     ["run", "two_bad.net", "-i", "x.npy", "-o", "y.npy"]])
def test_item6_network_option_isolates_the_network(work: Path, command: list[str]) -> None:
    rc, _, err = invoke([*command, "-n", "a"])
    assert rc == 0, err
    assert "E203" not in err  # network b's error is not this command's business
    rc, _, err = invoke([*command, "-n", "b"])
    assert rc == 1 and "E203" in err


def test_item6_library_load_isolates_the_network(work: Path) -> None:
    assert netspec.load(work / "two_bad.net", network="a").total_params == 10
    assert netspec.load_source(TWO_NETS_ONE_BAD, network="a").total_params == 10
    with pytest.raises(netspec.NetspecError) as err:
        netspec.load(work / "two_bad.net", network="b")
    assert [d.code for d in err.value.diagnostics] == ["E203"]


def test_item6_check_without_n_still_reports_every_network(work: Path) -> None:
    rc, _, err = invoke(["check", "two_bad.net"])
    assert rc == 1 and "E203" in err
    rc, out, err = invoke(["check", "two_bad.net", "-n", "a"])
    assert rc == 0 and "network a" in out


# --- item 7: several networks need -n -------------------------------------------------------------


@pytest.mark.parametrize("command", [["compile", "two.net", "-t", "numpy", "-o", "w.npz"],
                                     ["run", "two.net", "-i", "x.npy", "-o", "y.npy"],
                                     ["train", "two.net", "-o", "m.keras"]])
def test_item7_several_networks_need_a_choice(work: Path, command: list[str]) -> None:
    rc, _, err = invoke(command)
    assert rc == 2 and "error[E208]" in err and "(a, b)" in err and "--network" in err, err
    assert sorted(p.name for p in work.iterdir()) == ["one.net", "two.net", "two_bad.net", "x.npy"]


# --- item 8: an empty file ------------------------------------------------------------------------


def test_item8_empty_file_is_an_error(work: Path) -> None:
    (work / "empty.net").write_text("")
    rc, _, err = invoke(["check", "empty.net"])
    assert rc == 1 and "error[E208]" in err
    rc, _, err = invoke(["check", "empty.net", "--format", "json"])
    assert rc == 1
    # A file of blocks only is a library for `import`: it checks clean.
    (work / "lib.net").write_text("block b(n) {\n    dense(n)\n}\n")
    assert invoke(["check", "lib.net"])[0] == 0


# --- items 10 and 12: outputs checked before any work ----------------------------------------------


@pytest.mark.parametrize(("command", "code", "text"), [
    (["compile", "one.net", "-t", "numpy", "-o", "nodir/w.npz"], "E603", "folder 'nodir' does not exist"),
    (["compile", "one.net", "-t", "keras", "-o", "nodir/m.keras"], "E603", "folder 'nodir' does not exist"),
    (["compile", "one.net", "-t", "onnx", "-o", "nodir/m.onnx"], "E603", "folder 'nodir' does not exist"),
    (["run", "one.net", "-i", "x.npy", "-o", "nodir/y.npy"], "E603", "folder 'nodir' does not exist"),
    (["train", "one.net", "-o", "nodir/m.keras"], "E603", "folder 'nodir' does not exist"),
    (["compile", "one.net", "-t", "numpy", "-o", "one.net"], "E606", "a file this command reads"),
    (["compile", "one.net", "-t", "onnx", "-o", "./one.net"], "E606", "a file this command reads"),
    (["run", "one.net", "-i", "x.npy", "-o", "x.npy"], "E606", "a file this command reads"),
    (["compile", "one.net", "-t", "numpy", "-o", "w.onnx"], "E606", "name the output 'w.npz'"),
    (["compile", "one.net", "-t", "onnx", "-o", "m.npz"], "E606", "name the output 'm.onnx'"),
    (["compile", "one.net", "-t", "keras", "-o", "m.h5"], "E606", "name the output 'm.keras'"),
    (["train", "one.net", "-o", "m.h5"], "E606", "name the output 'm.keras'"),
    (["run", "one.net", "-i", "x.npy", "-o", "y.txt"], "E606", "name the output 'y.npy'"),
])
def test_items10_12_outputs_are_checked_first(work: Path, command: list[str], code: str, text: str) -> None:
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    rc, _, err = invoke(command)
    assert rc == 2 and f"error[{code}]" in err and text in err, err
    assert ".netspec-" not in err
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("target", ["numpy", "keras"])
def test_item12_opset_only_for_onnx(work: Path, target: str) -> None:
    out = "w.npz" if target == "numpy" else "m.keras"
    rc, _, err = invoke(["compile", "one.net", "-t", target, "-o", out, "--opset", "13"])
    assert rc == 2 and "--opset" in err and "onnx" in err
    assert not (work / out).exists()


def test_item10_no_temp_names_in_write_errors(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A write that fails after the checks (here: the disk refuses) names the user's path, never the temp file.
    import netspec.core.fileio as fileio

    real = fileio.os.replace

    def refuse(src, dst):  # noqa: ANN001
        raise OSError(28, "No space left on device", src)

    monkeypatch.setattr(fileio.os, "replace", refuse)
    rc, _, err = invoke(["compile", "one.net", "-t", "numpy", "-o", "w.npz"])
    monkeypatch.setattr(fileio.os, "replace", real)
    assert rc == 1 and "E603" in err and "No space left" in err and "w.npz" in err, err
    assert ".netspec-" not in err


# --- item 11: --strict --format json ---------------------------------------------------------------


def test_item11_strict_json_ok_agrees_with_exit_status(work: Path) -> None:
    (work / "warn.net").write_text("network n {\n    input x: [8, 8, 3]\n    conv2d(4, 2)\n}\n")
    rc, out, _ = invoke(["check", "warn.net", "--strict", "--format", "json"])
    report = json.loads(out)
    assert rc == 1 and report["ok"] is False and report["networks"][0]["ok"] is False
    rc, out, _ = invoke(["check", "warn.net", "--format", "json"])
    report = json.loads(out)
    assert rc == 0 and report["ok"] is True and report["networks"][0]["ok"] is True


# --- item 19: check --summary -----------------------------------------------------------------------


def test_item19_summary_prints_totals_only() -> None:
    spec = Path(__file__).parent.parent / "specs" / "resnet50.net"
    rc, out, _ = invoke(["check", str(spec), "--summary", "-s", "W101,W104"])
    assert rc == 0
    assert "conv2_block1_1_conv" not in out and "params:            25,636,712" in out
    assert len(out.splitlines()) < 10
    rc, out, _ = invoke(["check", str(spec), "--summary", "--format", "json", "-s", "W101,W104"])
    net = json.loads(out)["networks"][0]
    assert "layers" not in net and net["params"]["total"] == 25_636_712


# --- item 2 (targets): a size that does not fit at run time is a located diagnostic ------------------

UNKNOWN_MERGE = """\
network q {
    input x: [?, ?, 3]
    a = conv2d(4, 3, strides=2, padding='same')
    b = x -> conv2d(4, 3, strides=(2, 1), padding='same')
    add(a, b)
}
"""


def test_item2_run_reports_a_size_mismatch_with_its_location(work: Path) -> None:
    (work / "q.net").write_text(UNKNOWN_MERGE)
    np.save(work / "x16.npy", np.ones((2, 16, 16, 3), np.float32))
    rc, _, err = invoke(["run", "q.net", "-i", "x16.npy", "-o", "y.npy"])
    assert rc == 1 and "q.net:5:5: error[E403]" in err and "add" in err and "(16, 16, 3)" in err, err
    assert "ValueError" not in err and not (work / "y.npy").exists()
    np.save(work / "x_ok.npy", np.ones((2, 16, 1, 3), np.float32))  # width 1: both branches give (8, 1, 4)
    rc, _, err = invoke(["run", "q.net", "-i", "x_ok.npy", "-o", "y.npy"])
    assert rc == 0, err
    assert np.load(work / "y.npy").shape == (2, 8, 1, 4)


def test_item2_library_executor_reports_a_size_mismatch_with_its_location() -> None:
    from netspec.targets.numpy_exec import executor

    run = executor(netspec.load_source(UNKNOWN_MERGE, filename="q.net"))
    with pytest.raises(netspec.NetspecError) as err:
        run(np.ones((1, 16, 16, 3), np.float32))
    (diag,) = err.value.diagnostics
    assert (diag.code, diag.span.line, diag.span.file) == ("E403", 5, "q.net")
    with pytest.raises(netspec.NetspecError) as err:  # too small for the window: E401 at the conv
        executor(netspec.load_source("network s {\n input x: [?, ?, 1]\n conv2d(1, 3)\n}\n"))(np.ones((1, 2, 2, 1)))
    assert err.value.diagnostics[0].code == "E401" and err.value.diagnostics[0].span.line == 3


# --- item 3: an empty batch -----------------------------------------------------------------------


def test_item3_empty_batch_runs(work: Path) -> None:
    spec = Path(__file__).parent.parent / "specs" / "mnist.net"
    np.save(work / "empty.npy", np.zeros((0, 28, 28, 1), np.float32))
    rc, _, err = invoke(["run", spec, "-i", "empty.npy", "-o", "y.npy"])
    assert rc == 0, err
    assert np.load(work / "y.npy").shape == (0, 10)


# --- item 16: clearer messages ---------------------------------------------------------------------


def test_item16_cr_only_line_endings_are_line_endings(work: Path) -> None:
    (work / "cr.net").write_bytes(ONE_NET.replace("\n", "\r").encode())
    rc, out, err = invoke(["check", "cr.net"])
    assert rc == 0 and "dense" in out, err
    (work / "crbad.net").write_bytes(ONE_NET.replace("dense(2)", "dense(q)").replace("\n", "\r").encode())
    rc, _, err = invoke(["check", "crbad.net"])
    assert rc == 1 and "crbad.net:3:11: error[E203]" in err, err


@pytest.mark.parametrize(("command", "bad", "text"), [
    (["run", "one.net", "-i", "x.npy", "-w", "BAD", "-o", "y.npy"], "g.npz", "not an .npz file"),
    (["run", "one.net", "-i", "BAD", "-o", "y.npy"], "g.npy", "not a .npy file"),
    (["compile", "one.net", "-t", "numpy", "-w", "BAD", "-o", "w.npz"], "g.keras", "not a .keras"),
    (["compile", "one.net", "-t", "numpy", "-w", "BAD", "-o", "w.npz"], "z.keras", "not a .keras"),
    (["train", "one.net", "-d", "BAD", "-o", "m.keras"], "g.npz", "not an .npz file"),
])
def test_item16_files_of_the_wrong_kind_say_so(work: Path, command: list[str], bad: str, text: str) -> None:
    data = b"PK\x03\x04garbage" if bad.startswith("z") else bytes(range(256)) * 2
    (work / bad).write_bytes(data)
    rc, _, err = invoke([bad if a == "BAD" else a for a in command])
    assert rc == 1 and "E603" in err and text in err, err
    assert "pickled" not in err and "File not found" not in err


# --- item 15: smarter lints -------------------------------------------------------------------------

SPECS = Path(__file__).parent.parent / "specs"


def test_item15_resnet18_passes_strict() -> None:
    rc, _, err = invoke(["check", SPECS / "resnet18.net", "--strict", "--summary"])
    assert rc == 0, err


def test_item15_resnet50_passes_strict_and_allows_only_its_v1_bottleneck() -> None:
    rc, _, err = invoke(["check", SPECS / "resnet50.net", "--strict", "--summary"])
    assert rc == 0, err
    # conv1/pool1 drop only padding (no W101); without its `allow W104`, the projection's sibling
    # also starts with a strided 1x1 (ResNet v1), a true W104 finding.
    text = (SPECS / "resnet50.net").read_text().replace("    allow W104\n", "")
    report = netspec.check_source(text, "resnet50.net")
    assert sorted({d.code for d in report.all_diagnostics}) == ["W104"]


def test_item15_lints_in_context() -> None:
    se = netspec.check_source("network se {\n input x: [8, 8, 16]\n global_avgpool2d(keepdims=true)\n"
                              " dense(4, activation='relu')\n}\n")
    assert [d.code for d in se.all_diagnostics] == []
    forgotten = netspec.check_source("network f {\n input x: [8, 8, 16]\n dense(4)\n}\n")
    assert [d.code for d in forgotten.all_diagnostics] == ["W102"]
    lone = netspec.check_source("network p {\n input x: [8, 8, 16]\n conv2d(4, 1, strides=2)\n}\n")
    assert [d.code for d in lone.all_diagnostics] == ["W104"]


# --- item 1: receptive field along a mixed axis -----------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("input x: [16, 16, 3]\n conv2d(4, 3)\n softmax(axis=1)\n conv2d(4, 3)", ("global", 5)),
    ("input x: [16, 16, 3]\n conv2d(4, 3)\n softmax(axis=2)\n conv2d(4, 3)", (5, "global")),
    ("input x: [16, 16, 3]\n conv2d(4, 3)\n softmax()\n conv2d(4, 3)", (5, 5)),
    ("input x: [16, 16, 3]\n conv2d(4, 3)\n dense(8)\n conv2d(4, 3)", (5, 5)),
    ("input x: [3, 16, 16] channels_first\n conv2d(4, 3)\n dense(8)\n conv2d(4, 3)", (5, "global")),
    ("input x: [3, 16, 16] channels_first\n conv2d(4, 3)\n softmax(axis=2)\n softmax(axis=3)", "global"),
    ("input x: [16, 16, 3]\n conv2d(4, 3)\n batchnorm()\n conv2d(4, 3)", (5, 5)),
])
def test_item1_receptive_field_is_global_along_a_mixed_axis(text: str, expected: object) -> None:
    net = netspec.load_source(f"network n {{\n {text}\n}}\n")
    assert net.layers[net.graph.nodes[-1].name].receptive_field == expected


# --- item 5: defaults reach the blocks called from their scope --------------------------------------


def test_item5_defaults_reach_called_blocks_nearest_wins() -> None:
    net = netspec.load(Path(__file__).parent / "golden" / "default_reaches_blocks.net")
    convs = {n.name: n.attrs for n in net.graph.nodes}
    assert {a.kernel_initializer.name for a in convs.values()} == {"he_normal"}
    assert [a.use_bias for a in convs.values()] == [False, False, True, False]
    assert [a.padding == "same" for a in convs.values()] == [False, True, True, False]


def test_item5_readme_resnet_example_gives_he_normal_to_every_conv() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("block basic(")
    text = readme[start:readme.index("```", start)]
    report = netspec.check_source(text)
    net = report.networks[0]
    convs = [n for n in net.graph.nodes if n.op == "conv2d"]
    assert len(convs) == 9
    assert {n.attrs.kernel_initializer.name for n in convs} == {"he_normal"}
    assert [d.code for d in report.all_diagnostics] == []


# --- items 13 and 14: one input-scaling rule; train checks the head and picks the loss --------------


def test_item13_run_scales_uint8_as_train_does(work: Path) -> None:
    (work / "img.net").write_text("network i {\n    input x: [4, 4, 1]\n    flatten()\n    dense(3)\n}\n")
    pixels = np.arange(32, dtype=np.uint8).reshape(2, 4, 4, 1) * 7
    np.save(work / "u8.npy", pixels)
    np.save(work / "f.npy", pixels.astype(np.float32) / 255)
    assert invoke(["compile", "img.net", "-t", "numpy", "-o", "w.npz"])[0] == 0
    for name in ("u8", "f"):
        rc, _, err = invoke(["run", "img.net", "-i", f"{name}.npy", "-w", "w.npz", "-o", f"y_{name}.npy"])
        assert rc == 0, err
    np.testing.assert_allclose(np.load(work / "y_u8.npy"), np.load(work / "y_f.npy"), rtol=1e-5, atol=1e-6)
    from netspec.targets import input_scale
    from netspec.targets.training import _scale

    for array in (pixels, pixels.astype(np.int64), pixels.astype(np.float32)):
        assert _scale(array, array) == input_scale(array)  # train and run share the rule


@pytest.mark.parametrize("head", ["dense(100)", "dense(100, activation='softmax')", "dense(3, activation='sigmoid')"])
def test_item14_head_must_match_the_classes(head: str) -> None:
    from netspec.targets import training

    net = netspec.load_source(f"network n {{ input x: [8, 8, 1]\n flatten()\n {head} }}")
    with pytest.raises(netspec.NetspecError) as err:
        training.train(net, "digits", epochs=1, verbose=0)
    assert err.value.diagnostics[0].code == "E604" and "has 10 classes" in str(err.value)


@pytest.mark.parametrize(("head", "loss", "from_logits"), [
    ("dense(10, activation='softmax')", "SparseCategoricalCrossentropy", False),
    ("dense(10)", "SparseCategoricalCrossentropy", True),
    ("dense(10, activation='sigmoid')", "BinaryCrossentropy", False),
])
def test_item14_loss_follows_the_head(head: str, loss: str, from_logits: bool, capsys: pytest.CaptureFixture) -> None:
    from netspec.targets import training

    net = netspec.load_source(f"network n {{ input x: [16, 16, 1]\n flatten()\n {head} }}")
    result = training.train(net, "digits", epochs=1, verbose=0)
    assert type(result.model.loss).__name__ == loss
    assert result.model.loss.get_config()["from_logits"] is from_logits
    assert 0.0 <= result.test_accuracy <= 1.0
    # The 8x8 digits are resized to the input's 16x16: said, not silent.
    assert "resized" in capsys.readouterr().err and any("resized" in n for n in result.notes)


def test_item14_binary_sigmoid_head(tmp_path: Path) -> None:
    from netspec.targets import training

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "two.npz", x_train=x, y_train=y, x_test=x[:16], y_test=y[:16])
    net = netspec.load_source("network b { input x: [4]\n dense(1, activation='sigmoid') }")
    result = training.train(net, str(tmp_path / "two.npz"), epochs=2, verbose=0)
    assert type(result.model.loss).__name__ == "BinaryCrossentropy"


# --- item 18: one argument order, type checks, documented signatures --------------------------------


def _documented_calls() -> list[tuple[str, str, str]]:
    import re

    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    reference = text[text.index("## Reference"):]
    return re.findall(r"^\| `([\w.]+)` \| `(\w+)\((.*)\)` \|$", reference, re.M)


@pytest.mark.parametrize(("module", "name", "params"), _documented_calls())
def test_item18_documented_signatures_match_the_code(module: str, name: str, params: str) -> None:
    import importlib
    import inspect

    mod = importlib.import_module(module)
    assert name in mod.__all__
    shown = []
    star = False
    for p in inspect.signature(getattr(mod, name)).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            shown.append("*")
            star = True
        shown.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    assert ", ".join(shown) == params


def test_item18_every_public_call_is_documented() -> None:
    import importlib
    import inspect

    documented = {(m, n) for m, n, _ in _documented_calls()}
    for module in ("netspec.targets", "netspec.targets.weights"):
        mod = importlib.import_module(module)
        for name in mod.__all__:
            if inspect.isfunction(getattr(mod, name)):
                assert (module, name) in documented, f"{module}.{name} is not in docs/api.md"
    assert len(_documented_calls()) >= 25


def test_item18_swapped_arguments_are_clear_type_errors(tmp_path: Path) -> None:
    from netspec.targets import compile_target
    from netspec.targets.keras_model import to_keras
    from netspec.targets.numpy_exec import executor
    from netspec.targets.onnx_model import to_onnx
    from netspec.targets.weights import init_weights, load_weights, save_weights

    net = netspec.load_source(ONE_NET)
    w = init_weights(net)
    path = tmp_path / "w.npz"
    save_weights(w, path)
    assert sorted(load_weights(net, path)) == sorted(w)
    calls = [
        (lambda: save_weights(path, w), "save_weights(weights, path)"),
        (lambda: load_weights(path, net), "load_weights(net, path)"),
        (lambda: init_weights(w), "init_weights(net"),
        (lambda: executor(w, net), "executor(net"),
        (lambda: executor(net, 3), "executor(net"),
        (lambda: to_keras(w, net), "to_keras(net"),
        (lambda: to_onnx(path, w), "to_onnx(net"),
        (lambda: compile_target(net, "numpy", w), "compile_target(net, target, output"),
    ]
    for call, signature in calls:
        with pytest.raises(TypeError) as err:
            call()
        assert signature in str(err.value) and "network first" in str(err.value)


def test_item15_pointwise_dense_and_patchify_conv_are_intended() -> None:
    convnext = netspec.check_source("""network c {
    input x: [32, 32, 3]
    stem = conv2d(16, 4, strides=4)
    y = depthwise_conv2d(7, padding='same') -> dense(64, activation='gelu') -> dense(16)
    add(stem, y)
    global_avgpool2d()
    dense(10)
}""")
    assert [d.code for d in convnext.all_diagnostics] == []
    forgotten = netspec.check_source("network f {\n input x: [8, 8, 3]\n conv2d(4, 3)\n dense(16)\n dense(10)\n}\n")
    assert [d.code for d in forgotten.all_diagnostics] == ["W102", "W102"]
    even = netspec.check_source("network e {\n input x: [8, 8, 3]\n conv2d(4, 2, strides=1)\n}\n")
    assert [d.code for d in even.all_diagnostics] == ["W103"]


def test_item15_every_spec_passes_strict() -> None:
    # The specs of issue 9's time (new specs have their own tests).
    for name in ['autoencoder.net', 'c3d.net', 'cifar10.net', 'convnext_tiny.net', 'detector.net', 'efficientnetb0.net', 'image_metadata.net', 'lenet5.net', 'mnist.net', 'mobilenetv2.net', 'mobilenetv3small.net', 'nasnet.net', 'resnet18.net', 'resnet50.net', 'tcn1d.net', 'unet.net', 'unet_valid.net', 'vgg16.net']:
        spec = SPECS / name
        report = netspec.check_file(spec)
        assert [d.render() for d in report.all_diagnostics] == [], spec.name
