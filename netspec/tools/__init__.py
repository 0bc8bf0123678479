"""Tools built on the checker: the formatter (:mod:`netspec.tools.fmt`) and the language server
(:mod:`netspec.tools.lsp`)."""
