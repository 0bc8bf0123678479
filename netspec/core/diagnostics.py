"""Diagnostics: errors and warnings with codes, spans, notes and rendering.

Every problem netspec reports is a :class:`Diagnostic`.  Codes are stable
and grouped by their first digit:

=======  ==============================================================
E1xx     syntax: the text is not a well-formed ``.net`` file
E2xx     names: unknown ops, arguments, tensors, blocks, networks, files
E3xx     values: missing, ill-typed or out-of-range arguments
E4xx     shapes: sizes below 1, groups, merges, unknown sizes
E5xx     limits: sizes, counts or nesting too large to build
E6xx     targets: weights files, inputs, data sets, output files
W1xx     warnings (silence one with ``--silence CODE``)
=======  ==============================================================

>>> from netspec.core.source import Source, Span
>>> src = Source("m.net", "network n {\\n    conv2d(32, 3, padding='sam')\\n}\\n")
>>> start = src.text.index("'sam'")
>>> d = Diagnostic.error("E303", "bad padding 'sam'", Span(src, start, start + 5))
>>> print(d.render())
m.net:2:27: error[E303]: bad padding 'sam'
        conv2d(32, 3, padding='sam')
                              ^^^^^
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .source import Span

__all__ = ["CODES", "Diagnostic", "Note", "NetspecError", "render_all"]

#: Every diagnostic code with a one-line summary (the docs list them too).
CODES: dict[str, str] = {
    "E101": "syntax error: unexpected character or token",
    "E102": "syntax error: unexpected end of file",
    "E103": "file is not valid UTF-8 text",
    "E110": "netspec fmt cannot format the file safely (a formatter bug; the file is left unchanged)",
    "E201": "unknown op or block",
    "E202": "unknown argument",
    "E203": "unbound tensor or value name",
    "E204": "name bound twice in one scope",
    "E205": "recursive block",
    "E206": "import cycle",
    "E207": "imported file not found or unreadable",
    "E208": "no such network",
    "E209": "layer name used twice",
    "E210": "network or block defined twice",
    "E211": "network has no input, or an input after other statements",
    "E230": "output statement outside a network (in a block)",
    "E231": "more than one output statement in a network",
    "E232": "the same tensor listed twice as an output",
    "E215": "name of an enclosing body rebound by a body that does not carry it",
    "E216": "carried name never rebound in the loop body",
    "E217": "carried name rebound twice in one pass",
    "E218": "recursive fn",
    "E221": "unknown warning code in allow",
    "E301": "missing argument",
    "E302": "ill-typed argument",
    "E303": "bad enum value",
    "E304": "argument given twice, or too many positional arguments",
    "E305": "non-integer size",
    "E306": "value out of range",
    "E307": "expression error (division by zero, bad index, bad operands)",
    "E308": "a tensor where a value is expected, or a value where a tensor is expected",
    "E309": "instance argument of the wrong type",
    "E310": "assertion failed",
    "E311": "for over something that is not a tuple, or an element that does not unpack",
    "E401": "output size below 1",
    "E402": "groups do not divide the channels",
    "E403": "merge of mismatched shapes",
    "E404": "unknown size where a known one is needed",
    "E405": "wrong input rank for the op",
    "E406": "reshape to a different number of elements",
    "E407": "dropout noise_shape does not fit the input",
    "E410": "transposed convolution TensorFlow cannot compute ('same', even window, output_padding 0)",
    "E415": "glu halves an axis whose size is odd",
    "E421": "--input-shape does not fit the network's input",
    "E501": "size or count too large to build",
    "E502": "nesting too deep",
    "E503": "network too large (too many layers or repetitions)",
    "E504": "parameters over the --max-params budget",
    "E505": "MACs over the --max-macs budget",
    "E506": "memory over the --max-memory budget",
    "E601": "weights file does not match the network",
    "E602": "input array does not match the network",
    "E603": "cannot read or write a file",
    "E604": "data set does not fit the network",
    "E605": "target cannot express this network",
    "E606": "output refused: it would replace an input, or its ending does not match what is written",
    "E607": "internal error: netspec failed unexpectedly (a bug; please report it)",
    "E610": "netspec run's input files or output file do not fit the network's inputs and outputs",
    "E611": "netspec train cannot train a network with several inputs or outputs",
    "E701": "import: the model holds something netspec cannot express",
    "E702": "import: the written spec does not check",
    "E703": "import: netspec computes a shape other than the model records",
    "E704": "import: the model file has no weights",
    "E705": "import: bad output path",
    "W101": "stride does not tile the input: rows or columns are silently dropped",
    "W102": "dense on a tensor of rank above 2 (a forgotten flatten?)",
    "W103": "even convolution kernel size",
    "W104": "stride larger than the window: inputs are skipped",
    "W105": "layer computed but never used: it does not reach the output",
    "W106": "channels_first network: an axis argument left at its default -1 acts along a spatial axis",
    "W107": "a default statement reaches no layer",
    "W110": "transposed convolution kernel not a multiple of its stride (checkerboard artifacts)",
    "W111": "center_crop larger than its input: Keras resizes instead of cropping",
    "W116": "merge matches only for some input sizes: it narrows the valid sizes",
    "W117": "an op's size rule cannot be followed on symbolic sizes: its output size is unknown",
    "W119": "a budget cannot be checked: the figure depends on sizes that are not known",
}


@dataclass(frozen=True, slots=True)
class Note:
    """A secondary message pointing at a related span (a call site, a producer).

    >>> Note("first bound here").message
    'first bound here'
    """

    message: str
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One error or warning.

    >>> Diagnostic.warning("W103", "even kernel size 2").severity
    'warning'
    """

    severity: str  # "error" or "warning"
    code: str
    message: str
    span: Span | None = None
    notes: tuple[Note, ...] = field(default=())

    @classmethod
    def error(
        cls, code: str, message: str, span: Span | None = None, notes: Iterable[Note] = ()
    ) -> Diagnostic:
        """An error diagnostic."""
        return cls("error", code, message, span, tuple(notes))

    @classmethod
    def warning(
        cls, code: str, message: str, span: Span | None = None, notes: Iterable[Note] = ()
    ) -> Diagnostic:
        """A warning diagnostic."""
        return cls("warning", code, message, span, tuple(notes))

    @property
    def is_error(self) -> bool:
        """True for errors, False for warnings."""
        return self.severity == "error"

    def render(self) -> str:
        """``FILE:LINE:COL: severity[CODE]: message``, the source line, a caret, notes."""
        lines = [f"{_where(self.span)}{self.severity}[{self.code}]: {self.message}"]
        lines.extend(_excerpt(self.span))
        for note in self.notes:
            lines.append(f"{_where(note.span)}note: {note.message}")
            lines.extend(_excerpt(note.span))
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The diagnostic as the JSON report's ``diagnostics`` entry."""
        out: dict = {"severity": self.severity, "code": self.code, "message": self.message}
        if self.span is not None:
            out.update(file=self.span.file, line=self.span.line, column=self.span.column)
        else:
            out.update(file=None, line=None, column=None)
        if self.notes:
            out["notes"] = [
                {
                    "message": n.message,
                    "file": n.span.file if n.span else None,
                    "line": n.span.line if n.span else None,
                    "column": n.span.column if n.span else None,
                }
                for n in self.notes
            ]
        return out


class NetspecError(Exception):
    """Raised by library calls when a spec, graph or file has errors.

    ``diagnostics`` holds every error found (and warnings seen before them).

    >>> err = NetspecError([Diagnostic.error("E201", "unknown op 'conv'")])
    >>> str(err)
    "error[E201]: unknown op 'conv'"
    """

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = tuple(diagnostics)
        super().__init__(render_all(d for d in self.diagnostics if d.is_error))


def render_all(diagnostics: Iterable[Diagnostic]) -> str:
    """Render several diagnostics, one block each."""
    return "\n".join(d.render() for d in diagnostics)


def _where(span: Span | None) -> str:
    return f"{span.file}:{span.line}:{span.column}: " if span is not None else ""


def _excerpt(span: Span | None) -> list[str]:
    if span is None:
        return []
    line, col = span.line, span.column
    text = span.source.line_text(line)
    end_line, end_col = span.source.line_col(max(span.start, span.end - 1))
    width = (end_col - col + 1) if end_line == line and span.end > span.start else 1
    width = max(1, min(width, len(text) - col + 1 if len(text) >= col else 1))
    if len(text) > _EXCERPT:  # show a window of a very long line around the span
        first = max(0, col - 1 - _EXCERPT // 2)
        shown = text[first : first + _EXCERPT]
        lead = "..." if first else ""
        text = lead + shown + ("..." if first + _EXCERPT < len(text) else "")
        col = col - first + len(lead)
        width = min(width, _EXCERPT)
    text = "".join(ch if ch.isprintable() or ch == "\t" else "\ufffd" for ch in text)
    prefix = "".join(ch if ch == "\t" else " " for ch in text[: col - 1])
    return ["    " + text, "    " + prefix + "^" * width]


_EXCERPT = 120
