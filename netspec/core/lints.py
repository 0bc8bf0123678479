"""Warnings that need the graph around a layer, not only the layer.

An op's own rule (:attr:`netspec.core.ops.OpDef.warnings`) sees one layer
and its input shapes.  Some of its warnings are intended in context, and
some mistakes show only in context; :class:`GraphChecker` asks this module:

- **W101** (a stride drops the last rows) is dropped when every dropped
  cell is zero padding: the layer's own explicit padding, or a
  ``zeropad`` right before it (ResNet's ``conv1`` and ``pool1``).
- **W102** (``dense`` on a tensor of rank above 2) is dropped when every
  axis but the last has size 1: squeeze-and-excite's ``dense`` on
  ``(1, 1, C)`` is a per-vector layer, not a forgotten ``flatten``.
- **W102** is also dropped for a ``dense`` whose result meets a merge, a
  window op or a global op on its way to the outputs (ConvNeXt's pointwise
  ``dense`` between a depthwise conv and a residual ``add``): a forgotten
  ``flatten`` reaches an output through per-position layers only.  This
  one waits for the whole graph (:func:`dense_is_pointwise`).
- **W103** (an even kernel) is dropped when the kernel equals the stride:
  the conv cuts the input into whole patches (ConvNeXt's stem).
- **W104** (a stride larger than the window skips cells) is dropped for a
  projection whose sibling branch reads every cell it skips: a strided
  ``1x1`` shortcut added to a path that reads the same input with windows
  that never skip (ResNet-18's ``conv3_block1_0_conv``).  This one waits
  for the whole graph (:func:`covered_by_sibling`).
- **W106** (new): in a ``channels_first`` network, ``batchnorm``,
  ``concat``, ``softmax`` (and the other ops with an ``axis`` whose Keras
  default is ``-1``) left at that default act along W, a spatial axis, as
  Keras does; a Keras user porting channels-last code rarely means that.

>>> from netspec import check_source
>>> r = check_source('''network se {
...     input x: [8, 8, 16]
...     global_avgpool2d(keepdims=true)
...     dense(4, activation='relu')
... }''')
>>> [d.code for d in r.all_diagnostics]
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .ir import Node, Shape
from .ops import OPS

__all__ = ["AXIS_DEFAULT_OPS", "covered_by_sibling", "dense_is_pointwise", "refine_warnings"]

#: Ops whose ``axis`` defaults to -1 as in Keras and which act along it (W106 in a channels_first network).
AXIS_DEFAULT_OPS = ("batchnorm", "concat", "softmax", "log_softmax", "layernorm", "groupnorm", "unit_normalization",
                    "normalization")

Warning = tuple[str, str, "str | None"]


def _spatial(shape: Shape, fmt: str) -> Shape:
    return tuple(shape[:-1]) if fmt == "channels_last" else tuple(shape[1:])


def _pairs(padding: Any, n: int) -> list[tuple[int, int]] | None:
    if isinstance(padding, str):
        return [(0, 0)] * n if padding == "valid" else None
    try:
        pairs = [tuple(int(v) for v in p) for p in padding]
    except TypeError:
        return None
    return pairs if len(pairs) == n and all(len(p) == 2 for p in pairs) else None  # type: ignore[misc]


def _zeropad_end(producer: Node | None, n: int) -> list[int]:
    if producer is None or not producer.op.startswith("zeropad"):
        return [0] * n
    pairs = _pairs(getattr(producer.attrs, "padding", None), n)
    return [p[1] for p in pairs] if pairs else [0] * n


def _drops_only_padding(node: Node, attrs: Any, shape: Shape, producer: Node | None) -> bool:
    """True when the cells a stride leaves at the end of each axis are all zero padding."""
    fmt = getattr(attrs, "data_format", "channels_last")
    spatial = _spatial(shape, fmt)
    n = len(spatial)
    size = getattr(attrs, "kernel_size", None) or getattr(attrs, "pool_size", None)
    strides = getattr(attrs, "strides", None)
    dilation = getattr(attrs, "dilation_rate", None) or (1,) * n
    pads = _pairs(getattr(attrs, "padding", "valid"), n)
    if size is None or strides is None or pads is None or len(size) != n or len(strides) != n:
        return False
    extra = _zeropad_end(producer, n)
    for length, k, s, d, (begin, end), more in zip(spatial, size, strides, dilation, pads, extra):
        if length is None:
            return False
        padded = length + begin + end
        window = d * (k - 1) + 1
        if padded < window:
            return False
        dropped = padded - ((padded - window) // s * s + window)
        if dropped > end + more:
            return False
    return True


def _per_vector(shape: Shape) -> bool:
    return len(shape) >= 2 and all(d == 1 for d in shape[:-1])


def refine_warnings(node: Node, attrs: Any, in_shapes: Sequence[Shape], warns: list[Warning],
                    producers: dict[str, Node], data_format: str) -> list[Warning]:
    """The op's warnings for ``node``, less those its context makes intended, plus W106.

    >>> from netspec.core import ops
    >>> pad = Node("pad", "zeropad2d", ("x",), ops.ZeroPad2D(padding=((3, 3), (3, 3))))
    >>> conv = Node("c", "conv2d", ("pad",), ops.OPS["conv2d"].normalize(
    ...     ops.Conv2D(filters=1, kernel_size=(7, 7), strides=(2, 2)), "channels_last"))
    >>> refine_warnings(conv, conv.attrs, [(230, 230, 3)], [("W101", "drops", "strides")], {"pad": pad}, "channels_last")
    []
    """
    out: list[Warning] = []
    for code, message, arg in warns:
        if code == "W101" and in_shapes and _drops_only_padding(
                node, attrs, in_shapes[0], producers.get(node.inputs[0]) if node.inputs else None):
            continue
        if code == "W102" and in_shapes and _per_vector(in_shapes[0]):
            continue
        if code == "W103" and _patchify(attrs):
            continue
        out.append((code, message, arg))
    if data_format == "channels_first" and node.op in AXIS_DEFAULT_OPS and node.span is not None:
        given = {name for name, _ in node.arg_spans}
        axis = getattr(attrs, "axis", None)
        rank = len(in_shapes[0]) + 1 if in_shapes else 0
        if "axis" not in given and axis == -1 and rank >= 3:
            out.append(("W106", f"{node.op} acts along axis -1 by default, as in Keras, which in this channels_first "
                        f"network is the last spatial axis, not the channels; write axis=1 for the channels "
                        f"(or axis=-1 to keep it and silence this)", None))
    return out


def _patchify(attrs: Any) -> bool:
    """A conv whose even kernel equals its stride cuts the input into whole patches (ConvNeXt's stem
    and downsampling): no half-cell shift between patches, so W103 does not apply."""
    size = getattr(attrs, "kernel_size", None)
    strides = getattr(attrs, "strides", None)
    if not size or not strides or len(size) != len(strides):
        return False
    return all(k % 2 == 1 or k == s for k, s in zip(size, strides))


def dense_is_pointwise(node: Node, nodes: Sequence[Node]) -> bool:
    """True when a ``dense`` on a tensor of rank above 2 is a per-position layer by design: its
    result meets a merge, a window op or a global op (flatten, a global pool) on the way to the
    outputs, as ConvNeXt's pointwise ``dense`` does.  A forgotten ``flatten`` shows as a ``dense``
    whose result reaches an output through per-position layers only.
    """
    consumers: dict[str, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            consumers.setdefault(t, []).append(n)
    stack, seen = [node.name], set()
    while stack:
        name = stack.pop()
        for user in consumers.get(name, []):
            if user.name in seen:
                continue
            seen.add(user.name)
            opdef = OPS.get(user.op)
            if opdef is None or opdef.merge or opdef.rf != "identity" or user.op in ("reshape", "permute"):
                return True
            stack.append(user.name)
    return False


def _skipped_axes(node: Node) -> list[int]:
    opdef = OPS.get(node.op)
    if opdef is None or opdef.window is None:
        return []
    sizes, strides = opdef.window(node.attrs)
    return [i for i, (k, s) in enumerate(zip(sizes, strides)) if s > k]


def covered_by_sibling(node: Node, nodes: Sequence[Node], producers: dict[str, Node]) -> bool:
    """True when ``node`` (a window op that skips cells) feeds a merge whose other branch reads
    the same input without skipping any cell: the skipping is the design of a projection shortcut.

    ``nodes`` are all the graph's nodes (normalized), ``producers`` them by name.
    """
    skipped = _skipped_axes(node)
    if not skipped or not node.inputs:
        return False
    source = node.inputs[0]
    consumers: dict[str, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            consumers.setdefault(t, []).append(n)
    # Forward through per-position layers (batchnorm, activations) to a merge.
    cur, merge = node.name, None
    for _ in range(64):
        users = consumers.get(cur, [])
        if len(users) != 1:
            return False
        user = users[0]
        opdef = OPS.get(user.op)
        if opdef is None:
            return False
        if opdef.merge:
            merge = user
            break
        if opdef.rf != "identity" or len(user.inputs) != 1:
            return False
        cur = user.name
    if merge is None:
        return False
    for other in merge.inputs:
        if other == cur:
            continue
        name, reads_all, windows = other, True, 0
        for _ in range(256):
            if name == source:
                break
            producer = producers.get(name)
            if producer is None or len(producer.inputs) != 1:
                reads_all = False
                break
            opdef = OPS.get(producer.op)
            if opdef is None or opdef.rf == "global":
                reads_all = False
                break
            if opdef.window is not None:
                windows += 1
                if any(i in _skipped_axes(producer) for i in skipped):
                    reads_all = False
                    break
            name = producer.inputs[0]
        else:
            reads_all = False
        if reads_all and name == source and windows:
            return True
    return False
