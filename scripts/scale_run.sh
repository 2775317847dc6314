#!/usr/bin/env bash
# Scale run of issue #5: routing keys of a 100M-token memory (synthetic, small config geometry),
# per-query routing latency vs a bandwidth probe measured in the same process, bytes per token by
# tier. Writes results/scale/scale_run.json (override with OUT=...); extra arguments go to the tool
# (e.g. --tokens 16M --reps 3 for a quick look). About 2-3 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/scale/scale_run.json}
ninja -C build -j"${JOBS:-1}" scale_run >/dev/null
mkdir -p "$(dirname "$OUT")"
# Other CPU users distort the numbers: say who was running.
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ps -eo pcpu,comm --sort=-pcpu | awk 'NR > 1 && $1 > 5 {print "busy: " $0}' | head -5
exec build/tests/benchmarks/scale_run --tokens 100M --doc-tokens 512 --dtypes fp32,bf16,int8 \
  --query-tokens 1,8,16,64 --threads 1,2 --reps 5 --out "$OUT" "$@"
