"""The language server's answers, in process (:mod:`netspec.tools.lsp.analysis`).

tests/test_lsp.py drives the real server over stdio; these tests ask the
same questions directly, over more of the language: ResNet-50 gets a shape
at every statement line; definitions and hovers reach ``fn``, ``let``,
``for`` and ``repeat`` variables, ``carry``, ``output`` and network
instances; completion knows arguments, defaults and enum values; the file
and parse caches see edits on disk and in buffers.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from netspec.tools.lsp.analysis import (
    Files,
    analyze,
    completions,
    definition,
    enum_choices,
    hover,
    inlay_hints,
)

ROOT = Path(__file__).resolve().parents[1]

V2 = """\
let width = 1_000  # file-level
fn make_divisible(v, d=8) = max(d, int(v + d / 2) // d * d)

# Squeeze and excite.
block se(t: tensor, ratio=0.25) {
    s = global_avgpool2d(keepdims=true) -> conv2d(int(channels(t) * ratio), 1, activation='relu')
    multiply(t, s)
}

network mb(alpha=1.0, size=32) {
    input x: [size, size, 3]
    let c = make_divisible(16 * alpha)
    h = conv2d(c, 3, padding='same')
    repeat 2 as i carry h {
        h = h -> conv2d(c, 3, padding='same')
    }
    for (k, e) in ((3, 1), (5, 2)) carry h {
        h = h -> conv2d(c * e, k, padding='same' if k == 3 else 'valid')
    }
    output h
}

network small = mb(alpha=0.5)
"""


def _at(text: str, needle: str, delta: int = 0) -> int:
    return text.index(needle) + delta


def test_resnet50_has_a_shape_at_every_statement_line():
    from netspec.frontend import surface as S

    path = ROOT / "specs" / "resnet50.net"
    text = path.read_text()
    doc = analyze(Files(), path, text)
    assert doc.report.ok
    labels = {h.line: h.label for h in inlay_hints(doc)}
    lines = text.splitlines()
    net = next(i for i in doc.tree.items if isinstance(i, S.NetworkDef))
    first, last = doc.line_of(net.span.start), doc.line_of(net.span.end - 1)
    for i in range(first + 1, last):
        code = lines[i].split("#")[0].strip()
        if code and code != "}":
            assert i in labels, f"line {i + 1} has no shape: {lines[i]!r}"
    assert labels[last - 1].endswith("(None, 1000)")
    # a block body line shows the first and last of its calls' shapes
    body = next(i for i, line in enumerate(lines) if "conv2d(filters, kernel_size" in line)
    assert labels[body] == "(None, 112, 112, 64) … (None, 7, 7, 2048) (53 calls)"


def test_v2_definitions():
    doc = analyze(Files(), "/tmp/v2.net", V2)
    assert doc.report.ok, doc.diagnostics

    def goto(needle: str, delta: int = 0) -> int:
        target = definition(doc, _at(V2, needle, delta))
        assert target is not None, needle
        return target.start

    assert goto("make_divisible(16") == _at(V2, "make_divisible(v")  # fn
    assert goto("c * e") == _at(V2, "c = make")  # let in a body
    assert goto("k, padding") == _at(V2, "(k, e)", 1)  # for variable
    assert goto("v + d") == _at(V2, "make_divisible(v", 15)  # fn parameter
    assert goto("channels(t)", 9) == _at(V2, "se(t", 3)  # tensor parameter
    assert goto("h = h -> conv2d(c * e", 4) == _at(V2, "h = h -> conv2d(c, 3")  # carried out of the repeat
    assert goto("output h", 7) == _at(V2, "h = h -> conv2d(c * e")  # carried out of the for
    assert goto("mb(alpha=0.5") == _at(V2, "mb(alpha=1.0")  # instance to its network
    assert goto("size, size", 1) == _at(V2, "size=32")  # network parameter


def test_v2_hovers():
    doc = analyze(Files(), "/tmp/v2.net", V2)
    assert hover(doc, _at(V2, "make_divisible(16")).startswith(
        "```netspec\nfn make_divisible(v, d=8) = max(d, int(v + d / 2) // d * d)\n```")
    text = hover(doc, _at(V2, "small"))
    assert "network mb(alpha=1.0, size=32)" in text and "`small`: x `(None, 32, 32, 3)` → `(None, 28, 28, 16)`" in text
    assert hover(doc, _at(V2, "se(t", 1)).endswith("Squeeze and excite.")
    assert hover(doc, _at(V2, "c * e")) == "`let c = make_divisible(16 * alpha)`"
    assert hover(doc, _at(V2, "x: [size")) is not None


def test_completion_contexts():
    # The server completes the text as typed with the names of the last check that parsed.
    good = "block b(n=2) {\n    dense(n)\n}\n\nnetwork n {\n    input x: [8, 8, 3]\n    y = conv2d(4, 3)\n}\n"
    doc = analyze(Files(), "/tmp/c.net", good)
    assert doc.tree is not None

    def complete(typed: str, needle: str, delta: int) -> dict:
        return {c.label: c for c in completions(dataclasses.replace(doc, text=typed), _at(typed, needle, delta))}

    typed = good.replace("conv2d(4, 3)", "conv2d(4, 3, ")
    labels = complete(typed, "3, \n", 3)
    assert labels["padding="].detail == "= 'valid'" and labels["kernel_initializer="].detail == "= 'glorot_uniform'"
    assert labels["filters="].detail == "required" and labels["y"].kind == "variable"
    typed = good.replace("conv2d(4, 3)", "conv2d(4, 3, padding=")
    assert set(complete(typed, "padding=", 8)) == {"'valid'", "'same'"}
    typed = good.replace("conv2d(4, 3)", "conv2d(4, 3, activation='")
    labels = complete(typed, "activation='", 12)
    assert "relu" in labels and "'relu'" not in labels
    typed = good.replace("conv2d(4, 3)", "b(")
    assert {c.label: c.detail for c in complete(typed, "b(\n", 2).values() if c.kind == "argument"} == {"n=": "= 2"}
    typed = good.replace("y = conv2d(4, 3)", "Max")
    labels = complete(typed, "Max\n", 3)
    assert "MaxPooling2D" in labels and "global_maxpool2d" in labels and "dense" not in labels
    typed = good.replace("y = conv2d(4, 3)", "b")
    assert complete(typed, "b\n", 1)["b"].kind == "block"
    assert "he_normal" in enum_choices("conv2d", "kernel_initializer")
    assert enum_choices("conv2d", "filters") == []


def test_files_follow_the_disk_and_buffers(tmp_path: Path):
    lib = tmp_path / "lib.net"
    lib.write_text("block one() {\n    dense(1)\n}\n")
    main = tmp_path / "main.net"
    text = 'import "lib.net"\n\nnetwork n {\n    input x: [4]\n    one()\n}\n'
    files = Files()
    assert analyze(files, main, text).report.ok
    lib.write_text("block one() {\n    dense(0)\n}\n")
    st = os.stat(lib)
    os.utime(lib, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new modification time, whatever the clock
    assert [d.code for d in analyze(files, main, text).diagnostics] == ["E306"]
    files.set_buffer(lib, "block one() {\n    dense(3)\n}\n")
    doc = analyze(files, main, text)
    assert doc.report.ok and doc.networks[0].output_shape == (3,)
    assert Files.key(lib).resolve() in doc.imports
    files.drop_buffer(lib)
    assert not analyze(files, main, text).report.ok


def test_an_unchanged_import_is_parsed_once(tmp_path: Path, monkeypatch):
    import netspec.tools.lsp.analysis as A

    lib = tmp_path / "lib.net"
    lib.write_text("block one() {\n    dense(1)\n}\n")
    main = tmp_path / "main.net"
    calls: list[str] = []
    real = A.parse_source
    monkeypatch.setattr(A, "parse_source", lambda text, name: calls.append(name) or real(text, name))
    files = Files()
    for units in (1, 2, 3):
        text = f'import "lib.net"\n\nnetwork n {{\n    input x: [4]\n    one() -> dense({units})\n}}\n'
        assert analyze(files, main, text).report.ok
    assert sum(1 for c in calls if c.endswith("lib.net")) == 1
    assert sum(1 for c in calls if c.endswith("main.net")) == 3


SPECS = sorted((ROOT / "specs").glob("*.net"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_questions_across_each_spec_have_answers(path: Path):
    """Hover, definition and completion at tokens all through every spec, and on cut-off texts: no exception."""
    from lark.lexer import LexerThread

    from netspec.tools.fmt import _lexer

    text = path.read_text()
    doc = analyze(Files(), path, text)
    lexer, _ = _lexer()
    tokens = list(LexerThread.from_text(lexer, text).lex(None))
    for tok in tokens[:: max(1, len(tokens) // 150)]:
        for offset in (tok.start_pos, tok.end_pos):
            answer = hover(doc, offset)
            assert answer is None or isinstance(answer, str)
            target = definition(doc, offset)
            assert target is None or 0 <= target.start <= target.end <= len(target.text)
            completions(doc, offset)
    # what an editor sees while the user types: every prefix cut at a line end
    for cut in range(0, len(text), max(1, len(text) // 8)):
        partial = text[:cut]
        typed = dataclasses.replace(doc, text=partial)
        completions(typed, len(partial))
        analyze(Files(), path, partial)


def test_symbolic_sizes_show_as_formulas():
    text = ("network fcn {\n    input x: [H, W, 3]\n    conv2d(16, 7, strides=2, padding='same')\n"
            "    maxpool2d(3, strides=2)\n    global_avgpool2d()\n}\n")
    doc = analyze(Files(), "/tmp/fcn.net", text)
    labels = {h.line: h.label for h in inlay_hints(doc)}
    assert labels[1] == "(None, H, W, 3)"
    assert labels[2] == "(None, floor((H - 1) / 2) + 1, floor((W - 1) / 2) + 1, 16)"
    assert labels[4] == "(None, 16)"
    assert "`(None, floor((H - 1) / 4), floor((W - 1) / 4), 16)`" in hover(doc, _at(text, "maxpool2d"))
