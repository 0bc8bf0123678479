"""FLOPs: each layer's floating-point operations, and the totals by op type.

One definition, in each op's :class:`~netspec.core.ops.OpDef` (``flops``):
a multiply-accumulate is 2 FLOPs, a bias add 1 per output value, an
activation :data:`~netspec.core.ops.ACTIVATION_FLOPS` per value, pooling its
comparisons or additions (and the average's division), batchnorm a multiply
and an add per value, a merge of k tensors k-1 per output value; padding,
reshapes, concatenation and dropout move data and count 0.  An op without a
rule is an error, never a silent zero.

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source("network n {\\n input x: [4]\\n dense(2, activation='relu')\\n}\\n").networks[0]
>>> layer_flops(net), flops_by_op(net)
({'dense': 20}, {'dense': 20})
"""

from __future__ import annotations

from ..core.check import NetworkReport
from ..core.ops import OPS

__all__ = ["MissingFlopsRule", "flops_by_op", "layer_flops", "total_flops"]


class MissingFlopsRule(LookupError):
    """An op in the network has no FLOPs rule in its OpDef."""


def layer_flops(net: NetworkReport) -> dict[str, int | None]:
    """FLOPs per sample of every checked layer (None when a size is unknown)."""
    graph = net.graph
    shapes = {}
    if graph is not None:
        shapes = {inp.name: inp.shape for inp in graph.inputs}
    shapes.update({name: info.shape for name, info in net.layers.items()})
    out: dict[str, int | None] = {}
    nodes = graph.nodes if graph is not None else ()
    for node in nodes:
        info = net.layers.get(node.name)
        if info is None:
            continue
        rule = OPS[node.op].flops
        if rule is None:
            raise MissingFlopsRule(f"op {node.op!r} has no FLOPs rule (OpDef.flops)")
        ins = [shapes[t] for t in node.inputs]
        try:
            out[node.name] = rule(node.attrs, ins, info.shape, info.macs)  # type: ignore[arg-type]
        except TypeError:  # a size that is not a plain number (symbolic): unknown
            out[node.name] = None
    return out


def total_flops(net: NetworkReport, per_layer: dict[str, int | None] | None = None) -> int | None:
    """All FLOPs per sample, or None if a layer's count is unknown.

    >>> from netspec.frontend.elaborate import check_source
    >>> total_flops(check_source("network n {\\n input x: [4]\\n dense(2)\\n}\\n").networks[0])
    18
    """
    values = list((per_layer if per_layer is not None else layer_flops(net)).values())
    if any(v is None for v in values):
        return None
    return sum(values)  # type: ignore[arg-type]


def flops_by_op(net: NetworkReport, per_layer: dict[str, int | None] | None = None) -> dict[str, int | None]:
    """FLOPs per sample summed by op type, largest first (None for an op with an unknown count)."""
    per_layer = per_layer if per_layer is not None else layer_flops(net)
    graph = net.graph
    totals: dict[str, int | None] = {}
    for node in graph.nodes if graph is not None else ():
        if node.name not in per_layer:
            continue
        value, prev = per_layer[node.name], totals.get(node.op, 0)
        totals[node.op] = None if value is None or prev is None else prev + value
    return dict(sorted(totals.items(), key=lambda kv: (-(kv[1] or 0), kv[0])))
