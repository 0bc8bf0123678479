"""How fast is `netspec import`, side by side with `keras.models.load_model`, in one run.

1. Saves keras.applications.ResNet50(weights=None) to a .keras file (once, in a temp dir).
2. Times, as whole processes, interleaved round by round so a shared machine's load falls on both:
   - `netspec import resnet50.keras -o r.net --weights-out r.npz` (spec and weights);
   - `netspec import resnet50.keras -o r.net` (spec only; never imports TensorFlow);
   - `python -c "import keras; keras.models.load_model('resnet50.keras')"`.
3. Prints the medians and the ratios (goal: import with weights <= 1/3 of load_model's time).

Run: python bench/bench_import.py [--runs 5] [--model ResNet50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable


def _netspec() -> list[str]:
    script = Path(PY).with_name("netspec")
    return [str(script)] if script.exists() else [PY, "-m", "netspec.cli"]


def _once(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="ResNet50")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / f"{args.model.lower()}.keras"
        subprocess.run([PY, "-c", f"import keras; keras.applications.{args.model}(weights=None).save({str(model)!r})"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        spec, weights = Path(tmp) / "r.net", Path(tmp) / "r.npz"
        cmds = {
            "netspec import (spec + weights)": _netspec() + ["import", str(model), "-o", str(spec), "-w", str(weights)],
            "netspec import (spec only)": _netspec() + ["import", str(model), "-o", str(spec)],
            "keras.models.load_model": [PY, "-c", f"import keras; keras.models.load_model({str(model)!r})"],
        }
        for cmd in cmds.values():  # warm-up: file cache, Lark's grammar cache
            _once(cmd)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                times[name].append(_once(cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{args.model} ({model.stat().st_size / 2**20:.1f} MiB .keras), median of {args.runs} interleaved runs:")
        for name, value in med.items():
            print(f"  {name:34s} {value:7.3f} s")
        keras_time = med["keras.models.load_model"]
        with_w = med["netspec import (spec + weights)"]
        print(f"  ratio import+weights / load_model: {with_w / keras_time:.3f} (goal <= 0.333)")
        print(f"  ratio spec only / load_model:      {med['netspec import (spec only)'] / keras_time:.3f}")


if __name__ == "__main__":
    main()
