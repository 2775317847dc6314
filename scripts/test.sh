#!/usr/bin/env bash
# Builds MSA-Bench (if needed) and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MSABENCH_BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
(cd "$BUILD_DIR" && ctest --output-on-failure --parallel "$(nproc)" "$@")
# Regression suite: a few seconds of NIAH x BM25 compared with results/baselines/regression
# (`msabench compare`: any accuracy drop or a normalised timing slowdown beyond tolerance fails).
scripts/regression.sh "$BUILD_DIR/msabench"
