#!/usr/bin/env bash
# Small deterministic regression suite (a few seconds on 2 cores): runs a fixed NIAH x BM25 grid
# and compares it with the committed baseline in results/baselines/regression/ using
# `msabench compare`; exits 1 with the diff when accuracy drops or a normalised timing regresses.
#
# usage: scripts/regression.sh [--update] [path/to/msabench]
#   --update  rewrite the baseline (cells, suite.json, report) from a fresh run; commit the result.
# Timing tolerance: MSABENCH_TIMING_TOLERANCE (default 2.0 = 3x slower, normalised by the
# calibration probe; shared CI machines are noisy). Accuracy must not drop at all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
UPDATE=0
if [[ ${1:-} == --update ]]; then UPDATE=1; shift; fi
BIN=${1:-$ROOT/build/msabench}
BASE=$ROOT/results/baselines/regression
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

"$BIN" run --suite smoke -b bm25 -b bm25:k1=0.3,b=1.0 -d niah_single_1 -d niah_multikey_1 -d niah_multivalue \
  -s 4K,16K --samples 20 --seed 7 -q --no-plot -o "$T/new" >/dev/null

if [[ $UPDATE == 1 ]]; then
  rm -rf "$BASE"
  mkdir -p "$(dirname "$BASE")"
  cp -r "$T/new" "$BASE"
  rm -f "$BASE"/report.*
  "$BIN" report "$BASE" >/dev/null
  echo "updated $BASE"
  exit 0
fi
"$BIN" compare "$BASE" "$T/new" --tolerance "accuracy=0,timing=${MSABENCH_TIMING_TOLERANCE:-2.0}"
