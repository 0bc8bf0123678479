"""`netspec check` of two checkouts (before and after a change) and the NNEF parser, interleaved.

Each round runs one whole process of each: BEFORE's and AFTER's
`netspec check SPEC` (each with its checkout first on PYTHONPATH) and
`python -m nnef.validate resnet50.nnef --shapes`, so that a shared machine's
load falls on all three alike. Prints the medians of wall and CPU time
(user + system of the process) and the ratios to NNEF. Both checkouts are
byte-compiled first and run once without PYTHONDONTWRITEBYTECODE (writing
their bytecode and, where the checkout has it, netspec/_dccache.py's table).

Run: .venv/bin/python bench/bench_check_ab.py BEFORE_DIR AFTER_DIR [--rounds 21] [--spec specs/resnet50.net]
(a "before" checkout: git worktree add /tmp/before main, or git archive REV | tar -x -C DIR)
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PEERS = next((d / "peers" for d in (ROOT.parent / "shared", ROOT / "shared", ROOT.parent.parent / "shared")
              if (d / "peers" / "resnet50.nnef").exists()), ROOT.parent / "shared" / "peers")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.decode()[-2000:]}")
    return wall, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--spec", default="specs/resnet50.net", help="Relative to each checkout.")
    parser.add_argument("--peers", type=Path, default=PEERS, help="Folder with resnet50.nnef.")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = Path(PY).with_name("netspec")
    cli = [str(script)] if script.exists() else [PY, "-m", "netspec.cli"]
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {}
    for name, tree in (("before", args.before.resolve()), ("after", args.after.resolve())):
        env = dict(base, PYTHONPATH=str(tree))
        subprocess.run([PY, "-m", "compileall", "-q", str(tree / "netspec")], check=True)
        subprocess.run(cli + ["check", str(tree / args.spec)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}, check=False)
        cmds[name] = (cli + ["check", str(tree / args.spec)], env)
    cmds["nnef"] = ([PY, "-m", "nnef.validate", str(args.peers / "resnet50.nnef"), "--shapes"], base)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    for i in range(args.rounds + 1):
        for name, (cmd, env) in cmds.items():
            t = run(cmd, env)
            if i:  # the first round warms the file cache
                times[name].append(t)
    print(f"{args.spec}: {args.rounds} interleaved rounds (PYTHONDONTWRITEBYTECODE="
          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')})")
    med = {}
    for name, ts in times.items():
        w, c = [t[0] for t in ts], [t[1] for t in ts]
        med[name] = (statistics.median(w), statistics.median(c))
        print(f"{name:8s} wall median {med[name][0]:.3f} s (min {min(w):.3f})   "
              f"cpu median {med[name][1]:.3f} s (min {min(c):.3f})")
    for name in ("before", "after"):
        print(f"{name}/nnef: wall {med[name][0] / med['nnef'][0]:.2f}   cpu {med[name][1] / med['nnef'][1]:.2f}")
    print(f"after/before: wall {med['after'][0] / med['before'][0]:.2f}   cpu {med['after'][1] / med['before'][1]:.2f}")


if __name__ == "__main__":
    main()
