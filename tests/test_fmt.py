"""``netspec fmt``: canonical layout, comments kept, idempotent, meaning unchanged.

The properties run over every spec in specs/, every ``.net`` file the tests
keep, and the networks of the cross-target generator (tests/netgen.py):
formatting is idempotent, keeps every comment, and never changes what
``netspec check`` reports (spans aside).  A second property scatters legal
whitespace through a spec and demands the same canonical text back.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from helpers import cli_runner
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import GenNet, networks

from netspec.analysis.report import to_json
from netspec.cli import main
from netspec.core.diagnostics import NetspecError
from netspec.frontend.elaborate import check_source
from netspec.tools.fmt import WIDTH, _comments, _lexer, format_file, format_source, run_fmt

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.net"))


def _good_files() -> list[Path]:
    """Every spec and test file that parses (bad fixtures are about other errors)."""
    from netspec.frontend.syntax import parse_source

    out = []
    for path in SPECS + sorted((ROOT / "tests").rglob("*.net")):
        try:
            parse_source(path.read_bytes().decode("utf-8"), str(path))
        except (NetspecError, UnicodeDecodeError):
            continue
        out.append(path)
    return out


GOOD = _good_files()


def _strip(obj):
    """A JSON report without positions, which formatting may move."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in ("line", "column", "file")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _report(text: str, path: Path | None = None) -> dict:
    name = path.name if path is not None else "gen.net"
    base = path.parent if path is not None else None
    return _strip(to_json(check_source(text, name, base_dir=base)))


def _same_meaning(before: str, after: str, path: Path | None = None) -> None:
    assert _report(after, path) == _report(before, path)
    assert sorted(_comments(after)) == sorted(_comments(before))


# --- layout ------------------------------------------------------------------------------------


MESSY = """\


# header comment

block b( n = 2 , m=-1,) {  # after the brace
    # first in the body

    conv2d( n , 3,   # filters and kernel
       padding = 'same' ,
       # why relu
       activation='relu'
       )
    x = in->conv2d(n*2,(3,3),strides=(1,1),padding='same',dilation_rate=(1,1),use_bias=false,kernel_initializer='he_normal')->batchnorm(epsilon=1e-3)->relu()
    y = x   # c1
      -> dense(-n + -1)   # c2
      -> relu()
    if n == 2 { dense(2) }
    else { dense(3) ; dense(4) }   # after else
    repeat 0 {}
    # before the close
}
network n { input x: [?, 28, 1]
  conv2d(1, 1)      # a
  conv2d(2, 1)  # b


  dense(shape(x)[1] ** -2 + (1,)[0])
}
# end
"""

CANONICAL = """\
# header comment

block b(n=2, m=-1) {  # after the brace
    # first in the body

    conv2d(
        n,
        3,  # filters and kernel
        padding='same',
        # why relu
        activation='relu'
    )
    x = in
        -> conv2d(
            n * 2,
            (3, 3),
            strides=(1, 1),
            padding='same',
            dilation_rate=(1, 1),
            use_bias=false,
            kernel_initializer='he_normal'
        )
        -> batchnorm(epsilon=1e-3)
        -> relu()
    y = x                  # c1
        -> dense(-n + -1)  # c2
        -> relu()
    if n == 2 {
        dense(2)
    } else {
        dense(3)
        dense(4)
    }  # after else
    repeat 0 {}
    # before the close
}

network n {
    input x: [?, 28, 1]
    conv2d(1, 1)  # a
    conv2d(2, 1)  # b

    dense(shape(x)[1] ** -2 + (1,)[0])
}
# end
"""


def test_canonical_layout():
    assert format_source(MESSY) == CANONICAL
    assert format_source(CANONICAL) == CANONICAL


V2 = """\
let width=1_000   # file-level
fn make_divisible(v, d=8)=max(d, int(v + d / 2) // d * d)
allow W104,W102
block se(t:tensor, ratio=0.25) {
  s = global_avgpool2d(keepdims=true) -> conv2d(int(channels(t)*ratio),1,activation='relu')
  multiply(t, s)
}
network mb(alpha=1.0, size=32) {
    input x: [size, size, 3]
    let c = make_divisible(16*alpha)
    h = conv2d(c, 3, padding='same')
    repeat 2 as i carry h { h = h -> conv2d(c, 3, padding='same') }
    for (k,e) in ((3,1),(5,2)) carry h {
      h = h -> conv2d(c*e, k, padding='same' if k==3 else 'valid')
    }
    for v in (1, 2) { dense(v) }
    assert params() < 10_000_000, "too big"
    output h
}
network small = mb(alpha=0.5)
"""

V2_CANONICAL = """\
let width = 1_000  # file-level
fn make_divisible(v, d=8) = max(d, int(v + d / 2) // d * d)
allow W104, W102

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
    for v in (1, 2) {
        dense(v)
    }
    assert params() < 10_000_000, "too big"
    output h
}

network small = mb(alpha=0.5)
"""


def test_language_v2_constructs():
    # let, fn, allow, tensor parameters, parameterised networks and instances, carry, for with
    # unpacking, conditional expressions, assert, output, digit groups, several inputs
    assert format_source(V2) == V2_CANONICAL
    assert format_source(V2_CANONICAL) == V2_CANONICAL
    _same_meaning(V2, V2_CANONICAL)
    two = "network two{input a:[4];input b:[4]\nx=a->dense(3)\ny=b->dense(3)\noutput x,y}"
    assert format_source(two) == ("network two {\n    input a: [4]\n    input b: [4]\n    x = a -> dense(3)\n"
                                  "    y = b -> dense(3)\n    output x, y\n}\n")


def test_semicolons_trailing_commas_and_tuples():
    text = "network n{input x:[4,]\ndense(units=(3,)[0],);dense(2)}"
    assert format_source(text) == (
        "network n {\n    input x: [4,]\n    dense(units=(3,)[0],)\n    dense(2)\n}\n")
    # a trailing comma is dropped where the brackets hold two or more items, kept after one (a tuple)
    assert "reshape((2, 2),)" in format_source("network n {\n input x: [4]\n reshape((2, 2,),)\n}\n")


def test_long_chain_is_broken_at_arrows():
    steps = " -> ".join(f"conv2d({i + 1}, 3, padding='same', name='layer_{i}')" for i in range(4))
    out = format_source(f"network n {{\n input x: [8, 8, 1]\n y = {steps}\n}}\n")
    lines = out.splitlines()
    assert lines[2] == "    y = conv2d(1, 3, padding='same', name='layer_0')"
    assert lines[3] == "        -> conv2d(2, 3, padding='same', name='layer_1')"
    assert all(len(line) <= WIDTH for line in lines)


def test_short_chain_is_joined():
    out = format_source("network n {\n input x: [4]\n dense(2)\n   -> relu()\n}\n")
    assert "    dense(2) -> relu()\n" in out


def test_trailing_comments_align_in_runs():
    out = format_source("network n {\n input x: [4]  # in\n dense(20)   # a\n\n relu() # b\n}\n")
    assert out.splitlines()[1:4] == ["    input x: [4]  # in", "    dense(20)     # a", ""]


def test_import_and_blank_lines_between_items():
    out = format_source('import "a.net"\nimport "b.net"\nblock c() {\n dense(1)\n}\nnetwork n {\n input x: [1]\n}\n')
    assert out == ('import "a.net"\nimport "b.net"\n\nblock c() {\n    dense(1)\n}\n\n'
                   'network n {\n    input x: [1]\n}\n')


def test_syntax_error_is_located():
    with pytest.raises(NetspecError) as err:
        format_source("network n {\n  dense(2\n}\n", "m.net")
    d = err.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.column) == ("E101", 3, 1)


# --- properties over specs and generated networks ---------------------------------------------


@pytest.mark.parametrize("path", GOOD, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_formats_idempotently_and_keeps_its_meaning(path: Path):
    text = path.read_text(encoding="utf-8")
    out = format_source(text, str(path))
    assert format_source(out, str(path)) == out
    _same_meaning(text, out, path)
    assert out.endswith("\n") and "\n\n\n" not in out


@given(networks())
@settings(max_examples=min(40, settings().max_examples * 2))
def test_generated_networks_keep_their_report(net: GenNet):
    out = format_source(net.text)
    assert format_source(out) == out
    _same_meaning(net.text, out)


def _scatter(text: str, rng: random.Random) -> str:
    """The same tokens with random legal whitespace: anything inside ( ) and [ ], spaces elsewhere."""
    from lark.lexer import LexerThread

    lexer, ignored = _lexer()
    out: list[str] = []
    depth = 0
    for tok in LexerThread.from_text(lexer, text).lex(None):
        if tok.type in ignored:
            continue
        value = str(tok.value)
        if tok.type == "_NL" or tok.type == "COMMENT":
            out.append(value)
            continue
        gap = rng.choice([" ", "  ", "\t"]) if depth == 0 else rng.choice([" ", "\n", "\n    ", "  "])
        out.append(gap)
        out.append(value)
        if value in ("(", "["):
            depth += 1
        elif value in (")", "]"):
            depth -= 1
    return "".join(out)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=min(10, settings().max_examples))
def test_layout_does_not_depend_on_whitespace(path: Path, seed: int):
    text = path.read_text(encoding="utf-8")
    scattered = _scatter(text, random.Random(seed))
    assert format_source(scattered, str(path)) == format_source(text, str(path))


# --- files and the command line -----------------------------------------------------------------


def test_fmt_rewrites_in_place_and_check_reports(tmp_path: Path):
    p = tmp_path / "m.net"
    p.write_text("network n{input x:[4]\ndense(2)}")
    runner = cli_runner()
    res = runner.invoke(main, ["fmt", "--check", str(p)])
    assert res.exit_code == 1
    assert res.stdout.startswith(f"--- {p}\n+++ {p} (formatted)\n") and "+    dense(2)" in res.stdout
    assert p.read_text() == "network n{input x:[4]\ndense(2)}"  # --check changes nothing
    res = runner.invoke(main, ["fmt", str(p)])
    assert res.exit_code == 0 and f"reformatted {p}" in res.stderr
    assert p.read_text() == "network n {\n    input x: [4]\n    dense(2)\n}\n"
    res = runner.invoke(main, ["fmt", "--check", str(p)])
    assert (res.exit_code, res.stdout) == (0, "")


def test_fmt_syntax_error_leaves_the_file_untouched(tmp_path: Path):
    p = tmp_path / "bad.net"
    good = tmp_path / "good.net"
    p.write_text("network n {\n  dense(2\n}\n")
    good.write_text("network n{input x:[4]}")
    before = os.stat(p).st_mtime_ns
    res = cli_runner().invoke(main, ["fmt", str(p), str(good)])
    assert res.exit_code == 1
    assert f"{p}:3:1: error[E101]: unexpected '}}'" in res.stderr and "Traceback" not in res.stderr
    assert p.read_text() == "network n {\n  dense(2\n}\n" and os.stat(p).st_mtime_ns == before
    assert good.read_text() == "network n {\n    input x: [4]\n}\n"  # the other file is still formatted
    assert [f.name for f in tmp_path.iterdir()] != [] and not [f for f in tmp_path.iterdir() if f.name.startswith(".")]


def test_fmt_stdin_to_stdout():
    res = cli_runner().invoke(main, ["fmt", "-"], input="network   n {}")
    assert (res.exit_code, res.stdout) == (0, "network n {}\n")


def test_fmt_refuses_binary_and_missing(tmp_path: Path):
    p = tmp_path / "b.net"
    p.write_bytes(b"network \xff {}")
    res = cli_runner().invoke(main, ["fmt", str(p)])
    assert res.exit_code == 1 and "error[E103]" in res.stderr
    assert cli_runner().invoke(main, ["fmt", str(tmp_path / "none.net")]).exit_code == 2


def test_format_file_reports_change(tmp_path: Path):
    p = tmp_path / "m.net"
    p.write_text("network n {\n    input x: [4]\n}\n")
    assert not format_file(p).changed
    out, err = io.StringIO(), io.StringIO()
    assert run_fmt([str(p)], check=True, stdout=out, stderr=err) == 0 and out.getvalue() == ""


def test_a_layout_that_changes_the_meaning_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import netspec.tools.fmt as fmt

    p = tmp_path / "m.net"
    p.write_text("network n {\n input x: [4]  # keep me\n dense(2)\n}\n")
    for broken in ("network n {\n    input x: [4]  # keep me\n    dense(3)\n}\n",  # another tree
                   "network n {\n    input x: [4]\n    dense(2)\n}\n",  # a comment lost
                   "network n {\n    input x: [4  # keep me\n}\n"):  # does not parse
        monkeypatch.setattr(fmt, "_layout", lambda text, out=broken: out)
        res = cli_runner().invoke(main, ["fmt", str(p)])
        assert res.exit_code == 1 and "error[E110]" in res.stderr, res.stderr
        assert p.read_text() == "network n {\n input x: [4]  # keep me\n dense(2)\n}\n"


def test_long_and_deep_expressions_format():
    # the result is compared with the input's tree without recursion: 3,000 terms in one expression
    long = "network n {\n input x: [4]\n dense(" + " + ".join(["1"] * 3000) + ")\n}\n"
    out = format_source(long)
    assert out.count("+") == 2999 and format_source(out) == out
    deep = "network n {\n input x: [4]\n dense(" + "(" * 90 + "1" + ")" * 90 + ")\n}\n"
    out = format_source(deep)
    assert format_source(out) == out
