#!/usr/bin/env bash
# `msabench run` killed with SIGKILL at random points and run again with the same arguments:
# the previous complete OUT stays untouched while interrupted, completed cells are reused (never
# recomputed: their files keep their modification times), and the final OUT equals an
# uninterrupted run (cell records and aggregates, timings and dates aside) with no duplicates.
# usage: run_resume_test.sh path/to/msabench
source "$(dirname "$0")/lib.sh"
BIN=$1
ARGS=(run -b bm25 -b bm25:k1=0.3,b=1.0 -d niah_single_1 -d niah_multikey_1 -s 4K,8K --samples 6 --seed 3 -q --no-plot)

start=$(date +%s%N)
"$BIN" "${ARGS[@]}" -o "$T/ref" >/dev/null
took=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
"$BIN" "${ARGS[@]}" -o "$T/out" >/dev/null   # the previous complete version
prev=$(cd "$T/out" && find . -type f | sort | xargs md5sum)

same_as_ref() {
  python3 - "$T/ref" "$1" <<'PY'
import json, os, sys
ref, out = sys.argv[1], sys.argv[2]
def strip(x):  # timings, dates, machine facts and resource use differ between runs
    drop = {"timings", "created", "machine", "calibration", "memory", "git", "seconds", "stage_seconds"}
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in drop and not k.endswith("_ms") and not k.endswith("_s")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
a, b = sorted(os.listdir(ref + "/cells")), sorted(os.listdir(out + "/cells"))
assert a == b, (a, b)
for f in a:
    x, y = (json.load(open(d + "/cells/" + f)) for d in (ref, out))
    ids = [(r["corpus_id"], r["query_id"]) for r in y["records"]]
    assert len(ids) == len(set(ids)), f + ": duplicate records"
    assert strip(x) == strip(y), f
assert sorted(os.listdir(ref)) == sorted(os.listdir(out)), (os.listdir(ref), os.listdir(out))
PY
}

# kill points spread over one run's duration (printed so a failure can be replayed)
seed=${MSABENCH_FAULT_SEED:-$RANDOM}
echo "run takes ${took}s; kill seed $seed"
RANDOM=$seed
for i in 1 2 3 4 5; do
  delay=$(awk -v t="$took" -v r=$((RANDOM % 90 + 5)) 'BEGIN { printf "%.2f", t * r / 100 }')
  "$BIN" "${ARGS[@]}" -o "$T/out" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  if [[ $rc == 0 ]]; then  # finished before the kill: OUT is the new complete version
    same_as_ref "$T/out" || fail "a resumed run that finished differs from the uninterrupted run"
    prev=$(cd "$T/out" && find . -type f | sort | xargs md5sum)
    echo "attempt $i finished before the kill at ${delay}s"
    continue
  fi
  now=$(cd "$T/out" && find . -type f | sort | xargs md5sum)
  if [[ "$now" != "$prev" ]]; then
    # killed after its atomic swap, while exiting: OUT must then be the new complete version
    same_as_ref "$T/out" || fail "OUT changed by a killed run (kill after ${delay}s)"
    prev=$now
    echo "attempt $i swapped in its results just before the kill at ${delay}s"
    continue
  fi
  cells=$(ls "$T/out.partial/cells" 2>/dev/null | grep -c '\.json$' || true)
  echo "kill $i after ${delay}s: $cells completed cell(s) kept"
done
# No staging left (the last attempts finished, or died before staging began): interrupt one from
# scratch. The machine's speed drifts under load, so try several points of the measured duration.
for frac in 0.6 0.35 0.8 0.2 0.5 0.1; do
  [[ -d "$T/out.partial" ]] && break
  "$BIN" "${ARGS[@]}" -o "$T/out" >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v t="$took" -v f="$frac" 'BEGIN { print t * f }')"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  [[ $rc == 0 ]] && { same_as_ref "$T/out" || fail "a run that finished differs from the uninterrupted run"; }
  echo "interrupt from scratch at ${frac} of the run: $([[ -d "$T/out.partial" ]] && echo staging kept || echo no staging yet)"
done
[[ -d "$T/out.partial" ]] || fail "no staging directory kept for resume"
find "$T" -name '*.tmp-*' | grep -q . && fail "temporary files left behind: $(find "$T" -name '*.tmp-*')"
kept=$(cd "$T/out.partial/cells" 2>/dev/null && for f in *.json; do [[ -f $f ]] && echo "$f $(stat -c %Y.%y "$f")"; done || true)

"$BIN" "${ARGS[@]}" -o "$T/out" >/dev/null
[[ -d "$T/out.partial" ]] && fail "staging directory left after a complete run"
while read -r f stamp; do
  [[ -z "$f" ]] && continue
  [[ "$(stat -c %Y.%y "$T/out/cells/$f")" == "$stamp" ]] || fail "completed cell $f was computed again"
done <<<"$kept"
echo "$(echo "$kept" | grep -c . || true) cell(s) reused"

same_as_ref "$T/out" || fail "resumed result differs from the uninterrupted run"

# different arguments never reuse another run's cells
"$BIN" "${ARGS[@]}" -o "$T/out2" >/dev/null 2>&1 &
pid=$!
sleep "$(awk -v t="$took" 'BEGIN { print t * 0.6 }')"
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
OTHER=("${ARGS[@]/#3/4}")  # --seed 4
"$BIN" "${OTHER[@]}" -o "$T/out2" >/dev/null
python3 - "$T/ref" "$T/out2" <<'PY' || fail "a run with other arguments reused cells"
import json, os, sys
for f in os.listdir(sys.argv[2] + "/cells"):
    x, y = (json.load(open(d + "/cells/" + f)) for d in sys.argv[1:])
    assert [r["gold_answers"] for r in x["records"]] != [r["gold_answers"] for r in y["records"]], f
PY
echo "run_resume_test: all checks passed"
