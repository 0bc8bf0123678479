"""The NumPy executor's plan, in pure Python: fusion, then tensor liveness.

The executor (:mod:`netspec.targets.numpy_exec`) runs exactly this plan, and
the memory estimate (:mod:`netspec.analysis.memory`) walks it, so the
estimate describes a real run.  Fusion merges a batchnorm, then a plain
activation, into the convolution or dense layer before it, and an
activation into the ``add`` / ``multiply`` before it, when nothing else
reads the earlier output.  Liveness frees each tensor after its last
reader and lets a step overwrite ("be donated") its first input when
nothing later reads that memory under any name (view ops such as
``flatten`` share their input's memory).

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source('''network n {
...   input x: [8, 8, 3]
...   conv2d(4, 3, name='c')
...   batchnorm(name='bn')
...   relu(name='r')
...   flatten(name='f')
...   dense(2, name='d')
... }''').networks[0]
>>> [(s.name, s.node.op, s.layers) for s in execution_plan(net.graph)]
[('r', 'conv2d', ('c', 'bn', 'r')), ('f', 'flatten', ('f',)), ('d', 'dense', ('d',))]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.ir import Graph, Node
from ..core.ops import ACTIVATION_OPS
from ..core.ops_layers import AXIS_ACTIVATIONS, INFERENCE_IDENTITY_OPS, NEW_ACTIVATION_OPS

__all__ = [
    "FUSABLE",
    "MergeActivation",
    "PlanStep",
    "VIEW_OPS",
    "absorbed_activation",
    "execution_plan",
    "folds_batchnorm",
    "fuse",
    "is_view",
]

#: Layers that can take over a following batchnorm or activation.
FUSABLE = frozenset({"conv1d", "conv2d", "conv3d", "depthwise_conv1d", "depthwise_conv2d", "separable_conv1d",
                     "separable_conv2d", "conv1d_transpose", "conv2d_transpose", "conv3d_transpose", "dense"})
#: Ops whose output shares memory with their input (never written in place behind another's back).
VIEW_OPS = frozenset({"dropout", "flatten", "reshape", "linear"}) | INFERENCE_IDENTITY_OPS


@dataclass(frozen=True, slots=True)
class MergeActivation:
    """Attributes of an ``add`` or ``multiply`` step that also applies the activation after it.

    >>> MergeActivation("relu").activation
    'relu'
    """

    activation: str


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of the plan: the node it runs, the layers it computes, and its memory actions.

    ``node`` carries the fused attributes and the last layer's name (so its
    readers are unchanged); ``donate`` lets the step overwrite its first
    input; ``free`` lists the tensors whose last reader this step is.
    """

    node: Node
    layers: tuple[str, ...]
    donate: bool = False
    free: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The tensor the step produces."""
        return self.node.name


def absorbed_activation(node: Node) -> str | None:
    """The ``keras.activations`` name a layer can take over from ``node``, if ``node`` is a plain activation.

    >>> from netspec.core import ops
    >>> absorbed_activation(Node("r", "relu", ("x",), ops.ReLU()))
    'relu'
    """
    a = node.attrs
    if node.op == "activation":
        return a.activation
    if (node.op in ACTIVATION_OPS or node.op in NEW_ACTIVATION_OPS) and not dataclasses.fields(a):
        return node.op
    if node.op == "relu" and a.max_value is None and a.negative_slope == 0.0 and a.threshold == 0.0:
        return "relu"
    if node.op == "softmax" and a.axis == -1:
        return "softmax"
    if node.op == "elu" and a.alpha == 1.0:
        return "elu"
    return None


def folds_batchnorm(node: Node, bn: Node) -> bool:
    """Whether batchnorm ``bn`` folds into the kernel and bias of ``node`` (which it follows).

    >>> from netspec.core import ops
    >>> c = Node("c", "conv2d", ("x",), ops.Conv2D(filters=2, kernel_size=(1, 1), data_format="channels_last"))
    >>> folds_batchnorm(c, Node("bn", "batchnorm", ("c",), ops.BatchNorm()))
    True
    """
    a = node.attrs
    if node.op not in FUSABLE or getattr(a, "activation", None) != "linear":
        return False
    if node.op == "dense":
        return bn.attrs.axis == -1  # dense acts on the last axis of any rank: only that axis folds
    if node.op.endswith("_transpose"):
        return False  # its kernel keeps the output channels on axis -2: activations fuse, batchnorms do not
    rank = len(a.kernel_size) + 2
    channel_axis = -1 if a.data_format == "channels_last" else 1
    return bn.attrs.axis % rank == channel_axis % rank


def fuse(nodes: list[Node], outputs: str | tuple[str, ...]) -> list[tuple[Node, tuple[str, ...]]]:
    """The nodes after fusion, each with the layers it computes.

    A batchnorm that folds, or an activation a layer can take over, merges
    into the layer before it only when that layer's output is read by
    nothing else (and is not one of the network's ``outputs``).

    >>> from netspec.core import ops
    >>> nodes = [Node("a", "add", ("x", "y"), ops.NoArgs()), Node("r", "relu", ("a",), ops.ReLU())]
    >>> [(n.name, n.op, n.attrs, layers) for n, layers in fuse(nodes, "r")]
    [('r', 'add', MergeActivation(activation='relu'), ('a', 'r'))]
    """
    kept = {outputs} if isinstance(outputs, str) else set(outputs)
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    out: list[tuple[Node, tuple[str, ...]]] = []
    for node in nodes:
        prev, layers = out[-1] if out else (None, ())
        if prev is None or node.inputs != (prev.name,) or readers.get(prev.name) != 1 or prev.name in kept:
            out.append((node, (node.name,)))
            continue
        act = absorbed_activation(node)
        new = None
        if (act is not None and act not in AXIS_ACTIVATIONS and prev.op in ("add", "multiply")
                and not isinstance(prev.attrs, MergeActivation) and not getattr(prev.attrs, "constants", ())):
            new = Node(node.name, prev.op, prev.inputs, MergeActivation(act), prev.span)
        elif prev.op in FUSABLE and prev.attrs.activation == "linear":
            if node.op == "batchnorm":
                if folds_batchnorm(prev, node):
                    new = Node(node.name, prev.op, prev.inputs, dataclasses.replace(prev.attrs, use_bias=True),
                               prev.span)
            elif act is not None:
                new = Node(node.name, prev.op, prev.inputs, dataclasses.replace(prev.attrs, activation=act),
                           prev.span)
        if new is None:
            out.append((node, (node.name,)))
        else:
            out[-1] = (new, (*layers, node.name))
    return out


def is_view(node: Node) -> bool:
    """Whether a step returns its input's memory (a view, or the input itself).

    >>> from netspec.core import ops
    >>> is_view(Node("f", "flatten", ("x",), ops.Flatten()))
    True
    """
    if node.op in VIEW_OPS:
        return True
    if node.op == "activation" and node.attrs.activation == "linear":
        return True
    return node.op.startswith("zeropad") and not any(sum(node.attrs.padding, ()))


def execution_plan(graph: Graph, fuse_layers: bool = True, keep_all: bool = False) -> list[PlanStep]:
    """The executor's steps for ``graph``: fused (unless ``fuse_layers`` is false), with liveness.

    With ``keep_all`` nothing is freed or overwritten (every tensor is kept,
    as :meth:`Executor.activations <netspec.targets.numpy_exec.Executor.activations>` needs).
    """
    nodes = list(graph.nodes)
    fused = fuse(nodes, graph.outputs) if fuse_layers else [(n, (n.name,)) for n in nodes]
    last_use: dict[str, int] = {}
    for i, (node, _) in enumerate(fused):
        for name in node.inputs:
            last_use[name] = i
    for name in graph.outputs:
        last_use[name] = len(fused)
    sources = {inp.name for inp in graph.inputs}
    root = {name: name for name in sources}
    for node, _ in fused:
        root[node.name] = root[node.inputs[0]] if is_view(node) else node.name
    group_end: dict[str, int] = {}
    for name, r in root.items():
        group_end[r] = max(group_end.get(r, -1), last_use.get(name, -1))
    steps = []
    for i, (node, layers) in enumerate(fused):
        ins = node.inputs
        r = root[ins[0]]
        donate = (not keep_all and r not in sources and group_end[r] <= i and all(root[t] != r for t in ins[1:]))
        free = () if keep_all else tuple(t for t in dict.fromkeys(ins) if last_use.get(t) == i)
        steps.append(PlanStep(node, layers, donate, free))
    return steps
