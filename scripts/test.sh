#!/usr/bin/env bash
# Builds MSA-Bench (if needed) and runs the whole test suite with ctest.
#   scripts/test.sh [ctest args]     Release build in build/, all tests, then scripts/regression.sh
#   scripts/test.sh --sanitize [ctest args]
#       ASan+UBSan build in build-asan/ of the test executables that do not link LibTorch
#       (LibTorch is not instrumented, and its translation units would take most of the build);
#       runs their tests (and the fixtures they need) with leaks and UB fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == --sanitize ]]; then
  shift
  SAN_DIR=${MSABENCH_SANITIZE_BUILD_DIR:-build-asan}
  SAN_TARGETS=(unit_tests_nt tokenizer_tests tokenizer_golden_tests model_io_tests datasets_tests metrics_tests
               interleave_tests)
  if [[ ! -f "$SAN_DIR/build.ninja" ]]; then
    cmake -S . -B "$SAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMSABENCH_SANITIZE=ON
  fi
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  cmake --build "$SAN_DIR" --target "${SAN_TARGETS[@]}" --parallel "${MSABENCH_JOBS:-$(nproc)}"
  # the tests whose command is one of those executables, by name
  names=$(cd "$SAN_DIR" && ctest --show-only=json-v1 | python3 -c '
import json, re, sys, os
wanted = set(sys.argv[1:])
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or [""]
    if os.path.basename(cmd[0]) in wanted:
        print("^" + re.escape(t["name"]) + "$")' "${SAN_TARGETS[@]}" | paste -sd'|')
  [[ -n "$names" ]] || { echo "no sanitizer tests found in $SAN_DIR" >&2; exit 1; }
  (cd "$SAN_DIR" && ctest --output-on-failure --parallel "$(nproc)" -R "$names" "$@")
  exit 0
fi
BUILD_DIR=${MSABENCH_BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
# the CUDA kernel tests say whether their GPU half runs here ("skipped: no GPU ..." otherwise)
"$BUILD_DIR/tests/backends/msa_cuda_tests" --gpu-status
(cd "$BUILD_DIR" && ctest --output-on-failure --parallel "$(nproc)" "$@")
# Regression suite: a few seconds of NIAH x BM25 compared with results/baselines/regression
# (`msabench compare`: any accuracy drop or a normalised timing slowdown beyond tolerance fails).
scripts/regression.sh "$BUILD_DIR/msabench"
