"""Memory at a batch size and dtype: weights, peak activations by liveness, and training.

The inference peak walks the NumPy executor's own plan
(:func:`netspec.analysis.plan.execution_plan`: fused batchnorm and
activations, in-place steps, tensors freed after their last reader) and
adds each step's own buffers: its output, the padded copy a window op
makes, a depthwise convolution's product buffer, a grouped convolution's
patch matrix, an activation's temporaries.  It is what ``tracemalloc``
sees during one forward pass after a warm-up call, without the weights and
the input batch.  The per-thread im2col buffers, kept from call to call,
are reported apart as ``workspace``.

Training memory is weights + gradients (one per trainable weight) +
optimizer state (none for SGD, one slot per trainable weight for momentum,
two for Adam) + the activations kept for the backward pass (the input and
every layer's output that is not a view, unfused).

>>> from netspec.frontend.elaborate import check_source
>>> net = check_source('''network n {
...   input x: [32, 32, 3]
...   conv2d(8, 3, padding='same', name='c')
...   relu(name='r')
...   maxpool2d(2, name='p')
... }''').networks[0]
>>> m = estimate_memory(net, batch_size=2)  # the padded copy and the output of the fused conv+relu
>>> m.activation_peak, m.peak_at, m.weight_bytes
(93280, 'r', 896)
>>> estimate_memory(net, batch_size=2, training="adam").total
175616
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core.check import NetworkReport
from ..core.ir import Node, Shape
from ..core.shapes import same_padding
from .plan import execution_plan, is_view

__all__ = [
    "CHUNK_BYTES",
    "DTYPES",
    "MemoryEstimate",
    "OPTIMIZER_SLOTS",
    "estimate_memory",
    "layer_output_bytes",
]

#: Bytes per value of each dtype ``check --dtype`` accepts.
DTYPES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2}
#: Optimizer state, in copies of the trainable weights.
OPTIMIZER_SLOTS: dict[str, int] = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2}
#: The executor's im2col chunk size (``netspec.targets.numpy_exec.CHUNK_BYTES``; a test checks they agree).
CHUNK_BYTES = 1 << 22


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Memory of one network at one batch size, dtype and training mode (bytes; None if a size is unknown)."""

    batch_size: int
    dtype: str
    training: str
    weight_bytes: int
    activation_peak: int | None
    peak_at: str | None
    workspace: int | None
    gradient_bytes: int = 0
    optimizer_bytes: int = 0
    kept_activations: int | None = 0
    live_at_peak: tuple[tuple[str, int], ...] = field(default=(), repr=False)

    @property
    def total(self) -> int | None:
        """Inference: weights + peak activations + workspace; training: weights + gradients + state + kept."""
        if self.training == "none":
            if self.activation_peak is None or self.workspace is None:
                return None
            return self.weight_bytes + self.activation_peak + self.workspace
        if self.kept_activations is None:
            return None
        return self.weight_bytes + self.gradient_bytes + self.optimizer_bytes + self.kept_activations

    def to_json(self) -> dict[str, Any]:
        """The JSON report's ``memory`` object."""
        return {
            "batch_size": self.batch_size,
            "dtype": self.dtype,
            "training": self.training,
            "weights": self.weight_bytes,
            "activation_peak": self.activation_peak,
            "peak_at": self.peak_at,
            "workspace": self.workspace,
            "gradients": self.gradient_bytes,
            "optimizer_state": self.optimizer_bytes,
            "kept_activations": self.kept_activations if self.training != "none" else 0,
            "total": self.total,
        }


def _size(shape: Shape | None) -> int | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return math.prod(shape)  # type: ignore[arg-type]


def _spatial(shape: Shape, fmt: str) -> tuple[tuple[int, ...], int]:
    """(spatial sizes, channels) of a per-sample shape in ``fmt``."""
    if fmt == "channels_last":
        return tuple(shape[:-1]), shape[-1]  # type: ignore[return-value]
    return tuple(shape[1:]), shape[0]  # type: ignore[return-value]


def _pads(padding: Any, lengths: tuple[int, ...], size: tuple[int, ...], strides: tuple[int, ...],
          dilation: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """(begin, end) per spatial axis, as the executor pads (``numpy_exec._pads``)."""
    if padding == "valid":
        return ((0, 0),) * len(size)
    if padding == "same":
        return tuple(same_padding(n, k, st, d) for n, k, st, d in zip(lengths, size, strides, dilation))
    if padding == "causal":
        return tuple((d * (k - 1), 0) for k, d in zip(size, dilation))
    return tuple(tuple(p) for p in padding)  # type: ignore[misc]


def _padded(padding: Any, shape: Shape, fmt: str, size: tuple[int, ...], strides: tuple[int, ...],
            dilation: tuple[int, ...]) -> int:
    """Values per sample of the padded copy a window op makes (0 when nothing is padded)."""
    lengths, c = _spatial(shape, fmt)
    pads = _pads(padding, lengths, size, strides, dilation)
    if not any(b or e for b, e in pads):
        return 0
    return math.prod(n + b + e for n, (b, e) in zip(lengths, pads)) * c


# An activation step run on one thread: (output always new even in place, peak values per input value
# including the output).  Activations that write in place need no buffer when donated.
_ACT_PEAK: dict[str, tuple[bool, float]] = {
    "linear": (False, 0.0), "relu": (False, 1.0), "leaky_relu": (False, 2.0), "elu": (True, 2.25),
    "selu": (True, 2.25), "sigmoid": (True, 5.25), "hard_sigmoid": (False, 1.0), "softplus": (False, 1.0),
    "softsign": (False, 2.0), "swish": (False, 5.25), "tanh": (False, 1.0), "exponential": (False, 1.0),
    "gelu": (True, 7.25), "softmax": (False, 1.0),
    # version 2 activations (netspec.targets.numpy_layers)
    "relu6": (False, 1.0), "hard_silu": (False, 2.0), "mish": (False, 3.0), "log_softmax": (True, 2.0),
    "celu": (True, 2.0), "glu": (True, 2.0), "hard_tanh": (False, 1.0), "log_sigmoid": (True, 2.0),
    "soft_shrink": (True, 4.5), "hard_shrink": (True, 2.25), "tanh_shrink": (True, 2.0), "squareplus": (True, 2.0),
    "sparse_plus": (True, 3.5), "sparse_sigmoid": (True, 3.5), "sparsemax": (True, 6.0), "threshold": (True, 1.25),
}


def _activation_name(node: Node) -> str | None:
    a = node.attrs
    if node.op == "activation":
        return a.activation
    if node.op == "relu" and a.threshold != 0.0:
        return "elu"  # a thresholded relu builds a where() result: like elu's buffers
    if node.op == "relu" and a.negative_slope != 0.0:
        return "leaky_relu"  # a negative part beside the output
    if node.op in _ACT_PEAK:
        return node.op
    return None


# Activations whose temporaries stay as large in place as out of place (swish computes a whole sigmoid
# beside its input before multiplying into it): values beyond the input when written in place.
_INPLACE_EXTRA: dict[str, float] = {"swish": 5.25}


def _inplace_extra(name: str) -> float:
    """Values per value an activation needs beyond its input while overwriting it (or a fresh output)."""
    if name in _INPLACE_EXTRA:
        return _INPLACE_EXTRA[name]
    always_new, peak = _ACT_PEAK.get(name, (True, 3.0))
    return peak if always_new else max(peak - 1.0, 0.0)


def _fused_activation_extra(name: str, out: int) -> float:
    """Values an activation applied in place to a fresh output needs beyond that output."""
    if name in ("linear", "relu", "softmax", "hard_sigmoid", "softplus", "tanh", "exponential", "relu6",
                "hard_tanh"):
        return 0.0
    return _inplace_extra(name) * out


def _step_rule(node: Node, ins: list[Shape], out_shape: Shape, donate: bool, fmt: str, batch: int
               ) -> tuple[str, float, int]:
    """How one step uses memory, per sample: (output 'new' / 'view' / 'inplace', peak extra values, im2col values).

    The peak extra counts every buffer the step holds at its busiest moment
    beyond the tensors already live, its own new output included.
    """
    out = _size(out_shape) or 0
    x = ins[0]
    a = node.attrs
    op = node.op
    if is_view(node):
        return "view", 0.0, 0
    kind = op.rstrip("0123456789d") if op[-2:-1].isdigit() else op  # conv2d -> conv, ...
    if op.endswith("_transpose"):
        # One product (cells, C_in) @ (C_in, taps*filters), a zeroed canvas of the full span, and a
        # copy when 'same' crops the canvas.
        lengths, _ = _spatial(x, fmt)
        outs, f = _spatial(out_shape, fmt)
        full = [(n - 1) * st + (k - 1) * d + 1 for n, k, st, d in zip(lengths, a.kernel_size, a.strides,
                                                                      a.dilation_rate)]
        begins = [0 if a.padding == "valid" else max(fl - o, 0) // 2 for fl, o in zip(full, outs)]
        canvas = math.prod(max(fl, b + o) for fl, b, o in zip(full, begins, outs)) * f
        cols = math.prod(lengths) * math.prod(a.kernel_size) * f
        cropped = canvas != out
        act = _fused_activation_extra(a.activation, out)
        return "new", cols + canvas + (out if cropped else 0) + act, 0
    if kind in ("conv", "depthwise_conv", "separable_conv"):
        pad = _padded(a.padding, x, fmt, a.kernel_size, a.strides, a.dilation_rate)
        act = _fused_activation_extra(a.activation, out)
        lengths, c = _spatial(x, fmt)
        outs, f = _spatial(out_shape, fmt)
        taps = math.prod(a.kernel_size)
        if kind == "depthwise_conv":
            return "new", pad + 2 * out + act, 0  # the zeroed sum and one tap's product
        # A chunked convolution applies its activation chunk by chunk: temporaries of one chunk.
        if kind == "separable_conv":
            mid = math.prod(outs) * c * a.depth_multiplier
            k = c * a.depth_multiplier
            chunk_act = act * min(1.0, _chunk_cells(k, f, (1,) * len(outs), batch * math.prod(outs)) * f
                                  / (out * batch))
            return "new", max(pad + 2 * mid, mid + out) + chunk_act, _im2col(k, f, outs, batch)
        k = taps * c
        if a.groups > 1:
            return "new", pad + out + math.prod(outs) * k + out + act, 0  # patches and the grouped product
        if taps == 1 and all(st == 1 for st in a.strides) and fmt == "channels_last":
            cells = _chunk_cells(k, f, (1,) * len(outs), batch * math.prod(outs))
            return "new", pad + out + act * min(1.0, cells * f / (out * batch)), 0
        cells = _chunk_cells(k, f, outs, batch)
        return "new", pad + out + act * min(1.0, cells * f / (out * batch)), _im2col(k, f, outs, batch)
    if kind in ("maxpool", "avgpool"):
        return "new", _padded(a.padding, x, fmt, a.pool_size, a.strides, (1,) * len(a.pool_size)) + out, 0
    if op.startswith("upsampling") and getattr(a, "interpolation", "nearest") != "nearest":
        return "new", out + out // a.size[1] if len(a.size) > 1 else 2 * out, 0  # the row pass, then columns
    if op.startswith(("global_avgpool", "global_maxpool")):
        return "new", 3 * out, 0  # the float64 mean, then its float32 copy
    if op == "flatten":
        return ("view", 0.0, 0) if fmt == "channels_last" or len(x) < 3 else ("new", out, 0)
    if op == "dense":
        return "new", out + _fused_activation_extra(a.activation, out), 0
    if op == "batchnorm":
        return ("inplace", 0.0, 0) if donate else ("new", out, 0)
    if op in ("add", "multiply"):
        act = getattr(a, "activation", "linear")
        extra = _fused_activation_extra(act, out)
        same = all(s == out_shape for s in ins)
        if donate and (same or x == out_shape):
            return "inplace", extra, 0
        return "new", out + extra, 0
    name = _activation_name(node)
    if name is not None:
        always_new, peak = _ACT_PEAK.get(name, (True, 3.0))
        if donate and not always_new:
            return "inplace", _inplace_extra(name) * out, 0
        return "new", peak * out, 0
    # concat, zeropad2d, and any op without a rule of its own: one new output.
    return "new", float(out), 0


def _chunk_cells(k: int, f: int, outs: tuple[int, ...], batch: int) -> int:
    """Output cells of the largest chunk (the executor's ``_chunk_pixels`` / ``_chunks``, one thread).

    ``outs`` are one image's output sizes; a 1x1 convolution's chunks run over all ``batch``
    cells at once, which is ``outs`` of ones and ``batch`` cells.
    """
    pixels = max(256, CHUNK_BYTES // (4 * max(k, f)))
    per_row = math.prod(outs[1:])
    cells = outs[0] * per_row
    if cells >= pixels:
        return max(1, pixels // per_row) * per_row
    return min(max(1, pixels // cells), batch) * cells


def _im2col(k: int, f: int, outs: tuple[int, ...], batch: int) -> int:
    """Values of the im2col buffer of one chunk."""
    return _chunk_cells(k, f, outs, batch) * k


def layer_output_bytes(net: NetworkReport, batch_size: int = 1, dtype: str = "float32") -> dict[str, int | None]:
    """Each layer's output in bytes at ``batch_size`` (None when a size is unknown).

    >>> from netspec.frontend.elaborate import check_source
    >>> net = check_source("network n {\\n input x: [4]\\n dense(3, name='d')\\n}\\n").networks[0]
    >>> layer_output_bytes(net, 2)
    {'d': 24}
    """
    item = DTYPES[dtype]
    out: dict[str, int | None] = {}
    for name, info in net.layers.items():
        size = _size(info.shape)
        out[name] = None if size is None else size * batch_size * item
    return out


def estimate_memory(net: NetworkReport, batch_size: int = 1, dtype: str = "float32",
                    training: str = "none") -> MemoryEstimate:
    """Weights, peak activation memory and (with ``training``) training memory of a checked network."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}")
    if training not in OPTIMIZER_SLOTS:
        raise ValueError(f"unknown training mode {training!r}")
    net.raise_for_errors()
    graph = net.graph
    assert graph is not None
    item = DTYPES[dtype]
    trainable, non_trainable = net.params
    weight_bytes = (trainable + non_trainable) * item
    grads = trainable * item if training != "none" else 0
    state = OPTIMIZER_SLOTS[training] * trainable * item
    shapes: dict[str, Shape | None] = {inp.name: inp.shape for inp in graph.inputs}
    shapes.update({name: info.shape for name, info in net.layers.items()})
    kept: int | None = None
    if training != "none":
        sizes = [_size(inp.shape) for inp in graph.inputs] + [
            0 if is_view(node) else _size(net.layers[node.name].shape) for node in graph.nodes]
        kept = None if any(s is None for s in sizes) else sum(sizes) * batch_size * item  # type: ignore[misc]
    if any(_size(s) is None for s in shapes.values()):
        return MemoryEstimate(batch_size, dtype, training, weight_bytes, None, None, None, grads, state, kept)

    fmt = graph.input.data_format
    # The input batches are the caller's: not counted.
    owner: dict[str, str] = {inp.name: inp.name for inp in graph.inputs}
    nbytes: dict[str, int] = dict.fromkeys(owner, 0)
    refs: dict[str, int] = dict.fromkeys(owner, 1)
    live = 0
    peak, peak_at, live_at_peak, workspace = 0, None, (), 0
    for step in execution_plan(graph):
        node = step.node
        ins = [shapes[t] for t in node.inputs]
        mode, extra, cols = _step_rule(node, ins, shapes[node.name], step.donate, fmt, batch_size)  # type: ignore[arg-type]
        workspace = max(workspace, cols)
        own = int(extra) * batch_size * item
        here = live + own
        if here > peak:
            peak, peak_at = here, step.name
            live_at_peak = (*((b, n) for b, n in nbytes.items() if n and refs.get(b)),
                            (f"{step.name} (the step's own buffers)", own))
        if mode == "new":
            buf = step.name
            nbytes[buf] = _size(shapes[step.name]) * batch_size * item  # type: ignore[operator]
            live += nbytes[buf]
            refs[buf] = 0
        else:
            buf = owner[node.inputs[0]]
        owner[step.name] = buf
        refs[buf] += 1
        for t in step.free:
            if t == step.name:
                continue
            b = owner[t]
            refs[b] -= 1
            if refs[b] == 0:
                live -= nbytes[b]
        if live > peak:
            peak, peak_at = live, step.name
            live_at_peak = tuple((b, n) for b, n in nbytes.items() if n and refs.get(b))
    # Scale the im2col workspace from values to bytes (it is per thread, reused across calls).
    return MemoryEstimate(batch_size, dtype, training, weight_bytes, peak, peak_at, workspace * item,
                          grads, state, kept, live_at_peak)
