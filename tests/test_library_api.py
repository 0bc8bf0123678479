"""The public library API: ``netspec.__all__``, what it promises and what it does not load."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import netspec
from netspec.core import ops

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "tensorflow", "keras", "onnx", "onnxruntime", "jax", "torch")

LENET = """\
# LeNet-5, as the lecture draws it
network lenet5 {
    input image: [32, 32, 1]
    conv2d(6, 5, activation='tanh')
    avgpool2d(2)
    c3 = conv2d(16, 5, activation='tanh')
    avgpool2d(2)
    flatten()
    dense(120, activation='tanh')
    dense(84, activation='tanh')
    dense(10, activation='softmax')
}
"""


# --- the names ------------------------------------------------------------------------------


def test_all_names_exist_and_are_public() -> None:
    assert len(set(netspec.__all__)) == len(netspec.__all__)
    for name in netspec.__all__:
        assert hasattr(netspec, name), name
        assert not name.startswith("_") or name == "__version__", name


def test_public_objects_come_from_netspec() -> None:
    for name in netspec.__all__:
        obj = getattr(netspec, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("netspec."), (name, obj.__module__)


def _documented_data(name: str) -> bool:
    """A data name is documented by a ``#:`` comment at its definition or in docs/*.md."""
    docs = "".join(p.read_text() for p in (REPO / "docs").glob("*.md"))
    if re.search(rf"`(netspec\.)?{re.escape(name)}`", docs):
        return True
    for module in (REPO / "netspec").rglob("*.py"):
        if re.search(rf"^#:.*\n{re.escape(name)}\b.*=", module.read_text(), re.M):
            return True
    return False


def test_every_public_name_is_documented() -> None:
    undocumented = []
    for name in netspec.__all__:
        obj = getattr(netspec, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = obj.__doc__ or ""
            if len(doc.strip()) < 10 or (inspect.isclass(obj) and doc == object.__doc__):
                undocumented.append(name)
        elif name != "__version__" and not _documented_data(name):
            undocumented.append(name)
    assert undocumented == []


def test_every_public_callable_has_an_example() -> None:
    missing = [n for n in netspec.__all__
               if (inspect.isclass(getattr(netspec, n)) or inspect.isfunction(getattr(netspec, n)))
               and ">>>" not in (inspect.getdoc(getattr(netspec, n)) or "")]
    assert missing == []


def test_no_stray_public_names() -> None:
    stray = [n for n in dir(netspec) if not n.startswith("_") and n not in netspec.__all__
             and not isinstance(getattr(netspec, n), types.ModuleType)]
    assert stray == []


# --- building and checking graphs in Python ----------------------------------------------------


def lenet_graph() -> netspec.Graph:
    x = netspec.Input("image", (32, 32, 1))
    nodes = (
        netspec.Node("c1", "conv2d", ("image",), ops.Conv2D(filters=6, kernel_size=(5, 5), activation="tanh")),
        netspec.Node("s2", "avgpool2d", ("c1",), ops.Pool2D()),
        netspec.Node("c3", "conv2d", ("s2",), ops.Conv2D(filters=16, kernel_size=(5, 5), activation="tanh")),
        netspec.Node("s4", "avgpool2d", ("c3",), ops.Pool2D()),
        netspec.Node("flat", "flatten", ("s4",), ops.Flatten()),
        netspec.Node("f5", "dense", ("flat",), ops.Dense(units=120, activation="tanh")),
        netspec.Node("f6", "dense", ("f5",), ops.Dense(units=84, activation="tanh")),
        netspec.Node("out", "dense", ("f6",), ops.Dense(units=10, activation="softmax")),
    )
    return netspec.Graph("lenet5", x, nodes)


def test_check_graph_built_in_python() -> None:
    report = netspec.check_graph(lenet_graph())
    assert report.ok and report.diagnostics == ()
    shapes = {name: info.shape for name, info in report.layers.items()}
    assert shapes == {"c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16),
                      "flat": (400,), "f5": (120,), "f6": (84,), "out": (10,)}
    # 156 + 2416 + 48120 + 10164 + 850, the classic LeNet-5 count.
    assert report.total_params == 61706 and report.params == (61706, 0)
    assert report.output_shape == (10,)
    assert report.layers["c1"].macs == 28 * 28 * 6 * 25
    assert [w.shape for w in report.layers["c3"].weights] == [(5, 5, 6, 16), (16,)]
    # The checked graph holds normalized attributes: data_format and pool strides concrete.
    assert report.graph.node("s2").attrs.strides == (2, 2)
    assert report.graph.node("c1").attrs.data_format == "channels_last"


def test_check_graph_reports_every_error() -> None:
    x = netspec.Input("x", (8, 8, 3))
    graph = netspec.Graph("bad", x, (
        netspec.Node("a", "conv2d", ("x",), ops.Conv2D(filters=4, kernel_size=(9, 9))),
        netspec.Node("b", "conv2d", ("x",), ops.Conv2D(filters=4, kernel_size=(3, 3), groups=2)),
        netspec.Node("c", "add", ("a", "b"), ops.NoArgs()),  # depends on failed nodes: not reported again
        netspec.Node("d", "dense", ("nowhere",), ops.Dense(units=2)),
        netspec.Node("e", "nosuchop", ("x",), None),
    ), "c")
    report = netspec.check_graph(graph)
    assert not report.ok and report.graph is None
    assert sorted(d.code for d in report.diagnostics) == ["E201", "E203", "E401", "E402"]
    with pytest.raises(netspec.NetspecError) as err:
        report.raise_for_errors()
    assert {d.code for d in err.value.diagnostics} == {"E201", "E203", "E401", "E402"}


def test_check_graph_silences_warnings() -> None:
    graph = netspec.Graph("g", netspec.Input("x", (8, 8, 3)),
                          (netspec.Node("c", "conv2d", ("x",), ops.Conv2D(filters=4, kernel_size=(2, 2))),))
    assert [d.code for d in netspec.check_graph(graph).diagnostics] == ["W103"]
    assert netspec.check_graph(graph, silence=["W103"]).diagnostics == ()


def test_graphs_compare_by_value_not_by_span() -> None:
    a = netspec.load_source(LENET).graph
    b = netspec.load_source("\n\n" + LENET.replace("    ", "  ")).graph
    assert a == b and hash(a.nodes[0].attrs) == hash(b.nodes[0].attrs)
    assert a.nodes[0].span.line != b.nodes[0].span.line


# --- loading files and walking graphs -------------------------------------------------------------


def test_load_file_and_walk_graph(tmp_path: Path) -> None:
    path = tmp_path / "lenet.net"
    path.write_text(LENET)
    net = netspec.load(path)
    graph = net.graph
    assert (graph.name, graph.input.name, graph.input.shape, graph.input.data_format) == (
        "lenet5", "image", (32, 32, 1), "channels_last")
    seen = {graph.input.name}
    for node in graph:
        assert set(node.inputs) <= seen, f"{node.name} uses a tensor defined later"
        assert node.op in netspec.OPS
        assert isinstance(node.attrs, netspec.OPS[node.op].attrs)
        assert node.span is not None and node.span.file == str(path)
        seen.add(node.name)
    assert graph.output == graph.nodes[-1].name == "dense_2"
    assert [n.name for n in graph][:3] == ["conv2d", "average_pooling2d", "conv2d_1"]
    assert graph.node("conv2d_1").span.line == 6  # c3 = conv2d(16, 5, ...) is on line 6
    assert net.total_params == 61706 and net.output_shape == (10,)
    assert net.layers["conv2d"].weights[0].initializer.name == "glorot_uniform"


def test_load_equals_the_python_graph() -> None:
    # The file and the Python graph describe the same network, up to layer names.
    loaded = netspec.load_source(LENET).graph
    built = netspec.check_graph(lenet_graph()).graph
    assert [(n.op, n.attrs) for n in loaded] == [(n.op, n.attrs) for n in built]


def test_check_file_never_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net"
    bad.write_text("network n {\n  input x: [4]\n  dense(0)\n}\n")
    report = netspec.check_file(bad)
    assert not report.ok
    (diag,) = report.all_diagnostics
    assert (diag.code, diag.span.line, diag.span.column) == ("E306", 3, 9)
    missing = netspec.check_file(tmp_path / "missing.net")
    assert [d.code for d in missing.all_diagnostics] == ["E603"]
    with pytest.raises(netspec.NetspecError) as err:
        netspec.load(bad)
    assert err.value.diagnostics[0].code == "E306"


def test_network_selection() -> None:
    text = LENET + "network other {\n    input x: [4]\n    dense(2)\n}\n"
    with pytest.raises(netspec.NetspecError) as several:  # issue 9 item 7: never silently the first
        netspec.load_source(text)
    assert several.value.diagnostics[0].code == "E208"
    assert "lenet5, other" in several.value.diagnostics[0].message
    assert netspec.load_source(text, network="lenet5").name == "lenet5"
    assert netspec.load_source(text, network="other").total_params == 10
    with pytest.raises(netspec.NetspecError) as err:
        netspec.load_source(text, network="othr")
    assert err.value.diagnostics[0].code == "E208"
    assert "did you mean 'other'" in err.value.diagnostics[0].message


def test_check_source_reports_by_network() -> None:
    report = netspec.check_source(LENET + "network broken {\n    input x: [4]\n    dense(2, activation='rleu')\n}\n",
                                  "two.net")
    assert [n.name for n in report.networks] == ["lenet5", "broken"]
    assert report.networks[0].ok and not report.networks[1].ok and not report.ok
    (diag,) = report.networks[1].diagnostics
    assert diag.to_json() == {"severity": "error", "code": "E303", "file": "two.net", "line": 15, "column": 25,
                              "message": diag.message}
    assert diag.render().startswith("two.net:15:25: error[E303]: ")


def test_to_source_round_trip() -> None:
    report = netspec.check_graph(lenet_graph())
    text = netspec.to_source(report.graph)
    again = netspec.load_source(text)
    assert again.graph == report.graph
    assert again.total_params == report.total_params
    assert netspec.to_source(again.graph) == text


def test_canonical_op_and_codes() -> None:
    assert netspec.canonical_op("Conv2D") == "conv2d"
    assert netspec.canonical_op("BatchNormalization") == "batchnorm"
    assert netspec.canonical_op("Conv3DTranspose") == "conv3d_transpose"
    assert netspec.canonical_op("conv4d") is None
    assert all(len(code) == 4 and code[0] in "EW" for code in netspec.CODES)
    assert isinstance(netspec.__version__, str) and netspec.__version__.count(".") >= 1


# --- what importing and checking load -------------------------------------------------------------

_PROBE = textwrap.dedent("""
    import json, sys
    mode, path, out = sys.argv[1:4]
    if mode == "import":
        import netspec
        netspec.check_source(open(path).read())
    else:
        from netspec.cli import main
        sys.argv = ["netspec", "check", path, "--format", "json"]
        try:
            main()
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
    json.dump(heavy, open(out, "w"))
""").replace("{heavy!r}", repr(set(HEAVY)))


@pytest.mark.parametrize("mode", ["import", "cli"])
def test_no_heavy_imports(mode: str, tmp_path: Path) -> None:
    spec = tmp_path / "lenet.net"
    spec.write_text(LENET)
    out = tmp_path / "modules.json"
    result = subprocess.run([sys.executable, "-c", _PROBE, mode, str(spec), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == []
