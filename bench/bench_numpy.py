"""The NumPy executor against onnxruntime on ResNet-50, side by side in one run.

1. Export (cached under --cache, default /tmp/netspec-bench): keras.applications.ResNet50
   (random weights, batchnorm statistics randomised so they matter, the classifier scaled
   so the softmax is not flat) to ONNX with tf2onnx, and its weights to .npz.  tf2onnx is
   imported from this interpreter if it has it, else from .venv-bench (see bench/README.md).
2. Map the Keras weights onto specs/resnet50.net (by layer name; by the order of weighted
   layers when the names differ), and check that the executor and onnxruntime agree.
3. Time each side in its own subprocess (warm-up, then --runs batches; best and median),
   interleaved --rounds times, and take each side's peak memory as its peak RSS over a
   baseline taken after imports (VmHWM after resetting it; ru_maxrss elsewhere).
4. Profile the executor's conv layers (GFLOP/s) against np.matmul in float32 on the same
   matrix shapes, and on one large square product.

Prints throughput of each side and the ratio (goal: numpy/onnxruntime >= 0.5), peak memory
of each and the ratio (goal: <= 1.5), and conv GFLOP/s against matmul GFLOP/s.

OpenBLAS picks its kernels from the CPU it detects; under some hypervisors it takes an
AVX-512 machine for Haswell and runs at half speed.  --openblas-coretype auto (the default)
detects that case and runs the NumPy side with OPENBLAS_CORETYPE=SkylakeX, and then also
reports the as-installed numbers; 'none' leaves OpenBLAS alone.  Where the environment
itself forces OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (as this workplace does, for older
OpenBLAS builds), auto unsets both for the NumPy side only and prints both results.

Run: .venv/bin/python bench/bench_numpy.py [--batch 8] [--runs 5] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
AVX512_CORES = {"SKYLAKEX", "COOPERLAKE", "SAPPHIRERAPIDS"}


# --- step 1: export (runs in an interpreter that has tf2onnx) ---------------------------------------


def export(cache: Path, seed: int) -> None:
    """Build Keras's ResNet-50, export it to ONNX and its weights to .npz (in this process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf
    import tf2onnx

    keras.utils.set_random_seed(seed)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
    x = np.random.default_rng(1).random((2, 224, 224, 3), dtype=np.float32)
    # Scale the classifier so the probe's logits have a spread of about 2: a softmax that is
    # neither flat nor saturated, so comparing outputs means something.
    dense = model.get_layer("predictions")
    features = keras.Model(model.input, model.get_layer("avg_pool").output)(x, training=False).numpy()
    logits = features @ dense.kernel.numpy() + dense.bias.numpy()
    dense.kernel.assign(dense.kernel.numpy() * (2.0 / float(logits.std())))
    weights, order = {}, []
    for layer in model.layers:
        if layer.weights:
            order.append(layer.name)
            for v in layer.weights:
                weights[f"{layer.name}/{v.name}"] = v.numpy()
    np.savez(cache / "keras_weights.npz", **weights)
    (cache / "keras_order.json").write_text(json.dumps(order))
    spec = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name="input"),)
    fn = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(fn, input_signature=spec, opset=17, output_path=str(cache / "resnet50.onnx"))
    np.save(cache / "probe_x.npy", x)
    np.save(cache / "probe_keras.npy", model(x, training=False).numpy())


def ensure_export(cache: Path, seed: int) -> None:
    done = [cache / n for n in ("resnet50.onnx", "keras_weights.npz", "keras_order.json", "probe_keras.npy")]
    if all(p.exists() for p in done):
        return
    cache.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    if importlib.util.find_spec("tf2onnx") is None:
        python = str(ROOT / ".venv-bench" / "bin" / "python")
        if not Path(python).exists():
            raise SystemExit("tf2onnx is needed for the export: pip install tf2onnx, or see bench/README.md")
    print(f"exporting ResNet-50 with tf2onnx ({python}) ...", flush=True)
    subprocess.run([python, str(HERE), "--export-to", str(cache), "--seed", str(seed)], check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


# --- step 2: weights for the spec, and agreement ------------------------------------------------------


def spec_weights(spec: str, cache: Path) -> Path:
    """The Keras weights under the spec's layer names, as the contract's .npz."""
    import numpy as np

    import netspec
    from netspec.targets.weights import expected_weights, save_weights

    net = netspec.load(spec)
    want = expected_weights(net)
    keras_w = dict(np.load(cache / "keras_weights.npz"))
    order = json.loads((cache / "keras_order.json").read_text())
    spec_layers = list(dict.fromkeys(layer for layer, _, _ in want.values()))
    if all(any(k.startswith(layer + "/") for k in keras_w) for layer in spec_layers):
        mapping = {layer: layer for layer in spec_layers}
    else:
        if len(order) != len(spec_layers):
            raise SystemExit(f"{spec} has {len(spec_layers)} weighted layers, Keras's ResNet-50 {len(order)}")
        mapping = dict(zip(spec_layers, order))
    out = {}
    for key, (layer, _, shape) in want.items():
        name = key.rpartition("/")[2]
        value = keras_w[f"{mapping[layer]}/{name}"]
        if value.shape != shape:
            raise SystemExit(f"{key}: Keras layer {mapping[layer]} has {name} {value.shape}, spec needs {shape}")
        out[key] = value
    path = cache / "netspec_weights.npz"
    save_weights(out, path)
    return path


def check_agreement(spec: str, cache: Path, weights: Path) -> float:
    """Largest difference between the executor, onnxruntime and Keras on the probe batch."""
    import numpy as np
    import onnxruntime as ort

    import netspec
    from netspec.targets.numpy_exec import executor

    x = np.load(cache / "probe_x.npy")
    y_np = executor(netspec.load(spec), str(weights))(x)
    sess = ort.InferenceSession(str(cache / "resnet50.onnx"), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    y_keras = np.load(cache / "probe_keras.npy")
    assert 0.005 < float(y_keras.max()) < 0.9, "the probe's softmax is flat or saturated: comparing proves little"
    # Relative to each row's largest probability, so the check does not shrink with the output.
    scale = y_keras.max(axis=1, keepdims=True)
    diff = max(float((np.abs(y_np - y_ort) / scale).max()), float((np.abs(y_np - y_keras) / scale).max()))
    if diff > 1e-3 or not (y_np.argmax(1) == y_ort.argmax(1)).all():
        raise SystemExit(f"the executor and onnxruntime disagree: max relative difference {diff:.3g}")
    return diff


# --- step 3: timed workers (each in its own process) ----------------------------------------------------


def _reset_peak() -> float:
    """Current RSS in MB, with the kernel's high-water mark reset to it where Linux allows.

    ru_maxrss survives exec (a worker would inherit its parent's peak), so on Linux the peak
    is VmHWM from /proc/self/status after writing 5 to /proc/self/clear_refs.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_mb() -> float:
    try:
        return _status_mb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    raise OSError(field)


def worker(side: str, spec: str, cache: Path, batch: int, runs: int, threads: int | None, profile: bool) -> dict:
    """Time one side; peak memory is ru_maxrss over the baseline after imports and the input."""
    import numpy as np

    if side == "numpy":
        import netspec
        from netspec.targets.numpy_exec import executor
    else:
        import onnxruntime as ort
    x = np.random.default_rng(0).random((batch, 224, 224, 3), dtype=np.float32)
    base = _reset_peak()
    if side == "numpy":
        net = netspec.load(spec)
        run = executor(net, str(cache / "netspec_weights.npz"))
    else:
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(cache / "resnet50.onnx"), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name

        def run(x):
            return sess.run(None, {name: x})[0]
    run(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    out = {"best": batch / min(times), "median": batch / statistics.median(times), "peak_mb": _peak_mb() - base}
    if side == "numpy" and profile:
        out.update(conv_profile(net, run, x, runs))
    return out


def conv_profile(net, run, x, runs: int) -> dict:
    """GFLOP/s of the conv steps, and of np.matmul on the same matrix shapes and on a large square."""
    import numpy as np

    best: dict[str, float] = {}
    shapes = []
    for _ in range(max(2, runs // 2)):
        for name, op, _, sec in run.profile(x):
            if op == "conv2d":
                best[name] = min(best.get(name, sec), sec)
    flops = secs = 0.0
    for name, op, layers, _ in run.profile(x):
        if op != "conv2d":
            continue
        info = net.layers[layers[0]]
        kh, kw, cin, f = info.weights[0].shape  # cin per group: one product per group, K = kh*kw*cin
        flops += 2.0 * info.macs * x.shape[0]
        secs += best[name]
        shapes.append((x.shape[0] * info.macs // (kh * kw * cin * f), kh * kw * cin, f))
    rng = np.random.default_rng(0)
    mm_flops = mm_secs = 0.0
    for m, k, f in shapes:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, f), dtype=np.float32)
        np.matmul(a, b)
        t = min(_timed(lambda a=a, b=b: np.matmul(a, b)) for _ in range(3))
        mm_flops += 2.0 * m * k * f
        mm_secs += t
    a = rng.random((4096, 4096), dtype=np.float32)
    np.matmul(a, a)
    square = min(_timed(lambda: np.matmul(a, a)) for _ in range(3))
    return {"conv_gflops": flops / secs / 1e9, "matmul_same_gflops": mm_flops / mm_secs / 1e9,
            "matmul_square_gflops": 2.0 * 4096**3 / square / 1e9, "conv_seconds": secs}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def spawn(side: str, args: argparse.Namespace, env: dict, profile: bool = False) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", side, "--spec", args.spec, "--cache", str(args.cache),
           "--batch", str(args.batch), "--runs", str(args.runs)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if profile:
        cmd.append("--profile")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- BLAS detection ---------------------------------------------------------------------------------------


def blas_info(env: dict) -> dict:
    """OpenBLAS's kernel family and threads as NumPy sees them under ``env`` (via threadpoolctl)."""
    code = ("import json, numpy, threadpoolctl; "
            "print(json.dumps([i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {}
    info = json.loads(proc.stdout)
    return info[0] if info else {}


def cpu_has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


# --- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet50.net"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5, help="timed batches per worker")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved worker pairs; best of them is kept")
    parser.add_argument("--threads", type=int, default=None, help="threads for both sides (default: theirs)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/netspec-bench"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--openblas-coretype", default="auto",
                        help="'auto' (fix a misdetected AVX-512 CPU), 'none', or an OpenBLAS core name")
    parser.add_argument("--export-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["numpy", "onnx"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_to:
        export(args.export_to, args.seed)
        return
    if args.worker:
        result = worker(args.worker, args.spec, args.cache, args.batch, args.runs, args.threads, args.profile)
        print(json.dumps(result))
        return

    ensure_export(args.cache, args.seed)
    weights = spec_weights(args.spec, args.cache)
    diff = check_agreement(args.spec, args.cache, weights)
    print(f"agreement: executor vs onnxruntime and vs Keras, max |diff| / max output = {diff:.2g} "
          "(softmax outputs, batch 2)")

    env = dict(os.environ)
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(args.threads)
    installed = blas_info(env)
    np_env = dict(env)
    core = (installed.get("architecture") or "?").upper()
    fixed = False
    if args.openblas_coretype == "auto":
        forced = {k: env[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in env}
        if forced:
            # This workplace forces these for old OpenBLAS builds; a current NumPy then runs a
            # slower kernel than on a user's machine.  Unset both for the NumPy side only.
            for key in forced:
                np_env.pop(key)
            fixed = True
        elif installed.get("internal_api") == "openblas" and cpu_has_avx512() and core not in AVX512_CORES:
            np_env["OPENBLAS_CORETYPE"] = "SkylakeX"
            fixed = True
    elif args.openblas_coretype != "none":
        np_env["OPENBLAS_CORETYPE"] = args.openblas_coretype
        fixed = True
    used = blas_info(np_env)
    print(f"cpus: {os.cpu_count()}; numpy BLAS: {used.get('internal_api', '?')} {used.get('version', '')} "
          f"kernels {used.get('architecture', '?')}, {used.get('num_threads', '?')} threads"
          + (f" (with this environment's settings: {installed.get('architecture')}; numpy side runs with "
             f"OPENBLAS_CORETYPE={np_env.get('OPENBLAS_CORETYPE', '(unset)')}, "
             f"OPENBLAS_L2_SIZE={np_env.get('OPENBLAS_L2_SIZE', '(unset)')})" if fixed else ""))

    numpy_runs, onnx_runs = [], []
    for _ in range(args.rounds):
        numpy_runs.append(spawn("numpy", args, np_env))
        onnx_runs.append(spawn("onnx", args, env))
    prof = spawn("numpy", args, np_env, profile=True)
    n_best = max(r["best"] for r in numpy_runs)
    o_best = max(r["best"] for r in onnx_runs)
    n_med = statistics.median(r["median"] for r in numpy_runs)
    o_med = statistics.median(r["median"] for r in onnx_runs)
    n_mem = min(r["peak_mb"] for r in numpy_runs)
    o_mem = min(r["peak_mb"] for r in onnx_runs)
    print(f"ResNet-50, batch {args.batch}, 224x224, float32; {args.runs} batches x {args.rounds} rounds per side")
    print(f"throughput  numpy {n_best:7.1f} img/s (median {n_med:.1f})   onnxruntime {o_best:7.1f} img/s "
          f"(median {o_med:.1f})   ratio numpy/onnxruntime {n_best / o_best:.2f} (median {n_med / o_med:.2f})"
          "   goal >= 0.5")
    print(f"peak memory numpy {n_mem:7.1f} MB   onnxruntime {o_mem:7.1f} MB   ratio numpy/onnxruntime "
          f"{n_mem / o_mem:.2f}   goal <= 1.5")
    print(f"conv layers {prof['conv_gflops']:.0f} GFLOP/s ({prof['conv_seconds'] * 1e3:.0f} ms of the batch)   "
          f"np.matmul float32 {prof['matmul_same_gflops']:.0f} GFLOP/s on the same (M, K, N) shapes, "
          f"{prof['matmul_square_gflops']:.0f} GFLOP/s on 4096x4096   conv/matmul "
          f"{prof['conv_gflops'] / prof['matmul_same_gflops']:.2f} and "
          f"{prof['conv_gflops'] / prof['matmul_square_gflops']:.2f}")
    if fixed:
        plain = spawn("numpy", args, env, profile=True)
        print(f"with this environment's OpenBLAS settings ({installed.get('architecture')} kernels): numpy {plain['best']:.1f} img/s, ratio "
              f"{plain['best'] / o_best:.2f}; conv {plain['conv_gflops']:.0f} GFLOP/s, np.matmul "
              f"{plain['matmul_same_gflops']:.0f} GFLOP/s on the same shapes, "
              f"{plain['matmul_square_gflops']:.0f} on 4096x4096")


if __name__ == "__main__":
    main()
