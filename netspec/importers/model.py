"""The importers' neutral model: layers with netspec ops and arguments, before any text.

Every importer (Keras, ONNX) turns its file into an :class:`ImportedModel`;
:mod:`netspec.importers.writer` turns that into ``.net`` text, and
:mod:`netspec.importers.weights` into the contract's weights.

>>> m = ImportedModel("tiny", [ImportedInput("x", (4,))],
...                   [ImportedLayer("fc", "dense", {"units": 2}, ("x",))], ["fc"])
>>> m.layer("fc").op, m.consumers()["x"]
('dense', ['fc'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ImportProblem", "ImportedInput", "ImportedLayer", "ImportedModel"]


@dataclass
class ImportedInput:
    """One input of the model: its name, shape without the batch axis, and layout."""

    name: str
    shape: tuple[int | None, ...]
    data_format: str = "channels_last"


@dataclass
class ImportedLayer:
    """One layer: name, netspec op, its arguments as written in a spec (Keras names), input tensors.

    ``args`` hold spec values (tuples, numbers, strings, booleans, ``None``,
    :class:`~netspec.core.argtypes.CallValue` for initializers);
    ``weights`` lists the layer's arrays in Keras order, when they were read;
    ``trainable`` is False for a frozen layer.
    """

    name: str
    op: str
    args: dict[str, Any]
    inputs: tuple[str, ...]
    trainable: bool = True
    weights: list[Any] | None = None
    origin: str = ""


@dataclass
class ImportedModel:
    """A whole imported model; ``outputs`` name the output tensors (layer names)."""

    name: str
    inputs: list[ImportedInput]
    layers: list[ImportedLayer]
    outputs: list[str]
    #: Output shapes (without batch) that the model file records, by layer name, to verify against.
    expected_shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    #: Reads the weights of every layer on demand (set by importers that can).
    load_weights: Callable[[ImportedModel], None] | None = field(default=None, repr=False)

    def layer(self, name: str) -> ImportedLayer:
        """The layer called ``name`` (KeyError if none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def consumers(self) -> dict[str, list[str]]:
        """Tensor name -> names of the layers that read it, in order."""
        out: dict[str, list[str]] = {i.name: [] for i in self.inputs}
        for layer in self.layers:
            out.setdefault(layer.name, [])
            for t in layer.inputs:
                out.setdefault(t, []).append(layer.name)
        return out


class ImportProblem(Exception):
    """Something in a model file that netspec cannot read or express.

    ``problems`` lists ``(where, message)`` pairs, one per layer or part, so
    that every unsupported layer is named at once.
    """

    def __init__(self, path: str, problems: list[tuple[str, str]], code: str = "E701"):
        super().__init__("; ".join(f"{w}: {m}" for w, m in problems))
        self.path = path
        self.problems = problems
        self.code = code
