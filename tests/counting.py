"""Counters of the examples that actually ran, for the long profile's closing figures.

When ``$NETSPEC_COUNT_FILE`` is set, each test process keeps its counts in
``$NETSPEC_COUNT_FILE.<pid>`` (one JSON object, rewritten at most once a
second and at exit, so a run that is stopped still tells how far it got);
``bench/run_long_profile.sh`` sums them.

>>> count("doctest", 2); COUNTS["doctest"] >= 2
True
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections import Counter

__all__ = ["COUNTS", "count"]

COUNTS: Counter[str] = Counter()
_last = [0.0]


def count(kind: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``kind``."""
    COUNTS[kind] += n
    if time.monotonic() - _last[0] > 1.0:
        _write()


@atexit.register
def _write() -> None:
    _last[0] = time.monotonic()
    path = os.environ.get("NETSPEC_COUNT_FILE")
    if path and COUNTS:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(dict(COUNTS), f)
        os.replace(tmp, f"{path}.{os.getpid()}")
