"""Fuzzing: nothing a user writes may crash netspec, hang it or exhaust memory.

Three layers:

- programs drawn from the grammar itself (``hypothesis.extra.lark``), so
  most of them parse and reach elaboration and checking;
- byte-level mutations of small valid specs, run through the library and
  the command line;
- hostile inputs from the issue (binary garbage, deep nesting, huge counts,
  huge exponents, a 50 MB line), each in a subprocess under a memory cap,
  which must end with a clean diagnostic within a few seconds.

The library may raise only :class:`netspec.NetspecError` (and
``check_source`` / ``check_file`` nothing at all); the CLI exits 0 or 1
and never prints a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import cli_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from netspec import NetspecError, check_file, check_source, load_source, to_source
from netspec.analysis.report import format_table, to_json
from netspec.cli import main
from netspec.frontend.syntax import grammar_path

GOLDEN = Path(__file__).parent / "golden"
KEYWORDS = {"network", "block", "input", "repeat", "as", "if", "else", "default", "in", "and", "or", "not",
            "true", "false", "none", "import", "output", "let", "fn", "tensor", "carry", "for", "allow", "assert"}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# --- the library's promise ----------------------------------------------------------------


def check_everything(text: str) -> None:
    """Run every library entry point on ``text``; only NetspecError may escape (from load_source)."""
    report = check_source(text, "fuzz.net")
    for diag in report.all_diagnostics:
        assert diag.code[0] in "EW"
        diag.render()
    json.dumps(to_json(report))
    for net in report.networks:
        if net.ok:
            format_table(net)
    try:
        net = load_source(text, filename="fuzz.net")
    except NetspecError as err:
        assert err.diagnostics and any(d.is_error for d in err.diagnostics)
        return
    assert report.ok
    # A network that loads prints back to an equal graph (when its names can be printed; see
    # test_roundtrip for the printer's limits).
    graph = net.graph
    names = [graph.input.name, *(n.name for n in graph.nodes)]
    if all(IDENTIFIER.fullmatch(n) and n not in KEYWORDS for n in names):
        assert load_source(to_source(graph)).graph == graph


# --- programs from the grammar ----------------------------------------------------------------

_LARK = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic",
             start=["start", "block", "chain", "bind_stmt", "repeat_stmt", "if_stmt", "default_stmt"])

# Names a spec would use, so that generated calls and references often resolve.
_NAMES = ["meta", "x", "y", "a", "b", "i", "n", "f", "stage", "conv2d", "dense", "relu", "maxpool2d", "avgpool2d",
          "flatten", "add", "concat", "multiply", "batchnorm", "dropout", "zeropad2d", "reshape", "softmax",
          "global_avgpool2d", "depthwise_conv2d", "separable_conv2d", "Conv2D", "channels", "shape", "filters",
          "kernel_size", "strides", "padding", "units", "axis", "activation", "groups", "dilation_rate",
          "name", "keepdims", "use_bias", "channels_first", "channels_last", "l2", "he_normal",
          "conv1d", "conv3d", "conv2d_transpose", "conv1d_transpose", "maxpool1d", "avgpool3d", "cropping2d",
          "zeropad1d", "upsampling2d", "resizing", "center_crop", "global_avgpool1d", "output_padding",
          "cropping", "size", "interpolation"]


def _reachable(start: str) -> set[str]:
    """Terminals the rule ``start`` can produce (from_lark refuses strategies for any other)."""
    _, rules, ignore = _LARK.grammar.compile([start], ())
    by_origin: dict[str, list] = {}
    for rule in rules:
        by_origin.setdefault(rule.origin.name, []).append(rule)
    seen, todo, terminals = {start}, [start], set(ignore)
    while todo:
        for rule in by_origin.get(todo.pop(), []):
            for sym in rule.expansion:
                if sym.is_term:
                    terminals.add(sym.name)
                elif sym.name not in seen:
                    seen.add(sym.name)
                    todo.append(sym.name)
    return terminals


@functools.cache
def grammar_text(start: str = "start") -> st.SearchStrategy[str]:
    """Text drawn from the grammar rule ``start`` (cached: building one compiles the grammar)."""
    reachable = _reachable(start)
    explicit = {k: v for k, v in _explicit().items() if k in reachable}
    return from_lark(_LARK, start=start, explicit=explicit)


def _explicit() -> dict[str, st.SearchStrategy[str]]:
    """Terminal strategies: keywords and punctuation padded with spaces so tokens stay apart."""
    out: dict[str, st.SearchStrategy[str]] = {}
    for term in _LARK.terminals:
        if term.pattern.type == "str":
            out[term.name] = st.just(f" {term.pattern.value} ")
    out["NAME"] = st.one_of(st.sampled_from(_NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
                            .filter(lambda s: s not in KEYWORDS)).map(lambda s: f" {s} ")
    # Small numbers keep repeat counts and sizes cheap; a few large ones probe the limits.
    out["NUMBER"] = st.sampled_from(["0", "1", "2", "3", "4", "8", "16", "28", "0.5", "1e-3", "2.", ".5",
                                     "1e9", "99999999999999999999"]).map(lambda s: f" {s} ")
    # Never a device or absolute path: `import "/dev/zero"` is a hostile case of its own.
    out["STRING"] = st.sampled_from(["'same'", "'valid'", "'causal'", "'bilinear'", "'relu'", '"softmax"',
                                     "'channels_first'",
                                     "'missing.net'", "''", "'a\\'b'", "'fc'"]).map(lambda s: f" {s} ")
    out["_NL"] = st.sampled_from(["\n", "\n\n", "\r\n", "  # comment\n"])
    # Ignored tokens come between any two symbols: a comment there would swallow the rest of the line.
    out["COMMENT"] = st.just(" ")
    return out


@given(grammar_text())
def test_grammar_files(text: str) -> None:
    check_everything(text)


@st.composite
def grammar_networks(draw: st.DrawFn) -> str:
    """Generated statements inside a network with an input, after generated blocks: most reach elaboration."""
    blocks = draw(st.lists(grammar_text("block"), max_size=1))
    shape = draw(st.sampled_from(["[8, 8, 3]", "[3, 8, 8] channels_first", "[?, ?, 2]", "[10]"]))
    statements = st.one_of(grammar_text("chain"), grammar_text("bind_stmt"), grammar_text("repeat_stmt"),
                           grammar_text("if_stmt"), grammar_text("default_stmt"), grammar_text("output_stmt"))
    body = "\n".join(draw(st.lists(statements, min_size=1, max_size=4)))
    inputs = "".join(draw(st.lists(st.sampled_from(["    input meta: [4]\n", "    input y: [8, 8, 3]\n"]),
                                   max_size=2, unique=True)))  # several inputs, named by the generated code
    return "\n".join(blocks) + f"\nnetwork n {{\n    input x: {shape}\n{inputs}{body}\n}}\n"


# Recursive rules overrun hypothesis's buffer now and then; those draws count as filtered.
@settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(grammar_networks())
def test_grammar_networks(text: str) -> None:
    check_everything(text)


# --- mutations of small valid specs -------------------------------------------------------------

SEEDS = [
    b"network n {\n    input x: [28, 28, 1]\n    conv2d(8, 3, padding='same') -> relu()\n"
    b"    maxpool2d()\n    flatten()\n    dense(10, activation='softmax')\n}\n",
    b"block b(f, s=1) {\n    conv2d(f, 3, strides=s, padding=1)\n    batchnorm()\n}\n"
    b"network n {\n    input x: [3, 16, 16] channels_first\n    a = b(8)\n    c = a -> b(8)\n"
    b"    add(a, c)\n    repeat 2 as i { b(8 * (i + 1), s=2) }\n    global_avgpool2d()\n}\n",
    b"network n {\n    input x: [?, ?, 3]\n    default conv2d(activation='relu')\n"
    b"    if channels(x) > 1 { conv2d(4, 1) } else { relu() }\n    s = shape(x)\n}\n",
    # version 2's layer ops: arguments (tuples, numbers as merge operands, trainable) to mutate
    b"network n {\n    input x: [8, 8, 6]\n    rescaling((0.5, 1, 2, 1, 1, 1), offset=-1)\n"
    b"    normalization(mean=0.5, variance=2)\n"
    b"    y = layernorm(axis=(1, 2), epsilon=1e-6) -> groupnorm(3) -> prelu(shared_axes=(1, 2))\n"
    b"    z = add(y, 3) -> multiply(1 / 6) -> subtract(2)\n"
    b"    average(z, y, 0.5) -> glu() -> threshold(0.1, 0) -> permute((3, 1, 2))\n"
    b"    layer_scale(trainable=false) -> activation('hard_swish') -> sparsemax(axis=2)\n}\n",
]
SEEDS += [
    b"network n {\n    input x: [64, 2]\n    conv1d(8, 3, padding='causal', dilation_rate=2) -> maxpool1d()\n"
    b"    conv1d_transpose(4, 3, strides=2, output_padding=1)\n    cropping1d((1, 2)) -> upsampling1d(2)\n"
    b"    global_avgpool1d()\n}\n",
    b"network n {\n    input x: [3, 20, 20] channels_first\n    e = conv2d(8, 3)\n"
    b"    u = maxpool2d(2) -> conv2d_transpose(8, 2, strides=2)\n    c = e -> cropping2d(((0, 0), (0, 0)))\n"
    b"    concat(c, u, axis=1) -> upsampling2d(2, interpolation='bilinear')\n    resizing(16, 12)\n"
    b"    center_crop(8, 8)\n}\n",
    b"network n {\n    input x: [4, 8, 8, 1]\n    conv3d(4, (1, 3, 3), padding=((0, 0), 1, 1))\n"
    b"    zeropad3d((1, 0, (0, 1))) -> maxpool3d(2, padding='same')\n    upsampling3d((1, 2, 2))\n"
    b"    conv3d_transpose(2, 2, strides=2, padding='same') -> global_maxpool3d()\n}\n",
]
TOKENS = [b"(", b")", b"[", b"]", b"{", b"}", b"->", b"\n", b";", b",", b"=", b"'", b'"', b"\\\n", b"#",
          b"**", b"//", b"?", b"repeat 3 {", b"in", b"block", b"network n {", b"\x00", b"\xff", b"\xe9",
          b"\xef\xbb\xbf", b"\r", b"\t", b"1e999", b"-", b"9" * 30, b"x", b"conv2d(", b"name='a'",
          b"trainable=false", b"glu()", b"(1, 2)", b"3, ", b"axis=", b"groups=", b"none"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "insert", "token", "flip", "duplicate"]))
        if kind == "delete":
            del data[pos: pos + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif kind == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "duplicate":
            end = min(len(data), pos + draw(st.integers(1, 40)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def run_cli(path: Path, args: list[str]) -> tuple[str, str, int]:
    """``netspec check`` in-process; an exception other than the exit fails the test."""
    runner = cli_runner()
    result = runner.invoke(main, ["check", str(path), *args], prog_name="netspec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"netspec check raised {result.exception!r}") from result.exception
    return result.stdout, result.stderr, result.exit_code


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")
@given(mutated(), st.sampled_from([[], ["--format", "json"], ["--strict", "-s", "W103"]]))
def test_mutated_specs(data: bytes, args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.net"
        path.write_bytes(data)
        report = check_file(path)  # never raises
        for diag in report.all_diagnostics:
            diag.render()
        stdout, stderr, rc = run_cli(path, args)
    assert rc in (0, 1)
    assert "Traceback" not in stdout + stderr
    assert rc == (0 if report.ok and not ("--strict" in args and report.all_diagnostics) else 1)
    if "json" in args:
        json.loads(stdout)
    if rc == 1:
        assert re.search(r"(error|warning)\[[EW]\d{3}\]", stderr), stderr


# --- argument mutations of generated spatial networks ----------------------------------------

_ARG = re.compile(r"(?<=[(,] )([A-Za-z_]+=)?([^,()]+|\([^()]*\)|\(\([^()]*\)[^)]*\))(?=[,)])|"
                  r"(?<=\()([^,()]+)(?=[,)])")
HOSTILE_VALUES = ["0", "-1", "-3", "1", "2", "7", "1000000", "10 ** 12", "0.5", "none", "true", "'same'",
                  "'causal'", "'bilinear'", "'sam'", "(1, 2)", "(0, 0, 0)", "((1, 2), (3, 4))", "((1, 2),)",
                  "(-1, 2)", "()", "'channels_first'", "(2, 0)", "((0, 9), 1, 1)", "x"]


@st.composite
def spatial_arg_mutants(draw: st.DrawFn) -> str:
    """A generated 1-D/2-D/3-D network with one to three arguments replaced by hostile values."""
    from netgen import spatial_networks

    text = draw(spatial_networks()).text
    for _ in range(draw(st.integers(1, 3))):
        spans = [m.span() for m in _ARG.finditer(text)]
        if not spans:
            break
        start, end = draw(st.sampled_from(spans))
        key = re.match(r"[A-Za-z_]+=", text[start:end])
        value = draw(st.sampled_from(HOSTILE_VALUES))
        text = text[:start] + (key.group(0) if key else "") + value + text[end:]
    return text


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spatial_arg_mutants())
def test_spatial_argument_mutations(text: str) -> None:
    # Kernel sizes, strides, paddings, croppings, sizes and interpolations out of range, of the
    # wrong type or the wrong length: a located diagnostic, never a crash.
    check_everything(text)


@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    check_everything(text)


# --- hostile inputs, in a subprocess with a memory cap and a clock ---------------------------

#: CPU seconds a hostile input may take, start-up included (CPU, not wall-clock, time: the
#: machine is shared and a loaded machine must not fail the test).
TIME_LIMIT = 3.0
#: Wall-clock seconds after which the child is killed.
KILL_AFTER = 10.0
#: Peak resident memory a hostile input may use.
MEMORY_LIMIT = 512 * 2**20
#: Address-space cap for the child, so a runaway case cannot hurt the shared machine.
ADDRESS_SPACE = 2 * 2**30
BIG = 50 * 2**20


def _block_chain(depth: int) -> str:
    blocks = "".join(f"block b{i}() {{\n    b{i + 1}()\n}}\n" for i in range(depth - 1))
    return blocks + f"block b{depth - 1}() {{\n    dense(2)\n}}\nnetwork n {{\n    input x: [4]\n    b0()\n}}\n"


def _net(body: str, shape: str = "[4]") -> str:
    return f"network n {{\n    input x: {shape}\n{body}}}\n"


def _garbage() -> bytes:
    import random

    rng = random.Random(1234)
    return bytes(rng.randrange(256) for _ in range(200_000))


HOSTILE = [
    pytest.param("garbage", _garbage, "E103", id="binary-garbage"),
    pytest.param("garbage_ascii", lambda: bytes(b % 127 + 1 for b in _garbage()), "E101", id="ascii-garbage"),
    pytest.param("parens", lambda: _net("    dense(" + "(" * 5000 + "2" + ")" * 5000 + ")\n"), "E502",
                 id="5000-nested-parentheses"),
    pytest.param("open_parens", lambda: "(" * 5000, "E101", id="5000-open-parentheses"),
    pytest.param("brackets", lambda: _net("    dense(" + "s[" * 5000 + "0" + "]" * 5000 + ")\n"), "E502",
                 id="5000-nested-indexing"),
    pytest.param("blocks", lambda: _block_chain(3000), "E502", id="3000-deep-block-calls"),
    pytest.param("repeat", lambda: _net("    repeat 10 ** 9 {\n        dense(4)\n    }\n"), "E503",
                 id="repeat-10**9"),
    pytest.param("filters", lambda: _net("    conv2d(filters=10 ** 12, kernel_size=3)\n", "[8, 8, 3]"), "E501",
                 id="filters-10**12"),
    pytest.param("nested_repeats", lambda: _net(
        "    repeat 10000 {\n        repeat 10000 {\n            repeat 10000 {\n"
        "                dropout(0.1)\n            }\n        }\n    }\n"), "E503",
        id="nested-repeats-10**12"),
    pytest.param("empty_repeats", lambda: _net(
        "    repeat 1000000 {\n        repeat 1000000 {\n        }\n    }\n    dense(2)\n"), "E503",
        id="nested-empty-repeats-10**12"),
    pytest.param("power", lambda: _net("    dense(2 ** 2 ** 2 ** 99)\n"), "E501", id="2**2**2**99"),
    pytest.param("power_float", lambda: _net("    dense(2.0 ** 2 ** 2 ** 99)\n"), "E501", id="2.0**2**2**99"),
    pytest.param("product", lambda: _net("    dense(10 ** 18 * 10 ** 18 * 10 ** 18)\n"), "E501", id="int-overflow"),
    pytest.param("long_line_spaces", lambda: _net("    dense(2)" + " " * BIG + "\n    dense(-1)\n"), "E306",
                 id="50MB-line-of-spaces"),
    pytest.param("long_comment", lambda: _net("    dense(-1)  #" + "c" * BIG + "\n"), "E306", id="50MB-comment"),
    pytest.param("long_string", lambda: _net("    dense(2, name='" + "n" * BIG + "')\n    dense(-1)\n"), "E306",
                 id="50MB-string"),
    pytest.param("long_name", lambda: _net("    " + "a" * BIG + "(2)\n"), "E201",
                 id="50MB-name"),
    pytest.param("long_tokens", lambda: _net("    dense(2" + " + 1" * (BIG // 4) + ")\n"), "E502",
                 id="50MB-line-of-tokens"),
    pytest.param("long_number", lambda: _net("    dense(" + "9" * 5000 + ")\n"), "E501",
                 id="5000-digit-number"),
    pytest.param("dev_zero", lambda: 'import "/dev/zero"\n' + _net("    dense(2)\n"), "E207",
                 id="import-dev-zero"),
]


# The child caps itself, starts its own process group, and reports its own peak (VmHWM of its
# fresh address space).  Measuring from here would not work: a fork of a large test process (an
# xdist worker that has loaded TensorFlow) carries that process's peak into ru_maxrss.
_CHILD = """
import atexit, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
os.setsid()
def _report(path=sys.argv[1]):
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(_report)
sys.argv = ["netspec", "check", sys.argv[2]]
from netspec.cli import main
main()
"""


def run_limited(path: Path) -> tuple[str, str, int | None, float, int]:
    """Run ``netspec check`` on ``path``; returns stdout, stderr, rc (None if killed), CPU seconds, peak bytes.

    The peak is unknown (reported as the cap) when the child was killed.
    """
    start = time.monotonic()
    peak_file = path.parent / "peak.kib"
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(cap=ADDRESS_SPACE), str(peak_file), path.name],
                                stdout=out, stderr=err, cwd=path.parent)
        rc: int | None = None
        usage = None
        while time.monotonic() - start < KILL_AFTER:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.02)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
            _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = rc if rc is not None else -9  # already reaped: keep Popen from waiting
        cpu = usage.ru_utime + usage.ru_stime
        out.seek(0)
        err.seek(0)
        # Read a bounded prefix: a runaway message must not flood the test process.
        stdout = out.read(1 << 20).decode("utf-8", "replace")
        stderr_bytes = err.read(1 << 20)
        stderr = stderr_bytes.decode("utf-8", "replace") + ("[...]" if err.read(1) else "")
    peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else ADDRESS_SPACE
    return stdout, stderr, rc, cpu, peak


@pytest.mark.parametrize(("name", "make", "code"), HOSTILE)
def test_hostile_input(name: str, make, code: str, tmp_path: Path) -> None:
    content = make()
    path = tmp_path / f"{name}.net"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    del content
    stdout, stderr, rc, cpu, peak = run_limited(path)
    assert rc is not None, f"still running after {KILL_AFTER:.0f} s"
    assert "Traceback" not in stderr, stderr[-3000:]
    assert rc == 1, stderr[:2000]
    first = stderr.splitlines()[0] if stderr else ""
    assert re.match(rf"^{re.escape(name)}\.net:\d+:\d+: error\[{code}\]: ", first), stderr[:2000]
    assert len(stderr) < 10_000, f"{len(stderr)} characters of diagnostics"
    assert cpu < TIME_LIMIT, f"took {cpu:.1f} s of CPU"
    assert peak < MEMORY_LIMIT, f"peak memory {peak / 2**20:.0f} MiB"


def test_valid_long_line_is_accepted(tmp_path: Path) -> None:
    # A 50 MB line that is only whitespace is not an error, and checking it stays cheap.
    path = tmp_path / "spaces.net"
    path.write_text(_net("    dense(2)" + " " * BIG + "\n"))
    stdout, stderr, rc, cpu, peak = run_limited(path)
    assert (rc, stderr) == (0, "")
    assert "dense" in stdout
    assert cpu < TIME_LIMIT and peak < MEMORY_LIMIT


def test_long_integer_literal_is_a_diagnostic() -> None:
    report = check_source(_net("    dense(" + "9" * 5000 + ")\n"), "long.net")
    assert [d.code for d in report.all_diagnostics] == ["E501"]
