#!/usr/bin/env bash
# GPU benchmark of the CUDA kernels (issue #11): device copy and pinned H2D bandwidth, routing scan
# bytes/s against them, pinned fetch GB/s, attention TFLOP/s, routing latency at 1M/10M/100M tokens
# (synthetic bf16 keys, one router layer, x18 estimate). Writes results/gpu/<device>.json.
#   scripts/gpu_bench.sh [gpu_bench args]   (--routing-tokens 64 --queries 1 --top-k 16 --reps 10 --scales ...)
# Needs a CUDA GPU. The binary links cudart statically, so one built on a machine with nvcc but no
# GPU runs on a GPU machine that has only the driver: GPU_BENCH_BIN=path/to/gpu_bench.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MSABENCH_BUILD_DIR:-build}
BIN=${GPU_BENCH_BIN:-$BUILD_DIR/tests/benchmarks/gpu_bench}
if [[ ! -x "$BIN" ]]; then
  [[ -f "$BUILD_DIR/build.ninja" ]] || cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMSABENCH_CUDA=ON
  cmake --build "$BUILD_DIR" --target gpu_bench msa_cuda_tests
fi
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; fi
mkdir -p results/gpu
"$BIN" --out results/gpu "$@"
