#!/usr/bin/env bash
# `msabench compare` on the committed regression baseline: identical results pass (exit 0), a
# deliberately injected accuracy regression fails (exit 1) with a readable diff, bad input fails
# with a clear error.
# usage: compare_cli_test.sh path/to/msabench SOURCE_DIR
set -euo pipefail
BIN=$1
SRC=$2
BASE=$SRC/results/baselines/regression
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

$BIN compare --help >"$T/help.txt" || fail "compare --help"
grep -q "Example" "$T/help.txt" || fail "compare --help has no examples"

$BIN compare "$BASE" "$BASE" >"$T/same.txt" || { cat "$T/same.txt" >&2; fail "baseline vs itself failed"; }
grep -q "^OK: " "$T/same.txt" || fail "no OK summary: $(cat "$T/same.txt")"

# inject: in one cell, the first 5 queries lose their recall@1 hit; the aggregate is recomputed
cp -r "$BASE" "$T/new"
CELL=$(ls "$T/new/cells" | grep niah_single_1__16K__bm25_b_0.4 | head -1)
[[ -n "$CELL" ]] || fail "baseline has no niah_single_1 16K bm25 cell"
/usr/bin/python3 - "$T/new/cells/$CELL" <<'PY'
import json, sys
p = sys.argv[1]
r = json.load(open(p))
for rec in r["records"][:5]:
    rec["metrics"]["recall@1"] = 0.0
vals = [rec["metrics"]["recall@1"] for rec in r["records"] if "recall@1" in rec["metrics"]]
r["aggregates"]["recall@1"] = sum(vals) / len(vals)
json.dump(r, open(p, "w"), indent=1)
PY
set +e
$BIN compare "$BASE" "$T/new" --tolerance 0.05 >"$T/diff.txt" 2>&1
rc=$?
set -e
cat "$T/diff.txt"
[[ $rc -eq 1 ]] || fail "injected regression: exit code $rc, expected 1"
grep -q "niah_single_1 @ 16K  bm25:b=0.4,k1=0.9" "$T/diff.txt" || fail "diff does not name the cell"
grep -q "REGRESSION *recall@1 .*-> 0.750" "$T/diff.txt" || fail "diff does not show the recall@1 drop"
grep -q "paired bootstrap p=" "$T/diff.txt" || fail "diff has no paired bootstrap p-value"
grep -q "^FAIL: 1 regression" "$T/diff.txt" || fail "no FAIL summary"
# the same drop within a looser tolerance for that metric passes
$BIN compare "$BASE" "$T/new" --tolerance 0.05,recall@1=0.3 >/dev/null || fail "tolerance override not applied"
# single files work too
$BIN compare "$BASE/cells/$CELL" "$T/new/cells/$CELL" >/dev/null && fail "file-level compare missed the regression"

# errors: exit 1 with a message naming the problem
set +e
$BIN compare "$BASE" "$T/nonexistent" 2>"$T/err.txt"; rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "nonexistent: no such result file or directory" "$T/err.txt" || fail "missing input: rc=$rc $(cat "$T/err.txt")"
set +e
$BIN compare "$BASE" "$BASE" --tolerance recall@1=x 2>"$T/err.txt"; rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "not a non-negative number" "$T/err.txt" || fail "bad tolerance: $(cat "$T/err.txt")"
echo "ok"
