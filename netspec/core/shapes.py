"""Shape arithmetic shared by the checker and every target.

These are plain functions over ints (``None`` for an unknown size), in
the style of Keras's ``compute_conv_output_shape``: one formula, written
once, so the checker and the targets cannot disagree.

>>> window_output(128, 11, 6, 1, "valid")
20
>>> window_output(128, 11, 6, 1, "same")
22
>>> window_output(6, 2, 2, 1, (1, 1))
4
"""

from __future__ import annotations

__all__ = [
    "SizeError",
    "channel_axis",
    "dropped_cells",
    "same_padding",
    "spatial_axes",
    "window_output",
    "window_pads",
]


class SizeError(Exception):
    """A window does not fit: the output size would be below 1.

    ``arithmetic`` spells the formula with the numbers filled in.
    """

    def __init__(self, arithmetic: str, size: int):
        super().__init__(arithmetic)
        self.arithmetic = arithmetic
        self.size = size


def effective_window(size: int, dilation: int) -> int:
    """The span of a dilated window: ``D*(F-1) + 1``.

    >>> effective_window(3, 2)
    5
    """
    return dilation * (size - 1) + 1


def same_padding(length: int, size: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """The (begin, end) padding of ``'same'``; the extra unit goes at the end.

    >>> same_padding(5, 3, 2)
    (1, 1)
    >>> same_padding(6, 3, 2)
    (0, 1)
    >>> same_padding(224, 7, 2)
    (2, 3)
    """
    out = -(-length // stride)
    total = max((out - 1) * stride + effective_window(size, dilation) - length, 0)
    return total // 2, total - total // 2


def window_pads(
    length: int | None, size: int, stride: int, dilation: int, padding: str | tuple[int, int]
) -> tuple[int, int] | None:
    """The (begin, end) padding applied on one side for any padding form.

    ``padding`` is ``'valid'``, ``'same'`` or a (begin, end) pair.  For
    ``'same'`` with an unknown length the split is unknown (``None``).

    >>> window_pads(7, 3, 1, 1, "valid")
    (0, 0)
    >>> window_pads(7, 3, 2, 1, (2, 0))
    (2, 0)
    """
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return None if length is None else same_padding(length, size, stride, dilation)
    return padding[0], padding[1]  # type: ignore[index]


def window_output(
    length: int | None, size: int, stride: int, dilation: int, padding: str | tuple[int, int]
) -> int | None:
    """Output length of a sliding window (convolution or pooling) on one side.

    Raises :class:`SizeError` when the result would be below 1.

    >>> window_output(5, 3, 1, 1, "valid")
    3
    >>> window_output(None, 3, 1, 1, "valid") is None
    True
    >>> window_output(2, 3, 1, 1, "valid")
    Traceback (most recent call last):
    ...
    netspec.core.shapes.SizeError: floor((2 + 0 + 0 - 1*(3-1) - 1) / 1) + 1 = 0
    """
    if length is None:
        return None
    if padding == "same":
        return -(-length // stride)
    begin, end = window_pads(length, size, stride, dilation, padding)  # type: ignore[misc]
    numerator = length + begin + end - dilation * (size - 1) - 1
    out = numerator // stride + 1
    if out < 1:
        raise SizeError(
            f"floor(({length} + {begin} + {end} - {dilation}*({size}-1) - 1) / {stride}) + 1 = {out}", out
        )
    return out


def dropped_cells(
    length: int | None, size: int, stride: int, dilation: int, padding: str | tuple[int, int]
) -> int:
    """How many trailing input cells a window never reaches (0 for ``'same'``).

    >>> dropped_cells(6, 3, 2, 1, "valid")
    1
    >>> dropped_cells(7, 3, 2, 1, "valid")
    0
    """
    if length is None or padding == "same":
        return 0
    begin, end = window_pads(length, size, stride, dilation, padding)  # type: ignore[misc]
    numerator = length + begin + end - effective_window(size, dilation)
    return max(numerator, 0) % stride if numerator >= 0 else 0


def channel_axis(data_format: str, rank: int = 3) -> int:
    """Index of the channel axis in a shape without the batch axis.

    >>> channel_axis("channels_last"), channel_axis("channels_first")
    (2, 0)
    """
    return rank - 1 if data_format == "channels_last" else 0


def spatial_axes(data_format: str, rank: int = 3) -> tuple[int, ...]:
    """Indices of the spatial axes in a shape without the batch axis.

    >>> spatial_axes("channels_last"), spatial_axes("channels_first")
    ((0, 1), (1, 2))
    """
    return tuple(range(rank - 1)) if data_format == "channels_last" else tuple(range(1, rank))
