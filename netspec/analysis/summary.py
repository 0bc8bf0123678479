"""The analysis parts of ``check``'s table totals and JSON: FLOPs, memory, block folding.

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source("network n {\\n input x: [4]\\n dense(2, activation='relu')\\n}\\n").networks[0]
>>> print("\\n".join(flops_lines(net)))
FLOPs:             20 per sample (dense 100.0%)
>>> print("\\n".join(memory_lines(net, AnalysisOptions(batch_size=8, training="adam"))))
weight memory:     40 B (float32)
activation memory: 64 B peak at batch 8 (float32, at dense)
training memory:   352 B (adam: weights 40 B + gradients 40 B + optimizer state 80 B + kept activations 192 B)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.check import NetworkReport
from .flops import flops_by_op, layer_flops, total_flops
from .fold import fold_rows
from .memory import MemoryEstimate, estimate_memory

__all__ = ["AnalysisOptions", "analysis_json", "flops_lines", "memory_lines", "network_memory"]


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """What ``check`` was asked for: memory at a batch size, dtype and training mode; folding depth.

    >>> AnalysisOptions().batch_size, AnalysisOptions().dtype, AnalysisOptions().depth
    (1, 'float32', None)
    """

    batch_size: int = 1
    dtype: str = "float32"
    training: str = "none"
    depth: int | None = None


def network_memory(net: NetworkReport, options: AnalysisOptions) -> MemoryEstimate | None:
    """The memory estimate for a network without errors (None for one with errors)."""
    if not net.ok:
        return None
    return estimate_memory(net, options.batch_size, options.dtype, options.training)


def _bytes(n: int | None) -> str:
    from .report import format_bytes

    return format_bytes(n)


def flops_lines(net: NetworkReport, per_layer: dict[str, int | None] | None = None) -> list[str]:
    """The table's FLOPs total, with its share by op type."""
    per_layer = per_layer if per_layer is not None else layer_flops(net)
    total = total_flops(net, per_layer)
    if total is None:
        return ["FLOPs:             ? per sample"]
    parts = [f"{op} {100 * (v or 0) / total:.1f}%" for op, v in flops_by_op(net, per_layer).items() if v] if total else []
    return [f"FLOPs:             {total:,} per sample" + (f" ({', '.join(parts)})" if parts else "")]


def memory_lines(net: NetworkReport, options: AnalysisOptions) -> list[str]:
    """The table's memory totals: weights, peak activations, and training memory when asked for."""
    m = network_memory(net, options)
    if m is None:
        return []
    lines = [f"weight memory:     {_bytes(m.weight_bytes)} ({m.dtype})"]
    if m.activation_peak is None:
        lines.append(f"activation memory: unknown (a size is unknown) ({m.dtype})")
    else:
        lines.append(f"activation memory: {_bytes(m.activation_peak)} peak at batch {m.batch_size} "
                     f"({m.dtype}, at {m.peak_at})")
    if m.training != "none":
        kept = _bytes(m.kept_activations)
        lines.append(f"training memory:   {_bytes(m.total)} ({m.training}: weights {_bytes(m.weight_bytes)} + "
                     f"gradients {_bytes(m.gradient_bytes)} + optimizer state {_bytes(m.optimizer_bytes)} + "
                     f"kept activations {kept})")
    return lines


def analysis_json(net: NetworkReport, options: AnalysisOptions,
                  per_layer: dict[str, int | None] | None = None) -> dict[str, Any]:
    """The JSON report's ``flops``, ``flops_by_op``, ``memory`` and (with a depth) ``blocks`` fields."""
    if not net.ok:
        return {"flops": None, "flops_by_op": None, "memory": None}
    per_layer = per_layer if per_layer is not None else layer_flops(net)
    m = network_memory(net, options)
    out: dict[str, Any] = {
        "flops": total_flops(net, per_layer),
        "flops_by_op": flops_by_op(net, per_layer),
        "memory": m.to_json() if m is not None else None,
    }
    if options.depth is not None:
        out["blocks"] = [
            {"path": list(r.path), "name": r.name, "layers": list(r.layers),
             "output_shape": None if r.shape is None else [None, *r.shape],
             "params": r.params, "macs": r.macs, "flops": r.flops}
            for r in fold_rows(net, options.depth, per_layer) if r.is_block]
    return out
