"""Formatting check results: the table and the JSON report.

>>> from netspec.frontend.elaborate import check_source
>>> r = check_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n", "n.net")
>>> print(format_table(r.networks[0]))
network n  (input x: (None, 4), channels_last)
<BLANKLINE>
layer  op     output shape  params  MACs  FLOPs  RF
-----  -----  ------------  ------  ----  -----  --
x      input  (None, 4)          0     0      0  -
dense  dense  (None, 2)         10     8     18  -
<BLANKLINE>
params:            10 (trainable 10, non-trainable 0)
MACs:              8 per sample
FLOPs:             18 per sample (dense 100.0%)
weight memory:     40 B (float32)
activation memory: 8 B peak at batch 1 (float32, at dense)
>>> to_json(r)["networks"][0]["params"]
{'total': 10, 'trainable': 10, 'non_trainable': 0}
"""

from __future__ import annotations

from typing import Any

from ..core.check import NetworkReport
from ..core.ir import Shape
from ..frontend.elaborate import FileReport
from .flops import layer_flops
from .fold import fold_rows
from .summary import AnalysisOptions, analysis_json, flops_lines, memory_lines

__all__ = ["format_bytes", "format_shape", "format_summary", "format_table", "to_json"]


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
    return "x".join(str(r) for r in rf)


def _num(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _shape(net: NetworkReport, name: str, shape: Any) -> Any:
    """A tensor's shape, with the symbolic pass's formulas where it has them."""
    sym = net.symbolic
    if sym is not None and sym.shapes.get(name) is not None:
        from ..core.symbolic import shown

        return tuple(shown(d) for d in sym.shapes[name])
    return shape


def format_table(net: NetworkReport, options: AnalysisOptions | None = None) -> str:
    """One network as a table of layers and its totals.

    ``options`` sets the batch size, dtype and training mode of the memory
    totals and the ``depth`` at which block calls fold into one row.

    A network with several inputs or outputs names them all in its header:

    >>> from netspec.frontend.elaborate import check_source
    >>> r = check_source("network n {\\n input a: [4]\\n input b: [3]\\n concat(a, b)\\n}\\n")
    >>> print(format_table(r.networks[0]).splitlines()[0])
    network n  (inputs a: (None, 4), b: (None, 3), channels_last; output concatenate: (None, 7))
    """
    graph = net.graph
    inputs = graph.inputs if graph is not None else ()
    head = _head(net)
    options = options or AnalysisOptions()
    flops = layer_flops(net)
    rows = [("layer", "op", "output shape", "params", "MACs", "FLOPs", "RF")]
    for i in inputs:
        first_rf = "x".join("1" * (len(i.shape) - 1)) if 2 <= len(i.shape) <= 4 else "-"
        rows.append((i.name, "input", format_shape(_shape(net, i.name, i.shape)), "0", "0", "0", first_rf))
    for row in fold_rows(net, options.depth, flops):
        rows.append((row.name, row.op, format_shape(_shape(net, row.name, row.shape)), _num(row.params),
                     _num(row.macs), _num(row.flops),
                     _rf(row.rf)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5}
    lines = [head, ""]
    for k, row in enumerate(rows):
        cells = [c.rjust(w) if i in right and k > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [""] + _totals(net, options, flops)
    return "\n".join(lines)


def _head(net: NetworkReport) -> str:
    """``network NAME  (input ...)``; with several inputs or outputs, every one with its shape."""
    inputs = net.graph.inputs if net.graph is not None else ()
    inp = inputs[0] if inputs else None
    head = f"network {net.name}"
    if len(inputs) == 1 and inp is not None and len(net.outputs) <= 1:
        head += f"  (input {inp.name}: {format_shape(_shape(net, inp.name, inp.shape))}, {inp.data_format})"
    elif inp is not None:
        shown = ", ".join(f"{i.name}: {format_shape(_shape(net, i.name, i.shape))}" for i in inputs)
        outs = ", ".join(f"{o}: {format_shape(_shape(net, o, s))}" for o, s in zip(net.outputs, net.output_shapes))
        head += (f"  ({'inputs' if len(inputs) > 1 else 'input'} {shown}, {inp.data_format}; "
                 f"{'outputs' if len(net.outputs) > 1 else 'output'} {outs})")
    return head


def _totals(net: NetworkReport, options: AnalysisOptions | None = None,
            flops: dict[str, int | None] | None = None) -> list[str]:
    options = options or AnalysisOptions()
    flops = layer_flops(net) if flops is None else flops
    trainable, non_trainable = net.params
    lines = [
        f"params:            {net.total_params:,} (trainable {trainable:,}, non-trainable {non_trainable:,})",
        f"MACs:              {_num(net.macs)} per sample",
        *flops_lines(net, flops),
        *memory_lines(net, options),
    ]
    if net.symbolic is not None:
        lines += net.symbolic.valid_text()
    return lines


def format_summary(net: NetworkReport, options: AnalysisOptions | None = None) -> str:
    """One network's totals without the table of layers (``netspec check --summary``).

    >>> from netspec.frontend.elaborate import check_source
    >>> print(format_summary(check_source("network n {\\n  input x: [4]\\n  dense(2)\\n}\\n").networks[0]))
    network n  (input x: (None, 4), channels_last)
    layers:            1
    params:            10 (trainable 10, non-trainable 0)
    MACs:              8 per sample
    FLOPs:             18 per sample (dense 100.0%)
    weight memory:     40 B (float32)
    activation memory: 8 B peak at batch 1 (float32, at dense)
    """
    count = len(net.graph.nodes) if net.graph is not None else len(net.layers)
    return "\n".join([_head(net), f"layers:            {count:,}"] + _totals(net, options))


def _json_shape(shape: Shape | None) -> list | None:
    """A shape with its batch axis (null); a symbolic size is its formula, a string."""
    return None if shape is None else [None, *shape]


def network_json(net: NetworkReport, options: AnalysisOptions | None = None) -> dict:
    """One network as the JSON report's ``networks`` entry."""
    layers = []
    graph = net.graph
    flops = layer_flops(net)
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
            "flops": flops.get(node.name),
            "block": list(node.block),
            "receptive_field": list(rf) if isinstance(rf, tuple) else rf,
            "file": node.span.file if node.span else None,
            "line": node.span.line if node.span else None,
            "column": node.span.column if node.span else None,
        })
    trainable, non_trainable = net.params
    ok = net.ok
    # A network with errors has no totals: null, so that "not computed" never reads as zero.
    first_in = net.inputs[0].name if net.inputs else ""
    first_out = net.outputs[0] if net.outputs else ""
    result = {
        "name": net.name,
        "ok": ok,
        "input_shape": _json_shape(_shape(net, first_in, net.input_shape)),
        "output_shape": _json_shape(_shape(net, first_out, net.output_shape)) if ok else None,
        "inputs": [{"name": i.name, "shape": _json_shape(_shape(net, i.name, i.shape))} for i in net.inputs],
        "outputs": [{"name": o, "shape": _json_shape(_shape(net, o, s)) if ok else None}
                    for o, s in zip(net.outputs, net.output_shapes)] if ok else [],
        "data_format": graph.input.data_format if graph is not None else None,
        "params": {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}
        if ok else None,
        "macs": net.macs if ok else None,
        "weight_bytes": net.weight_bytes if ok else None,
        "activation_bytes": net.activation_bytes if ok else None,
        **analysis_json(net, options or AnalysisOptions(), flops),
        "layers": layers,
    }
    if net.symbolic is not None:
        result["symbols"] = list(net.symbolic.symbols)
        result["valid_sizes"] = net.symbolic.valid_sizes() if ok else None
    return result


def to_json(report: FileReport, networks: list[NetworkReport] | None = None, strict: bool = False,
            options: AnalysisOptions | None = None) -> dict:
    """The whole JSON report, as the contract gives it.

    ``"ok"`` (for the file and for each network) says whether ``check``
    passes: with ``strict``, a warning fails as it does in the exit status.

    >>> from netspec.frontend.elaborate import check_source
    >>> r = check_source("network n {\\n  input x: [5, 5, 1]\\n  conv2d(1, 2)\\n}\\n")
    >>> to_json(r)["ok"], to_json(r, strict=True)["ok"], to_json(r, strict=True)["networks"][0]["ok"]
    (True, False, False)
    """
    nets = list(report.networks) if networks is None else networks
    diags = list(report.diagnostics) + [d for n in nets for d in n.diagnostics]
    entries = [network_json(n, options) for n in nets]
    if strict:
        for entry, net in zip(entries, nets):
            if any(not d.is_error for d in net.diagnostics):
                entry["ok"] = False
    failed = any(d.is_error or strict for d in diags)
    return {"ok": not failed, "networks": entries, "diagnostics": [d.to_json() for d in diags]}
