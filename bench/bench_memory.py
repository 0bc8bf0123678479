"""How close is `netspec check --batch-size N`'s peak activation memory to a real NumPy run?

For ResNet-50 and the U-Net spec (specs/unet*.net; until it exists, the U-Net written with
today's ops in tests/fixtures/analysis/unet_like.net), at several batch sizes: the estimate
(netspec.analysis.memory, which walks the executor's own plan) beside what tracemalloc
measures around one forward pass of the NumPy executor after a warm-up call (weights and the
input batch not counted), single-threaded and with the executor's default threads.
Prints each ratio estimate/measured (goal: within 0.90..1.10).

Run: .venv/bin/python bench/bench_memory.py [--batches 1,4,8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import netspec  # noqa: E402
from netspec.analysis.memory import estimate_memory  # noqa: E402
from netspec.analysis.report import format_bytes  # noqa: E402
from netspec.targets.numpy_exec import executor, traced_peak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,4,8")
    args = parser.parse_args()
    unets = sorted((ROOT / "specs").glob("unet*.net")) or [ROOT / "tests/fixtures/analysis/unet_like.net"]
    worst = 1.0
    print(f"{'network':<12} {'batch':>5} {'threads':>7} {'estimate':>12} {'measured':>12} {'ratio':>6} {'est. s':>7}")
    for path in [ROOT / "specs/resnet50.net", *unets]:
        net = netspec.load(str(path))
        for batch in (int(b) for b in args.batches.split(",")):
            start = time.perf_counter()
            est = estimate_memory(net, batch_size=batch)
            took = time.perf_counter() - start
            x = np.random.default_rng(0).standard_normal((batch, *net.graph.input.shape)).astype(np.float32)
            for threads in (1, None):
                measured = traced_peak(executor(net, seed=0, threads=threads), x)
                ratio = est.activation_peak / measured
                worst = max(worst, abs(ratio - 1) + 1)
                print(f"{net.name:<12} {batch:>5} {threads or 'all':>7} {format_bytes(est.activation_peak):>12} "
                      f"{format_bytes(measured):>12} {ratio:>6.3f} {took:>7.4f}")
    print(f"largest deviation: {100 * (worst - 1):.1f}% (goal: at most 10%)")


if __name__ == "__main__":
    main()
