"""The version-2 language constructs: let, fn, tensor parameters, carry, for, the conditional
expression, the numeric built-ins, parameterised networks and instances, assert, allow and
digit grouping; each with its misuses (located diagnostics; the golden files show the full text).
"""

from __future__ import annotations

import pytest

from netspec import NetspecError, check_source, load_source
from netspec.frontend.syntax import parse_source


def net(body: str, head: str = "", name: str = "n", params: str = "") -> str:
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"{head}\nnetwork {name}{params} {{\n    input x: [8, 8, 3]\n{lines}\n}}\n"


def shape(text: str, network: str | None = None) -> tuple:
    return load_source(text, network).output_shape


def codes(text: str, warnings: bool = False) -> list[tuple[str, int, int]]:
    """The errors (and with ``warnings`` the warnings too) with their line and column."""
    report = check_source(text, "m.net")
    return [(d.code, d.span.line, d.span.column) for d in report.all_diagnostics
            if d.span is not None and (warnings or d.is_error)]


def errors(text: str) -> list[str]:
    return [d.code for d in check_source(text, "m.net").all_diagnostics if d.is_error]


# --- lexical --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("literal", "value"), [
    ("1_000_000", 1_000_000), ("1_0.2_5", 10.25), ("1e1_0", 1e10), ("0.000_1", 0.0001), ("(3,)", (3,)),
])
def test_literals(literal: str, value: object) -> None:
    f = parse_source(f"let a = {literal}\n")
    assert load_source(net("dense(1)", f"let a = {literal}")).graph is not None
    item = f.items[0]
    got = item.value.value if hasattr(item.value, "value") else tuple(i.value for i in item.value.items)
    assert got == value


@pytest.mark.parametrize("word", ["output", "let", "fn", "tensor", "carry", "for", "allow", "assert"])
def test_new_keywords_are_not_names(word: str) -> None:
    report = check_source(net(f"{word} = dense(2)"), "m.net")
    (diag,) = report.all_diagnostics
    assert diag.code == "E101" and f"{word!r} is a keyword" in diag.message


# --- let and NAME = OTHER ------------------------------------------------------------------------


def test_let_in_a_body_and_at_file_level() -> None:
    text = net("let c = base * 2\nlet k = (3, 3)\nconv2d(c, k, kernel_initializer=init)",
               "let base = 4\nlet init = variance_scaling(2.0, 'fan_out')")
    report = load_source(text)
    node = report.graph.nodes[0]
    assert report.output_shape == (6, 6, 8)
    assert node.attrs.kernel_initializer.kwargs[:2] == (("scale", 2.0), ("mode", "fan_out"))


def test_file_level_let_is_seen_by_blocks() -> None:
    text = "let width = 5\nblock b() {\n    dense(width)\n}\n" + net("b()")
    assert shape(text) == (8, 8, 5)


def test_let_misuses() -> None:
    assert codes(net("let a = 1\nlet a = 2")) == [("E204", 5, 9)]
    assert codes("let a = 1\nlet a = 2\n" + net("dense(a)")) == [("E204", 2, 5)]
    assert codes(net("let a = x")) == [("E308", 4, 13)]
    # A failed let is reported once; the current tensor is untouched.
    assert codes(net("let a = 1 // 0\ndense(a)\ndense(2)")) == [("E307", 4, 13)]
    assert codes(net("let t = (1, 2)\nt -> dense(2)")) == [("E308", 5, 5)]


def test_second_name_for_a_tensor() -> None:
    report = load_source(net("a = conv2d(4, 1)\nb = a\nadd(a, b)"))
    assert report.graph.nodes[-1].inputs == ("conv2d", "conv2d")
    assert codes(net("a = conv2d(4, 1)\nb = a\nb = a")) == [("E204", 6, 5)]


# --- fn --------------------------------------------------------------------------------------------


def test_fn_with_defaults_nesting_and_multiline_body() -> None:
    head = ("fn round_filters(f, w=1.0, d=8) = max(d, int(f * w + d / 2) // d * d)\n"
            "fn round_repeats(r, d=1.0) = int(ceil(d *\n    r))\n"
            "fn both(f, r) = round_filters(f, 1.1) * round_repeats(r, 1.2)")
    assert shape(net("dense(both(32, 3))", head)) == (8, 8, 32 * 4)
    assert shape(net("dense(round_filters(f=20, d=4, w=2))", head)) == (8, 8, 40)


def test_fn_misuses() -> None:
    head = "fn f(a, b=1) = a + b"
    assert errors(net("dense(f())", head)) == ["E301"]
    assert errors(net("dense(f(1, 2, 3))", head)) == ["E304"]
    assert errors(net("dense(f(1, c=2))", head)) == ["E202"]
    assert errors(net("dense(1)", "fn f(a) = a\nfn f(b) = b")) == ["E210"]
    assert errors(net("dense(1)", "fn max(a) = a")) == ["E210"]
    assert codes(net("dense(1)", "fn f(a) = f(a - 1) if a > 0 else 1")) == [("E218", 1, 11)]
    # An error in a fn body points at the body and notes the call.
    report = check_source(net("dense(g(0))", "fn g(a) = 1 // a"), "m.net")
    (diag,) = report.all_diagnostics
    assert (diag.code, diag.span.line, diag.notes[0].span.line) == ("E307", 1, 4)


# --- block tensor parameters -----------------------------------------------------------------------


def test_block_tensor_parameters() -> None:
    head = "block cell(prev: tensor, units, skip: tensor) {\n    dense(units) -> add(prev, skip)\n}"
    text = net("p = dense(4)\ns = dense(4)\ncell(p, 4, skip=s)", head)
    report = load_source(text)
    assert report.output_shape == (8, 8, 4)
    add = report.graph.nodes[-1]
    assert add.inputs == ("dense_2", "dense", "dense_1")
    # `in` is still the current tensor at the call.
    head2 = "block b(t: tensor) {\n    add(in, t)\n}"
    assert load_source(net("a = dense(3)\ndense(3) -> b(a)", head2)).graph.nodes[-1].inputs == ("dense_1", "dense")


def test_block_tensor_parameter_misuses() -> None:
    head = "block b(t: tensor, n=2) {\n    dense(n) -> add(t)\n}"
    assert errors(net("b()", head)) == ["E301"]
    assert errors(net("b(3)", head)) == ["E308"]
    assert errors(net("let v = 3\nb(v)", head)) == ["E308"]
    assert errors(net("a = dense(2)\nb(a, a)", head)) == ["E308"]
    assert errors(net("b(nope)", head)) == ["E203"]
    assert errors(net("default b(t=x)", head)) == ["E308"]
    assert errors(net("default b(t=3)", head)) == ["E202"]


# --- repeat/for with carry -------------------------------------------------------------------------


def test_repeat_carry_passes_values_and_tensors_on() -> None:
    text = net("""
h = conv2d(4, 1)
let c = 4
repeat 3 as i carry h, c {
    let c = c * 2
    h = h -> conv2d(c, 1)
}
dense(c)
""")
    report = load_source(text)
    assert [n.attrs.filters for n in report.graph.nodes if n.op == "conv2d"] == [4, 8, 16, 32]
    assert report.output_shape == (8, 8, 32)


def test_carry_rebinding_in_a_nested_if_and_nested_loops() -> None:
    text = net("""
h = dense(2)
for u in (3, 4, 5) carry h {
    if u != 4 {
        h = h -> dense(u)
    } else {
        repeat 2 carry h { h = h -> dense(1) }
    }
}
h
""")
    report = load_source(text)
    assert [n.attrs.units for n in report.graph.nodes] == [2, 3, 1, 1, 5]


def test_current_tensor_flows_pass_to_pass() -> None:
    assert [n.inputs for n in load_source(net("for u in (2, 3) { dense(u) }")).graph] == [("x",), ("dense",)]


def test_for_forms() -> None:
    text = net("for (k, f) in ((3, 4), (1, 8)) { conv2d(f, k) }", "let t = (16, 32)")
    assert shape(text) == (6, 6, 8)
    assert shape(net("for v in t { dense(v) }", "let t = (16, 32)")) == (8, 8, 32)
    assert shape(net("for v in () { dense(v) }")) == (8, 8, 3)
    assert shape(net("for (a,) in ((5,),) { dense(a) }")) == (8, 8, 5)


def test_carry_and_for_misuses() -> None:
    assert codes(net("h = dense(2)\nrepeat 2 { h = dense(2) }")) == [("E215", 5, 16)]
    assert codes(net("h = dense(2)\nif true { h = dense(2) }")) == [("E215", 5, 15)]
    assert codes(net("repeat 2 carry h { h = dense(2) }")) == [("E203", 4, 20)]
    assert codes(net("h = dense(2)\nrepeat 2 carry h, h { h = dense(2) }")) == [("E204", 5, 23)]
    assert codes(net("h = dense(2)\nrepeat 2 carry h { g = dense(2) }")) == [("E216", 5, 20)]
    assert [c for c, _, _ in codes(net("h = dense(2)\nrepeat 2 carry h { h = dense(2)\n h = dense(3) }"))] == ["E217"]
    # A nested loop that does not carry the name may not rebind it.
    assert [c for c, _, _ in codes(net("h = dense(2)\nrepeat 2 carry h {\n h = dense(2)\n repeat 1 { h = dense(1) }\n}"))
            ] == ["E215"]
    assert codes(net("for v in 3 { dense(v) }")) == [("E311", 4, 14)]
    assert codes(net("for (a, b) in ((1, 2), 3) { dense(a) }")) == [("E311", 4, 28)]
    assert errors(net("for (a, a) in ((1, 2),) { dense(a) }")) == ["E204"]


# --- expressions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "value"), [
    ("int(7.9)", 7), ("int(-7.9)", -7), ("int('12')", 12), ("round(2.5)", 2), ("round(3.5)", 4),
    ("round(-0.5)", 0), ("round(2.675, 2) * 1000 // 1", 2670.0), ("ceil(2.1)", 3), ("floor(-2.1)", -3),
    ("abs(-4)", 4), ("abs(-2.5) * 2", 5.0), ("3 if true else 1 // 0", 3), ("1 // 0 if false else 4", 4),
    ("2 if 1 > 2 else 3 if 2 > 1 else 4", 3), ("true or 1 // 0", True), ("false and 1 // 0", False),
    ("max(1, 2) if (3,)[0] == 3 else 0", 2), ("len((1,))", 1), ("'abc'[1] + 'abc'[-1]", "bc"),
])
def test_expressions(expr: str, value: object) -> None:
    report = load_source(net(f"let v = {expr}\nassert v == {value!r}".replace("True", "true").replace("False", "false")))
    assert report.graph is not None


@pytest.mark.parametrize("expr", [
    "int('x')", "int((1,))", "round('a')", "ceil(none)", "abs(true)", "round(1.5, 0.5)", "1 if 2 else 3",
    "int()", "abs(1, 2)", "floor(x=1)",
])
def test_expression_misuses(expr: str) -> None:
    assert errors(net(f"let v = {expr}"))[0] in ("E302", "E307")


def test_huge_ceil_is_a_limit() -> None:
    assert errors(net("let v = ceil(1e300)")) == ["E501"]


# --- parameterised networks ----------------------------------------------------------------------------


PARAM_NET = """
network classifier(size, classes=10, width=1.0) {
    input x: [size, size, 3]
    conv2d(int(16 * width), 3) -> global_avgpool2d()
    dense(classes)
}
network small = classifier(32, classes=4)
network wide = classifier(size=64, width=2.0)
"""


def test_instances_are_checked_and_required_params_skip_the_own_name() -> None:
    report = check_source(PARAM_NET)
    assert [n.name for n in report.networks] == ["small", "wide"]
    assert report.network("small").input_shape == (32, 32, 3)
    assert report.network("small").output_shape == (4,)
    assert report.network("wide").graph.nodes[0].attrs.filters == 32


def test_a_network_with_required_parameters_is_not_a_network_to_pick() -> None:
    with pytest.raises(NetspecError, match="built only through its instances"):
        check_source(PARAM_NET).network("classifier")


def test_network_with_all_defaults_is_checked_under_its_own_name() -> None:
    text = PARAM_NET.replace("(size,", "(size=8,")
    assert [n.name for n in check_source(text).networks] == ["classifier", "small", "wide"]


def test_instance_misuses() -> None:
    assert codes(PARAM_NET + "network bad = classifier(8, width='x')") == [("E309", 9, 35)]
    assert codes(PARAM_NET + "network bad = classifer(8)") == [("E208", 9, 15)]
    assert codes(PARAM_NET + "network bad = small(8)") == [("E208", 9, 15)]
    assert codes(PARAM_NET + "network bad = classifier(classes=2)") == [("E301", 9, 1)]
    assert codes(PARAM_NET + "network bad = classifier(8, depth=2)") == [("E202", 9, 29)]
    assert codes(PARAM_NET + "network small = classifier(8)") == [("E210", 9, 9)]
    # An error in the body made by one instance's values notes that instance.
    report = check_source(PARAM_NET + "network bad = classifier(1)", "m.net")
    (diag,) = [d for d in report.all_diagnostics if d.is_error]
    assert diag.code == "E401" and diag.notes[-1].span.line == 9


# --- assert and allow -----------------------------------------------------------------------------------


def test_assert_totals_so_far() -> None:
    text = net("assert params() == 0 and macs() == 0\nconv2d(4, 3)\n"
               "assert params() == 112 and trainable_params() == 112 and macs() == 6 * 6 * 4 * 27\n"
               "batchnorm()\nassert params() - trainable_params() == 8")
    assert load_source(text).graph is not None


def test_assert_failure_shows_both_sides() -> None:
    report = check_source(net("conv2d(4, 3)\nassert params() < 100"), "m.net")
    (diag,) = report.all_diagnostics
    assert diag.code == "E310"
    assert diag.message == "assertion failed: params() < 100 (params() is 112, 100 is 100)"
    assert errors(net("assert 1")) == ["E302"]
    assert errors("let a = params()\n" + net("dense(1)")) == ["E302"]


def test_allow_scopes() -> None:
    w104 = "conv2d(2, 1, strides=2)"
    def warns(text: str) -> list[str]:
        return [c for c, _, _ in codes(text, warnings=True)]

    assert warns(net(w104)) == ["W104"]
    assert warns(net(f"allow W104\n{w104}")) == []
    assert warns(net(w104 + "\ndense(2)", "allow w104, W102")) == []
    assert warns(net(f"{w104}\nallow W104")) == ["W104"]
    assert warns(net(f"if true {{ allow W104 }}\n{w104}")) == ["W104"]
    # In a block body, for that block's layers at every call; at a call site, for the layers it makes.
    block = f"block b() {{\n    allow W104\n    {w104}\n}}\nblock c() {{\n    {w104}\n}}"
    assert warns(net("b() -> b()", block)) == []
    assert warns(net("c()", block)) == ["W104"]
    assert warns(net("allow W104\nc()", block)) == []
    assert codes(net("allow W101, E201")) == [("E221", 4, 17)]
