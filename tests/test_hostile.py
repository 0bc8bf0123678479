"""Hostile input at scale: nothing a user can type makes netspec crash, hang or grow without bound.

- Byte-level mutation of the real specs in ``specs/`` (deletions, random
  bytes, tokens, bit flips, duplicated and swapped spans, splices between
  files, interesting numbers and strings, truncation): a deterministic sweep
  (``N_MUTATIONS`` inputs) plus a hypothesis version that shrinks failures.
- Programs drawn from the grammar (``hypothesis.extra.lark``), as whole
  files and as statements inside a network with an input.
- Each input runs in-process through ``check_file`` (decoding included),
  every report format, ``load``, and — when check accepts a small network —
  the NumPy executor and the ONNX builder (a spec check accepts must build);
  an alarm bounds each input and its time is checked against 5 s.
- A child process runs a sweep under an address-space cap and reports its
  resident memory along the way: it must not keep growing.

Only :class:`netspec.NetspecError` may escape ``load``; ``check_file``
raises nothing.  Profiles: CI runs 3,000 inputs;
``NETSPEC_PROFILE=long`` runs ``NETSPEC_LONG_FUZZ`` (default 100,000) in
all.  Inputs that ran are counted (:mod:`counting`).
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from counting import count
from helpers import cli_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import netspec
from netspec.analysis.report import format_table, to_json
from netspec.cli import main
from netspec.frontend.syntax import grammar_path

ROOT = Path(__file__).resolve().parents[1]
SPECS = {p.name: p.read_bytes() for p in sorted((ROOT / "specs").glob("*.net"))}
LONG = os.environ.get("NETSPEC_PROFILE") == "long"
TOTAL = int(os.environ.get("NETSPEC_LONG_FUZZ", "100000")) if LONG else 3000
#: Share of TOTAL per test: the sweep, the hypothesis mutation test, the grammar tests, the child.
N_MUTATIONS = TOTAL * 55 // 100
N_HYPO_MUTATIONS = TOTAL * 10 // 100
N_GRAMMAR = TOTAL * 10 // 100
N_CHILD = TOTAL * 25 // 100
#: Seconds one input may take (the issue's bound).
TIME_LIMIT = 5.0
#: Networks check accepts run in the NumPy executor and the ONNX builder when they are this small.
MAX_RUN_MACS = 3_000_000
FAILURES = Path(os.environ.get("NETSPEC_FUZZ_FAILURES", tempfile.gettempdir())) / "netspec-fuzz-failures"

pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ANN001
    raise _Timeout()


def run_one(data: bytes, directory: Path, build: bool = True) -> None:
    """Every library entry point on one input; fail on a crash, a hang or an answer that disagrees."""
    path = directory / "fuzz.net"
    path.write_bytes(data)
    # CPU time, not wall time: a shared CI machine's load must not fail an input (the alarm below
    # still catches a real hang on the wall clock).
    start = time.process_time()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(TIME_LIMIT * 3))
    try:
        report = netspec.check_file(path)
        for diag in report.all_diagnostics:
            assert re.fullmatch(r"[EW]\d{3}", diag.code), diag.code
            assert diag.code in netspec.CODES, diag.code
            diag.render()
        json.dumps(to_json(report))
        for net in report.networks:
            if net.ok:
                format_table(net)
        try:
            loaded = [netspec.load(path, n.name) for n in report.networks] if report.networks else []
            if not report.networks:
                netspec.load(path)
        except netspec.NetspecError as err:
            assert any(d.is_error for d in err.diagnostics)
            loaded = [n for n in report.networks if n.ok]
        else:
            assert report.ok
        if build:
            for net in loaded:
                if net.ok and net.macs is not None and net.macs <= MAX_RUN_MACS:
                    _build(net)
    except _Timeout:
        raise AssertionError(f"no answer within {TIME_LIMIT * 3:.0f} s") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    elapsed = time.process_time() - start
    assert elapsed < TIME_LIMIT, f"took {elapsed:.1f} s of CPU"


def _build(net: netspec.NetworkReport) -> None:
    """A spec check accepts builds and runs (NumPy), and builds a valid ONNX graph; or a target says E605."""
    from netspec.targets.numpy_exec import executor
    from netspec.targets.onnx_model import to_onnx

    shape = tuple(5 if d is None else d for d in net.graph.input.shape)
    try:
        run = executor(net, seed=0)
        y = run(np.ones((1, *shape), np.float32))
        assert y.shape[1:] == tuple(5 if d is None else d for d in net.output_shape) or None in net.output_shape
        to_onnx(net, seed=0)
    except netspec.NetspecError as err:
        # A target may refuse what it cannot express (E605), never with any other code.
        assert {d.code for d in err.diagnostics} <= {"E605"}, err
    count("fuzz_built")


def _save(data: bytes, test: str) -> Path:
    FAILURES.mkdir(parents=True, exist_ok=True)
    path = FAILURES / f"{test}-{abs(hash(data)) % 10**10}.net"
    path.write_bytes(data)
    return path


# --- mutations ----------------------------------------------------------------------------------------

TOKENS = [b"(", b")", b"[", b"]", b"{", b"}", b"->", b"\n", b";", b",", b"=", b"'", b'"', b"\\\n", b"#", b"**",
          b"//", b"?", b"repeat 3 {", b"repeat 1000000 {", b"in", b"block", b"network n {", b"\x00", b"\xff",
          b"\xe9", b"\xef\xbb\xbf", b"\r", b"\t", b"-", b"x", b"conv2d(", b"name='a'", b"if true {", b"else",
          b"default conv2d(padding='same')", b"import \"specs/mnist.net\"", b"shape(x)", b"channels(in)",
          b"concat(", b"add(", b"channels_first", b"?, ", b"input y: [3]", b"\xc3", b"\xf0\x9f\x98\x80"]
NUMBERS = [b"0", b"-1", b"1", b"2", b"7", b"0.5", b"1e999", b"1e-999", b"2 ** 62", b"2 ** 31", b"99999999999",
           b"9" * 30, b"1.5", b"-0", b"0x10", b"3 // 0", b"1 / 0", b"10 ** 6"]
STRINGS = [b"'same'", b"'valid'", b"'sam'", b"''", b"'relu'", b"'channels_first'", b"'a/b'", b"'\\x00'",
           b"'he_normal'", b"'l2'", b"none", b"true"]


def mutate(rng: random.Random) -> bytes:
    """One mutated spec: a file of specs/ with 1..8 random edits.

    >>> isinstance(mutate(random.Random(0)), bytes)
    True
    """
    names = sorted(SPECS)
    data = bytearray(SPECS[rng.choice(names)])
    for _ in range(rng.randint(1, 8)):
        pos = rng.randint(0, len(data))
        kind = rng.randrange(11)
        if kind == 0:
            del data[pos: pos + rng.randint(1, 12)]
        elif kind == 1:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif kind == 2:
            data[pos:pos] = rng.choice(TOKENS)
        elif kind == 3 and pos < len(data):
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 4:
            end = min(len(data), pos + rng.randint(1, 80))
            data[pos:pos] = data[pos:end]
        elif kind == 5:
            other = SPECS[rng.choice(names)]
            a = rng.randint(0, len(other))
            data[pos:pos] = other[a: a + rng.randint(1, 200)]
        elif kind == 6:
            nums = [m.span() for m in re.finditer(rb"\d+(\.\d+)?", bytes(data))]
            if nums:
                a, b = rng.choice(nums)
                data[a:b] = rng.choice(NUMBERS)
        elif kind == 7:
            strs = [m.span() for m in re.finditer(rb"'[^'\n]*'", bytes(data))]
            if strs:
                a, b = rng.choice(strs)
                data[a:b] = rng.choice(STRINGS)
        elif kind == 8:
            lines = bytes(data).split(b"\n")
            if len(lines) > 2:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
                data = bytearray(b"\n".join(lines))
        elif kind == 9:
            del data[pos:]
        else:
            names_ = [m.span() for m in re.finditer(rb"[A-Za-z_][A-Za-z0-9_]*", bytes(data))]
            if names_:
                a, b = rng.choice(names_)
                data[a:b] = rng.choice([b"x", b"in", b"y", b"conv2d", b"Dense", b"relu", b"block", b"stage",
                                        b"flatten", b"add", b"shape", b"channels", b"repeat"])
    return bytes(data)


def sweep(seed: int, n: int, directory: Path, build: bool = True) -> dict:
    """Run ``n`` mutations drawn from ``seed``; returns the slowest input's time and the count.

    >>> d = Path(tempfile.mkdtemp())
    >>> sweep(1, 3, d)["inputs"]
    3
    """
    rng = random.Random(seed)
    slowest = 0.0
    for i in range(n):
        data = mutate(rng)
        start = time.monotonic()
        try:
            run_one(data, directory, build=build)
        except BaseException as err:
            path = _save(data, "sweep")
            raise AssertionError(f"input {i} of seed {seed} (saved as {path}): {err!r}") from err
        slowest = max(slowest, time.monotonic() - start)
    return {"inputs": n, "slowest": slowest}


def test_mutation_sweep(tmp_path: Path) -> None:
    """A deterministic sweep of mutations of specs/ (seeded so a failure replays)."""
    seed = int(os.environ.get("NETSPEC_FUZZ_SEED", "20240601"))
    chunk = 1000
    done = 0
    while done < N_MUTATIONS:
        n = min(chunk, N_MUTATIONS - done)
        sweep(seed + done, n, tmp_path)
        count("fuzz_inputs", n)
        count("fuzz_mutation_sweep", n)
        done += n


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A mutated spec (hypothesis shrinks the seed and the number of edits)."""
    return mutate(random.Random(draw(st.integers(0, 2**32))))


@settings(max_examples=N_HYPO_MUTATIONS, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated(), st.sampled_from([[], ["--format", "json"], ["--strict"]]))
def test_mutated_specs_library_and_cli(data: bytes, args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run_one(data, Path(tmp), build=False)
            path = Path(tmp) / "fuzz.net"
            runner = cli_runner()
            result = runner.invoke(main, ["check", str(path), *args], prog_name="netspec")
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                raise AssertionError(f"netspec check raised {result.exception!r}") from result.exception
            assert result.exit_code in (0, 1)
            assert "Traceback" not in result.stdout + result.stderr
        except BaseException:
            _save(data, "hypothesis")
            raise
    count("fuzz_inputs")


# --- the grammar ----------------------------------------------------------------------------------------

_LARK = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="basic",
             start=["start", "chain", "bind_stmt", "repeat_stmt", "if_stmt", "default_stmt"])
_KEYWORDS = {"network", "block", "input", "repeat", "as", "if", "else", "default", "in", "and", "or", "not",
             "true", "false", "none", "import", "output"}
_NAMES = ["x", "y", "a", "in_", "conv2d", "dense", "relu", "maxpool2d", "flatten", "add", "concat", "multiply",
          "batchnorm", "zeropad2d", "reshape", "softmax", "global_avgpool2d", "depthwise_conv2d", "channels",
          "shape", "filters", "kernel_size", "strides", "padding", "units", "axis", "groups", "name", "Conv2D",
          "len", "str", "min", "max", "he_normal", "l2"]


def _explicit(start: str) -> dict[str, st.SearchStrategy[str]]:
    out: dict[str, st.SearchStrategy[str]] = {}
    for term in _LARK.terminals:
        if term.pattern.type == "str":
            out[term.name] = st.just(f" {term.pattern.value} ")
    out["NAME"] = st.one_of(st.sampled_from(_NAMES), st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True)
                            .filter(lambda s: s not in _KEYWORDS)).map(lambda s: f" {s} ")
    out["NUMBER"] = st.sampled_from(["0", "1", "2", "3", "8", "16", "0.5", "1e-3", "1e9", "2.", "1e999",
                                     "99999999999999999999"]).map(lambda s: f" {s} ")
    out["STRING"] = st.sampled_from(["'same'", "'valid'", "'relu'", "'channels_first'", "''", "'a\\'b'",
                                     "'missing.net'"]).map(lambda s: f" {s} ")
    out["_NL"] = st.sampled_from(["\n", "\r\n", "  # c\n"])
    out["COMMENT"] = st.just(" ")
    _, rules, ignore = _LARK.grammar.compile([start], ())
    used = {s.name for r in rules for s in r.expansion if s.is_term} | set(ignore)
    return {k: v for k, v in out.items() if k in used}


_STRATEGIES: dict[str, st.SearchStrategy[str]] = {}


def _grammar(start: str) -> st.SearchStrategy[str]:
    # Built once: building a from_lark strategy compiles the grammar (about a second each time).
    if start not in _STRATEGIES:
        _STRATEGIES[start] = from_lark(_LARK, start=start, explicit=_explicit(start))
    return _STRATEGIES[start]


_STATEMENTS = ("chain", "bind_stmt", "repeat_stmt", "if_stmt", "default_stmt")


@st.composite
def grammar_networks(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["[8, 8, 3]", "[3, 8, 8] channels_first", "[?, ?, 2]", "[10]"]))
    stmts = st.one_of(*(_grammar(s) for s in _STATEMENTS))
    body = "\n".join(draw(st.lists(stmts, min_size=1, max_size=5)))
    return f"network n {{\n    input x: {shape}\n{body}\n}}\n"


@settings(max_examples=N_GRAMMAR // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(_grammar("start"))
def test_grammar_files(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run_one(text.encode(), Path(tmp))
        except BaseException:
            _save(text.encode(), "grammar")
            raise
    count("fuzz_inputs")
    count("fuzz_grammar")


@settings(max_examples=N_GRAMMAR - N_GRAMMAR // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(grammar_networks())
def test_grammar_networks(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run_one(text.encode(), Path(tmp))
        except BaseException:
            _save(text.encode(), "grammar")
            raise
    count("fuzz_inputs")
    count("fuzz_grammar")


# --- memory and time in a child process --------------------------------------------------------------------

#: Address space for the child: a runaway input fails there, not on the shared machine.
ADDRESS_SPACE = 3 * 2**30
#: Resident memory the child may gain between the first checkpoint and the end.
GROWTH_LIMIT = 96 * 2**20


def _child(seed: int, n: int) -> None:
    """Run in the child: a sweep, printing the resident memory at checkpoints as JSON."""
    sys.setrecursionlimit(20000)  # as the CLI does
    with tempfile.TemporaryDirectory() as tmp:
        rss = []
        slowest = 0.0
        step = max(1, n // 10)
        for start in range(0, n, step):
            r = sweep(seed + start, min(step, n - start), Path(tmp), build=False)
            slowest = max(slowest, r["slowest"])
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    print(json.dumps({"rss": rss, "slowest": slowest, "inputs": n}))


def test_memory_stays_bounded_in_a_child() -> None:
    """A long sweep in a capped child: peak memory stops growing after the first tenth; no input is slow."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_hostile; "
            f"test_hostile._child(777, {N_CHILD})")
    limit = max(120, N_CHILD * TIME_LIMIT / 50)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit,
                          preexec_fn=cap, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = result["rss"]
    assert rss[-1] - rss[0] < GROWTH_LIMIT, f"resident memory grew from {rss[0] >> 20} to {rss[-1] >> 20} MiB"
    assert result["slowest"] < TIME_LIMIT
    count("fuzz_inputs", result["inputs"])
    count("fuzz_child", result["inputs"])
