"""Faster start-up: the methods that :mod:`dataclasses` generates, compiled once and kept on disk.

Every ``@dataclass`` writes the source of its ``__init__``, ``__repr__``,
``__eq__``, ``__hash__`` and (frozen) ``__setattr__``/``__delattr__`` and
compiles it with ``exec`` when its module is imported.  netspec defines
about a hundred such classes (an attribute class per op, the IR, the
diagnostics, the syntax tree), and compiling their few hundred generated
functions was the largest single cost of ``netspec check`` (about 35 ms of
CPU, a quarter of the whole process).

While :func:`cached_dataclasses` is active, :mod:`dataclasses` compiles
through :func:`_exec`, which looks the generated text up in a table of code
objects and compiles only what is missing.  The code object is exactly what
``exec(text)`` would compile (same text, same ``"<string>"`` file name), so
the classes are the same; only the compiling is skipped.  The table lives
beside the package's bytecode (``__pycache__/_dccache.<tag>.marshal``), is
keyed by the interpreter's bytecode magic number, and is written the way
Python writes ``.pyc`` files: not at all under ``PYTHONDONTWRITEBYTECODE``,
atomically, and silently not when the folder is read-only.  A source
change makes new text, which is simply compiled and added.

>>> import dataclasses
>>> with cached_dataclasses():
...     @dataclasses.dataclass(frozen=True)
...     class P:
...         x: int
...         y: int = 2
>>> P(1), P(1) == P(1, 2), P.__init__.__annotations__["x"] == P.__annotations__["x"], hasattr(dataclasses, "exec")
(P(x=1, y=2), True, True, False)
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import os
import sys
from collections.abc import Iterator
from types import CodeType

__all__ = ["cached_dataclasses"]

_MAGIC = importlib.util.MAGIC_NUMBER
#: Entries kept at most; past it the table is rewritten with only what this process used.
_LIMIT = 4000

_table: dict[str, CodeType] | None = None
_used: dict[str, CodeType] = {}
_missed = False


def _path() -> str | None:
    tag = sys.implementation.cache_tag
    if tag is None:
        return None
    try:
        pyc = importlib.util.cache_from_source(os.path.join(os.path.dirname(__file__), "_dccache.py"))
    except (NotImplementedError, ValueError):
        return None
    return pyc[: -len(".pyc")] + ".marshal" if pyc.endswith(".pyc") else None


def _load() -> dict[str, CodeType]:
    path = _path()
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[: len(_MAGIC)] != _MAGIC:
            return {}
        table = marshal.loads(data[len(_MAGIC):])
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(table, dict):
        return {}
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, CodeType)}


def _save() -> None:
    path = _path()
    if path is None or sys.dont_write_bytecode or _table is None:
        return
    table = dict(_table) if len(_table) <= _LIMIT else dict(_used)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(_MAGIC + marshal.dumps(table))
        os.replace(tmp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _exec(source: object, globals: dict | None = None, locals: dict | None = None) -> None:
    """``exec`` for :mod:`dataclasses`: text it has compiled before runs from the table."""
    global _missed
    if not isinstance(source, str) or _table is None:
        builtins.exec(source, globals, locals)  # type: ignore[arg-type]
        return
    code = _table.get(source)
    if code is None:
        # dont_inherit: compile as dataclasses' own exec would, without this module's __future__ flags.
        code = compile(source, "<string>", "exec", dont_inherit=True)
        _table[source] = code
        _missed = True
    _used[source] = code
    builtins.exec(code, globals, locals)


@contextlib.contextmanager
def cached_dataclasses() -> Iterator[None]:
    """Let :mod:`dataclasses` take its generated methods from the on-disk table meanwhile.

    Nested or concurrent use only reuses the one already active.

    >>> with cached_dataclasses():
    ...     pass
    """
    global _table, _missed
    if "exec" in vars(dataclasses):  # already active (or someone else's): leave it alone
        yield
        return
    if _table is None:
        _table = _load()
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # found before the builtin
    try:
        yield
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
        if _missed:
            _missed = False
            _save()
