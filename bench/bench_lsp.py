"""How long `netspec lsp` takes to re-check ResNet-50 after an edit (goal: 50 ms).

Each edit changes one number in specs/resnet50.net (the class count),
so every run parses the edited file again: nothing is answered from a cache
of the same text.  Two figures, medians over ``--edits`` edits:

1. in the server's process: what the server does on an edit (check through
   its file and parse caches, convert the diagnostics, compute the inlay
   hints), timed with perf_counter, and its CPU time;
2. end to end: a real LSP client starts `netspec lsp` (debounce 0), sends
   ``textDocument/didChange`` and waits for ``publishDiagnostics``: the
   whole round trip through JSON-RPC on stdio.

Prints each median and its ratio to the 50 ms goal (below 1 meets it).

Run: python bench/bench_lsp.py [--edits 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SPEC = ROOT / "specs" / "resnet50.net"
GOAL_MS = 50.0


def edits(n: int) -> list[str]:
    """The spec with its class count (the first 1000 in it) changed, once per edit."""
    text = SPEC.read_text()
    assert "1000" in text
    return [text.replace("1000", str(1000 + i + 1), 1) for i in range(n)]


def in_process(n: int) -> tuple[list[float], list[float]]:
    from netspec.tools.lsp.analysis import Files, analyze, inlay_hints
    from netspec.tools.lsp.server import lsp_diagnostics

    files = Files()
    analyze(files, SPEC, SPEC.read_text())  # open the document: grammar loaded, imports cached
    walls, cpus = [], []
    for text in edits(n):
        w, c = time.perf_counter(), time.process_time()
        doc = analyze(files, SPEC, text)
        lsp_diagnostics(doc)
        inlay_hints(doc)
        walls.append((time.perf_counter() - w) * 1e3)
        cpus.append((time.process_time() - c) * 1e3)
        assert doc.report.ok
    return walls, cpus


async def end_to_end(n: int) -> list[float]:
    from lsprotocol import types as T
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("bench", "1")
    got: asyncio.Queue = asyncio.Queue()

    @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params: T.PublishDiagnosticsParams) -> None:
        got.put_nowait(params)

    env = {**os.environ, "NETSPEC_LSP_DEBOUNCE_MS": "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    await client.start_io(sys.executable, "-c", "from netspec.cli import main; main()", "lsp", env=env)
    await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities()))
    client.initialized(T.InitializedParams())
    uri = SPEC.as_uri()
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        text_document=T.TextDocumentItem(uri=uri, language_id="netspec", version=1, text=SPEC.read_text())))
    await got.get()
    times = []
    for version, text in enumerate(edits(n), start=2):
        start = time.perf_counter()
        client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)]))
        params = await got.get()
        times.append((time.perf_counter() - start) * 1e3)
        assert params.version == version and all(d.severity != T.DiagnosticSeverity.Error for d in params.diagnostics)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return times


def show(label: str, times: list[float]) -> None:
    med = statistics.median(times)
    print(f"  {label:<34} median {med:6.1f} ms  (min {min(times):.1f}, max {max(times):.1f})  "
          f"ratio to the 50 ms goal {med / GOAL_MS:.2f} ({'met' if med <= GOAL_MS else 'NOT met'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=30)
    args = ap.parse_args()
    print(f"Re-checking ResNet-50 after an edit, {args.edits} edits:")
    walls, cpus = in_process(args.edits)
    show("in the server (wall)", walls)
    show("in the server (CPU)", cpus)
    show("end to end over stdio (wall)", asyncio.run(end_to_end(args.edits)))


if __name__ == "__main__":
    main()
