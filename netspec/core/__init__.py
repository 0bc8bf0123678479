"""The core of netspec: source spans, diagnostics, the IR, the op table and the checker.

Nothing here imports the frontend, the analyses or the targets; they all
import this.  ``netspec check`` needs only this package and the frontend.
"""
