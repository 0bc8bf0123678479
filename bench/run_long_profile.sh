#!/usr/bin/env bash
# The long profile of the differential and hostile-input tests, run before each release.
#
#   bench/run_long_profile.sh                 # 2,000 networks, 100,000 fuzzed inputs
#   NETSPEC_LONG_NETWORKS=500 NETSPEC_LONG_FUZZ=20000 bench/run_long_profile.sh   # smaller
#
# It runs tests/test_differential.py, test_bad_specs.py, test_hostile.py,
# test_atomic_outputs.py and tests/regressions/ with NETSPEC_PROFILE=long,
# then prints how many generated networks went through all three targets and
# how many fuzzed inputs ran (counted by the tests themselves, tests/counting.py).
# Extra arguments go to pytest (e.g. -x, or -n 2 with pytest-xdist).
# Exit status: pytest's.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
COUNTS=$(mktemp /tmp/netspec-long-counts.XXXXXX)
export NETSPEC_PROFILE=long NETSPEC_COUNT_FILE="$COUNTS"
export NETSPEC_LONG_NETWORKS=${NETSPEC_LONG_NETWORKS:-2000} NETSPEC_LONG_FUZZ=${NETSPEC_LONG_FUZZ:-100000}
export TF_CPP_MIN_LOG_LEVEL=3
start=$(date +%s)
"$PY" -m pytest -p no:cacheprovider -q -W "ignore::DeprecationWarning" \
    tests/test_differential.py tests/test_bad_specs.py tests/test_hostile.py tests/test_atomic_outputs.py \
    tests/regressions/ "$@"
status=$?
"$PY" - "$COUNTS" "$start" "$status" <<'EOF'
import glob, json, sys, time
from collections import Counter

total = Counter()
for path in glob.glob(sys.argv[1] + ".*"):
    if not path.endswith(".tmp"):
        total.update(json.load(open(path, encoding="utf-8")))
minutes = (time.time() - int(sys.argv[2])) / 60
print(f"\nlong profile: pytest exit status {sys.argv[3]}, {minutes:.1f} min")
print(f"  generated networks through check + NumPy + ONNX + Keras: {total['networks']}")
print(f"  fuzzed inputs (mutations of specs/ and grammar programs): {total['fuzz_inputs']}")
print(f"    of which: sweep {total['fuzz_mutation_sweep']}, grammar {total['fuzz_grammar']}, "
      f"capped child {total['fuzz_child']}; accepted and built in NumPy + ONNX: {total['fuzz_built']}")
print(f"  bad specs {total['bad_specs']} (Keras refused the shape ones: {total['bad_specs_keras_refused']}), "
      f"warning specs {total['warning_specs']}, near misses {total['near_misses']}, "
      f"boundary cases {total['boundary_cases']}, output-file cases {total['atomic_cases']}")
features = sorted((k[8:], v) for k, v in total.items() if k.startswith("feature:"))
print("  network features:", ", ".join(f"{k} {v}" for k, v in features))
EOF
exit $status
