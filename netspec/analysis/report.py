"""Formatting check results: the table and the JSON report.

>>> from netspec.frontend.elaborate import check_source
>>> r = check_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n", "n.net")
>>> print(format_table(r.networks[0]))
network n  (input x: (None, 4), channels_last)
<BLANKLINE>
layer  op     output shape  params  MACs  RF
-----  -----  ------------  ------  ----  --
x      input  (None, 4)          0     0  -
dense  dense  (None, 2)         10     8  -
<BLANKLINE>
params:            10 (trainable 10, non-trainable 0)
MACs:              8 per sample
weight memory:     40 B (float32)
activation memory: 24 B per sample (float32)
>>> to_json(r)["networks"][0]["params"]
{'total': 10, 'trainable': 10, 'non_trainable': 0}
"""

from __future__ import annotations

from typing import Any

from ..core.check import NetworkReport
from ..core.ir import Shape
from ..frontend.elaborate import FileReport

__all__ = ["format_bytes", "format_shape", "format_table", "to_json"]


def format_shape(shape: Shape | None) -> str:
    """A shape with its batch axis, as Keras prints it.

    >>> format_shape((28, 28, None))
    '(None, 28, 28, None)'
    """
    if shape is None:
        return "?"
    return "(" + ", ".join(["None"] + ["None" if d is None else str(d) for d in shape]) + ")"


def format_bytes(n: int | None) -> str:
    """Bytes in a human unit.

    >>> format_bytes(1536), format_bytes(553_467_096)
    ('1.50 KiB', '527.83 MiB')
    """
    if n is None:
        return "unknown"
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.2f} {unit}"


def _rf(rf: Any) -> str:
    if rf is None:
        return "-"
    if rf == "global":
        return "global"
    return f"{rf[0]}x{rf[1]}"


def _num(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _shape(net: NetworkReport, name: str, shape: Any) -> Any:
    """A tensor's shape, with the symbolic pass's formulas where it has them."""
    sym = net.symbolic
    if sym is not None and sym.shapes.get(name) is not None:
        from ..core.symbolic import shown

        return tuple(shown(d) for d in sym.shapes[name])
    return shape


def format_table(net: NetworkReport) -> str:
    """One network as a table of layers and its totals."""
    graph = net.graph
    inp = graph.input if graph is not None else None
    head = f"network {net.name}"
    if inp is not None:
        head += f"  (input {inp.name}: {format_shape(_shape(net, inp.name, inp.shape))}, {inp.data_format})"
    rows = [("layer", "op", "output shape", "params", "MACs", "RF")]
    if inp is not None:
        first_rf = "1x1" if len(inp.shape) == 3 else "-"
        rows.append((inp.name, "input", format_shape(_shape(net, inp.name, inp.shape)), "0", "0", first_rf))
    nodes = graph.nodes if graph is not None else ()
    for node in nodes:
        info = net.layers[node.name]
        rows.append((node.name, node.op, format_shape(_shape(net, node.name, info.shape)), _num(info.params),
                     _num(info.macs), _rf(info.receptive_field)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {3, 4}
    lines = [head, ""]
    for k, row in enumerate(rows):
        cells = [c.rjust(w) if i in right and k > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    trainable, non_trainable = net.params
    lines += [
        "",
        f"params:            {net.total_params:,} (trainable {trainable:,}, non-trainable {non_trainable:,})",
        f"MACs:              {_num(net.macs)} per sample",
        f"weight memory:     {format_bytes(net.weight_bytes)} (float32)",
        f"activation memory: {format_bytes(net.activation_bytes)} per sample (float32)",
    ]
    if net.symbolic is not None:
        lines += net.symbolic.valid_text()
    return "\n".join(lines)


def _json_shape(shape: Any) -> list | None:
    """A shape with its batch axis (null); a symbolic size is its formula as a string."""
    if shape is None:
        return None
    return [None, *shape]


def network_json(net: NetworkReport) -> dict:
    """One network as the JSON report's ``networks`` entry."""
    layers = []
    graph = net.graph
    for node in graph.nodes if graph is not None else ():
        info = net.layers[node.name]
        rf = info.receptive_field
        layers.append({
            "name": node.name,
            "op": node.op,
            "inputs": list(node.inputs),
            "output_shape": _json_shape(_shape(net, node.name, info.shape)),
            "params": info.params,
            "trainable_params": info.trainable,
            "non_trainable_params": info.non_trainable,
            "macs": info.macs,
            "receptive_field": list(rf) if isinstance(rf, tuple) else rf,
            "file": node.span.file if node.span else None,
            "line": node.span.line if node.span else None,
            "column": node.span.column if node.span else None,
        })
    trainable, non_trainable = net.params
    ok = net.ok
    # A network with errors has no totals: null, so that "not computed" never reads as zero.
    out_name = graph.output if graph is not None else ""
    result = {
        "name": net.name,
        "ok": ok,
        "input_shape": _json_shape(_shape(net, graph.input.name, net.input_shape) if graph is not None
                                   else net.input_shape),
        "output_shape": _json_shape(_shape(net, out_name, net.output_shape)) if ok else None,
        "data_format": graph.input.data_format if graph is not None else None,
        "params": {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}
        if ok else None,
        "macs": net.macs if ok else None,
        "weight_bytes": net.weight_bytes if ok else None,
        "activation_bytes": net.activation_bytes if ok else None,
        "layers": layers,
    }
    if net.symbolic is not None:
        result["symbols"] = list(net.symbolic.symbols)
        result["valid_sizes"] = net.symbolic.valid_sizes() if ok else None
    return result


def to_json(report: FileReport, networks: list[NetworkReport] | None = None) -> dict:
    """The whole JSON report, as the contract gives it."""
    nets = list(report.networks) if networks is None else networks
    diags = list(report.diagnostics) + [d for n in nets for d in n.diagnostics]
    return {"networks": [network_json(n) for n in nets], "diagnostics": [d.to_json() for d in diags]}
