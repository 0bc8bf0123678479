"""Bad specs: every rule of LANGUAGE.md's "What check must catch" list, with generated violations.

Each generated violation (:func:`netgen.bad_specs`) must produce its error
code at the right file, line and column, from the library
(``check_file``), from ``load`` (which raises) and from the command line
(``check`` and ``compile``, which must leave no output behind).  The
verdict must be the same as building the network: for shape rules the raw
Keras layer refuses it too; and the valid twin right at each rule's
boundary (:func:`netgen.near_misses`), and specs that only warn, build and
run in all three targets with equal results (the both-or-neither rule).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from counting import count
from helpers import cli_runner
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import RULE_CODES, RULES, BadSpec, bad_specs, near_misses, warning_specs
from test_differential import differential

import netspec
from netspec.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

LONG = os.environ.get("NETSPEC_PROFILE") == "long"
PER_RULE = 200 if LONG else 8


def _cli(args: list[str]) -> tuple[str, str, int]:
    runner = cli_runner()
    result = runner.invoke(main, args, prog_name="netspec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"netspec {args[0]} raised {result.exception!r}") from result.exception
    return result.stdout, result.stderr, result.exit_code


def _write(bad: BadSpec, directory: str) -> Path:
    path = Path(directory) / ("warn.net" if bad.severity == "warning" else "bad.net")
    path.write_text(bad.text, encoding="utf-8")
    for name, text in bad.files.items():
        (Path(directory) / name).write_text(text, encoding="utf-8")
    return path


def assert_rejected(bad: BadSpec) -> None:
    """check, load, ``netspec check`` and ``netspec compile`` all report bad.code at its place."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(bad, tmp)
        report = netspec.check_file(path)
        errors = [d for d in report.all_diagnostics if d.is_error]
        assert errors, f"check accepted:\n{bad.text}"
        first = errors[0]
        where = (os.path.basename(first.span.file), first.span.line, first.span.column) if first.span else None
        assert (first.code, where) == (bad.code, (bad.file, bad.line, bad.column)), \
            f"got {first.code} at {where}: {first.message}\nwanted {bad.code} at {bad.file}:{bad.line}:{bad.column}\n" \
            f"{bad.text}"
        with pytest.raises(netspec.NetspecError) as err:
            netspec.load(path)
        assert bad.code in {d.code for d in err.value.diagnostics}
        stdout, stderr, rc = _cli(["check", str(path), "--format", "json"])
        assert rc == 1 and "Traceback" not in stderr
        diags = json.loads(stdout)["diagnostics"]
        assert any(d["code"] == bad.code and (d["line"], d["column"]) == (bad.line, bad.column) for d in diags), diags
        out = Path(tmp) / "model.onnx"
        stdout, stderr, rc = _cli(["compile", str(path), "--target", "onnx", "-o", str(out)])
        assert rc == 1 and not out.exists()
        first_line = stderr.splitlines()[0]
        assert re.match(rf".*{re.escape(bad.file)}:{bad.line}:{bad.column}: error\[{bad.code}\]: ", first_line), stderr
    if bad.keras is not None:
        # the both-or-neither rule: what check refuses, Keras refuses too
        from netspec.targets.keras_model import import_keras

        with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError, TypeError, ...
            bad.keras(import_keras().layers)
        count("bad_specs_keras_refused")


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=PER_RULE)
@given(data=st.data())
def test_each_rule_reports_its_code_at_its_place(rule: str, data: st.DataObject) -> None:
    assert_rejected(data.draw(bad_specs(rule)))
    count("bad_specs")


@settings(max_examples=min(PER_RULE, settings().max_examples) if not LONG else 300)
@given(warning_specs())
def test_warnings_at_their_place_and_the_network_still_builds(bad: BadSpec) -> None:
    report = netspec.check_source(bad.text, "warn.net")
    assert report.ok, report.all_diagnostics
    where = [(d.code, d.span.line, d.span.column) for d in report.all_diagnostics]
    assert (bad.code, bad.line, bad.column) in where, f"{where}\n{bad.text}"
    differential(bad.text, (10, 10, 3), keras=False)
    count("warning_specs")


@settings(max_examples=20 if not LONG else 300)
@given(near_misses())
def test_near_misses_build_in_every_target(case: tuple[str, tuple[int, ...]]) -> None:
    text, shape = case
    concrete = tuple(7 if d is None else d for d in netspec.load_source(text).graph.input.shape)
    assert len(concrete) == len(shape)
    differential(text, concrete)
    count("near_misses")


def test_every_rule_of_the_contract_has_a_generator() -> None:
    assert set(RULE_CODES) == set(RULES)
    for code in ["E201", "E202", "E203", "E204", "E205", "E206", "E301", "E302", "E303", "E305", "E401", "E402",
                 "E403", "E404", "E501", "E503"]:
        assert code in RULE_CODES.values(), code


def test_failed_network_has_no_sentinel_in_warnings() -> None:
    # Once W105 listed every layer before the error, naming the internal output '\x00error'.
    text = "network n {\n    input x: [8, 8, 3]\n    a = conv2d(8, 3)\n    b = conv2d(4, 3)\n    add(a, b)\n}\n"
    report = netspec.check_source(text, "t.net")
    assert [d.code for d in report.all_diagnostics] == ["E403"]


# --- argument boundaries: check's verdict is Keras's ----------------------------------------------------

BOUNDARIES = [
    # once accepted by check and refused by Keras (E605 from the Keras target); now E306 in check
    "relu(threshold=-0.2)", "relu(max_value=-1)", "relu(negative_slope=-0.5)", "leaky_relu(negative_slope=-1)",
    "dense(2, kernel_regularizer=l2(-1))", "dense(2, kernel_initializer=variance_scaling(scale=0))",
    "relu(max_value=0)", "relu(threshold=0.5, negative_slope=0.1, max_value=6)", "leaky_relu(negative_slope=0)",
    "elu(alpha=0.5)", "dropout(0.0)", "dropout(0.999)", "dropout(1.0)", "dropout(-0.1)", "batchnorm(epsilon=1e-9)",
    "softmax(axis=1)", "softmax(axis=0)", "softmax(axis=4)", "conv2d(2, 1, strides=0)", "conv2d(2, 1, dilation_rate=0)",
    "zeropad2d(-1)", "zeropad2d(0)", "conv2d(2, 3, padding=-1)", "maxpool2d(2, strides=0)", "maxpool2d(4)",
    "maxpool2d(5)", "avgpool2d(4, padding='same', strides=9)", "dense(2, kernel_constraint=max_norm(2, axis=0))",
    "dense(2, kernel_initializer=random_uniform(-1, 1))", "reshape((-1, -1))", "reshape((0, -1))", "reshape((2, -1))",
    "conv2d(2, 1, groups=2)", "conv2d(3, 1, groups=2)", "batchnorm(axis=3)", "batchnorm(axis=4)", "batchnorm(axis=0)",
    "depthwise_conv2d(4)", "depthwise_conv2d(5)", "separable_conv2d(2, 4, depth_multiplier=3)",
    "dense(2, kernel_regularizer=orthogonal_regularizer(0.1))",
]


def _keras():
    from netspec.targets.keras_model import import_keras

    return import_keras()


#: Raw Keras layers for the statements check rejects: each must fail in Keras as well ...
RAW_KERAS = {
    "relu(threshold=-0.2)": lambda L: L.ReLU(threshold=-0.2), "relu(max_value=-1)": lambda L: L.ReLU(max_value=-1),
    "relu(negative_slope=-0.5)": lambda L: L.ReLU(negative_slope=-0.5),
    "leaky_relu(negative_slope=-1)": lambda L: L.LeakyReLU(negative_slope=-1),
    "dense(2, kernel_regularizer=l2(-1))": lambda L: L.Dense(2, kernel_regularizer=_keras().regularizers.L2(-1)),
    "dense(2, kernel_initializer=variance_scaling(scale=0))":
        lambda L: L.Dense(2, kernel_initializer=_keras().initializers.VarianceScaling(scale=0)),
    "dropout(-0.1)": lambda L: L.Dropout(-0.1), "conv2d(2, 1, strides=0)": lambda L: L.Conv2D(2, 1, strides=0),
    "conv2d(2, 1, dilation_rate=0)": lambda L: L.Conv2D(2, 1, dilation_rate=0),
    "maxpool2d(2, strides=0)": lambda L: L.MaxPooling2D(2, strides=0), "maxpool2d(5)": lambda L: L.MaxPooling2D(5),
    "reshape((-1, -1))": lambda L: L.Reshape((-1, -1)), "reshape((0, -1))": lambda L: L.Reshape((0, -1)),
    "conv2d(3, 1, groups=2)": lambda L: L.Conv2D(3, 1, groups=2),
    "batchnorm(axis=4)": lambda L: L.BatchNormalization(axis=4),
    "batchnorm(axis=0)": lambda L: L.BatchNormalization(axis=0),
    "depthwise_conv2d(5)": lambda L: L.DepthwiseConv2D(5),
}
#: ... or build a model that computes nonsense (why check refuses it anyway).
KERAS_GETS_WRONG = {
    "dropout(1.0)": "Keras builds it; training divides by 1 - rate = 0",
    "softmax(axis=0)": "Keras builds it; a softmax over the batch axis mixes samples",
    "softmax(axis=4)": "Keras builds it symbolically; it fails when run (no axis 4 in a rank-4 tensor)",
    "zeropad2d(-1)": "Keras builds it symbolically; tf.pad refuses negative padding when run",
    "conv2d(2, 3, padding=-1)": "no Keras equivalent: Conv2D has no numeric padding; ZeroPadding2D(-1) as above",
}


@pytest.mark.parametrize("statement", BOUNDARIES)
def test_argument_boundaries_same_verdict(statement: str) -> None:
    """On an input of (4, 4, 2): check accepts exactly what Keras builds (both or neither)."""
    import warnings

    from netspec.targets.keras_model import import_keras, to_keras

    report = netspec.check_source(f"network n {{\n    input x: [4, 4, 2]\n    {statement}\n}}\n", "b.net")
    if report.ok:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            to_keras(report.networks[0])  # E605 here is a both-or-neither violation
    else:
        first = next(d for d in report.all_diagnostics if d.is_error)
        assert first.span is not None and first.span.line == 3 and first.code[:2] in ("E3", "E4", "E5"), first
        if statement in KERAS_GETS_WRONG:
            return
        keras = import_keras()
        with pytest.raises(Exception):  # noqa: B017 - Keras raises ValueError, IndexError, ZeroDivisionError
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                RAW_KERAS[statement](keras.layers)(keras.Input((4, 4, 2)))
    count("boundary_cases")
