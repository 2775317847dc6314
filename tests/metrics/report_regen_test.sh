#!/usr/bin/env bash
# `msabench report` must regenerate each committed report byte-identically from the committed
# result JSON (report.md, report.csv, report.tex), and two renderings of report.png must match.
# usage: report_regen_test.sh path/to/msabench SOURCE_DIR [RESULT_DIR...]
# Default result dirs: every results/baselines/*/ with a committed report.md, and results/latest.
set -euo pipefail
BIN=$1
SRC=$2
shift 2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

dirs=("$@")
if [[ ${#dirs[@]} -eq 0 ]]; then
  for d in "$SRC"/results/baselines/*/; do [[ -f "$d/report.md" ]] && dirs+=("${d%/}"); done
  [[ -f "$SRC/results/latest/report.md" ]] && dirs+=("$SRC/results/latest")
fi
[[ ${#dirs[@]} -gt 0 ]] || fail "no committed reports found under $SRC/results/baselines"

i=0
for d in "${dirs[@]}"; do
  i=$((i + 1))
  # copy only the inputs, so nothing committed is read back as an input or overwritten
  mkdir -p "$T/$i/a" "$T/$i/b"
  cp -r "$d/cells" "$T/$i/a/"
  [[ -f "$d/suite.json" ]] && cp "$d/suite.json" "$T/$i/a/"
  cp -r "$T/$i/a/." "$T/$i/b/"
  (cd "$T" && "$BIN" report "$T/$i/a" >/dev/null) || fail "$d: report failed"
  # a different working directory and environment must not change anything
  (cd / && env -i PATH=/usr/bin:/bin TZ=Pacific/Auckland LC_ALL=C "$BIN" report "$T/$i/b" >/dev/null) ||
    fail "$d: second report failed"
  for f in report.md report.csv report.tex; do
    [[ -f "$d/$f" ]] || fail "$d/$f is not committed"
    cmp -s "$d/$f" "$T/$i/a/$f" || { diff "$d/$f" "$T/$i/a/$f" | head -20 >&2; fail "$d/$f differs from a regeneration"; }
    cmp -s "$T/$i/a/$f" "$T/$i/b/$f" || fail "$d/$f depends on working directory or environment"
  done
  if [[ -f "$T/$i/a/report.png" ]]; then
    cmp -s "$T/$i/a/report.png" "$T/$i/b/report.png" || fail "$d: report.png differs between two renderings"
    ! grep -a -q "matplotlib version" "$T/$i/a/report.png" || fail "$d: report.png carries a Software version chunk"
  fi
  echo "ok: $d regenerates byte-identically"
done
