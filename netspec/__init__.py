"""netspec: describe CNNs as text, check every size and count, compile to NumPy, Keras and ONNX.

The library in brief (see ``docs/api.md``):

>>> import netspec
>>> report = netspec.check_source('''
... network tiny {
...     input x: [28, 28, 1]
...     conv2d(8, 3, padding='same', activation='relu')
...     flatten()
...     dense(10)
... }''')
>>> net = report.networks[0]
>>> net.output_shape, net.total_params
((10,), 62810)

Importing netspec loads neither NumPy, TensorFlow nor ONNX; the targets
load them when asked for.
"""

from ._dccache import cached_dataclasses as _cached_dataclasses

# The dataclasses' generated methods come precompiled (see netspec/_dccache.py).
with _cached_dataclasses():
    from .core.check import GraphChecker, LayerInfo, NetworkReport, check_graph
    from .core.diagnostics import CODES, Diagnostic, NetspecError, Note
    from .core.ir import Dim, Graph, Input, Node, Shape
    from .core.ops import OPS, OpDef, WeightSpec, canonical_op
    from .core.source import Source, Span
    from .frontend.elaborate import FileReport, check_file, check_source, load, load_source
    from .frontend.printer import to_source

__version__ = "0.1.0"

__all__ = [
    # IR
    "Dim",
    "Graph",
    "Input",
    "Node",
    "Shape",
    # ops
    "OPS",
    "OpDef",
    "WeightSpec",
    "canonical_op",
    # loading and checking
    "FileReport",
    "GraphChecker",
    "LayerInfo",
    "NetworkReport",
    "check_file",
    "check_graph",
    "check_source",
    "load",
    "load_source",
    "to_source",
    # diagnostics
    "CODES",
    "Diagnostic",
    "NetspecError",
    "Note",
    "Source",
    "Span",
    "__version__",
]
