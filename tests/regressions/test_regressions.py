"""Saved, shrunk failing cases: every ``*.net`` here runs through the full differential check.

Each file starts with ``# concrete-input: [..]`` (the input shape to run it
on; ``?`` sizes need one), ``# extra-input: [..]`` for each further input,
and, while its bug is open, ``# xfail: REASON``:
the case is then expected to fail (strict, so a fix turns the run red until
the line is removed).  ``auto_*.net`` files are written by
``tests/test_differential.py`` when hypothesis finds and shrinks a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

from test_differential import differential, extra_inputs, parse_header  # noqa: E402

CASES = sorted(Path(__file__).parent.glob("*.net"))


def _param(path: Path):
    _, reason = parse_header(path.read_text(encoding="utf-8"))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in CASES])
def test_regression(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    shape, _ = parse_header(text)
    differential(text, shape, extra_inputs=extra_inputs(text))


def test_there_are_regressions() -> None:
    assert CASES, "tests/regressions/ holds no .net case"
