"""The netspec language server (pygls, on stdio): ``netspec lsp``.

Diagnostics as the user types (debounced; every error and warning with
its range and notes, across imported files, unsaved buffers included),
hover, inlay hints with each statement's output shape, go to definition,
completion and formatting.  All answers come from
:mod:`netspec.tools.lsp.analysis`; this module converts offsets to LSP
positions (UTF-16 code units, as LSP counts them) and back.

The debounce delay is ``NETSPEC_LSP_DEBOUNCE_MS`` milliseconds (default
150).

>>> p = to_position("a\\nb😀c", 4)
>>> p.line, p.character
(1, 3)
>>> to_offset("a\\nb😀c", Position(line=1, character=3))
4
>>> to_position("a\\nb😀c", 4, encoding="utf-8").character
5
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import time
from pathlib import Path
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from ... import __version__
from ...core.diagnostics import Diagnostic, NetspecError
from ...core.source import Span
from ..fmt import format_source
from .analysis import (
    Analysis,
    Files,
    analyze,
    completions,
    definition,
    hover,
    inlay_hints,
    line_starts,
)

__all__ = ["NetspecServer", "main", "to_offset", "to_position"]

log = logging.getLogger(__name__)

Position = T.Position


#: The position encoding of this process's client ("utf-16" unless the client asked for another).
ENCODING = ["utf-16"]


def _unit(ch: str, encoding: str) -> int:
    """Code units of one character in the position encoding."""
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def to_position(text: str, offset: int, starts: list[int] | None = None, encoding: str | None = None) -> T.Position:
    """The LSP position (0-based line, column in the encoding's code units) of a character offset."""
    encoding = encoding or ENCODING[0]
    starts = starts if starts is not None else line_starts(text)
    offset = max(0, min(offset, len(text)))
    line = bisect.bisect_right(starts, offset) - 1
    prefix = text[starts[line]:offset]
    units = len(prefix) if prefix.isascii() else sum(_unit(ch, encoding) for ch in prefix)
    return T.Position(line=line, character=units)


def to_offset(text: str, pos: T.Position, starts: list[int] | None = None, encoding: str | None = None) -> int:
    """The character offset of an LSP position (clamped to the line)."""
    encoding = encoding or ENCODING[0]
    starts = starts if starts is not None else line_starts(text)
    if pos.line >= len(starts):
        return len(text)
    start = starts[pos.line]
    end = starts[pos.line + 1] - 1 if pos.line + 1 < len(starts) else len(text)
    units = 0
    for i in range(start, end):
        if units >= pos.character:
            return i
        units += _unit(text[i], encoding)
    return end


def _range(text: str, start: int, end: int, starts: list[int] | None = None) -> T.Range:
    starts = starts if starts is not None else line_starts(text)
    return T.Range(start=to_position(text, start, starts), end=to_position(text, end, starts))


class NetspecServer(LanguageServer):
    """The language server: open documents, their analyses, and debounced checks."""

    def __init__(self) -> None:
        super().__init__("netspec", __version__)
        self.files = Files()
        self.analyses: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}  # the last analysis of each document that parsed
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.debounce = float(os.environ.get("NETSPEC_LSP_DEBOUNCE_MS", "150")) / 1000
        self.last_check_ms: float | None = None

    # documents
    def path_of(self, uri: str) -> Path:
        """The file a URI names (an untitled buffer lives in the working directory)."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return Files.key(path if path else Path.cwd() / (uri.rsplit("/", 1)[-1] or "untitled.net"))

    def text_of(self, uri: str) -> str:
        return self.workspace.get_text_document(uri).source

    def schedule(self, uri: str) -> None:
        """Check ``uri`` after the debounce delay; a newer edit restarts the wait."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_event_loop()
        self.pending[uri] = loop.call_later(self.debounce, self.check_now, uri)

    def current(self, uri: str) -> Analysis | None:
        """The analysis of the document as it is now (checked at once if an edit waits)."""
        if uri in self.pending or uri not in self.analyses:
            self.check_now(uri)
        return self.analyses.get(uri)

    def check_now(self, uri: str, follow: bool = True) -> None:
        """Check one open document, publish its diagnostics, then re-check those importing it."""
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        try:
            text = self.text_of(uri)
        except Exception:  # noqa: BLE001 - closed meanwhile
            return
        path = self.path_of(uri)
        self.files.set_buffer(path, text)
        began = time.perf_counter()
        try:
            doc = analyze(self.files, path, text)
        except Exception as err:  # noqa: BLE001 - an editor must never lose its server
            log.exception("checking %s failed", uri)
            self.window_log_message(T.LogMessageParams(T.MessageType.Error, f"netspec: checking failed: {err!r}"))
            return
        self.last_check_ms = (time.perf_counter() - began) * 1e3
        self.analyses[uri] = doc
        if doc.tree is not None:
            self.parsed[uri] = doc
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
            uri=uri, diagnostics=lsp_diagnostics(doc), version=self.workspace.get_text_document(uri).version))
        self._refresh_hints()
        if follow:
            for other, analysis in list(self.analyses.items()):
                if other != uri and path.resolve() in analysis.imports:
                    self.check_now(other, follow=False)

    def _refresh_hints(self) -> None:
        caps = self.client_capabilities
        ws = getattr(caps, "workspace", None)
        hints = getattr(ws, "inlay_hint", None) if ws is not None else None
        if hints is not None and getattr(hints, "refresh_support", False):
            try:
                self.workspace_inlay_hint_refresh(None)
            except Exception:  # noqa: BLE001
                log.debug("inlay hint refresh failed", exc_info=True)


def _uri(path: str) -> str:
    return from_fs_path(path) or path


def _diag_range(doc: Analysis, span: Span | None, starts: list[int]) -> T.Range:
    if span is None:
        return T.Range(start=T.Position(line=0, character=0), end=T.Position(line=0, character=0))
    end = span.end
    if end <= span.start and span.start < len(doc.text) and doc.text[span.start] != "\n":
        end = span.start + 1  # give an empty span one character, so the editor can show it
    return _range(doc.text, span.start, end, starts)


def lsp_diagnostic(doc: Analysis, d: Diagnostic, starts: list[int]) -> T.Diagnostic:
    """One netspec diagnostic as LSP sees it, anchored in ``doc`` (at a call site or import when the
    problem lies in an imported file)."""
    span = d.span
    message = d.message
    if span is not None and not doc.is_here(span):
        here = next((n.span for n in d.notes if doc.is_here(n.span)), None)
        where = f"{span.source.name}:{span.line}:{span.column}"
        message = f"{message} (in {where})"
        if here is None and doc.tree is not None:
            from ...frontend import surface as S

            here = next((i.span for i in doc.tree.items if isinstance(i, S.Import)), None)
        span_here = here
    else:
        span_here = span
    related = []
    for note in d.notes:
        if note.span is None:
            continue
        text = note.span.source.text
        uri = _uri(doc.path.as_posix()) if doc.is_here(note.span) else _uri(note.span.source.name)
        related.append(T.DiagnosticRelatedInformation(
            location=T.Location(uri=uri, range=_range(text, note.span.start, note.span.end)), message=note.message))
    if span is not None and not doc.is_here(span):
        related.insert(0, T.DiagnosticRelatedInformation(
            location=T.Location(uri=_uri(span.source.name), range=_range(span.source.text, span.start, span.end)),
            message=d.message))
    return T.Diagnostic(
        range=_diag_range(doc, span_here, starts),
        message=message,
        severity=T.DiagnosticSeverity.Error if d.is_error else T.DiagnosticSeverity.Warning,
        code=d.code,
        source="netspec",
        related_information=related or None,
    )


def lsp_diagnostics(doc: Analysis) -> list[T.Diagnostic]:
    """Every error and warning of an analysis, as LSP diagnostics."""
    starts = line_starts(doc.text)
    return [lsp_diagnostic(doc, d, starts) for d in doc.diagnostics]


# --- the server and its features --------------------------------------------------------------


def build_server() -> NetspecServer:
    """A server with every feature registered (one per call, so tests may run several)."""
    server = NetspecServer()

    @server.feature(T.INITIALIZED)
    def initialized(ls: NetspecServer, params: T.InitializedParams) -> None:
        # pygls picked the client's preferred position encoding; count columns in it.
        chosen = getattr(ls.workspace, "position_encoding", None) or "utf-16"
        encoding = str(getattr(chosen, "value", chosen))
        ENCODING[0] = encoding if encoding in ("utf-8", "utf-16", "utf-32") else "utf-16"

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NetspecServer, params: T.DidOpenTextDocumentParams) -> None:
        ls.check_now(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: NetspecServer, params: T.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.files.set_buffer(ls.path_of(uri), ls.text_of(uri))
        ls.schedule(uri)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: NetspecServer, params: T.DidSaveTextDocumentParams) -> None:
        ls.check_now(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NetspecServer, params: T.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        handle = ls.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        path = ls.path_of(uri)
        ls.files.drop_buffer(path)
        ls.analyses.pop(uri, None)
        ls.parsed.pop(uri, None)
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
        for other, analysis in list(ls.analyses.items()):  # importers now see the file on disk
            if path.resolve() in analysis.imports:
                ls.check_now(other, follow=False)

    @server.feature(T.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched(ls: NetspecServer, params: T.DidChangeWatchedFilesParams) -> None:
        # A file changed on disk (saved elsewhere, a git checkout): check every open document again;
        # the file cache notices what changed by size and modification time.
        for uri in list(ls.analyses):
            ls.schedule(uri)

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: NetspecServer, params: T.HoverParams) -> T.Hover | None:
        doc = ls.current(params.text_document.uri)
        if doc is None:
            return None
        text = hover(doc, to_offset(doc.text, params.position))
        if text is None:
            return None
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text))

    @server.feature(T.TEXT_DOCUMENT_INLAY_HINT, T.InlayHintOptions(resolve_provider=False))
    def on_inlay_hints(ls: NetspecServer, params: T.InlayHintParams) -> list[T.InlayHint]:
        doc = ls.current(params.text_document.uri)
        if doc is None:
            return []
        starts = line_starts(doc.text)
        out = []
        for h in inlay_hints(doc, params.range.start.line, params.range.end.line):
            out.append(T.InlayHint(position=to_position(doc.text, h.offset, starts), label="→ " + h.label,
                                   kind=T.InlayHintKind.Type, padding_left=True, tooltip=h.tooltip or None))
        return out

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: NetspecServer, params: T.DefinitionParams) -> T.Location | None:
        doc = ls.current(params.text_document.uri)
        if doc is None:
            return None
        target = definition(doc, to_offset(doc.text, params.position))
        if target is None:
            return None
        uri = params.text_document.uri if target.path == doc.path else _uri(str(target.path))
        return T.Location(uri=uri, range=_range(target.text, target.start, target.end))

    kinds = {"op": T.CompletionItemKind.Function, "block": T.CompletionItemKind.Class,
             "function": T.CompletionItemKind.Function,
             "argument": T.CompletionItemKind.Property, "value": T.CompletionItemKind.EnumMember,
             "keyword": T.CompletionItemKind.Keyword, "variable": T.CompletionItemKind.Variable}
    order = {"argument": "0", "value": "0", "variable": "1", "block": "2", "function": "2", "op": "3", "keyword": "4"}

    @server.feature(T.TEXT_DOCUMENT_COMPLETION,
                    T.CompletionOptions(trigger_characters=["(", ",", "=", "'", '"', " "]))
    def on_completion(ls: NetspecServer, params: T.CompletionParams) -> T.CompletionList:
        uri = params.text_document.uri
        if uri not in ls.analyses:
            ls.current(uri)
        # What is being typed rarely parses: names and blocks come from the last check that parsed.
        doc = ls.parsed.get(uri) or ls.analyses.get(uri)
        text = ls.text_of(uri)
        if doc is None:
            return T.CompletionList(is_incomplete=False, items=[])
        if doc.text != text:  # completion uses the typed text; names and blocks from the last check
            doc = _with_text(doc, text)
        items = []
        markdown = _supports_markdown_docs(ls)
        for c in completions(doc, to_offset(text, params.position)):
            documentation: Any = None
            if c.documentation:
                documentation = (T.MarkupContent(kind=T.MarkupKind.Markdown, value=c.documentation)
                                 if markdown else c.documentation)
            items.append(T.CompletionItem(
                label=c.label, kind=kinds.get(c.kind), detail=c.detail or None, insert_text=c.insert,
                sort_text=order.get(c.kind, "5") + c.label, documentation=documentation))
        return T.CompletionList(is_incomplete=False, items=items)

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(ls: NetspecServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
        text = ls.text_of(params.text_document.uri)
        try:
            out = format_source(text, str(ls.path_of(params.text_document.uri)))
        except NetspecError as err:
            ls.window_log_message(T.LogMessageParams(T.MessageType.Warning,
                                                     "netspec fmt: " + err.diagnostics[0].message))
            return None
        if out == text:
            return []
        return [T.TextEdit(range=_range(text, 0, len(text)), new_text=out)]

    return server


def _supports_markdown_docs(ls: NetspecServer) -> bool:
    """Whether the client renders markdown in completion items' documentation."""
    try:
        formats = ls.client_capabilities.text_document.completion.completion_item.documentation_format
    except AttributeError:
        return False
    return bool(formats) and T.MarkupKind.Markdown in formats


def _with_text(doc: Analysis, text: str) -> Analysis:
    import dataclasses

    return dataclasses.replace(doc, text=text)


def main(argv: Any = None) -> None:
    """Run the server on standard input and output until the client exits."""
    logging.basicConfig(level=logging.WARNING)
    build_server().start_io()
