"""Folding a network's layers by block call, as ``check --depth N`` shows them.

Every node records the block calls that made it (``Node.block``, outermost
first, each ``NAME_K`` for the K-th call of block NAME within its caller).
At depth N the layers made inside a call nested N+1 deep or deeper fold
into one row per call at depth N+1: depth 0 shows each top-level block
call as one row, depth 1 opens those calls one level, and so on.

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source('''
... block two(n) {
...   dense(n)
...   dense(n)
... }
... network n {
...   input x: [4]
...   two(3)
...   two(2)
...   dense(1)
... }''').networks[0]
>>> [(r.name, r.op, r.params) for r in fold_rows(net, 0)]
[('two_1', 'block two', 27), ('two_2', 'block two', 14), ('dense_4', 'dense', 3)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.check import NetworkReport
from ..core.ir import Shape

__all__ = ["Row", "block_name", "fold_rows"]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a folded table: a layer, or a block call with the totals of its layers."""

    name: str
    op: str
    shape: Shape | None
    params: int
    macs: int | None
    flops: int | None
    rf: Any
    layers: tuple[str, ...]
    path: tuple[str, ...] = ()

    @property
    def is_block(self) -> bool:
        """True for a folded block call."""
        return len(self.layers) != 1 or self.op.startswith("block ")


def block_name(label: str) -> str:
    """The block's name in a path label ``NAME_K``.

    >>> block_name("bottleneck_12")
    'bottleneck'
    """
    return label.rsplit("_", 1)[0]


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b


def fold_rows(net: NetworkReport, depth: int | None, flops: dict[str, int | None] | None = None) -> list[Row]:
    """The network's rows with block calls deeper than ``depth`` folded (``None``: every layer)."""
    graph = net.graph
    flops = flops or {}
    rows: list[Row] = []
    open_path: tuple[str, ...] | None = None
    for node in graph.nodes if graph is not None else ():
        info = net.layers[node.name]
        path = tuple(node.block)
        f = flops.get(node.name)
        if depth is None or len(path) <= depth:
            rows.append(Row(node.name, node.op, info.shape, info.params, info.macs, f, info.receptive_field,
                            (node.name,), path))
            open_path = None
            continue
        key = path[:depth + 1]
        if open_path == key:
            last = rows[-1]
            rows[-1] = Row(last.name, last.op, info.shape, last.params + info.params, _add(last.macs, info.macs),
                           _add(last.flops, f), info.receptive_field, (*last.layers, node.name), key)
        else:
            rows.append(Row("/".join(key), "block " + block_name(key[-1]), info.shape, info.params, info.macs, f,
                            info.receptive_field, (node.name,), key))
            open_path = key
    return rows
