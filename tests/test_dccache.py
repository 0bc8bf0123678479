"""The precompiled dataclass methods (netspec/_dccache.py) make the same classes, and the table
is written and read back the way Python treats bytecode."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netspec import _dccache

ROOT = Path(__file__).resolve().parent.parent


def _make() -> type:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Box:
        """A frozen, slotted class like the ops' attribute classes."""

        size: int
        name: str = "box"
        tags: tuple[str, ...] = dataclasses.field(default=(), metadata={"kind": "tags"})

    return Box


def _describe(cls: type) -> tuple:
    a, b = cls(3), cls(3, "box")
    try:
        a.size = 4
        frozen = False
    except dataclasses.FrozenInstanceError:
        frozen = True
    return (repr(a), a == b, hash(a) == hash(b), frozen, str(inspect.signature(cls)),
            cls.__init__.__annotations__, [(f.name, f.default, dict(f.metadata)) for f in dataclasses.fields(cls)],
            cls.__slots__, dataclasses.replace(a, size=5).size)


def test_cached_classes_are_the_same(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_dccache, "_path", lambda: str(tmp_path / "table.marshal"))
    monkeypatch.setattr(_dccache, "_table", None)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    plain = _describe(_make())
    with _dccache.cached_dataclasses():  # compiles and writes the table
        first = _describe(_make())
    assert "exec" not in vars(dataclasses)
    assert (tmp_path / "table.marshal").exists()
    monkeypatch.setattr(_dccache, "_table", None)
    calls: list[str] = []
    real_compile = compile
    monkeypatch.setattr("builtins.compile", lambda *a, **k: calls.append(a[0]) or real_compile(*a, **k))
    with _dccache.cached_dataclasses():  # reads the table: nothing compiled again
        second = _describe(_make())
    assert calls == []
    assert plain == first == second


def test_no_table_without_bytecode_writing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_dccache, "_path", lambda: str(tmp_path / "table.marshal"))
    monkeypatch.setattr(_dccache, "_table", None)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    with _dccache.cached_dataclasses():
        _make()
    assert not (tmp_path / "table.marshal").exists()


def test_bad_table_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    table = tmp_path / "table.marshal"
    table.write_bytes(b"not a table at all")
    monkeypatch.setattr(_dccache, "_path", lambda: str(table))
    monkeypatch.setattr(_dccache, "_table", None)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    with _dccache.cached_dataclasses():
        assert _describe(_make())[0].endswith("Box(size=3, name='box', tags=())")
    assert table.read_bytes().startswith(_dccache._MAGIC)


def test_check_output_same_with_and_without_table(tmp_path: Path) -> None:
    """`netspec check` prints the same whether the table is used, written or not allowed."""
    spec = str(ROOT / "specs" / "resnet50.net")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outs = []
    for flag in ("1", "", ""):  # no table written; then written; then read
        e = dict(env, PYTHONDONTWRITEBYTECODE=flag) if flag else {k: v for k, v in env.items()
                                                                  if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.run([sys.executable, "-m", "netspec.cli", "check", spec], capture_output=True,
                              text=True, env=e, cwd=tmp_path)
        outs.append((proc.returncode, proc.stdout, proc.stderr))
    assert outs[0] == outs[1] == outs[2]
    assert outs[0][0] == 0 and "25,636,712" in outs[0][1]
