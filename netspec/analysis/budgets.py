"""Budgets: ``check --max-params 5M --max-macs 1G --max-memory 2GiB``.

A figure over its budget is an error at the network's name, naming the
figure, the budget, and the layers that contribute most (each as a note
at its own line).

>>> parse_count("5M"), parse_count("1.5G"), parse_count("250_000")
(5000000, 1500000000, 250000)
>>> parse_bytes("2GiB"), parse_bytes("512MB"), parse_bytes("100")
(2147483648, 512000000, 100)
>>> from netspec.frontend.elaborate import check_source
>>> net = check_source("network n {\\n input x: [100]\\n dense(100, name='big')\\n dense(2)\\n}\\n").networks[0]
>>> [d.code for d in check_budgets(net, Budgets(params=1000))]
['E504']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, Note
from .memory import MemoryEstimate
from .report import format_bytes

__all__ = ["Budgets", "check_budgets", "parse_bytes", "parse_count"]

_COUNT = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BYTES = {"": 1, "B": 1, "K": 10**3, "KB": 10**3, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9,
          "T": 10**12, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_NUMBER = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")
#: How many contributing layers a budget error names.
TOP = 5


def _parse(text: str, units: dict[str, int], what: str) -> int:
    m = _NUMBER.match(text)
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in units:
        raise ValueError(f"{text!r} is not a {what} (e.g. {'2GiB, 512MB' if units is _BYTES else '5M, 1.5G, 250000'})")
    value = float(m.group(1).replace("_", "")) * units[unit]
    if value < 0 or value != value or value > 2**63:
        raise ValueError(f"{text!r} is out of range")
    return int(round(value))


def parse_count(text: str) -> int:
    """A count with an optional SI suffix (K, M, G, T: powers of 1000)."""
    return _parse(text, _COUNT, "count")


def parse_bytes(text: str) -> int:
    """A size in bytes: B, KB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB (powers of 1024)."""
    return _parse(text, _BYTES, "size in bytes")


@dataclass(frozen=True, slots=True)
class Budgets:
    """The limits ``check`` was given (None: no limit), as written and as numbers."""

    params: int | None = None
    macs: int | None = None
    memory: int | None = None
    params_text: str = ""
    macs_text: str = ""
    memory_text: str = ""

    @property
    def any(self) -> bool:
        """Whether any budget is set."""
        return self.params is not None or self.macs is not None or self.memory is not None


def _notes(net: NetworkReport, items: list[tuple[str, int]], total: int, show) -> list[Note]:
    graph = net.graph
    spans = {n.name: n.span for n in graph.nodes} if graph is not None else {}
    notes = []
    for name, value in sorted(items, key=lambda kv: -kv[1])[:TOP]:
        share = f" ({100 * value / total:.1f}%)" if total else ""
        notes.append(Note(f"{name}: {show(value)}{share}", spans.get(name)))
    return notes


def check_budgets(net: NetworkReport, budgets: Budgets, memory: MemoryEstimate | None = None) -> list[Diagnostic]:
    """An error for each figure of ``net`` over its budget (E504 params, E505 MACs, E506 memory).

    A budget on a figure that depends on unknown sizes is a W119 warning instead.
    """
    out: list[Diagnostic] = []
    if not net.ok:
        return out
    span = net.span
    if budgets.params is not None and net.total_params > budgets.params:
        items = [(k, v.params) for k, v in net.layers.items() if v.params]
        out.append(Diagnostic.error(
            "E504", f"network {net.name!r} has {net.total_params:,} parameters, over the budget "
            f"--max-params {budgets.params_text or budgets.params} ({budgets.params:,}); the largest layers:",
            span, _notes(net, items, net.total_params, lambda v: f"{v:,} parameters")))
    macs = net.macs
    unknown = []
    if budgets.macs is not None and macs is None:
        unknown.append(f"--max-macs {budgets.macs_text or budgets.macs}")
    if budgets.memory is not None and (memory is None or memory.total is None):
        unknown.append(f"--max-memory {budgets.memory_text or budgets.memory}")
    if unknown:
        out.append(Diagnostic.warning(
            "W119", f"network {net.name!r}: {' and '.join(unknown)} cannot be checked: the figure depends on sizes "
            "that are not known (give --input-shape to check at concrete sizes)", span))
    if budgets.macs is not None and macs is not None and macs > budgets.macs:
        items = [(k, v.macs) for k, v in net.layers.items() if v.macs]
        out.append(Diagnostic.error(
            "E505", f"network {net.name!r} does {macs:,} MACs per sample, over the budget "
            f"--max-macs {budgets.macs_text or budgets.macs} ({budgets.macs:,}); the layers doing most:",
            span, _notes(net, items, macs, lambda v: f"{v:,} MACs")))  # type: ignore[arg-type]
    if budgets.memory is not None and memory is not None and memory.total is not None \
            and memory.total > budgets.memory:
        what = ("inference: weights + peak activations + workspace" if memory.training == "none"
                else f"training with {memory.training}: weights + gradients + optimizer state + kept activations")
        if memory.training == "none":
            items = [*memory.live_at_peak, ("weights", memory.weight_bytes)]
        else:
            from .memory import layer_output_bytes

            items = [(k, v) for k, v in layer_output_bytes(net, memory.batch_size, memory.dtype).items() if v]
        out.append(Diagnostic.error(
            "E506", f"network {net.name!r} needs {format_bytes(memory.total)} at batch {memory.batch_size} "
            f"({memory.dtype}, {what}), over the budget --max-memory {budgets.memory_text or budgets.memory}; "
            + ("the tensors live at the peak (at " + str(memory.peak_at) + "):" if memory.training == "none"
               else "the largest kept activations:"),
            span, _notes(net, items, memory.total, format_bytes)))
    return out
