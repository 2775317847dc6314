#!/usr/bin/env bash
# Content fetch settings of the msa backend side by side in one run (issue #5): the calling thread
# vs a fetch pool, with and without next-layer prefetch, with the bank's content memory-mapped and
# either warm in the page cache or evicted before every prefill (cold_content=1). One memory bank
# (bank_dir) serves every cell, so only the first cell encodes. Writes results/fetch/ (OUT=...);
# SIZE (default 256K bytes of NIAH memory) and SAMPLES (default 8) set the workload.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/fetch}
SIZE=${SIZE:-256K}
SAMPLES=${SAMPLES:-8}
BANKS=${BANKS:-build/fetch-banks}
ninja -C build -j"${JOBS:-1}" msabench >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
ps -eo pcpu,comm --sort=-pcpu | awk 'NR > 1 && $1 > 5 {print "busy: " $0}' | head -5
common="bank_dir=$BANKS,content=mmap,max_rounds=1,max_tokens=8"
specs=()
for cold in 0 1; do
  c=""; [ "$cold" = 1 ] && c=",cold_content=1"
  specs+=(-b "msa:$common$c,fetch_threads=0" -b "msa:$common$c,fetch_threads=2,prefetch=0"
          -b "msa:$common$c,fetch_threads=2" -b "msa:$common$c,fetch_threads=4")
done
build/msabench run "${specs[@]}" -d niah_single_1 -s "$SIZE" --samples "$SAMPLES" --tokenizer bytes -o "$OUT" --quiet
python3 - "$OUT" <<'PY'
import glob, json, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(out + "/cells/*.json")):
    cell = json.load(open(path))
    recs = cell["records"]
    mean = lambda k: 1000 * sum(r["stage_seconds"].get(k, 0) for r in recs) / len(recs)
    calls = [c for r in recs for c in r["detail"]["calls"]]
    hits = sum(c["batch_fetch"]["prefetch_hits"] for c in calls)
    docs = sum(c["batch_fetch"]["documents"] for c in calls)
    rows.append((cell["backend"]["spec"], len(recs), mean("prefill"), mean("prefill.score"), mean("prefill.topk"),
                 mean("prefill.fetch"), mean("prefill.attend"), f"{hits}/{docs}"))
lines = ["| backend | queries | prefill ms | score ms | top-k ms | fetch ms | attend ms | prefetch hits / fetched |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    lines.append("| `%s` | %d | %.1f | %.2f | %.2f | %.2f | %.1f | %s |" % r)
open(out + "/fetch_table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
