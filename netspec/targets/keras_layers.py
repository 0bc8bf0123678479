"""Keras lowerings of version 2's layer ops (see :mod:`netspec.core.ops_layers`).

Each op becomes its Keras layer (``LayerNormalization``, ``GroupNormalization``,
``Normalization``, ``Rescaling``, ``UnitNormalization``, ``PReLU``,
``Subtract``/``Average``/``Maximum``/``Minimum``, the dropouts and noises,
``Permute``, ``Activation``) named as ``check`` names it.  Three need more:

- ``layer_scale`` is ``keras.applications.convnext.LayerScale`` (what
  ``keras.applications`` ConvNeXt uses; its one weight, which Keras calls
  ``variable``, is the contract's ``gamma``).
- A merge with a number operand (``add(x, 3)``) is a :class:`NumberMerge`
  layer that folds its operands left exactly as Keras's merge layers do
  (``Average`` divides the sum by the operand count).
- An activation op with arguments Keras's ``Activation`` cannot pass
  (``celu(alpha=0.5)``, ``threshold(0.1, 0)``, ``glu(axis=1)``), and ``glu``
  itself (whose real output is half as wide, which ``Activation`` does not
  report), is an :class:`ActivationWithArgs` layer.

Both custom classes are registered with Keras under the package ``netspec``:
a ``.keras`` file that holds them loads where netspec is imported (see
:func:`custom_objects`).

>>> import netspec
>>> from netspec.targets.keras_model import build_model
>>> net = netspec.load_source("network n { input x: [4]\\n y = dense(4)\\n add(y, 3, name='plus3') }")
>>> type(build_model(net).get_layer("plus3")).__name__
'NumberMerge'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..core.ir import Node
from ..core.ops_layers import MERGE_OPS, NEW_ACTIVATION_OPS, merge_operands

__all__ = ["LOWERINGS", "custom_objects", "keras_weight_names"]

_ACTIVATION_DEFAULTS = {
    "log_softmax": {"axis": -1}, "sparsemax": {"axis": -1}, "glu": {"axis": -1}, "celu": {"alpha": 1.0},
    "soft_shrink": {"threshold": 0.5}, "hard_shrink": {"threshold": 0.5}, "squareplus": {"b": 4.0},
}


@functools.cache
def custom_objects() -> dict[str, Any]:
    """The custom Keras classes netspec's models may hold, by name, registered with Keras.

    >>> sorted(custom_objects())
    ['ActivationWithArgs', 'LayerScale', 'NumberMerge']
    """
    from .keras_model import import_keras

    keras = import_keras()
    from keras.src.applications.convnext import LayerScale

    ops = keras.ops

    @keras.saving.register_keras_serializable(package="netspec")
    class NumberMerge(keras.layers.Layer):
        """A Keras merge (``op``) whose operands include numbers: ``operands`` holds None for each tensor."""

        def __init__(self, op: str, operands: list, **kwargs: Any):
            super().__init__(**kwargs)
            self.op = op
            self.operands = list(operands)

        def call(self, inputs: Any) -> Any:
            tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            rank = max(len(t.shape) for t in tensors)
            tensors = iter([_expand(ops, t, rank) for t in tensors])
            values = [next(tensors) if v is None else ops.cast(v, self.compute_dtype) for v in self.operands]
            fold = {"add": ops.add, "average": ops.add, "subtract": ops.subtract, "multiply": ops.multiply,
                    "maximum": ops.maximum, "minimum": ops.minimum}[self.op]
            out = values[0]
            for v in values[1:]:
                out = fold(out, v)
            if self.op == "average":
                out = out / len(values)
            return out

        def compute_output_shape(self, input_shape: Any) -> Any:
            shapes = input_shape if isinstance(input_shape, list) and isinstance(input_shape[0], (list, tuple)) \
                else [input_shape]
            from ..core.ops_layers import broadcast_merge

            return (shapes[0][0], *broadcast_merge(self.op, [tuple(s[1:]) for s in shapes]))

        def get_config(self) -> dict:
            return {**super().get_config(), "op": self.op, "operands": self.operands}

    @keras.saving.register_keras_serializable(package="netspec")
    class ActivationWithArgs(keras.layers.Layer):
        """``keras.activations.NAME(x, **arguments)``, with the real output shape (``glu`` halves its axis)."""

        def __init__(self, activation: str, arguments: dict | None = None, **kwargs: Any):
            super().__init__(**kwargs)
            self.activation = activation
            self.arguments = dict(arguments or {})

        def call(self, x: Any) -> Any:
            fn = getattr(keras.activations, self.activation)
            return fn(x, **self.arguments)

        def compute_output_shape(self, input_shape: Any) -> Any:
            if self.activation != "glu":
                return input_shape
            shape = list(input_shape)
            axis = self.arguments.get("axis", -1)
            if shape[axis] is not None:
                shape[axis] //= 2
            return tuple(shape)

        def get_config(self) -> dict:
            return {**super().get_config(), "activation": self.activation, "arguments": self.arguments}

    return {"NumberMerge": NumberMerge, "ActivationWithArgs": ActivationWithArgs, "LayerScale": LayerScale}


def _expand(ops: Any, t: Any, rank: int) -> Any:
    while len(t.shape) < rank:
        t = ops.expand_dims(t, axis=1)
    return t


def keras_weight_names(node: Node, names: list[str]) -> list[str]:
    """The contract's weight names for a Keras layer's variables (``layer_scale``: ``gamma``).

    >>> keras_weight_names(Node("s", "layer_scale", ("x",), None), ["variable_3"])
    ['gamma']
    """
    if node.op == "layer_scale":
        return ["gamma"]
    return names


def _objects() -> tuple[Any, Any, Any]:
    from .keras_model import constraint, initializer, regularizer

    return initializer, regularizer, constraint


def _axis(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _layernorm(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    init, reg, con = _objects()
    kwargs = {"rms_scaling": True} if a.rms_scaling else {}
    return ctx.layers.LayerNormalization(
        axis=_axis(a.axis), epsilon=a.epsilon, center=a.center, scale=a.scale,
        beta_initializer=init(a.beta_initializer), gamma_initializer=init(a.gamma_initializer),
        beta_regularizer=reg(a.beta_regularizer), gamma_regularizer=reg(a.gamma_regularizer),
        beta_constraint=con(a.beta_constraint), gamma_constraint=con(a.gamma_constraint),
        name=node.name, **kwargs,
    )(inputs[0])


def _groupnorm(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    init, reg, con = _objects()
    return ctx.layers.GroupNormalization(
        groups=a.groups, axis=a.axis, epsilon=a.epsilon, center=a.center, scale=a.scale,
        beta_initializer=init(a.beta_initializer), gamma_initializer=init(a.gamma_initializer),
        beta_regularizer=reg(a.beta_regularizer), gamma_regularizer=reg(a.gamma_regularizer),
        beta_constraint=con(a.beta_constraint), gamma_constraint=con(a.gamma_constraint),
        name=node.name,
    )(inputs[0])


def _normalization(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    return ctx.layers.Normalization(axis=_axis(a.axis), mean=_axis(a.mean), variance=_axis(a.variance),
                                    invert=a.invert, name=node.name)(inputs[0])


def _rescaling(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    return ctx.layers.Rescaling(_axis(a.scale), _axis(a.offset), name=node.name)(inputs[0])


def _unit_norm(node: Node, inputs: list, ctx: Any) -> Any:
    return ctx.layers.UnitNormalization(axis=_axis(node.attrs.axis), name=node.name)(inputs[0])


def _layer_scale(node: Node, inputs: list, ctx: Any) -> Any:
    cls = custom_objects()["LayerScale"]
    return cls(node.attrs.init_values, int(inputs[0].shape[-1]), name=node.name)(inputs[0])


def _prelu(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    init, reg, con = _objects()
    return ctx.layers.PReLU(alpha_initializer=init(a.alpha_initializer), alpha_regularizer=reg(a.alpha_regularizer),
                            alpha_constraint=con(a.alpha_constraint), shared_axes=_axis(a.shared_axes),
                            name=node.name)(inputs[0])


_MERGE_CLASSES = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "average": "Average",
                  "maximum": "Maximum", "minimum": "Minimum"}


def _merge(op: str) -> Callable[[Node, list, Any], Any]:
    def lower(node: Node, inputs: list, ctx: Any) -> Any:
        constants = getattr(node.attrs, "constants", ())
        if not constants:
            return getattr(ctx.layers, _MERGE_CLASSES[op])(name=node.name)(inputs)
        operands = [None if kind == "tensor" else value for kind, value in merge_operands(node.inputs, node.attrs)]
        layer = custom_objects()["NumberMerge"](op, operands, name=node.name)
        return layer(inputs if len(inputs) > 1 else inputs[0])
    return lower


def _spatial_dropout(cls: str) -> Callable[[Node, list, Any], Any]:
    def lower(node: Node, inputs: list, ctx: Any) -> Any:
        a = node.attrs
        kwargs = {"data_format": a.data_format} if hasattr(a, "data_format") else {}
        return getattr(ctx.layers, cls)(a.rate, seed=a.seed, name=node.name, **kwargs)(inputs[0])
    return lower


def _gaussian_noise(node: Node, inputs: list, ctx: Any) -> Any:
    return ctx.layers.GaussianNoise(node.attrs.stddev, seed=node.attrs.seed, name=node.name)(inputs[0])


def _gaussian_dropout(node: Node, inputs: list, ctx: Any) -> Any:
    return ctx.layers.GaussianDropout(node.attrs.rate, seed=node.attrs.seed, name=node.name)(inputs[0])


def _alpha_dropout(node: Node, inputs: list, ctx: Any) -> Any:
    a = node.attrs
    return ctx.layers.AlphaDropout(a.rate, noise_shape=a.noise_shape, seed=a.seed, name=node.name)(inputs[0])


def _permute(node: Node, inputs: list, ctx: Any) -> Any:
    return ctx.layers.Permute(node.attrs.dims, name=node.name)(inputs[0])


def activation_layer(name: str, arguments: dict, layer_name: str, ctx: Any) -> Any:
    """``Activation(name)`` where Keras's own layer computes it, else :class:`ActivationWithArgs`."""
    if name != "glu" and arguments == _ACTIVATION_DEFAULTS.get(name, {}) and name != "threshold":
        return ctx.layers.Activation(name, name=layer_name)
    return custom_objects()["ActivationWithArgs"](name, arguments, name=layer_name)


def _activation_op(name: str, *fields: str) -> Callable[[Node, list, Any], Any]:
    def lower(node: Node, inputs: list, ctx: Any) -> Any:
        arguments = {f: getattr(node.attrs, f) for f in fields}
        return activation_layer(name, arguments, node.name, ctx)(inputs[0])
    return lower


def _activation(original: Callable[[Node, list, Any], Any]) -> Callable[[Node, list, Any], Any]:
    def lower(node: Node, inputs: list, ctx: Any) -> Any:
        if node.attrs.activation == "glu":
            return activation_layer("glu", {}, node.name, ctx)(inputs[0])
        return original(node, inputs, ctx)
    return lower


#: Op name -> lowering, for version 2's layer ops (and the merges, now with numbers).
LOWERINGS: dict[str, Callable[[Node, list, Any], Any]] = {
    "layernorm": _layernorm,
    "groupnorm": _groupnorm,
    "normalization": _normalization,
    "rescaling": _rescaling,
    "unit_normalization": _unit_norm,
    "layer_scale": _layer_scale,
    "prelu": _prelu,
    **{op: _merge(op) for op in MERGE_OPS},
    "spatial_dropout1d": _spatial_dropout("SpatialDropout1D"),
    "spatial_dropout2d": _spatial_dropout("SpatialDropout2D"),
    "spatial_dropout3d": _spatial_dropout("SpatialDropout3D"),
    "gaussian_noise": _gaussian_noise,
    "gaussian_dropout": _gaussian_dropout,
    "alpha_dropout": _alpha_dropout,
    "permute": _permute,
    "log_softmax": _activation_op("log_softmax", "axis"),
    "sparsemax": _activation_op("sparsemax", "axis"),
    "glu": _activation_op("glu", "axis"),
    "celu": _activation_op("celu", "alpha"),
    "soft_shrink": _activation_op("soft_shrink", "threshold"),
    "hard_shrink": _activation_op("hard_shrink", "threshold"),
    "squareplus": _activation_op("squareplus", "b"),
    "threshold": _activation_op("threshold", "threshold", "default_value"),
    **{name: _activation_op(name) for name in NEW_ACTIVATION_OPS},
}


def install(lowerings: dict) -> None:
    """Add this module's lowerings to the Keras target's table (called by :mod:`netspec.targets.keras_model`)."""
    lowerings["activation"] = _activation(lowerings["activation"])
    lowerings.update(LOWERINGS)
