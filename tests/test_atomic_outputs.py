"""Output files are written whole or not at all, on every command-line output path.

For ``compile --target numpy|keras|onnx`` and ``run``: a failure (bad
weights, a wrong input, an unwritable place, a writer that dies half way
through) leaves no output file, no temporary file, and never touches a good
file already at that path; a success replaces it whole.
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
from counting import count
from helpers import cli_runner

from netspec.cli import main

pytest.importorskip("onnx")

SPEC = "network n {\n    input x: [6, 6, 2]\n    conv2d(3, 3, name='conv')\n    flatten()\n    dense(4, name='fc')\n}\n"
GOOD = b"a good file that must survive\n"
TARGETS = {"numpy": "out.npz", "keras": "out.keras", "onnx": "out.onnx"}


def invoke(args: list[str]) -> tuple[int, str]:
    runner = cli_runner()
    result = runner.invoke(main, args, prog_name="netspec")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"netspec {args[0]} raised {result.exception!r}") from result.exception
    assert "Traceback" not in result.stderr
    return result.exit_code, result.stderr


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "n.net").write_text(SPEC)
    np.save(tmp_path / "x.npy", np.ones((2, 6, 6, 2), np.float32))
    np.save(tmp_path / "bad_x.npy", np.ones((2, 5, 6, 2), np.float32))
    np.savez(tmp_path / "bad_w.npz", **{"conv/kernel": np.ones((3, 3, 2, 9), np.float32)})
    (tmp_path / "junk_w.npz").write_bytes(b"not a zip")
    return tmp_path


def _files(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def assert_untouched(d: Path, out: Path, before: set[str], had_good: bool) -> None:
    """No new file (no temporary left behind), and the good file, if any, byte for byte as it was."""
    assert _files(d) == before, f"left behind: {_files(d) - before}"
    if had_good:
        assert out.read_bytes() == GOOD
    else:
        assert not out.exists()
    count("atomic_cases")


def _compile(work: Path, target: str, out: Path, *extra: str) -> tuple[int, str]:
    return invoke(["compile", str(work / "n.net"), "--target", target, "-o", str(out), *extra])


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("had_good", [False, True], ids=["fresh", "over-good"])
@pytest.mark.parametrize("weights", ["bad_w.npz", "junk_w.npz"])
def test_compile_with_bad_weights_writes_nothing(work: Path, target: str, had_good: bool, weights: str) -> None:
    out = work / TARGETS[target]
    if had_good:
        out.write_bytes(GOOD)
    before = _files(work)
    rc, err = _compile(work, target, out, "--weights", str(work / weights))
    assert rc == 1 and ("E601" in err or "E603" in err), err
    assert_untouched(work, out, before, had_good)


@pytest.mark.parametrize("had_good", [False, True], ids=["fresh", "over-good"])
def test_run_with_wrong_input_writes_nothing(work: Path, had_good: bool) -> None:
    out = work / "y.npy"
    if had_good:
        out.write_bytes(GOOD)
    before = _files(work)
    rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "bad_x.npy"), "-o", str(out)])
    assert rc == 1 and "E602" in err, err
    assert_untouched(work, out, before, had_good)
    rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "x.npy"), "-o", str(out),
                      "--weights", str(work / "bad_w.npz")])
    assert rc == 1 and "E601" in err, err
    assert_untouched(work, out, before, had_good)


@pytest.mark.parametrize("target", [*sorted(TARGETS), "run"])
def test_unwritable_place_is_e603(work: Path, target: str) -> None:
    # A parent that is a regular file: no process, root included, can create anything under it.
    blocker = work / "blocker"
    blocker.write_bytes(GOOD)
    out = blocker / (TARGETS.get(target, "y.npy"))
    before = _files(work)
    if target == "run":
        rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "x.npy"), "-o", str(out)])
    else:
        rc, err = _compile(work, target, out)
    # Found before any work, as a wrong command line (issue 9 item 10): exit 2.
    assert rc == 2 and "E603" in err and ".netspec-" not in err, err
    assert _files(work) == before and blocker.read_bytes() == GOOD
    missing = work / "no_such_dir" / TARGETS.get(target, "y.npy")
    if target == "run":
        rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "x.npy"), "-o", str(missing)])
    else:
        rc, err = _compile(work, target, missing)
    assert rc == 2 and "E603" in err and ".netspec-" not in err, err
    assert _files(work) == before
    count("atomic_cases")


class _DiskFull(OSError):
    def __init__(self) -> None:
        super().__init__(errno.ENOSPC, "No space left on device (simulated)")


def _half_then_fail(path_or_file, data: bytes = b"PK\x03\x04 half a file") -> None:
    if hasattr(path_or_file, "write"):
        path_or_file.write(data)
        path_or_file.flush()
    else:
        with open(path_or_file, "wb") as f:
            f.write(data)
    raise _DiskFull()


def _break_writer(monkeypatch: pytest.MonkeyPatch, target: str, exc: type[BaseException]) -> None:
    """Make the target's writer write part of its file, then raise ``exc``."""

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003
        try:
            _half_then_fail(args[0] if not hasattr(args[0], "save") else args[1])
        except _DiskFull:
            if exc is _DiskFull:
                raise
            raise exc("simulated crash inside the writer") from None

    if target == "numpy":
        monkeypatch.setattr(np, "savez", fail)
    elif target == "run":
        monkeypatch.setattr(np, "save", fail)
    elif target == "keras":
        from netspec.targets.keras_model import import_keras

        monkeypatch.setattr(import_keras().Model, "save", fail)
    else:
        import builtins

        from netspec.targets import onnx_model

        real_open = builtins.open

        class _Half:
            def __init__(self, f):  # noqa: ANN001
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *a):  # noqa: ANN002
                self.f.close()

            def write(self, data: bytes) -> int:
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                if exc is _DiskFull:
                    raise _DiskFull()
                raise exc("simulated crash inside the writer")

        monkeypatch.setattr(onnx_model, "open", lambda *a, **k: _Half(real_open(*a, **k)), raising=False)


@pytest.mark.parametrize("target", [*sorted(TARGETS), "run"])
@pytest.mark.parametrize("had_good", [False, True], ids=["fresh", "over-good"])
def test_writer_dying_half_way_leaves_nothing(work: Path, target: str, had_good: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = work / TARGETS.get(target, "y.npy")
    if had_good:
        out.write_bytes(GOOD)
    before = _files(work)
    _break_writer(monkeypatch, target, _DiskFull)
    if target == "run":
        rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "x.npy"), "-o", str(out)])
    else:
        rc, err = _compile(work, target, out)
    assert rc == 1 and "E603" in err, err
    assert_untouched(work, out, before, had_good)


@pytest.mark.parametrize("target", [*sorted(TARGETS), "run"])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_crash_or_interrupt_in_the_writer_leaves_the_good_file(work: Path, target: str, exc: type[BaseException],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the library: whatever escapes the writer, the good file stays and no temporary is left."""
    import netspec
    from netspec.targets import compile_target
    from netspec.targets.numpy_exec import run_cli

    net = netspec.load(work / "n.net")
    out = work / TARGETS.get(target, "y.npy")
    out.write_bytes(GOOD)
    before = _files(work)
    _break_writer(monkeypatch, target, exc)
    with pytest.raises(exc):
        if target == "run":
            run_cli(net, work / "x.npy", out)
        else:
            compile_target(net, target, out)
    assert_untouched(work, out, before, True)


@pytest.mark.parametrize("target", [*sorted(TARGETS), "run"])
def test_success_replaces_a_good_file_whole(work: Path, target: str) -> None:
    out = work / TARGETS.get(target, "y.npy")
    out.write_bytes(GOOD)
    before = _files(work)
    if target == "run":
        rc, err = invoke(["run", str(work / "n.net"), "--input", str(work / "x.npy"), "-o", str(out)])
        assert np.load(out).shape == (2, 4)
    else:
        rc, err = _compile(work, target, out)
    assert rc == 0, err
    assert out.read_bytes() != GOOD and _files(work) == before
    if target == "numpy":
        assert sorted(np.load(out).files) == ["conv/bias", "conv/kernel", "fc/bias", "fc/kernel"]
    elif target == "onnx":
        import onnx

        onnx.checker.check_model(onnx.load(out))
    count("atomic_cases")
