"""Source text and spans: where every diagnostic points.

A :class:`Source` holds one file's text; a :class:`Span` is a half-open
range of character offsets into it.  Line and column numbers (both
1-based) are computed on demand, so spans stay cheap to create.

>>> src = Source("model.net", "network n {\\n    input x: [4]\\n}\\n")
>>> span = Span(src, 16, 21)
>>> span.line, span.column, span.text
(2, 5, 'input')
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = ["Source", "Span"]


@dataclass(frozen=True, slots=True, eq=False)
class Source:
    """One source file: its display name and its full text.

    >>> Source("a.net", "x\\ny").line_text(2)
    'y'
    """

    name: str
    text: str
    _line_starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self._line_starts.extend(starts)

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset.

        >>> Source("a.net", "ab\\ncd").line_col(4)
        (2, 2)
        """
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline.

        >>> Source("a.net", "ab\\ncd").line_text(1)
        'ab'
        """
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end != -1 else len(self.text)].rstrip("\r")


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open range ``[start, end)`` of offsets into a :class:`Source`.

    >>> Span(Source("m.net", "conv2d(3)"), 0, 6).text
    'conv2d'
    """

    source: Source = field(compare=False)
    start: int
    end: int

    @property
    def line(self) -> int:
        """1-based line of the span's start."""
        return self.source.line_col(self.start)[0]

    @property
    def column(self) -> int:
        """1-based column of the span's start."""
        return self.source.line_col(self.start)[1]

    @property
    def text(self) -> str:
        """The source text the span covers."""
        return self.source.text[self.start : self.end]

    @property
    def file(self) -> str:
        """The display name of the span's file."""
        return self.source.name
