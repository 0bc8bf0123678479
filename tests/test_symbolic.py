"""Symbolic sizes against brute force: the valid sizes and every formula, size by size.

Each spec in ``specs/`` is made symbolic (its input's spatial sizes become
``H`` and ``W``) and checked once; then every size from 1 to 4,096 of each
symbol is run through the ops' own shape rules with plain integers (the
other symbol held at a valid size), and the two must agree exactly: a size
is valid by brute force iff the symbolic answer says so, and at every valid
size each layer's formula gives the concrete shape.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netspec.core.ir import Graph
from netspec.core.ops import OPS, ShapeError
from netspec.core.symdim import LIMIT, Expr, SizeSet
from netspec.frontend.elaborate import check_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.net"))
UPTO = 4096

#: Nets with branches that match only at some sizes, and windows that need a minimum size.
EXTRA = {
    "halves": """
network halves {
    input x: [H, W, 3]
    a = maxpool2d(2)
    b = x -> conv2d(3, 3, strides=2, padding='same')
    add(a, b)
    c = maxpool2d(2)
    d = b -> conv2d(3, 3, strides=2, padding='same')
    add(c, d)
}""",
    "strided": """
network strided {
    input x: [H, W, 3]
    zeropad2d(((3, 2), (0, 1)))
    y = conv2d(8, (7, 5), strides=(3, 2))
    a = maxpool2d(3, strides=2, padding='same')
    b = y -> conv2d(8, 3, strides=2, padding='same')
    c = a -> avgpool2d(2, strides=1, padding='same')
    add(b, c)
    conv2d(8, 3, dilation_rate=2)
    global_maxpool2d()
}""",
    "branches": """
network branches {
    input x: [?, ?, 3]
    a = conv2d(4, 3, strides=2, padding='same')
    b = x -> conv2d(4, 3, strides=(2, 1), padding='same')
    add(a, b)
}""",
    "concat_skip": """
network concat_skip {
    input x: [S, S, 4]
    e = conv2d(4, 3)
    p = e -> maxpool2d(2) -> zeropad2d(((0, 1), (1, 0)))
    q = e -> conv2d(4, 3, strides=2, padding='same')
    concat(p, q)
}""",
}


def symbolic_text(text: str) -> str:
    """The spec with each input's spatial sizes replaced by symbols (L; H, W; D, H, W)."""
    letters = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}

    def repl(m: re.Match) -> str:
        dims = [d.strip() for d in m.group(2).split(",")]
        layout = m.group(3) or ""
        n = len(dims) - 1
        if n not in letters:
            return m.group(0)
        if "channels_first" in layout:
            dims = [dims[0], *letters[n]]
        else:
            dims = [*letters[n], dims[-1]]
        return f"input {m.group(1)}: [{', '.join(dims)}]{layout}"
    return re.sub(r"input (\w+): \[([\w ,]+)\]([ \t]*channels_first)?", repl, text)


def concrete_shapes(graph: Graph, sizes: dict[str, int], names: tuple = ()) -> dict[str, tuple] | None:
    """Every tensor's shape at concrete sizes through the ops' rules, or None if a rule refuses."""
    from netspec.core.symbolic import axis_symbol_names

    shapes = {}
    for k, inp in enumerate(graph.inputs):
        axis_names = axis_symbol_names(inp, first=k == 0)
        shapes[inp.name] = tuple(sizes[n] if n else d for d, n in zip(inp.shape, axis_names))
    for node in graph.nodes:
        try:
            shapes[node.name] = tuple(OPS[node.op].infer(node.attrs, [shapes[i] for i in node.inputs]))
        except ShapeError:
            return None
    return shapes


def in_summary(summary: dict, n: int) -> bool:
    """Whether size ``n`` is valid by the JSON form of the valid sizes."""
    return (n >= summary["from"] and n % summary["step"] in summary["residues"]) or n in summary["also"]


def _cases() -> list:
    cases = [pytest.param(p.name, symbolic_text(p.read_text()), id=p.stem) for p in SPECS]
    cases += [pytest.param(name, text, id=name) for name, text in EXTRA.items()]
    return cases


@pytest.mark.parametrize(("name", "text"), _cases())
def test_valid_sizes_exact_against_brute_force(name: str, text: str) -> None:
    report = check_source(text, name, base_dir=ROOT / "specs")
    for net in report.networks:
        if not net.ok:
            # A spec whose weights depend on the input size (flatten -> dense) or whose
            # arguments compute with shape(in) cannot be one network at every size.
            codes = {d.code for d in net.diagnostics if d.is_error}
            assert codes <= {"E404", "E307"}, [d.message for d in net.diagnostics]
            continue
        sym = net.symbolic
        assert sym is not None and sym.symbols, "the input was made symbolic"
        graph = net.graph
        from netspec.core.symbolic import axis_symbol_names

        names = axis_symbol_names(graph.input)
        anchors = {s: (sym.valid[s].sizes()[:1] or [1])[0] for s in sym.symbols}
        evaluators = {}
        for tensor, shape in sym.shapes.items():
            if shape is not None:
                evaluators[tensor] = [d.evaluator() if isinstance(d, Expr) else d for d in shape]
        for s in sym.symbols:
            valid: SizeSet = sym.valid[s]
            summary = valid.summary()
            # W117: a rule the pass could not follow leaves its conditions out, so the answer may
            # only be too wide (every size valid by brute force must be in it), never too narrow.
            partial = any(d.code == "W117" for d in net.diagnostics)
            for n in [] if partial else [*range(LIMIT + 1, LIMIT + 200), 20_000, 65_536, 99_999, 100_000]:
                # Beyond the exact range, the valid sizes follow the period found below it.
                got = concrete_shapes(graph, {**anchors, s: n}, names)
                assert (got is not None) == in_summary(summary, n), f"{net.name}: {s} = {n}"
            for n in range(1, UPTO + 1):
                sizes = {**anchors, s: n}
                got = concrete_shapes(graph, sizes, names)
                if partial and got is None:
                    continue
                assert (got is not None) == (n in valid), f"{net.name}: {s} = {n}: brute force says " \
                    f"{'valid' if got is not None else 'invalid'}; symbolic says {valid.text(s)}"
                if got is None:
                    continue
                for tensor, dims in evaluators.items():
                    want = got[tensor]
                    for k, d in enumerate(dims):
                        if callable(d):
                            args = [sizes[v] for v in sorted(sym.shapes[tensor][k].syms())]
                            assert d(*args) == want[k], f"{net.name}: {tensor} axis {k} at {sizes}"
                        elif d is not None:
                            assert d == want[k]


def test_issue9_item2_reported() -> None:
    """A stride-2 branch added to a stride-(2, 1) branch warns; H - 6 concat H - 4 is an error."""
    net = check_source(EXTRA["branches"]).networks[0]
    assert [d.code for d in net.diagnostics] == ["W116"]
    assert net.symbolic.valid["?2"].sizes(10) == [1, 2]
    never = check_source("""
network n {
    input x: [?, ?, 3]
    a = conv2d(4, 7)
    b = x -> conv2d(4, 5)
    concat(a, b)
}""").networks[0]
    assert not never.ok and [d.code for d in never.diagnostics] == ["E403"]


def test_issue_example_form() -> None:
    """Five halvings whose floor and ceil branches are concatenated: ``H >= 32, H % 32 == 0``."""
    text = "network n {\n input x: [H, H, 3]\n x0 = x\n" + "".join(
        f" a{i} = x{i} -> maxpool2d(2)\n b{i} = x{i} -> conv2d(3, 3, strides=2, padding='same')\n"
        f" x{i + 1} = concat(a{i}, b{i})\n" for i in range(5)) + "}\n"
    net = check_source(text).networks[0]
    assert net.symbolic.valid_sizes() == {"H": {"from": 32, "step": 32, "residues": [0], "also": []}}
    assert net.symbolic.valid_text() == ["valid for H >= 32, H % 32 == 0"]


def test_concrete_input_shape_matches_symbolic() -> None:
    """``--input-shape`` checks a symbolic spec at concrete sizes, with the formulas' values."""
    text = symbolic_text((ROOT / "specs" / "resnet50.net").read_text())
    sym = check_source(text, "r.net").networks[0]
    concrete = check_source(text, "r.net", input_shape=(512, 384, 3)).networks[0]
    assert concrete.ok and concrete.symbolic is None
    for name, info in concrete.layers.items():
        dims = sym.symbolic.shapes[name]
        want = tuple(d.evaluator()(*([512] if d.syms() == {"H"} else [384])) if isinstance(d, Expr) else d
                     for d in dims)
        assert want == info.shape, name


def test_symbols_are_shared_across_inputs() -> None:
    """The same name in two inputs is one size; two names tied by a merge are W117, never a crash."""
    same = check_source("""network n {
    input a: [H, W, 3]
    input b: [H, W, 1]
    concat(a, b)
}""").networks[0]
    assert same.ok and not same.diagnostics and same.symbolic.symbols == ("H", "W")
    tied = check_source("""network n {
    input a: [H, W, 3]
    input b: [H2, W, 1]
    concat(a, b)
}""").networks[0]
    assert tied.ok and [d.code for d in tied.diagnostics] == ["W117"]
