"""The NumPy executor against onnxruntime on the 256x256 U-Net (specs/unet.net), in one run.

The decoder half is transposed convolutions and concatenations, so this measures the executor's
``conv_transpose`` (one BLAS product plus a scatter-add per kernel tap) next to its convolutions.

1. Weights: seeded random weights for specs/unet.net (cached under --cache, default
   /tmp/netspec-bench-unet) and the ONNX graph that netspec's own ONNX target builds from the
   spec with those weights; onnxruntime optimises that graph as it loads it.
2. Agreement: the executor and onnxruntime on one image (relative error, goal <= 1e-4).
3. Each side timed in its own subprocess (warm-up, then --runs batches), interleaved --rounds
   times; peak memory is the peak RSS over a baseline after imports and the input (as
   bench_numpy.py measures it, incl. its OPENBLAS_CORETYPE handling for the NumPy side).

Prints throughput of each side and the ratio (goal: numpy/onnxruntime >= 0.5), peak memory of
each and the ratio (goal: <= 1.5), and the executor's time in transposed convolutions.

Run: .venv/bin/python bench/bench_unet.py [--batch 4] [--runs 3] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

import bench_numpy as bn  # noqa: E402  (its peak-memory and BLAS helpers)

SIZE = (256, 256, 3)


def prepare(spec: str, cache: Path, seed: int) -> None:
    """Seeded weights for the spec and the ONNX graph built from them."""
    import numpy as np

    import netspec
    from netspec.targets.onnx_model import compile_onnx
    from netspec.targets.weights import init_weights, save_weights

    cache.mkdir(parents=True, exist_ok=True)
    net = netspec.load(spec)
    weights = init_weights(net, seed)
    rng = np.random.default_rng(seed)
    # He-like scales keep the activations of 23 ReLU convolutions in range; biases are non-zero.
    weights = {k: (v if not k.endswith("/bias") else rng.normal(0, 0.05, v.shape).astype(np.float32))
               for k, v in weights.items()}
    save_weights(cache / "weights.npz", weights)
    compile_onnx(net, cache / "unet.onnx", weights=str(cache / "weights.npz"))


def agreement(spec: str, cache: Path) -> float:
    import numpy as np
    import onnxruntime as ort

    import netspec
    from netspec.targets.numpy_exec import executor

    x = np.random.default_rng(1).random((1, *SIZE), dtype=np.float32)
    y_np = executor(netspec.load(spec), str(cache / "weights.npz"))(x)
    sess = ort.InferenceSession(str(cache / "unet.onnx"), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float(np.abs(y_np - y_ort).max() / np.abs(y_ort).max())


def worker(side: str, spec: str, cache: Path, batch: int, runs: int, threads: int | None) -> dict:
    import numpy as np

    if side == "numpy":
        import netspec
        from netspec.targets.numpy_exec import executor
    else:
        import onnxruntime as ort
    x = np.random.default_rng(0).random((batch, *SIZE), dtype=np.float32)
    base = bn._reset_peak()
    if side == "numpy":
        run = executor(netspec.load(spec), str(cache / "weights.npz"))
    else:
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(cache / "unet.onnx"), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def run(x):
            return sess.run(None, {name: x})[0]
    run(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    out = {"best": batch / min(times), "median": batch / statistics.median(times), "peak_mb": bn._peak_mb() - base}
    if side == "numpy":
        steps = run.profile(x)
        out["transpose_s"] = sum(sec for _, op, _, sec in steps if op.endswith("_transpose"))
        out["total_s"] = sum(sec for *_, sec in steps)
    return out


def spawn(side: str, args: argparse.Namespace, env: dict) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", side, "--spec", args.spec, "--cache", str(args.cache),
           "--batch", str(args.batch), "--runs", str(args.runs)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "unet.net"))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/netspec-bench-unet"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["numpy", "onnx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.spec, args.cache, args.batch, args.runs, args.threads)))
        return

    prepare(args.spec, args.cache, args.seed)
    print(f"agreement: executor vs onnxruntime, max |diff| / max output = {agreement(args.spec, args.cache):.2g} "
          "(batch 1, goal <= 1e-4)")
    env = dict(os.environ)
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    np_env = dict(env)
    # As bench_numpy.py: this workplace forces OpenBLAS settings meant for old builds; unset them
    # for the NumPy side only.
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        np_env.pop(key, None)
    used = bn.blas_info(np_env)
    print(f"cpus: {os.cpu_count()}; numpy BLAS: {used.get('internal_api', '?')} {used.get('version', '')} "
          f"kernels {used.get('architecture', '?')}, {used.get('num_threads', '?')} threads")
    numpy_runs, onnx_runs = [], []
    for _ in range(args.rounds):
        numpy_runs.append(spawn("numpy", args, np_env))
        onnx_runs.append(spawn("onnx", args, env))
    n_best = max(r["best"] for r in numpy_runs)
    o_best = max(r["best"] for r in onnx_runs)
    n_med = statistics.median(r["median"] for r in numpy_runs)
    o_med = statistics.median(r["median"] for r in onnx_runs)
    n_mem = min(r["peak_mb"] for r in numpy_runs)
    o_mem = min(r["peak_mb"] for r in onnx_runs)
    share = max(r["transpose_s"] / r["total_s"] for r in numpy_runs)
    print(f"U-Net 256x256, batch {args.batch}, float32; {args.runs} batches x {args.rounds} rounds per side")
    print(f"throughput  numpy {n_best:6.2f} img/s (median {n_med:.2f})   onnxruntime {o_best:6.2f} img/s "
          f"(median {o_med:.2f})   ratio numpy/onnxruntime {n_best / o_best:.2f} (median {n_med / o_med:.2f})"
          "   goal >= 0.5")
    print(f"peak memory numpy {n_mem:7.1f} MB   onnxruntime {o_mem:7.1f} MB   ratio numpy/onnxruntime "
          f"{n_mem / o_mem:.2f}   goal <= 1.5")
    print(f"transposed convolutions: {share:.0%} of the executor's time")


if __name__ == "__main__":
    main()
