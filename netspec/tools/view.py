"""``netspec view``: open a network in Netron, from its ONNX export (the optional ``view`` extra).

The network is exported with the ONNX target (fresh weights from ``seed``,
or the given weights) to ``output`` or a temporary file, which Netron then
serves; ``browse=False`` only serves it and returns the address.

>>> import netspec, os, tempfile
>>> net = netspec.load_source("network n {\\n input x: [4]\\n dense(2)\\n}\\n")
>>> path = export_for_view(net, os.path.join(tempfile.mkdtemp(), "n.onnx"))
>>> os.path.getsize(path) > 0
True
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..core.check import NetworkReport

__all__ = ["export_for_view", "open_in_netron"]


def export_for_view(net: NetworkReport, output: str | os.PathLike | None = None,
                    weights: str | os.PathLike | None = None, seed: int = 0) -> str:
    """Write the network's ONNX model to ``output`` (or a new temporary file) and return its path."""
    from ..targets import compile_target

    if output is None:
        folder = tempfile.mkdtemp(prefix="netspec-view-")
        output = os.path.join(folder, f"{net.name}.onnx")
    compile_target(net, "onnx", output, weights=weights, seed=seed)
    return os.fspath(output)


def open_in_netron(path: str, browse: bool = True, port: int | None = None, netron: Any = None) -> Any:
    """Serve ``path`` with Netron (opening a browser unless ``browse`` is false); returns its address.

    Raises ImportError when Netron is not installed (``pip install 'netspec[view]'``).
    """
    if netron is None:
        import netron  # type: ignore[import-not-found, no-redef]
    address = ("localhost", port) if port is not None else None
    return netron.start(path, address=address, browse=browse)
