"""What symbolic sizes cost: `netspec check` on a spec with [H, W, 3] against the same spec at fixed sizes.

Each spec in SPECS is checked as it is and with its input's spatial sizes
replaced by H and W (so the symbolic pass runs and reports the valid
sizes), each as a whole process, interleaved so that a shared machine's
load falls on both alike; the script prints the medians and the ratio.
The symbolic work runs only when a symbol is present, so the concrete
figure is what `bench_check.py` compares with the NNEF parser.

Run: .venv/bin/python bench/bench_symbolic.py [--runs 11]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ("resnet50.net", "unet.net", "mobilenetv2.net")


def netspec_cmd() -> list[str]:
    script = Path(sys.executable).with_name("netspec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "netspec.cli"]


def symbolic(text: str) -> str:
    """The spec with each rank-3 channels_last input's spatial sizes made symbolic."""
    return re.sub(r"input (\w+): \[(\w+), (\w+), (\w+)\](?![ \t]*channels_first)", r"input \1: [H, W, \4]", text)


def run(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    print(f"python: {sys.executable}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in SPECS:
            spec = ROOT / "specs" / name
            if not spec.exists():
                continue
            sym = Path(tmp) / name
            sym.write_text(symbolic(spec.read_text()))
            cmds = {"fixed sizes": [*netspec_cmd(), "check", str(spec), "--summary"],
                    "[H, W, 3]": [*netspec_cmd(), "check", str(sym), "--summary", "-s", "W116"]}
            times: dict[str, list[float]] = {k: [] for k in cmds}
            outputs = {}
            for k, c in cmds.items():
                outputs[k] = run(c)[1]  # warm-up: file cache
            for _ in range(args.runs):
                for k, c in cmds.items():
                    times[k].append(run(c)[0])
            med = {k: statistics.median(v) for k, v in times.items()}
            valid = [line for line in outputs["[H, W, 3]"].splitlines() if line.startswith("valid for")]
            print(f"== {name}, whole process, median of {args.runs} runs ==")
            for k, v in med.items():
                print(f"  {k:12s} {v:7.3f} s")
            print(f"  symbolic / fixed = {med['[H, W, 3]'] / med['fixed sizes']:.2f}   "
                  + ("; ".join(valid) if valid else "(not symbolic: a size is needed, see docs/symbolic.md)"))


if __name__ == "__main__":
    main()
