"""Golden files for the ``netspec check`` command line.

Each case is ``tests/golden/NAME.net``; beside it lie the expected
``NAME.stdout``, ``NAME.stderr`` and ``NAME.rc``, and ``NAME.args`` with
extra command-line arguments when the case needs them.  The CLI runs
in-process (click's ``CliRunner``) with the working directory set to
``tests/golden``, so file names in messages are stable.

A case states what it must report in comment lines at its top, which are
checked before the golden text and so cannot be regenerated away:

``# expect: error[E201] NAME.net:4:5``
    the diagnostics, in order, with their exact line and column (a case
    without ``expect`` lines must report nothing); a diagnostic without a
    location is written ``# expect: error[E208]``.
``# expect-text: TEXT``
    TEXT must appear in a diagnostic's message line (not in the quoted source).
``# xfail: REASON``
    a known core bug: the case is an ``xfail(strict=True)`` and has no
    golden files (wrong output is never baked in).

Rewrite the golden files with ``pytest tests/test_golden.py --regen-golden``
(or ``NETSPEC_REGEN_GOLDEN=1``) and review the diff.
"""

from __future__ import annotations

import json
import re
import shlex
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import cli_runner

from netspec.cli import main
from netspec.core.diagnostics import CODES

GOLDEN = Path(__file__).parent / "golden"
# Absolute paths (E207 names the file it tried) are shown relative to this marker.
GOLDEN_MARK = "<golden>"

# A rendered diagnostic's first line; source excerpts are indented, notes say "note:".
DIAG_RE = re.compile(
    r"^(?:(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): )?(?P<sev>error|warning)\[(?P<code>[A-Z]\d{3})\]: ",
    re.M,
)


@dataclass
class Case:
    """One golden case: its file, arguments and stated expectations."""

    name: str
    args: list[str]
    expect: list[str] = field(default_factory=list)
    expect_text: list[str] = field(default_factory=list)
    xfail: str | None = None

    @property
    def strict(self) -> bool:
        return "--strict" in self.args

    @property
    def json(self) -> bool:
        return "json" in self.args and "--format" in self.args


def load_case(name: str) -> Case:
    """Read a case's arguments and its ``# expect`` / ``# xfail`` header lines."""
    args_file = GOLDEN / f"{name}.args"
    args = shlex.split(args_file.read_text()) if args_file.exists() else []
    case = Case(name, args)
    # Decode leniently: the E103 case is deliberately not UTF-8.
    for line in (GOLDEN / f"{name}.net").read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("#"):
            continue
        key, _, value = line[1:].partition(":")
        key, value = key.strip(), value.strip()
        if key == "expect":
            case.expect.append(value)
        elif key == "expect-text":
            case.expect_text.append(value)
        elif key == "xfail":
            case.xfail = value
    return case


def run_check(name: str, args: list[str]) -> tuple[str, str, int]:
    """Run ``netspec check NAME.net ARGS`` in-process; a traceback fails the test."""
    runner = cli_runner()
    result = runner.invoke(main, ["check", f"{name}.net", *args], prog_name="netspec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))  # type: ignore[misc]
        pytest.fail(f"netspec check {name}.net raised instead of reporting:\n{trace}")
    mark = str(GOLDEN.resolve())
    return (result.stdout.replace(mark, GOLDEN_MARK), result.stderr.replace(mark, GOLDEN_MARK),
            result.exit_code)


def reported(stderr: str) -> list[str]:
    """The diagnostics on standard error, written as ``# expect`` lines are."""
    out = []
    for m in DIAG_RE.finditer(stderr):
        head = f"{m['sev']}[{m['code']}]"
        out.append(head if m["file"] is None else f"{head} {m['file']}:{m['line']}:{m['col']}")
    return out


def json_reported(stdout: str) -> list[str]:
    """The diagnostics in the JSON report, written as ``# expect`` lines are."""
    out = []
    for d in json.loads(stdout)["diagnostics"]:
        head = f"{d['severity']}[{d['code']}]"
        out.append(head if d["line"] is None else f"{head} {d['file']}:{d['line']}:{d['column']}")
    return out


def _params() -> list:
    params = []
    for path in sorted(GOLDEN.glob("*.net")):
        case = load_case(path.stem)
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        params.append(pytest.param(path.stem, marks=marks, id=path.stem))
    return params


@pytest.mark.parametrize("name", _params())
def test_golden(name: str, regen_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    case = load_case(name)
    monkeypatch.chdir(GOLDEN)
    stdout, stderr, rc = run_check(name, case.args)

    # What the case states: exact diagnostics and locations, exit status, texts.
    assert "Traceback" not in stdout + stderr
    assert reported(stderr) == case.expect, stderr
    errors = any(e.startswith("error") for e in case.expect)
    warnings = any(e.startswith("warning") for e in case.expect)
    assert rc == (1 if errors or (case.strict and warnings) else 0), stderr
    messages = "\n".join(m.string[m.end():] for m in map(DIAG_RE.match, stderr.splitlines()) if m)
    for text in case.expect_text:
        assert text in messages, stderr
    if case.json:
        assert json_reported(stdout) == case.expect
    if case.xfail:
        return

    expected = {"stdout": stdout, "stderr": stderr, "rc": f"{rc}\n"}
    if regen_golden:
        for suffix, text in expected.items():
            (GOLDEN / f"{name}.{suffix}").write_text(text)
        return
    for suffix, text in expected.items():
        path = GOLDEN / f"{name}.{suffix}"
        assert path.exists(), f"no {path.name}; run pytest tests/test_golden.py --regen-golden and review it"
        assert text == path.read_text(), f"{name}.{suffix} differs"


def test_every_diagnostic_code_has_a_case() -> None:
    # E6xx are the targets' codes, E11x netspec fmt's (tests/test_fmt.py) and E7xx netspec import's
    # (tests/test_import.py): `check` cannot produce them.
    wanted = {code for code in CODES if not code.startswith(("E6", "E11", "E7"))}
    covered = set()
    for path in GOLDEN.glob("*.net"):
        for expect in load_case(path.stem).expect:
            covered.add(expect.split("[", 1)[1][:4])
    assert sorted(wanted - covered) == []


def test_golden_files_belong_to_a_case() -> None:
    cases = {p.stem for p in GOLDEN.glob("*.net")}
    for path in GOLDEN.iterdir():
        if path.is_file() and path.suffix in (".stdout", ".stderr", ".rc", ".args"):
            assert path.stem in cases, f"{path.name} has no {path.stem}.net"
    for name in cases:
        if load_case(name).xfail:
            assert not (GOLDEN / f"{name}.stderr").exists(), f"{name} is xfail: its output must not be golden"


def test_json_output_matches_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    # The contract's example, field by field, on the lecture's MNIST network.
    monkeypatch.chdir(GOLDEN)
    stdout, _, rc = run_check("table_mnist", ["--format", "json"])
    assert rc == 0
    report = json.loads(stdout)
    (net,) = report["networks"]
    assert net["name"] == "mnist_cnn"
    assert net["input_shape"] == [None, 28, 28, 1]
    assert net["output_shape"] == [None, 10]
    assert net["params"] == {"total": 421642, "trainable": 421642, "non_trainable": 0}
    assert net["macs"] == 4241152
    first = net["layers"][0]
    assert (first["name"], first["op"], first["output_shape"], first["params"], first["macs"], first["line"]) == (
        "conv2d", "conv2d", [None, 28, 28, 32], 320, 225792, 4)
    assert report["diagnostics"] == []


def test_json_failed_network_has_no_totals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    stdout, _, rc = run_check("json_errors", ["--format", "json"])
    bad = json.loads(stdout)["networks"][1]
    assert (rc, bad["name"], bad["ok"]) == (1, "bad", False)
    assert (bad["macs"], bad["params"], bad["activation_bytes"], bad["weight_bytes"]) == (None, None, None, None)
