"""Importers: existing models (Keras ``.keras``/``.h5``, ONNX) as readable, checked specs.

Each source format has its own reader module that produces an
:class:`~netspec.importers.model.ImportedModel`; the writer turns it into
``.net`` text.  The core and ``netspec check`` import none of this.
"""
