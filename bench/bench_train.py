"""Does `netspec train` train? A CNN from specs/ on the offline digits set, 20 epochs.

Runs the command a user would, as a whole process, once per seed:

    netspec train specs/mnist.net --data digits --epochs 20 -o OUT.keras --seed S

(the 8x8 scikit-learn digits, 1,437 training images of which a tenth is held
out for validation, resized to 28x28; 360 test images), parses the final
`test accuracy:` line and the training time the command reports, checks that
the saved model reloads with keras.models.load_model, and prints every run
and the summary.  Goal: at least 95% test accuracy in 20 epochs on every seed.

Run: .venv/bin/python bench/bench_train.py [--spec specs/mnist.net] [--epochs 20] [--seeds 0 1 2]
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
PY = sys.executable
GOAL = 0.95


def netspec_cmd() -> list[str]:
    script = Path(PY).with_name("netspec")
    return [str(script)] if script.exists() else [PY, "-m", "netspec.cli"]


def run_once(spec: Path, epochs: int, seed: int, batch_size: int, out_dir: Path) -> dict:
    """One `netspec train` process: its accuracy, training seconds, wall seconds."""
    out = out_dir / f"seed{seed}.keras"
    cmd = [*netspec_cmd(), "train", str(spec), "--data", "digits", "--epochs", str(epochs),
           "--batch-size", str(batch_size), "--seed", str(seed), "-o", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    accuracy = re.fullmatch(r"test accuracy: ([01]\.\d{4})", lines[-1])
    trained = re.search(r"\(([\d.]+) s for \d+ epochs?\)", proc.stdout)
    if not accuracy or not trained:
        raise SystemExit(f"unexpected output:\n{proc.stdout[-2000:]}")
    check = subprocess.run([PY, "-c", "import os, sys; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3'); "
                            "import keras; print(keras.models.load_model(sys.argv[1]).count_params())", str(out)],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"{out} does not reload:\n{check.stderr[-2000:]}")
    return {"seed": seed, "accuracy": float(accuracy.group(1)), "train_s": float(trained.group(1)),
            "wall_s": wall, "params": int(check.stdout.split()[-1]),
            "curve": out.with_suffix(".png").exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "mnist.net")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    print(f"netspec train {args.spec.relative_to(ROOT) if args.spec.is_relative_to(ROOT) else args.spec} "
          f"--data digits --epochs {args.epochs} --batch-size {args.batch_size}, one process per seed:")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            r = run_once(args.spec, args.epochs, seed, args.batch_size, Path(tmp))
            runs.append(r)
            print(f"  seed {seed}: test accuracy {r['accuracy']:.4f}   training {r['train_s']:6.1f} s   "
                  f"whole process {r['wall_s']:6.1f} s   reloads ({r['params']:,} params)"
                  f"{', curve written' if r['curve'] else ', NO CURVE'}", flush=True)
    accuracies = [r["accuracy"] for r in runs]
    worst = min(accuracies)
    print(f"test accuracy: median {statistics.median(accuracies):.4f}, worst {worst:.4f} "
          f"(goal >= {GOAL:.2f} in {args.epochs} epochs: {'met' if worst >= GOAL else 'NOT met'})")
    print(f"training time: median {statistics.median(r['train_s'] for r in runs):.1f} s "
          f"({statistics.median(r['train_s'] for r in runs) / args.epochs:.2f} s per epoch), "
          f"whole process median {statistics.median(r['wall_s'] for r in runs):.1f} s")
    if worst < GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()
