"""``netspec lsp``: a Language Server Protocol server for ``.net`` files (needs the ``lsp`` extra).

:mod:`~netspec.tools.lsp.analysis` answers every question in offsets and
strings; :mod:`~netspec.tools.lsp.server` speaks LSP (pygls) on stdio.
"""
