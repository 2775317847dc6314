#!/usr/bin/env bash
# End-to-end checks of `msabench data` for the datasets area: make --task all (streamed),
# make --from FORMAT with and without --sizes, inspect of directories / formats / pickles,
# and failures that exit 1 without leaving output behind.
set -euo pipefail
BIN=$1
FIX=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

$BIN data make --task all --tokens 2K --samples 2 --out "$T/all" -q >"$T/make.txt"
n=$(ls "$T/all" | wc -l)
[[ $n == 8 ]] || fail "--task all wrote $n task directories, expected 8"
for t in niah_multikey_2 niah_multikey_3; do
  [[ -s "$T/all/$t/meta.json" ]] || fail "$t/meta.json missing"
  [[ $(wc -l <"$T/all/$t/queries.jsonl") == 2 ]] || fail "$t: expected 2 queries"
done
$BIN data inspect "$T/all/niah_multikey_3" --show 1 >"$T/inspect.txt"
grep -q "^queries     2 (2 with gold documents)" "$T/inspect.txt" || fail "inspect counts: $(cat "$T/inspect.txt")"
grep -q "One of the special magic uuids" "$T/inspect.txt" || fail "inspect shows no gold document"

$BIN data make --from hotpotqa --input "$FIX/hotpotqa_distractor.json" --out "$T/hp" >/dev/null
$BIN run -d "$T/hp" -b bm25 -o "$T/run" -q --no-plot >/dev/null || fail "run on a loaded dataset"
$BIN data inspect --format musique "$FIX/musique_dev.jsonl" | grep -q "documents   3" || fail "inspect --format"
$BIN data inspect "$FIX/msa_qdata.pkl" | grep -q "first record keys: answer (string) query (string)" ||
  fail "inspect pickle"

$BIN data make --from msa --input "$FIX/msa_qdata.pkl" --input "$FIX/msa_mdata.pkl" --sizes 32,1K \
  --pad noise --doc-tokens 64 --out "$T/banks" >/dev/null
for s in 32 1K; do [[ -s "$T/banks/$s/meta.json" ]] || fail "bank $s missing"; done
grep -q '"source": "noise"' "$T/banks/1K/meta.json" || fail "padding source not recorded"

# failures: exit 1, message names the file, nothing written
if $BIN data make --from hotpotqa --input "$FIX/hotpotqa_bad_context.json" --out "$T/bad" 2>"$T/err.txt"; then
  fail "malformed HotpotQA accepted"
fi
grep -q "hotpotqa_bad_context.json: record 0 (_id a1)" "$T/err.txt" || fail "error: $(cat "$T/err.txt")"
if $BIN data inspect "$FIX/evil_reduce.pkl" 2>"$T/err.txt"; then fail "GLOBAL pickle accepted"; fi
grep -q "byte 5: opcode GLOBAL (0x63) refused" "$T/err.txt" || fail "error: $(cat "$T/err.txt")"
if $BIN data make --from msa --input "$FIX/msa_qdata.pkl" --input "$FIX/msa_mdata.pkl" --sizes 8 --out "$T/small" \
  2>"$T/err.txt"; then
  fail "bank smaller than the gold documents accepted"
fi
[[ ! -e "$T/bad" && ! -e "$T/small" ]] || fail "a failed make left output behind"
ls "$T" | grep -q partial && fail "a .partial directory was left behind"
echo "data CLI: all checks passed"
