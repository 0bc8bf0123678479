"""``check --explain``: every op of every spec is explained, and the lecture's numbers come out.

The golden files ``tests/golden/explain_*`` hold whole explanations; these
tests check properties over every layer of every spec in ``specs/``: the
numbers an explanation prints are the ones in the table (output shape,
parameter count, MACs, receptive field).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import cli_runner

from netspec.analysis.explain import ExplainError, explain_layer, layer_names
from netspec.cli import main
from netspec.core.ops import OPS
from netspec.frontend.elaborate import check_file, check_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.net"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_every_layer_of_every_spec_is_explained_with_its_table_numbers(path: Path) -> None:
    for net in check_file(path).networks:
        if not net.ok:
            continue
        for name in layer_names(net):
            text = explain_layer(net, name)
            assert "Traceback" not in text
            if name not in net.layers:
                continue
            info = net.layers[name]
            first = text.splitlines()[0]
            assert first.endswith("-> (" + ", ".join(["None"] + [str(d) for d in info.shape]) + ")"), first
            assert f"= {info.params:,} (" in text or (info.params == 0 and "params:  0" in text), text
            if info.macs:
                assert f"{info.macs:,}" in text.split("MACs:", 1)[1].splitlines()[0], text
            rf = info.receptive_field
            if isinstance(rf, tuple):
                story = text.split("receptive field:", 1)[1]
                assert f"= {rf[0]}" in story or "x".join(map(str, rf)) in story, text


def test_lecture_numbers() -> None:
    """The worked examples of the lecture (see tests/golden/explain_lecture.net)."""
    net = check_source("""network n {
    input x: [128, 128, 3]
    v = conv2d(4, 11, strides=6)
    s = x -> conv2d(4, 11, strides=6, padding='same')
    f = x -> conv2d(4, 5)
    output v, s, f
}""").networks[0]
    assert "floor((128 - 11 + 2*0) / 6) + 1 = 20" in explain_layer(net, "conv2d")
    same = explain_layer(net, "conv2d_1")
    assert "'same': ceil(128 / 6) = 22" in same and "split 4 before + 5 after" in same
    assert "5*5*3*4 + 4 = 304" in explain_layer(net, "conv2d_2")


def test_every_op_with_a_window_has_a_hook_and_others_fall_back() -> None:
    """Windows, padding, cropping and upsampling tell their own arithmetic; the rest use the generic story."""
    for name, opdef in OPS.items():
        if opdef.rf == "window":
            assert opdef.explain is not None, name


def test_unknown_layer_is_a_clear_error() -> None:
    net = check_source("network n {\n input x: [8, 8, 1]\n conv2d(2, 3, name='conv1')\n}\n").networks[0]
    with pytest.raises(ExplainError, match="did you mean 'conv1'"):
        explain_layer(net, "conv")
    runner = cli_runner()
    result = runner.invoke(main, ["check", str(ROOT / "specs" / "mnist.net"), "--explain", "dense_3"])
    assert result.exit_code == 2
    assert re.search(r"no layer 'dense_3' in network 'mnist_cnn'; did you mean 'dense_1'\?", result.stderr)
    assert "Traceback" not in result.stderr


def test_explain_in_json() -> None:
    import json

    runner = cli_runner()
    result = runner.invoke(main, ["check", str(ROOT / "specs" / "mnist.net"), "--explain", "conv2d",
                                  "--format", "json"])
    assert result.exit_code == 0
    lines = json.loads(result.stdout)["networks"][0]["explain"]
    assert lines[0].startswith("conv2d: conv2d") and any("3*3*1*32 + 32 = 320" in line for line in lines)


def test_symbolic_sizes_are_explained_with_formulas() -> None:
    net = check_source("""network fcn {
    input x: [H, W, 3]
    conv2d(16, 7, strides=2, padding='same')
    maxpool2d(3, strides=2)
}""").networks[0]
    conv = explain_layer(net, "conv2d")
    assert "'same': ceil(H / 2) = floor((H - 1) / 2) + 1" in conv
    pool = explain_layer(net, "max_pooling2d")
    assert "floor((floor((H - 1) / 2) + 1 - 3 + 2*0) / 2) + 1 = floor((H - 1) / 4)" in pool
