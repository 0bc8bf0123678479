"""The core of netspec: source spans, diagnostics, the IR, the op table and the checker.

Nothing here imports the frontend, the analyses or the targets; they all
import this.  ``netspec check`` needs only this package and the frontend.
"""

# The op table first: ops.py registers the spatial ops of ops_spatial.py, which imports ops.py, so
# loading ops.py before anything else keeps that cycle in one order whichever module is asked for.
from . import ops as _ops  # noqa: E402,F401
