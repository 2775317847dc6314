#!/usr/bin/env bash
# Kill -9 an encode at several random points, resume each time, and require the final bank to be
# byte-identical to an uninterrupted encode; then corrupt and truncate segments and require clear
# errors naming the segment. usage: bank_resume_test.sh path/to/msabench model_dir
set -euo pipefail
BIN=$1
MODEL=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$T/corpus.jsonl" <<'PY'
import json, random, sys
random.seed(7)
words = "memory sparse attention routes every query to the documents that matter most".split()
with open(sys.argv[1], "w") as f:
    for i in range(48):
        f.write(json.dumps({"id": f"d{i}", "text": " ".join(random.choice(words) for _ in range(random.randint(5, 40)))}) + "\n")
PY
"$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/ref" --segment-docs 6 -q >/dev/null
digest() { (cd "$1" && cat template.bin seg-*.bin | md5sum | cut -d' ' -f1); }
REF=$(digest "$T/ref")

# Random kill points (seed printed so a failure can be replayed with MSABENCH_FAULT_SEED).
seed=${MSABENCH_FAULT_SEED:-$RANDOM}
echo "encode kill seed $seed"
RANDOM=$seed
for i in 1 2 3 4 5; do
  delay=$(awk -v r=$((RANDOM % 271 + 30)) 'BEGIN { printf "%.2f", r / 100 }')  # 0.30-3.00 s
  "$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/killed" --segment-docs 6 -q >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
"$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/killed" --segment-docs 6 -q >/dev/null
[[ $(digest "$T/killed") == "$REF" ]] || fail "resumed bank differs from the uninterrupted one"
"$BIN" bank info "$T/killed" | grep -q '"complete": true' || fail "bank not complete"

# A different corpus may not reuse the directory.
head -n 40 "$T/corpus.jsonl" >"$T/other.jsonl"
if "$BIN" encode -m "$MODEL" --corpus "$T/other.jsonl" -o "$T/killed" -q 2>"$T/err.txt"; then fail "other corpus accepted"; fi
grep -q "bank was built with corpus" "$T/err.txt" || fail "mismatch error: $(cat "$T/err.txt")"

# Corrupt and truncated segments are reported by name when the bank is used.
cp -r "$T/ref" "$T/bad"
printf 'X' | dd of="$T/bad/seg-00002.bin" bs=1 seek=10 conv=notrunc status=none
if "$BIN" bank info --verify "$T/bad" 2>"$T/err.txt" >/dev/null; then fail "corrupt segment accepted"; fi
grep -q "seg-00002.bin: checksum mismatch" "$T/err.txt" || fail "corrupt error: $(cat "$T/err.txt")"
cp "$T/ref/seg-00002.bin" "$T/bad/seg-00002.bin"
truncate -s 100 "$T/bad/seg-00004.bin"
if "$BIN" bank info --verify "$T/bad" 2>"$T/err.txt" >/dev/null; then fail "truncated segment accepted"; fi
grep -q "seg-00004.bin: truncated segment" "$T/err.txt" || fail "truncation error: $(cat "$T/err.txt")"
"$BIN" bank info --verify "$T/ref" | grep -q '"verified": true' || fail "good bank not verified"
echo "bank_resume_test: all checks passed"
