"""Every complete `.net` example in the README and the docs checks without errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import netspec

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list:
    out = []
    for doc in DOCS:
        for i, block in enumerate(re.findall(r"```\n(.*?)```", doc.read_text(), re.S)):
            # Complete specs only: templates (NAME, ...), excerpts (a line "    ...") and shell sessions are not specs.
            if (re.search(r"^network \w+ ?[({]", block, re.M) and "NAME" not in block and "$ " not in block
                    and "    ...\n" not in block):
                out.append(pytest.param(block, id=f"{doc.name}-{i}"))
    return out


@pytest.mark.parametrize("text", examples())
def test_doc_example_checks(text: str) -> None:
    report = netspec.check_source(text, "example.net")
    assert report.ok, netspec.core.diagnostics.render_all(report.all_diagnostics)


def test_there_are_examples() -> None:
    assert len(examples()) >= 3
