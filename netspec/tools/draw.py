"""``netspec draw``: a picture of a network as SVG, HTML or Graphviz DOT, in pure Python.

Layers are boxes (name and op), edges carry the tensor's shape, and block
calls are rounded frames around their layers; with ``depth`` the calls
nested deeper than that fold into one box each (as ``check --depth``).
The layout is layered (a small Sugiyama): each layer's rank is its
longest distance from an input, edges that skip ranks get invisible
waypoints, a few barycentre sweeps order each rank so that branches sit
side by side (a ResNet's shortcut beside its residual path, a U-Net's skip
connections down the side), and x positions follow the neighbours'
median with a minimum gap.  Nothing outside Python is needed to write it.

>>> import netspec
>>> net = netspec.load_source('''network n {
...   input x: [8, 8, 3]
...   a = conv2d(4, 3, padding='same', name='a')
...   b = a -> conv2d(4, 3, padding='same', name='b')
...   add(a, b, name='s')
... }''')
>>> layout = layout_network(net)
>>> [(n.id, n.rank) for n in layout.nodes]
[('x', 0), ('a', 1), ('b', 2), ('s', 3)]
>>> svg = to_svg(layout)
>>> svg.startswith('<svg') and 'id="node-s"' in svg and '8x8x4' in svg
True
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ..analysis.fold import block_name
from ..core.check import NetworkReport
from ..core.ir import Shape

__all__ = ["DrawEdge", "DrawNode", "Layout", "layout_network", "render", "to_dot", "to_html", "to_svg"]

NODE_H = 34
RANK_GAP = 36
X_GAP = 26
MARGIN = 24
CHAR_W = 7.0


@dataclass
class DrawNode:
    """A box in the picture: a layer, an input, or a folded block call (``dummy``: an edge's waypoint)."""

    id: str
    label: str
    sub: str
    kind: str
    clusters: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    rank: int = 0
    x: float = 0.0
    width: float = 0.0
    dummy: bool = False

    @property
    def y(self) -> float:
        """Top edge of the box."""
        return MARGIN + 22 + self.rank * (NODE_H + RANK_GAP)


@dataclass
class DrawEdge:
    """An edge from ``src`` to ``dst`` carrying a tensor of ``shape``, through ``points`` once laid out."""

    src: str
    dst: str
    shape: str
    tensor: str
    chain: list[str] = field(default_factory=list)


@dataclass
class Layout:
    """A laid-out picture: boxes, edges, block frames and the canvas size."""

    name: str
    nodes: list[DrawNode]
    edges: list[DrawEdge]
    dummies: dict[str, DrawNode]
    clusters: dict[str, tuple[float, float, float, float]]
    width: float = 0.0
    height: float = 0.0


def _shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


_KIND = {
    "conv2d": "conv", "depthwise_conv2d": "conv", "separable_conv2d": "conv", "dense": "dense",
    "maxpool2d": "pool", "avgpool2d": "pool", "global_avgpool2d": "pool", "global_maxpool2d": "pool",
    "batchnorm": "norm", "add": "merge", "multiply": "merge", "concat": "merge",
    "flatten": "shape", "reshape": "shape", "zeropad2d": "shape", "dropout": "shape",
}


def _kind(op: str) -> str:
    if "conv" in op:
        return "conv"
    if "pool" in op:
        return "pool"
    if "norm" in op:
        return "norm"
    return _KIND.get(op, "act")


def _display_graph(net: NetworkReport, depth: int | None) -> tuple[list[DrawNode], list[DrawEdge]]:
    graph = net.graph
    assert graph is not None
    nodes: dict[str, DrawNode] = {}
    owner: dict[str, str] = {}
    for inp in graph.inputs:
        nodes[inp.name] = DrawNode(inp.name, inp.name, "input", "input", (), (inp.name,))
        owner[inp.name] = inp.name
    for node in graph.nodes:
        path = tuple(node.block)
        if depth is None or len(path) <= depth:
            did = node.name
            nodes[did] = DrawNode(did, node.name, node.op, _kind(node.op), path, (node.name,))
        else:
            key = path[:depth + 1]
            did = "@" + "/".join(key)
            if did not in nodes:
                nodes[did] = DrawNode(did, key[-1], f"block {block_name(key[-1])}", "block", key[:-1], ())
            nodes[did].layers += (node.name,)
        owner[node.name] = did
    for d in nodes.values():
        if d.kind == "block":
            d.sub = f"block {block_name(d.label)} · {len(d.layers)} layers"
    shapes = {inp.name: inp.shape for inp in graph.inputs}
    shapes.update({k: v.shape for k, v in net.layers.items()})
    edges: list[DrawEdge] = []
    seen: set[tuple[str, str]] = set()
    for node in graph.nodes:
        dst = owner[node.name]
        for t in node.inputs:
            src = owner[t]
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            edges.append(DrawEdge(src, dst, _shape(shapes.get(t)), t))
    for n in nodes.values():
        n.width = max(len(n.label), len(n.sub)) * CHAR_W + 20
    return list(nodes.values()), edges


def _order(ranks: list[list[DrawNode]], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> None:
    """Barycentre sweeps: order each rank by the mean position of its neighbours in the rank before/after."""
    pos = {n.id: i for rank in ranks for i, n in enumerate(rank)}
    for sweep in range(6):
        down = sweep % 2 == 0
        seq = ranks[1:] if down else ranks[-2::-1]
        near = preds if down else succs
        for rank in seq:
            keys = {n.id: (sum(pos[m] for m in near[n.id]) / len(near[n.id]) if near[n.id] else pos[n.id])
                    for n in rank}
            rank.sort(key=lambda n: keys[n.id])
            for i, n in enumerate(rank):
                pos[n.id] = i


def _place(ranks: list[list[DrawNode]], preds: dict[str, list[str]], succs: dict[str, list[str]],
           by_id: dict[str, DrawNode]) -> None:
    """x positions (box centres): each box near the median of its neighbours, boxes at least X_GAP apart."""
    for rank in ranks:
        x = 0.0
        for n in rank:
            n.x = x + n.width / 2
            x += n.width + X_GAP
    for sweep in range(8):
        down = sweep % 2 == 0
        seq = ranks[1:] if down else ranks[-2::-1]
        for rank in seq:
            want = []
            for n in rank:
                nb = preds[n.id] if down else succs[n.id]
                xs = sorted(by_id[m].x for m in nb)
                if not xs:
                    want.append(n.x)
                elif len(xs) % 2:
                    want.append(xs[len(xs) // 2])
                else:
                    want.append((xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2)
            _pack(rank, want)
    low = min(n.x - n.width / 2 for rank in ranks for n in rank)
    for rank in ranks:
        for n in rank:
            n.x += MARGIN + 12 - low


def _pack(rank: list[DrawNode], want: list[float]) -> None:
    """Place a rank's boxes, in order and X_GAP apart, as near their wanted centres as they can be.

    Boxes that would overlap form a block placed at the mean of what its boxes want
    (pooling adjacent violators), so a pair of branches sits symmetrically under its parent.
    """
    blocks: list[list] = []  # [position of the first box's centre, [(node, offset, want)]]
    for n, w in zip(rank, want):
        cur = [w, [(n, 0.0, w)]]
        while blocks:
            prev = blocks[-1]
            last, last_off, _ = prev[1][-1]
            if prev[0] + last_off + last.width / 2 + X_GAP <= cur[0] - cur[1][0][0].width / 2:
                break
            blocks.pop()
            shift = last_off + (last.width + cur[1][0][0].width) / 2 + X_GAP
            members = prev[1] + [(m, off + shift, mw) for m, off, mw in cur[1]]
            cur = [sum(mw - off for _, off, mw in members) / len(members), members]
        blocks.append(cur)
    for pos, members in blocks:
        for n, off, _ in members:
            n.x = pos + off


def layout_network(net: NetworkReport, depth: int | None = None) -> Layout:
    """Lay out a checked network (block calls deeper than ``depth`` folded into one box)."""
    net.raise_for_errors()
    nodes, edges = _display_graph(net, depth)
    by_id = {n.id: n for n in nodes}
    preds: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in edges:
        preds[e.dst].append(e.src)
    for n in nodes:  # in dependency order: longest path from an input
        n.rank = max((by_id[p].rank + 1 for p in preds[n.id]), default=0)
    # Waypoints for edges that skip ranks.
    dummies: dict[str, DrawNode] = {}
    preds = {n.id: [] for n in nodes}
    succs: dict[str, list[str]] = {n.id: [] for n in nodes}
    for k, e in enumerate(edges):
        a, b = by_id[e.src], by_id[e.dst]
        chain = [e.src]
        for r in range(a.rank + 1, b.rank):
            d = DrawNode(f"~{k}~{r}", "", "", "dummy", (), (), r, 0.0, 8.0, True)
            dummies[d.id] = d
            by_id[d.id] = d
            preds[d.id], succs[d.id] = [], []
            chain.append(d.id)
        chain.append(e.dst)
        e.chain = chain
        for u, v in zip(chain, chain[1:]):
            succs[u].append(v)
            preds[v].append(u)
    ranks: list[list[DrawNode]] = [[] for _ in range(max(n.rank for n in by_id.values()) + 1)]
    for n in by_id.values():
        ranks[n.rank].append(n)
    _order(ranks, preds, succs)
    _place(ranks, preds, succs, by_id)
    clusters = _clusters(nodes)
    label_w = 6.0  # a 9-10px label character
    right = max([n.x + n.width / 2 for n in by_id.values()]
                + [max(c[2], c[0] + 6 + label_w * (len(k.rsplit("/", 1)[-1]) * 2 + 3)) for k, c in clusters.items()]
                + [by_id[e.dst].x + 4 + label_w * len(e.shape) for e in edges]
                + [by_id[e.chain[-2]].x + 4 + label_w * len(e.shape) for e in edges])
    bottom = max(n.y + NODE_H for n in nodes)
    return Layout(net.name, nodes, edges, dummies, clusters, right + MARGIN, bottom + MARGIN)


def _clusters(nodes: list[DrawNode]) -> dict[str, tuple[float, float, float, float]]:
    """Each block call's frame (x0, y0, x1, y1): around its boxes and the frames nested in it."""
    members: dict[tuple[str, ...], list[DrawNode]] = {}
    for n in nodes:
        for i in range(1, len(n.clusters) + 1):
            members.setdefault(n.clusters[:i], []).append(n)
    boxes: dict[str, tuple[float, float, float, float]] = {}
    for path in sorted(members, key=len, reverse=True):
        x0 = min(n.x - n.width / 2 for n in members[path]) - 8
        x1 = max(n.x + n.width / 2 for n in members[path]) + 8
        y0 = min(n.y for n in members[path]) - 8
        y1 = max(n.y + NODE_H for n in members[path]) + 16  # the title sits at the bottom of the frame
        for other, box in boxes.items():
            if other.startswith("/".join(path) + "/"):
                x0, y0 = min(x0, box[0] - 6), min(y0, box[1] - 5)
                x1, y1 = max(x1, box[2] + 6), max(y1, box[3] + 14)
        boxes["/".join(path)] = (x0, y0, x1, y1)
    return boxes


_STYLE = """
.node rect{stroke:#444;stroke-width:1}
.node text{font-size:12px;fill:#111}
.node text.op{font-size:10px;fill:#555}
.k-input rect{fill:#ffffff}.k-conv rect{fill:#cfe3ff}.k-dense rect{fill:#e3d5ff}.k-pool rect{fill:#d4f2d4}
.k-norm rect{fill:#eeeeee}.k-act rect{fill:#fff3c4}.k-merge rect{fill:#ffd9b3}.k-shape rect{fill:#f4f4f4}
.k-block rect{fill:#e8f1f8;stroke-dasharray:4 2}
.cluster rect{fill:#8aa4c8;fill-opacity:.07;stroke:#8aa4c8}
.cluster text{font-size:10px;fill:#4a6288}
.edge path{fill:none;stroke:#666;stroke-width:1.2}
.edge text{font-size:9px;fill:#a33}
"""


def _id(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def to_svg(layout: Layout) -> str:
    """The picture as a standalone SVG document (every box has ``id="node-NAME"`` and a ``<title>``)."""
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width:.0f}" height="{layout.height:.0f}" '
           f'viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" font-family="Helvetica, Arial, sans-serif">',
           f"<title>{esc(layout.name)}</title>",
           f"<style>{_STYLE}</style>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>',
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           f'<text x="{MARGIN}" y="{MARGIN}" font-size="14" font-weight="bold">network {esc(layout.name)}</text>']
    for path, (x0, y0, x1, y1) in sorted(layout.clusters.items(), key=lambda kv: kv[0].count("/")):
        label = path.rsplit("/", 1)[-1]
        out.append(f'<g class="cluster" id="block-{esc(_id(path))}"><title>{esc(path)}</title>'
                   f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="8"/>'
                   f'<text x="{x0 + 6:.1f}" y="{y1 - 5:.1f}">{esc(label)} ({esc(block_name(label))})</text></g>')
    by_id = {n.id: n for n in layout.nodes}
    by_id.update(layout.dummies)
    for e in layout.edges:
        pts = []
        for i, nid in enumerate(e.chain):
            n = by_id[nid]
            if i == 0:
                pts.append((n.x, n.y + NODE_H))
            elif i == len(e.chain) - 1:
                pts.append((n.x, n.y))
            else:
                pts.append((n.x, n.y))
                pts.append((n.x, n.y + NODE_H))
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        # The label sits on the last segment, just above the arrow head: edges that leave one box
        # together end at different boxes, so their labels do not overlap.
        (ax, ay), (bx, by) = pts[-2], pts[-1]
        lx, ly = ax + (bx - ax) * 0.6, ay + (by - ay) * 0.6 + 3
        # An edge coming in from the left is labelled on its left, so two inputs' labels never meet.
        anchor, lx = ("end", lx - 4) if bx > ax + 1 else ("start", lx + 4)
        out.append(f'<g class="edge"><title>{esc(e.tensor)}: {esc(e.shape)}</title>'
                   f'<path d="{d}" marker-end="url(#arrow)"/>'
                   f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{esc(e.shape)}</text></g>')
    for n in layout.nodes:
        x0 = n.x - n.width / 2
        tip = f"{n.label}: {n.sub}" + (f" ({', '.join(n.layers)})" if n.kind == "block" else "")
        out.append(f'<g class="node k-{n.kind}" id="node-{esc(_id(n.id))}"><title>{esc(tip)}</title>'
                   f'<rect x="{x0:.1f}" y="{n.y:.1f}" width="{n.width:.1f}" height="{NODE_H}" rx="4"/>'
                   f'<text x="{n.x:.1f}" y="{n.y + 14:.1f}" text-anchor="middle">{esc(n.label)}</text>'
                   f'<text class="op" x="{n.x:.1f}" y="{n.y + 27:.1f}" text-anchor="middle">{esc(n.sub)}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_html(layout: Layout) -> str:
    """The SVG in a small standalone HTML page."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>network {html.escape(layout.name)}</title>\n"
            "<style>body{margin:0;background:#fafafa}main{padding:8px;overflow:auto}"
            ".node:hover rect{stroke-width:2.5}</style>\n</head>\n<body>\n<main>\n"
            + to_svg(layout) + "</main>\n</body>\n</html>\n")


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(text: str) -> str:
    return '"' + _dot_text(text) + '"'


def to_dot(layout: Layout) -> str:
    """The graph as Graphviz DOT text: block calls as nested clusters, shapes on the edges."""
    lines = [f"digraph {_dot_id(layout.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=9];']
    tree: dict[tuple[str, ...], list[DrawNode]] = {}
    for n in layout.nodes:
        tree.setdefault(n.clusters, []).append(n)
    paths = sorted({p[:i] for p in tree for i in range(len(p) + 1)}, key=lambda p: (len(p), p))

    def emit(prefix: tuple[str, ...], indent: str) -> None:
        for n in tree.get(prefix, []):
            lines.append(f"{indent}{_dot_id(n.id)} [label=\"{_dot_text(n.label)}\\n{_dot_text(n.sub)}\"];")
        for child in [p for p in paths if len(p) == len(prefix) + 1 and p[:len(prefix)] == prefix]:
            lines.append(f"{indent}subgraph {_dot_id('cluster_' + '/'.join(child))} {{")
            lines.append(f"{indent}  label={_dot_id(child[-1])}; style=rounded;")
            emit(child, indent + "  ")
            lines.append(f"{indent}}}")
    emit((), "  ")
    for e in layout.edges:
        lines.append(f"  {_dot_id(e.src)} -> {_dot_id(e.dst)} [label={_dot_id(e.shape)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


#: Output endings and their writers.
FORMATS = {".svg": to_svg, ".html": to_html, ".htm": to_html, ".dot": to_dot, ".gv": to_dot}


def render(net: NetworkReport, fmt: str, depth: int | None = None) -> str:
    """The picture of ``net`` as text in ``fmt`` ('svg', 'html' or 'dot').

    >>> import netspec
    >>> print(render(netspec.load_source("network n {\\n input x: [4]\\n dense(2)\\n}\\n"), "dot").splitlines()[-2])
      "x" -> "dense" [label="4"];
    """
    writer = {"svg": to_svg, "html": to_html, "dot": to_dot}[fmt]
    return writer(layout_network(net, depth))
