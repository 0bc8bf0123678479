"""The Keras target: a checked network as a ``keras.Model`` (functional API, Keras 3 on TensorFlow).

Every node becomes one Keras layer named as ``check`` names it, built with
every argument of the spec: initializers, regularizers (kernel, bias,
activity), constraints, activations, ``use_bias``, dilation, groups and data
formats.  Explicit padding (``padding=1``, ``((1, 2), (0, 1))``) on a
convolution or a pool lowers to a ``ZeroPadding2D`` layer named
``NAME_pad`` followed by the layer with ``'valid'``, so a max pool sees the
zeros and an average pool divides by the full window (the semantics every
target shares).  The weights come from :func:`netspec.targets.weights.init_weights`
(or a weights file) so the Keras model, the NumPy executor and the ONNX
graph compute the same function for a seed; the Keras initializer objects
stay on the layers for training.

TensorFlow on the CPU: Keras 3.15 on TensorFlow 2.21 runs channels_first
convolutions and pools, grouped convolutions (through XLA) and dilated
convolutions on the CPU as they are (the tests compare each with the NumPy
executor, layer by layer), so no layer is rewritten.  One Keras bug needs a
fix: eagerly, a channels_first convolution's bias is added along the width
axis when the width equals the number of filters; :func:`import_keras`
installs a narrow fix (see ``_fix_bias_add``) when Keras has the bug.

Importing this module does not import TensorFlow; :func:`import_keras`
does, quietly, on first use.

>>> import netspec
>>> net = netspec.load_source('''
... network tiny {
...     input x: [8, 8, 1]
...     conv2d(4, 3, padding=1, activation='relu', name='conv')
...     flatten()
...     dense(10, activation='softmax')
... }''')
>>> model = to_keras(net, seed=0)
>>> [layer.name for layer in model.layers]
['x', 'conv_pad', 'conv', 'flatten', 'dense']
>>> model.count_params() == net.total_params
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ..core.argtypes import KerasObject
from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, NetspecError
from ..core.fileio import atomic_output
from ..core.ir import Graph, Node
from ..core.ops import ACTIVATION_OPS

__all__ = [
    "LOWERINGS",
    "build_model",
    "compile_keras",
    "constraint",
    "import_keras",
    "initializer",
    "regularizer",
    "save_model",
    "to_keras",
    "weights_from_keras",
    "weights_to_keras",
]

#: A lowering: ``lower(node, input_tensors, context) -> output_tensor`` (Keras symbolic tensors).
Lowering = Callable[[Node, list, "_Context"], Any]

# Lines TensorFlow writes to stderr on import even with TF_CPP_MIN_LOG_LEVEL=2: absl's
# notice about its own start-up and INFO lines (the oneDNN notice) from before absl reads
# the level.  Everything else is passed through.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|To enable the following instructions: .*)$"
)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Hold what is written to file descriptor 2, then pass on all but TensorFlow's start-up noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if not _NOISE.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def import_keras() -> Any:
    """Import Keras on the TensorFlow backend, keeping TensorFlow's start-up chatter off stderr.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` and ``KERAS_BACKEND=tensorflow`` unless
    the user set them.  Raises :class:`NetspecError` (E605) when TensorFlow
    or Keras is missing, or Keras was already loaded on another backend.

    >>> import_keras().backend.backend()
    'tensorflow'
    """
    if "keras" not in sys.modules or "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        try:
            with _quiet_stderr():
                import keras  # noqa: F401
                import tensorflow  # noqa: F401
        except ImportError as err:
            raise NetspecError([Diagnostic.error(
                "E605", f"the Keras target needs TensorFlow and Keras 3 ({err}); "
                "install them with: pip install 'netspec[keras]'")]) from None
    keras = sys.modules["keras"]
    if keras.backend.backend() != "tensorflow":
        raise NetspecError([Diagnostic.error(
            "E605", f"the Keras target needs Keras's TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r} (unset KERAS_BACKEND or set it to 'tensorflow')")])
    _fix_bias_add(keras)
    return keras


def _static_shape(x: Any) -> list[int | None] | None:
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    try:
        return [None if d is None else int(d) for d in shape]
    except TypeError:  # a TensorShape of unknown rank
        return None


def _bias_axis_misread(x1: Any, x2: Any) -> bool:
    """Whether Keras's ``add`` would add ``x2`` as a bias along the wrong axis of ``x1``.

    Keras's TensorFlow ``add`` turns ``x1 + x2`` into ``tf.nn.bias_add``
    when ``x2`` has one non-unit axis of size C, choosing NHWC whenever
    ``x1``'s last size is C, without looking at where C sits in ``x2``.
    """
    s1, s2 = _static_shape(x1), _static_shape(x2)
    if s1 is None or s2 is None or len(s1) < 2:
        return False
    wide = [i for i, d in enumerate(s2) if d is None or d > 1]
    if len(wide) != 1 or s2[wide[0]] is None or s2[wide[0]] not in (s1[1], s1[-1]):
        return False
    chosen = len(s1) - 1 if s1[-1] == s2[wide[0]] else 1
    return wide[0] + len(s1) - len(s2) != chosen


def _fix_bias_add(keras: Any) -> None:
    """Work around a Keras 3 bug that adds a channels_first bias along the width axis.

    ``keras.ops.add(x, bias)`` with ``x`` of shape ``(N, C, H, W)`` and the
    bias reshaped to ``(1, C, 1, 1)`` (what Conv2D, DepthwiseConv2D and
    SeparableConv2D do for channels_first, and an ``Add`` that broadcasts)
    runs ``tf.nn.bias_add(..., 'NHWC')`` when ``W == C``: eagerly the bias
    lands on the width axis.  (Inside ``tf.function`` the sizes are often
    unknown and the result is right.)  The fix sends exactly those calls to
    ``tf.add`` (the plain broadcasting sum ``ops.add`` promises), so it
    stays right once Keras is fixed.  No TensorFlow op runs here: a
    multi-worker strategy must be set up before the first one.
    """
    import tensorflow as tf

    try:  # Keras internals: if they move, Keras has changed and the fix is moot
        from keras.src.backend.common import dtypes
        from keras.src.backend.tensorflow import core as tf_core
        from keras.src.backend.tensorflow import numpy as tf_numpy

        original = tf_numpy.add
    except (ImportError, AttributeError):
        return
    if getattr(original, "netspec_fixed", False):
        return

    def add(a: Any, b: Any) -> Any:
        if _bias_axis_misread(a, b):
            dtype = dtypes.result_type(getattr(a, "dtype", type(a)), getattr(b, "dtype", type(b)))
            return tf.add(tf_core.convert_to_tensor(a, dtype), tf_core.convert_to_tensor(b, dtype))
        return original(a, b)

    add.netspec_fixed = True  # type: ignore[attr-defined]
    add.__doc__ = original.__doc__
    tf_numpy.add = add


# --- initializers, regularizers, constraints ----------------------------------------------------

_INITIALIZERS = {
    "zeros": "Zeros", "ones": "Ones", "constant": "Constant", "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform", "truncated_normal": "TruncatedNormal",
    "glorot_uniform": "GlorotUniform", "glorot_normal": "GlorotNormal", "he_uniform": "HeUniform",
    "he_normal": "HeNormal", "lecun_uniform": "LecunUniform", "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal", "identity": "Identity", "variance_scaling": "VarianceScaling",
}
_REGULARIZERS = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2", "orthogonal_regularizer": "OrthogonalRegularizer"}
_CONSTRAINTS = {"max_norm": "MaxNorm", "min_max_norm": "MinMaxNorm", "non_neg": "NonNeg", "unit_norm": "UnitNorm"}


def initializer(obj: KerasObject) -> Any:
    """The ``keras.initializers`` object for a spec's initializer, every argument passed on.

    >>> from netspec.core.argtypes import initializer as parse
    >>> init = initializer(parse("he_normal"))
    >>> type(init).__name__, init.get_config()["seed"]
    ('HeNormal', None)
    """
    keras = import_keras()
    return getattr(keras.initializers, _INITIALIZERS[obj.name])(**dict(obj.kwargs))


def regularizer(obj: KerasObject | None) -> Any:
    """The ``keras.regularizers`` object for a spec's regularizer (None stays None).

    >>> from netspec.core.argtypes import regularizer as parse
    >>> regularizer(parse("l2")).get_config()
    {'l2': 0.01}
    """
    if obj is None:
        return None
    keras = import_keras()
    return getattr(keras.regularizers, _REGULARIZERS[obj.name])(**dict(obj.kwargs))


def constraint(obj: KerasObject | None) -> Any:
    """The ``keras.constraints`` object for a spec's constraint (None stays None).

    >>> from netspec.core.argtypes import constraint as parse
    >>> constraint(parse("max_norm")).get_config()
    {'max_value': 2.0, 'axis': 0}
    """
    if obj is None:
        return None
    keras = import_keras()
    return getattr(keras.constraints, _CONSTRAINTS[obj.name])(**dict(obj.kwargs))


# --- lowerings -------------------------------------------------------------------------------


class _Context:
    """What lowerings share while one model is built: the names already taken."""

    def __init__(self, graph: Graph):
        self.keras = import_keras()
        self.layers = self.keras.layers
        self.taken = {*(i.name for i in graph.inputs), *(node.name for node in graph.nodes)}

    def helper_name(self, base: str) -> str:
        """A fresh name for a helper layer (``conv_pad``, or ``conv_pad_1`` if that is taken)."""
        name, n = base, 0
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def _explicit_pad(node: Node, x: Any, padding: Any, data_format: str, ctx: _Context) -> tuple[Any, str]:
    """Explicit padding becomes a ZeroPadding{1,2,3}D layer and 'valid'; 'valid', 'same', 'causal' stay."""
    if isinstance(padding, str):
        return x, padding
    layer = getattr(ctx.layers, f"ZeroPadding{len(padding)}D")
    # trainable=False (it has no weights, so it changes nothing) marks the layer as netspec's helper:
    # `netspec import` folds it back into the layer's explicit padding.
    pad = layer(padding=padding[0] if len(padding) == 1 else padding, data_format=data_format,
                name=ctx.helper_name(f"{node.name}_pad"), trainable=False)
    return pad(x), "valid"


def _rank_of(node: Node) -> int:
    from ..core.ops_spatial import spatial_rank

    return spatial_rank(node.attrs)


def _lower_conv2d(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    x, padding = _explicit_pad(node, inputs[0], a.padding, a.data_format, ctx)
    return getattr(ctx.layers, f"Conv{_rank_of(node)}D")(
        a.filters, a.kernel_size, strides=a.strides, padding=padding, data_format=a.data_format,
        dilation_rate=a.dilation_rate, groups=a.groups, activation=a.activation, use_bias=a.use_bias,
        kernel_initializer=initializer(a.kernel_initializer), bias_initializer=initializer(a.bias_initializer),
        kernel_regularizer=regularizer(a.kernel_regularizer), bias_regularizer=regularizer(a.bias_regularizer),
        activity_regularizer=regularizer(a.activity_regularizer),
        kernel_constraint=constraint(a.kernel_constraint), bias_constraint=constraint(a.bias_constraint),
        name=node.name,
    )(x)


def _lower_depthwise(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    x, padding = _explicit_pad(node, inputs[0], a.padding, a.data_format, ctx)
    return getattr(ctx.layers, f"DepthwiseConv{_rank_of(node)}D")(
        a.kernel_size, strides=a.strides, padding=padding, depth_multiplier=a.depth_multiplier,
        data_format=a.data_format, dilation_rate=a.dilation_rate, activation=a.activation, use_bias=a.use_bias,
        depthwise_initializer=initializer(a.depthwise_initializer),
        bias_initializer=initializer(a.bias_initializer),
        depthwise_regularizer=regularizer(a.depthwise_regularizer),
        bias_regularizer=regularizer(a.bias_regularizer),
        activity_regularizer=regularizer(a.activity_regularizer),
        depthwise_constraint=constraint(a.depthwise_constraint), bias_constraint=constraint(a.bias_constraint),
        name=node.name,
    )(x)


def _lower_separable(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    x, padding = _explicit_pad(node, inputs[0], a.padding, a.data_format, ctx)
    return getattr(ctx.layers, f"SeparableConv{_rank_of(node)}D")(
        a.filters, a.kernel_size, strides=a.strides, padding=padding, data_format=a.data_format,
        dilation_rate=a.dilation_rate, depth_multiplier=a.depth_multiplier, activation=a.activation,
        use_bias=a.use_bias,
        depthwise_initializer=initializer(a.depthwise_initializer),
        pointwise_initializer=initializer(a.pointwise_initializer),
        bias_initializer=initializer(a.bias_initializer),
        depthwise_regularizer=regularizer(a.depthwise_regularizer),
        pointwise_regularizer=regularizer(a.pointwise_regularizer),
        bias_regularizer=regularizer(a.bias_regularizer),
        activity_regularizer=regularizer(a.activity_regularizer),
        depthwise_constraint=constraint(a.depthwise_constraint),
        pointwise_constraint=constraint(a.pointwise_constraint),
        bias_constraint=constraint(a.bias_constraint),
        name=node.name,
    )(x)


def _lower_pool(cls: str) -> Lowering:
    def lower(node: Node, inputs: list, ctx: _Context) -> Any:
        a = node.attrs
        x, padding = _explicit_pad(node, inputs[0], a.padding, a.data_format, ctx)
        layer = getattr(ctx.layers, cls.replace("2D", f"{_rank_of(node)}D"))
        return layer(pool_size=a.pool_size, strides=a.strides, padding=padding, data_format=a.data_format,
                     name=node.name)(x)
    return lower


def _lower_global(cls: str) -> Lowering:
    def lower(node: Node, inputs: list, ctx: _Context) -> Any:
        a = node.attrs
        return getattr(ctx.layers, cls.replace("2D", node.op[-2:].upper()))(data_format=a.data_format, keepdims=a.keepdims, name=node.name)(inputs[0])
    return lower


def _lower_zeropad(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    n = len(a.padding)
    return getattr(ctx.layers, f"ZeroPadding{n}D")(padding=a.padding[0] if n == 1 else a.padding,
                                                   data_format=a.data_format, name=node.name)(inputs[0])


def _lower_transpose(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return getattr(ctx.layers, f"Conv{_rank_of(node)}DTranspose")(
        a.filters, a.kernel_size, strides=a.strides, padding=a.padding, output_padding=a.output_padding,
        data_format=a.data_format, dilation_rate=a.dilation_rate, activation=a.activation, use_bias=a.use_bias,
        kernel_initializer=initializer(a.kernel_initializer), bias_initializer=initializer(a.bias_initializer),
        kernel_regularizer=regularizer(a.kernel_regularizer), bias_regularizer=regularizer(a.bias_regularizer),
        activity_regularizer=regularizer(a.activity_regularizer),
        kernel_constraint=constraint(a.kernel_constraint), bias_constraint=constraint(a.bias_constraint),
        name=node.name,
    )(inputs[0])


def _lower_cropping(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    n = len(a.cropping)
    if n == 1:
        return ctx.layers.Cropping1D(cropping=a.cropping[0], name=node.name)(inputs[0])
    return getattr(ctx.layers, f"Cropping{n}D")(cropping=a.cropping, data_format=a.data_format,
                                                name=node.name)(inputs[0])


def _lower_upsampling(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    n = len(a.size)
    if n == 1:
        return ctx.layers.UpSampling1D(size=a.size[0], name=node.name)(inputs[0])
    extra = {"interpolation": a.interpolation} if n == 2 else {}
    return getattr(ctx.layers, f"UpSampling{n}D")(size=a.size, data_format=a.data_format, name=node.name,
                                                  **extra)(inputs[0])


def _lower_resizing(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.Resizing(a.height, a.width, interpolation=a.interpolation,
                               crop_to_aspect_ratio=a.crop_to_aspect_ratio, data_format=a.data_format,
                               name=node.name)(inputs[0])


def _lower_center_crop(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.CenterCrop(a.height, a.width, data_format=a.data_format, name=node.name)(inputs[0])


def _lower_flatten(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.Flatten(data_format=node.attrs.data_format, name=node.name)(inputs[0])


def _lower_reshape(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.Reshape(node.attrs.target_shape, name=node.name)(inputs[0])


def _lower_dense(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.Dense(
        a.units, activation=a.activation, use_bias=a.use_bias,
        kernel_initializer=initializer(a.kernel_initializer), bias_initializer=initializer(a.bias_initializer),
        kernel_regularizer=regularizer(a.kernel_regularizer), bias_regularizer=regularizer(a.bias_regularizer),
        activity_regularizer=regularizer(a.activity_regularizer),
        kernel_constraint=constraint(a.kernel_constraint), bias_constraint=constraint(a.bias_constraint),
        name=node.name,
    )(inputs[0])


def _lower_dropout(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.Dropout(a.rate, noise_shape=a.noise_shape, seed=a.seed, name=node.name)(inputs[0])


def _lower_batchnorm(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.BatchNormalization(
        axis=a.axis, momentum=a.momentum, epsilon=a.epsilon, center=a.center, scale=a.scale,
        beta_initializer=initializer(a.beta_initializer), gamma_initializer=initializer(a.gamma_initializer),
        moving_mean_initializer=initializer(a.moving_mean_initializer),
        moving_variance_initializer=initializer(a.moving_variance_initializer),
        beta_regularizer=regularizer(a.beta_regularizer), gamma_regularizer=regularizer(a.gamma_regularizer),
        beta_constraint=constraint(a.beta_constraint), gamma_constraint=constraint(a.gamma_constraint),
        name=node.name,
    )(inputs[0])


def _lower_activation(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.Activation(node.attrs.activation, name=node.name)(inputs[0])


def _lower_relu(node: Node, inputs: list, ctx: _Context) -> Any:
    a = node.attrs
    return ctx.layers.ReLU(max_value=a.max_value, negative_slope=a.negative_slope, threshold=a.threshold,
                           name=node.name)(inputs[0])


def _lower_leaky(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.LeakyReLU(negative_slope=node.attrs.negative_slope, name=node.name)(inputs[0])


def _lower_elu(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.ELU(alpha=node.attrs.alpha, name=node.name)(inputs[0])


def _lower_softmax(node: Node, inputs: list, ctx: _Context) -> Any:
    return ctx.layers.Softmax(axis=node.attrs.axis, name=node.name)(inputs[0])


def _lower_named(activation: str) -> Lowering:
    def lower(node: Node, inputs: list, ctx: _Context) -> Any:
        return ctx.layers.Activation(activation, name=node.name)(inputs[0])
    return lower


def _lower_merge(cls: str) -> Lowering:
    def lower(node: Node, inputs: list, ctx: _Context) -> Any:
        kwargs = {"axis": node.attrs.axis} if cls == "Concatenate" else {}
        return getattr(ctx.layers, cls)(name=node.name, **kwargs)(inputs)
    return lower


#: Op name -> lowering, for every op in :data:`netspec.core.ops.OPS`.
LOWERINGS: dict[str, Lowering] = {
    **{f"conv{n}d": _lower_conv2d for n in (1, 2, 3)},
    **{f"conv{n}d_transpose": _lower_transpose for n in (1, 2, 3)},
    **{f"depthwise_conv{n}d": _lower_depthwise for n in (1, 2)},
    **{f"separable_conv{n}d": _lower_separable for n in (1, 2)},
    **{f"maxpool{n}d": _lower_pool("MaxPooling2D") for n in (1, 2, 3)},
    **{f"avgpool{n}d": _lower_pool("AveragePooling2D") for n in (1, 2, 3)},
    **{f"global_avgpool{n}d": _lower_global("GlobalAveragePooling2D") for n in (1, 2, 3)},
    **{f"global_maxpool{n}d": _lower_global("GlobalMaxPooling2D") for n in (1, 2, 3)},
    **{f"zeropad{n}d": _lower_zeropad for n in (1, 2, 3)},
    **{f"cropping{n}d": _lower_cropping for n in (1, 2, 3)},
    **{f"upsampling{n}d": _lower_upsampling for n in (1, 2, 3)},
    "resizing": _lower_resizing,
    "center_crop": _lower_center_crop,
    "flatten": _lower_flatten,
    "reshape": _lower_reshape,
    "dense": _lower_dense,
    "dropout": _lower_dropout,
    "batchnorm": _lower_batchnorm,
    "activation": _lower_activation,
    "relu": _lower_relu,
    "leaky_relu": _lower_leaky,
    "elu": _lower_elu,
    "softmax": _lower_softmax,
    **{name: _lower_named(name) for name in ACTIVATION_OPS},
    "add": _lower_merge("Add"),
    "multiply": _lower_merge("Multiply"),
    "concat": _lower_merge("Concatenate"),
}

# Version 2's layer ops (their own module).
from . import keras_layers as _keras_layers  # noqa: E402

_keras_layers.install(LOWERINGS)


# --- building ----------------------------------------------------------------------------------


def _resolve(net: NetworkReport, weights: Mapping[str, Any] | str | os.PathLike | None, seed: int
             ) -> dict[str, np.ndarray]:
    from .weights import resolve_weights, validate_weights

    if weights is None or isinstance(weights, (str, os.PathLike)):
        return resolve_weights(net, weights, seed)
    return validate_weights(net, weights)


def _keras_limits(node: Node, info: Any) -> Diagnostic | None:
    """What the checker allows but Keras rejects only once training runs (E605, caught up front)."""
    for spec in info.weights:
        if spec.regularizer is not None and spec.regularizer.name == "orthogonal_regularizer" and len(spec.shape) != 2:
            return Diagnostic.error(
                "E605", f"layer {node.name!r} ({node.op}): Keras's orthogonal_regularizer takes only 2-D weights "
                f"(a dense kernel), but {spec.name} has shape {spec.shape}", node.span)
        axis = spec.constraint.get("axis") if spec.constraint is not None else None
        if axis is not None and not -len(spec.shape) <= axis < len(spec.shape):
            return Diagnostic.error(
                "E605", f"layer {node.name!r} ({node.op}): {spec.constraint.name}(axis={axis}) does not fit "
                f"{spec.name} of shape {spec.shape} (rank {len(spec.shape)})", node.span)
    activity = getattr(node.attrs, "activity_regularizer", None)
    if activity is not None and activity.name == "orthogonal_regularizer" and len(info.shape) != 1:
        return Diagnostic.error(
            "E605", f"layer {node.name!r} ({node.op}): Keras's orthogonal_regularizer takes only 2-D tensors, "
            f"but the layer's output has rank {len(info.shape) + 1} (batch included)", node.span)
    return None


def _report(net: NetworkReport | Graph) -> NetworkReport:
    if isinstance(net, Graph):
        from ..core.check import check_graph

        net = check_graph(net)
    return net.raise_for_errors()


def build_model(net: NetworkReport | Graph) -> Any:
    """The Keras model of a checked network, with Keras's own fresh weights (see :func:`to_keras`).

    Raises :class:`NetspecError` (E605) when Keras rejects a layer the
    checker allowed (or would reject it once training starts: an
    ``orthogonal_regularizer`` on a conv kernel, a constraint's axis
    beyond its weight's rank).

    >>> import netspec
    >>> build_model(netspec.load_source("network n { input x: [3]\\n dense(2) }")).output.shape
    (None, 2)
    """
    net = _report(net)
    graph = net.graph
    assert graph is not None
    problems = [_keras_limits(node, net.layers[node.name]) for node in graph.nodes]
    problems = [p for p in problems if p is not None]
    if problems:
        raise NetspecError(problems)
    ctx = _Context(graph)
    keras = ctx.keras
    tensors = {i.name: keras.Input(shape=i.shape, name=i.name) for i in graph.inputs}
    for node in graph.nodes:
        try:
            glu = node.op != "activation" and getattr(node.attrs, "activation", None) == "glu"
            lowered = dataclasses.replace(node, attrs=dataclasses.replace(node.attrs, activation="linear")) \
                if glu else node
            out = LOWERINGS[node.op](lowered, [tensors[i] for i in node.inputs], ctx)
            if glu:  # glu halves the last axis, which Keras's own activation= does not report
                out = _keras_layers.activation_layer("glu", {}, ctx.helper_name(f"{node.name}_glu"), ctx)(out)
            tensors[node.name] = out
        except (ValueError, TypeError) as err:  # Keras rejects something the checker allowed
            raise NetspecError([Diagnostic.error(
                "E605", f"layer {node.name!r} ({node.op}): Keras cannot build it: {err}", node.span)]) from None
    # One input or output stays a plain tensor (model.input / model.output, as before); several
    # are lists in the network's order, named as the spec names them.
    ins = [tensors[i.name] for i in graph.inputs]
    outs = [tensors[o] for o in graph.outputs]
    model = keras.Model(inputs=ins[0] if len(ins) == 1 else ins, outputs=outs[0] if len(outs) == 1 else outs,
                        name=graph.name)
    for node in graph.nodes:
        if not node.trainable:
            model.get_layer(node.name).trainable = False
    return model


def to_keras(net: NetworkReport | Graph, weights: Mapping[str, Any] | str | os.PathLike | None = None,
             seed: int = 0) -> Any:
    """The network (checked, or a graph to check) as a ``keras.Model`` with the given weights.

    ``weights`` is a weights dict (``"layer/weight" -> array``), a ``.npz``
    or ``.keras`` path, or None for fresh ones from
    :func:`netspec.targets.weights.init_weights` with ``seed``.
    Each input is ``keras.Input(shape=input.shape, name=input.name)`` with
    ``?`` sizes as None; a network with several inputs or outputs is a
    functional model over lists of them, in the spec's order.

    >>> import netspec, numpy as np
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, name='fc') }")
    >>> w = {"fc/kernel": np.ones((3, 2), np.float32), "fc/bias": np.zeros(2, np.float32)}
    >>> to_keras(net, w).predict(np.ones((1, 3), np.float32), verbose=0).tolist()
    [[3.0, 3.0]]
    """
    from .weights import need_net, need_weights

    need_net("to_keras(net, weights=None, seed=0)", net, graphs=True)
    need_weights("to_keras(net, weights=None, seed=0)", weights, paths=True, optional=True)
    net = _report(net)
    values = _resolve(net, weights, seed)
    model = build_model(net)
    weights_to_keras(model, net, values)
    return model


# --- weights both ways --------------------------------------------------------------------------


def _layer(model: Any, name: str, what: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        raise NetspecError([Diagnostic.error(
            "E601", f"the Keras model{what} has no layer {name!r}, which the network needs")]) from None


def weights_to_keras(model: Any, net: NetworkReport, weights: Mapping[str, Any]) -> None:
    """Load a weights dict (the contract's format, checked first: E601) into the model's layers.

    Each weight goes to the variable of the same name in the layer of the
    same name, whatever the order Keras keeps them in.

    >>> import netspec, numpy as np
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, name='fc') }")
    >>> model = build_model(net)
    >>> weights_to_keras(model, net, {"fc/kernel": np.ones((3, 2)), "fc/bias": np.ones(2)})
    >>> model.get_layer("fc").bias.numpy().tolist()
    [1.0, 1.0]
    """
    from .weights import validate_weights

    values = validate_weights(net, weights)
    for node in net.graph.nodes:  # type: ignore[union-attr]
        specs = net.layers[node.name].weights
        if not specs:
            continue
        layer_vars = _layer(model, node.name, "").weights
        names = _keras_layers.keras_weight_names(node, [v.name for v in layer_vars])
        variables = dict(zip(names, layer_vars))
        for spec in specs:
            var = variables.get(spec.name)
            if var is None and spec.name == "kernel":
                var = variables.get("depthwise_kernel")  # older Keras names a depthwise kernel so
            key = f"{node.name}/{spec.name}"
            if var is None or tuple(var.shape) != values[key].shape:
                raise NetspecError([Diagnostic.error(
                    "E601", f"Keras layer {node.name!r} has no weight {spec.name!r} of shape "
                    f"{values[key].shape} (it has: "
                    f"{', '.join(f'{v.name} {tuple(v.shape)}' for v in variables.values()) or 'none'})")])
            var.assign(values[key].astype(var.dtype) if var.dtype != "float32" else values[key])


def weights_from_keras(net: NetworkReport, path_or_model: str | os.PathLike | Any) -> dict[str, np.ndarray]:
    """The weights of a trained ``.keras`` file (or a loaded model) in the contract's format.

    Reads the layer named as each node and its variables by Keras name; the
    result is checked against the network (E601 naming the layer, the
    weight and both shapes).  An unreadable file is E603.

    >>> import netspec, tempfile, os
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2, name='fc') }")
    >>> p = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> compile_keras(net, p, seed=1)
    >>> sorted((k, v.shape) for k, v in weights_from_keras(net, p).items())
    [('fc/bias', (2,)), ('fc/kernel', (3, 2))]
    """
    from .weights import need_net, validate_weights

    need_net("weights_from_keras(net, path_or_model)", net)
    keras = import_keras()
    source = None
    model = path_or_model
    if isinstance(path_or_model, (str, os.PathLike)):
        path = os.fspath(path_or_model)
        source = os.path.basename(path)
        if not os.path.isfile(path):
            raise NetspecError([Diagnostic.error("E603", f"cannot read Keras model {path}: no such file")])
        from ..core.fileio import content_problem

        problem = content_problem(path, "keras")
        if problem is not None:
            raise NetspecError([Diagnostic.error("E603", f"cannot read Keras model {path}: {problem}")])
        try:
            model = keras.models.load_model(path, compile=False, custom_objects=_keras_layers.custom_objects())
        except Exception as err:  # Keras raises many kinds for a bad archive
            raise NetspecError([Diagnostic.error(
                "E603", f"cannot read Keras model {path}: {type(err).__name__}: {err}")]) from None
    what = f" {source}" if source else ""
    out: dict[str, np.ndarray] = {}
    for node in net.graph.nodes:  # type: ignore[union-attr]
        if not net.layers[node.name].weights:
            continue
        layer_vars = _layer(model, node.name, what).weights
        for name, var in zip(_keras_layers.keras_weight_names(node, [v.name for v in layer_vars]), layer_vars):
            out[f"{node.name}/{name}"] = np.asarray(var.numpy(), dtype=np.float32)
    return validate_weights(net, out, source)


# --- files ----------------------------------------------------------------------------------------


def save_model(model: Any, output: str | os.PathLike) -> None:
    """Write a Keras model to a ``.keras`` file, whole or not at all (E603 on failure).

    >>> import netspec, tempfile, os
    >>> net = netspec.load_source("network n { input x: [3]\\n dense(2) }")
    >>> save_model(to_keras(net), os.path.join(tempfile.mkdtemp(), "model.h5"))
    Traceback (most recent call last):
    ...
    netspec.core.diagnostics.NetspecError: error[E603]: cannot write model.h5: Keras 3 saves models as .keras files; name the output 'model.keras'
    """
    output = os.fspath(output)
    base, ext = os.path.splitext(output)
    if ext != ".keras":
        raise NetspecError([Diagnostic.error(
            "E603", f"cannot write {os.path.basename(output)}: Keras 3 saves models as .keras files; "
            f"name the output {os.path.basename(base) + '.keras'!r}")])
    try:
        with atomic_output(output, suffix=".keras") as tmp:
            model.save(tmp)
    except OSError as err:
        raise NetspecError([Diagnostic.error("E603", f"cannot write {output}: {err}")]) from None


def compile_keras(net: NetworkReport, output: str | os.PathLike, *, weights: str | os.PathLike | None = None,
                  seed: int = 0) -> None:
    """``netspec compile --target keras``: build the model and save it as ``.keras``.

    ``weights`` is a ``.npz`` in the contract's format or a trained
    ``.keras``; without it the weights are fresh, drawn with ``seed``.

    >>> import netspec, tempfile, os, keras
    >>> net = netspec.load_source("network n { input x: [8, 8, 1]\\n conv2d(2, 3) }")
    >>> p = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> compile_keras(net, p)
    >>> keras.models.load_model(p).output.shape
    (None, 6, 6, 2)
    """
    save_model(to_keras(net, weights, seed), output)
