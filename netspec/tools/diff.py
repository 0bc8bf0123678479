"""``netspec diff``: what changed between two networks, layer by layer, for code review.

Layers are matched by name.  A layer in both is listed when its op, output
shape, parameters, MACs, FLOPs or output memory changed; layers only in the
old network are ``removed``, only in the new one ``added``.  The totals
(parameters, MACs, FLOPs, weight memory, peak activation memory) follow.

>>> import netspec
>>> a = netspec.load_source("network n {\\n input x: [8]\\n dense(4, name='h')\\n dense(2, name='o')\\n}\\n")
>>> b = netspec.load_source("network n {\\n input x: [8]\\n dense(6, name='h')\\n dense(2, name='o')\\n}\\n")
>>> d = diff_networks(a, b)
>>> [(c.name, c.kind, c.fields) for c in d.changes]
[('h', 'changed', ('output_shape', 'params', 'macs', 'flops', 'memory')), ('o', 'changed', ('params', 'macs', 'flops'))]
>>> d.totals["params"]
(46, 68)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis.flops import layer_flops, total_flops
from ..analysis.memory import estimate_memory, layer_output_bytes
from ..analysis.report import format_bytes, format_shape
from ..core.check import NetworkReport

__all__ = ["LayerChange", "NetworkDiff", "diff_json", "diff_networks", "format_diff"]

_FIELDS = ("op", "output_shape", "params", "macs", "flops", "memory")


@dataclass(frozen=True, slots=True)
class LayerChange:
    """One layer that differs: ``kind`` is 'changed', 'added' or 'removed'; ``old``/``new`` hold its figures."""

    name: str
    kind: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkDiff:
    """Two networks' differences: the layers that changed and every total, as (old, new)."""

    old_name: str
    new_name: str
    changes: list[LayerChange]
    unchanged: int
    totals: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    batch_size: int = 1
    dtype: str = "float32"

    @property
    def same(self) -> bool:
        """True when no layer and no total changed."""
        return not self.changes and all(a == b for a, b in self.totals.values())


def _figures(net: NetworkReport, batch_size: int, dtype: str) -> dict[str, dict[str, Any]]:
    flops = layer_flops(net)
    memory = layer_output_bytes(net, batch_size, dtype)
    out = {}
    for node in net.graph.nodes if net.graph is not None else ():
        info = net.layers[node.name]
        out[node.name] = {"op": node.op, "output_shape": info.shape, "params": info.params, "macs": info.macs,
                          "flops": flops.get(node.name), "memory": memory.get(node.name)}
    return out


def _totals(net: NetworkReport, batch_size: int, dtype: str) -> dict[str, Any]:
    m = estimate_memory(net, batch_size, dtype)
    return {"params": net.total_params, "macs": net.macs, "flops": total_flops(net),
            "weight_memory": m.weight_bytes, "activation_peak": m.activation_peak}


def diff_networks(old: NetworkReport, new: NetworkReport, batch_size: int = 1, dtype: str = "float32"
                  ) -> NetworkDiff:
    """The differences from ``old`` to ``new`` (both checked without errors)."""
    old.raise_for_errors()
    new.raise_for_errors()
    a, b = _figures(old, batch_size, dtype), _figures(new, batch_size, dtype)
    changes: list[LayerChange] = []
    unchanged = 0
    for name, fig in b.items():  # in the new network's order, removed layers where they were
        if name in a:
            changed = tuple(k for k in _FIELDS if a[name][k] != fig[k])
            if changed:
                changes.append(LayerChange(name, "changed", a[name], fig, changed))
            else:
                unchanged += 1
        else:
            changes.append(LayerChange(name, "added", None, fig, _FIELDS))
    order = {name: i for i, name in enumerate(a)}
    for name, fig in a.items():
        if name not in b:
            # after the last listed layer that came before it in the old network
            at = len(changes)
            for i, c in enumerate(changes):
                if c.old is not None and order.get(c.name, -1) > order[name]:
                    at = i
                    break
            changes.insert(at, LayerChange(name, "removed", fig, None, _FIELDS))
    ta, tb = _totals(old, batch_size, dtype), _totals(new, batch_size, dtype)
    return NetworkDiff(old.name, new.name, changes, unchanged, {k: (ta[k], tb[k]) for k in ta}, batch_size, dtype)


def _num(v: Any) -> str:
    return "?" if v is None else f"{v:,}"


def _show(key: str, v: Any) -> str:
    if key == "output_shape":
        return format_shape(v)
    if key in ("memory", "weight_memory", "activation_peak"):
        return format_bytes(v)
    if key == "op":
        return str(v)
    return _num(v)


def _delta(key: str, v: tuple[Any, Any]) -> str:
    a, b = v
    if not isinstance(a, int) or not isinstance(b, int) or a == 0 or a == b:
        return ""
    sign = "+" if b > a else "-"
    return f" ({sign}{_show(key, abs(b - a))}, {sign}{100 * abs(b - a) / a:.1f}%)"


def _cell(change: LayerChange, key: str) -> str:
    if change.kind == "added":
        return _show(key, change.new[key])  # type: ignore[index]
    if change.kind == "removed":
        return _show(key, change.old[key])  # type: ignore[index]
    a, b = change.old[key], change.new[key]  # type: ignore[index]
    return _show(key, b) if a == b else f"{_show(key, a)} -> {_show(key, b)}"


def format_diff(d: NetworkDiff, old_label: str = "", new_label: str = "") -> str:
    """The diff as a review-friendly table of changed layers and the totals."""
    head = f"--- {d.old_name}" + (f"  ({old_label})" if old_label else "")
    head2 = f"+++ {d.new_name}" + (f"  ({new_label})" if new_label else "")
    lines = [head, head2, ""]
    if d.changes:
        rows = [("", "layer", "op", "output shape", "params", "MACs", "FLOPs", f"memory (batch {d.batch_size})")]
        mark = {"changed": "~", "added": "+", "removed": "-"}
        for c in d.changes:
            rows.append((mark[c.kind], c.name, *(_cell(c, k) for k in _FIELDS)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for k, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if k == 0:
                lines.append("  ".join(("-" if i else " ") * w for i, w in enumerate(widths)).rstrip())
        lines.append("")
    lines.append(f"{len(d.changes)} layer(s) differ ({sum(c.kind == 'added' for c in d.changes)} added, "
                 f"{sum(c.kind == 'removed' for c in d.changes)} removed, "
                 f"{sum(c.kind == 'changed' for c in d.changes)} changed); {d.unchanged} unchanged")
    labels = {"params": "params", "macs": "MACs", "flops": "FLOPs", "weight_memory": "weight memory",
              "activation_peak": f"peak activation memory (batch {d.batch_size}, {d.dtype})"}
    for key, label in labels.items():
        a, b = d.totals[key]
        text = _show(key, a) if a == b else f"{_show(key, a)} -> {_show(key, b)}{_delta(key, (a, b))}"
        lines.append(f"{label + ':':<{max(len(x) for x in labels.values()) + 2}}{text}")
    return "\n".join(lines)


def _json_fig(fig: dict[str, Any] | None) -> dict[str, Any] | None:
    if fig is None:
        return None
    out = dict(fig)
    out["output_shape"] = None if fig["output_shape"] is None else [None, *fig["output_shape"]]
    return out


def diff_json(d: NetworkDiff) -> dict[str, Any]:
    """The diff as JSON: ``changes`` (name, kind, fields, old, new), ``unchanged`` and ``totals``."""
    return {
        "old": d.old_name,
        "new": d.new_name,
        "batch_size": d.batch_size,
        "dtype": d.dtype,
        "same": d.same,
        "changes": [{"name": c.name, "kind": c.kind, "fields": list(c.fields), "old": _json_fig(c.old),
                     "new": _json_fig(c.new)} for c in d.changes],
        "unchanged": d.unchanged,
        "totals": {k: {"old": a, "new": b} for k, (a, b) in d.totals.items()},
    }
