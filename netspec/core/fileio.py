"""Output files are written whole or not at all.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "out.txt")
>>> with atomic_output(p) as tmp:
...     _ = open(tmp, "w").write("hello")
>>> open(p).read()
'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

__all__ = ["atomic_output", "content_problem", "output_problem"]


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    If the body raises, the temporary file is removed and ``path`` is left
    as it was (a good file is never overwritten by a failed run).
    ``suffix`` keeps an extension some writers insist on (``.keras``, ``.npz``).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    try:
        fd, tmp = tempfile.mkstemp(prefix=".netspec-", suffix=suffix, dir=directory)
    except OSError as err:
        raise OSError(err.errno, err.strerror, path) from None
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        # The temporary name means nothing to the user: report the path they gave.
        if err.filename is not None and os.path.basename(os.fspath(err.filename)).startswith(".netspec-"):
            raise OSError(err.errno, err.strerror, path) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def output_problem(path: str | os.PathLike, extensions: tuple[str, ...] = (),
                   inputs: tuple[str | os.PathLike | None, ...] = (), what: str = "output") -> tuple[str, str] | None:
    """Why ``path`` cannot be written as an output, as ``(code, message)``, or None when it can.

    Commands check their outputs this way before any work: E603 for a
    place that cannot be written, E606 for an output that would replace an
    input or whose ending does not match what is written.

    ``extensions`` lists the accepted endings (the first is the one to
    suggest); ``inputs`` are files the command reads, which an output must
    never replace.

    >>> output_problem("no/such/dir/w.npz", (".npz",))
    ('E603', "cannot write no/such/dir/w.npz: folder 'no/such/dir' does not exist")
    >>> output_problem("w.onnx", (".npz",), what="numpy weights")
    ('E606', "numpy weights are written as .npz: name the output 'w.npz' (got 'w.onnx')")
    >>> output_problem("net.net", (".npz",), inputs=("net.net",))
    ('E606', 'refusing to write the output onto net.net, a file this command reads')
    >>> output_problem("w.npz", (".npz",)) is None
    True
    """
    text = os.fspath(path)
    if not text or text.endswith(("/", os.sep)) or os.path.isdir(text):
        return "E603", f"cannot write {text!r}: it is a folder; give a file name"
    folder = os.path.dirname(text) or "."
    if not os.path.isdir(folder):
        shown = os.path.dirname(text)
        if os.path.exists(folder):
            return "E603", f"cannot write {text}: {shown!r} is not a folder"
        return "E603", f"cannot write {text}: folder {shown!r} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "E603", f"cannot write {text}: folder {os.path.dirname(text) or '.'!r} is not writable"
    for other in inputs:
        if other is None:
            continue
        if _same_file(text, os.fspath(other)):
            return "E606", f"refusing to write the output onto {os.fspath(other)}, a file this command reads"
    if extensions:
        base, ext = os.path.splitext(text)
        if ext.lower() not in extensions:
            want = " or ".join(extensions)
            return "E606", (f"{what} {'are' if what.endswith('s') else 'is'} written as {want}: "
                    f"name the output {os.path.basename(base) + extensions[0]!r} (got {os.path.basename(text)!r})")
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def content_problem(path: str | os.PathLike, kind: str) -> str | None:
    """Why the file at ``path`` is not a ``kind`` file (``'npz'``, ``'npy'`` or ``'keras'``), from its
    first bytes, or None when it looks like one (or cannot be read: the reader reports that).

    NumPy and Keras describe a file of the wrong kind in their own terms
    ("pickled (object) data", "File not found"); this says what it is.

    >>> import tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "w.npz")
    >>> _ = open(p, "wb").write(b"hello, world")
    >>> content_problem(p, "npz")
    'not an .npz file: an .npz is a zip archive of arrays (numpy.savez writes one), and this file is not a zip archive'
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    is_zip = head[:4] in (b"PK\x03\x04", b"PK\x05\x06")
    is_npy = head[:6] == b"\x93NUMPY"
    if kind == "npz":
        if is_npy:
            return "not an .npz file: it is a single .npy array, and an .npz is a zip archive of named arrays"
        if not is_zip:
            return ("not an .npz file: an .npz is a zip archive of arrays (numpy.savez writes one), "
                    "and this file is not a zip archive")
    elif kind == "npy":
        if is_zip:
            return "not a .npy file: it is a zip archive (an .npz?); give one array saved with numpy.save"
        if not is_npy:
            return "not a .npy file: it does not start with NumPy's .npy header (numpy.save writes one)"
    elif kind == "keras":
        if not is_zip:
            return "not a .keras file: a .keras model is a zip archive (model.save writes one), and this file is not one"
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (OSError, zipfile.BadZipFile, ValueError) as err:
            return f"not a .keras file: a damaged zip archive ({err})"
        if "config.json" not in names:
            return "not a .keras file: a zip archive without the config.json of a Keras 3 model"
    return None
