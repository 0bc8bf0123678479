"""How fast is `netspec compile --target onnx`, side by side with Keras + tf2onnx, in one run.

ResNet-50 with the same weights, whole process each (interpreter start,
imports and writing the .onnx file included):

- the usual route: import Keras, build keras.applications.ResNet50, load the
  weights, convert with tf2onnx (``tf2onnx.convert.from_function``, opset 17);
- `netspec compile specs/resnet50.net --target onnx --weights W.npz -o OUT.onnx`.

The weights are written first by `netspec compile --target numpy`.  Each
route runs once to warm the file cache, then ``--runs`` times; the script
prints the medians and the ratio (goal: Keras+tf2onnx / netspec >= 10), and
checks that both graphs give the same output in onnxruntime.

Run: .venv/bin/python bench/bench_onnx.py [--runs 3] [--keras-python PY]
``--keras-python`` names an interpreter with TensorFlow, Keras and tf2onnx
(default: this one, else .venv-bench/bin/python).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GOAL = 10.0

#: The Keras route as one script: argv = weights.npz, output.onnx.
KERAS_ROUTE = """
import sys
import numpy as np
import keras, tensorflow as tf, tf2onnx
weights, out = sys.argv[1], sys.argv[2]
model = keras.applications.ResNet50(weights=None)
w = np.load(weights)
for layer in model.layers:
    names = [v.path.rpartition("/")[2] for v in layer.weights]
    if names:
        layer.set_weights([w[layer.name + "/" + n] for n in names])
spec = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name="input_layer"),)
@tf.function(input_signature=spec)
def forward(x):
    return model(x, training=False)
tf2onnx.convert.from_function(forward, input_signature=spec, opset=17, output_path=out)
"""


def netspec_cmd() -> list[str]:
    script = Path(PY).with_name("netspec")
    return [str(script)] if script.exists() else [PY, "-m", "netspec.cli"]


def wall(cmd: list[str], runs: int) -> list[float]:
    """Wall times of a whole process, after one warm-up run."""
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-3000:]}")
        if i:
            times.append(time.perf_counter() - t)
    return times


def keras_python(choice: str | None) -> str:
    if choice:
        return choice
    if importlib.util.find_spec("tf2onnx") is not None:
        return PY
    bench_venv = ROOT / ".venv-bench" / "bin" / "python"
    if bench_venv.exists():
        return str(bench_venv)
    raise SystemExit("tf2onnx is not installed: pip install tf2onnx, or pass --keras-python")


def same_outputs(a: Path, b: Path) -> float:
    """Largest difference between the two graphs' outputs on one random batch."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((2, 224, 224, 3)).astype(np.float32)
    outs = []
    for path in (a, b):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs.append(sess.run(None, {sess.get_inputs()[0].name: x})[0])
    return float(np.max(np.abs(outs[0] - outs[1])) / np.max(np.abs(outs[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per route (after one warm-up)")
    parser.add_argument("--keras-python", help="interpreter with TensorFlow, Keras and tf2onnx")
    args = parser.parse_args()
    spec = ROOT / "specs" / "resnet50.net"
    kpy = keras_python(args.keras_python)

    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        d = Path(tmp)
        weights, ours, theirs = d / "resnet50.npz", d / "netspec.onnx", d / "keras.onnx"
        subprocess.run([*netspec_cmd(), "compile", str(spec), "--target", "numpy", "-o", str(weights)],
                       check=True, stderr=subprocess.DEVNULL, cwd=ROOT)
        print(f"ResNet-50 to ONNX with weights ({weights.stat().st_size / 2**20:.0f} MiB), "
              f"{args.runs} runs each after a warm-up:")

        ns_cmd = [*netspec_cmd(), "compile", str(spec), "--target", "onnx", "--weights", str(weights),
                  "-o", str(ours)]
        ks_cmd = [kpy, "-c", KERAS_ROUTE, str(weights), str(theirs)]
        ns_times = wall(ns_cmd, args.runs)
        ks_times = wall(ks_cmd, args.runs)
        ns, ks = statistics.median(ns_times), statistics.median(ks_times)

        print(f"  Keras + tf2onnx       median {ks:7.2f} s   runs {', '.join(f'{t:.2f}' for t in ks_times)}")
        print(f"  netspec compile onnx  median {ns:7.2f} s   runs {', '.join(f'{t:.2f}' for t in ns_times)}")
        print(f"  ratio Keras+tf2onnx / netspec = {ks / ns:.1f}x (goal >= {GOAL:.0f}x: "
              f"{'met' if ks / ns >= GOAL else 'NOT met'})")
        print(f"  files: netspec {ours.stat().st_size / 2**20:.1f} MiB, tf2onnx {theirs.stat().st_size / 2**20:.1f} MiB;"
              f" outputs agree to a relative {same_outputs(ours, theirs):.1e}")


if __name__ == "__main__":
    main()
