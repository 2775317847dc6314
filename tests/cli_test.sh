#!/usr/bin/env bash
# End-to-end checks of the msabench CLI. usage: cli_test.sh path/to/msabench
set -euo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --help works for every subcommand
for sub in run retrieve data report compare generate train judge "data make" "data inspect"; do
  $BIN $sub --help >"$T/help.txt" || fail "$sub --help"
  grep -q "Example" "$T/help.txt" || fail "$sub --help has no examples"
done

# retrieve on a tiny corpus
cat >"$T/corpus.jsonl" <<'J'
{"id": "d1", "text": "The quick brown fox jumps over the lazy dog."}
{"id": "d2", "text": "Memory sparse attention routes queries to documents."}
{"id": 3, "text": "A lazy afternoon by the river."}
J
cat >"$T/queries.jsonl" <<'J'
{"id": "q1", "text": "sparse attention memory"}
{"id": "q2", "text": "lazy river"}
J
$BIN retrieve --backend bm25 --corpus "$T/corpus.jsonl" --queries "$T/queries.jsonl" --k 2 --out "$T/run.jsonl" -q
[[ $(wc -l <"$T/run.jsonl") -eq 2 ]] || fail "retrieve wrote $(wc -l <"$T/run.jsonl") lines"
head -1 "$T/run.jsonl" | grep -q '"query_id":"q1","results":\[{"id":"d2"' || fail "q1 top hit is not d2: $(head -1 "$T/run.jsonl")"
sed -n 2p "$T/run.jsonl" | grep -q '"id":"3"' || fail "q2 top hit is not 3"

# malformed input: error names file and line, exit code 1, no output file
printf '{"id":"a","text":"x"}\n{"id":"b","text":}\n' >"$T/bad.jsonl"
if $BIN retrieve --corpus "$T/bad.jsonl" --queries "$T/queries.jsonl" --out "$T/bad-out.jsonl" -q 2>"$T/err.txt"; then
  fail "malformed corpus accepted"
fi
grep -q "$T/bad.jsonl:2: invalid JSON" "$T/err.txt" || fail "error does not name file:line: $(cat "$T/err.txt")"
[[ ! -e "$T/bad-out.jsonl" ]] || fail "partial output left behind"
printf '{"id":"q","text":"x"}\n{"text":"no id"}\n' >"$T/badq.jsonl"
if $BIN retrieve --corpus "$T/corpus.jsonl" --queries "$T/badq.jsonl" --out "$T/o.jsonl" -q 2>"$T/err.txt"; then
  fail "query without id accepted"
fi
grep -q "$T/badq.jsonl:2: query has no \"id\" field" "$T/err.txt" || fail "bad query error: $(cat "$T/err.txt")"
if $BIN retrieve --backend bm25:k1=x --corpus "$T/corpus.jsonl" --queries "$T/queries.jsonl" --out "$T/o.jsonl" 2>"$T/err.txt"; then
  fail "bad backend option accepted"
fi
grep -q "not a number" "$T/err.txt" || fail "bad option error: $(cat "$T/err.txt")"

# data make / inspect / run on a dataset dir with a persistent index
$BIN data make --task niah_multikey_1 --tokens 4K --samples 2 --out "$T/mk" >/dev/null
for f in corpus.jsonl queries.jsonl meta.json; do [[ -s "$T/mk/$f" ]] || fail "data make: $f missing"; done
$BIN data inspect "$T/mk" >"$T/inspect.txt"
grep -q "corpora     2" "$T/inspect.txt" || fail "inspect: $(cat "$T/inspect.txt")"
$BIN run -d "$T/mk" -b "bm25:index_dir=$T/idx" -o "$T/res-dir" -q --no-plot >/dev/null
ls "$T/idx" | grep -q '^bm25-' || fail "index_dir not used"
$BIN run -d "$T/mk" -b "bm25:index_dir=$T/idx" -o "$T/res-dir" -q --no-plot >/dev/null
grep -q '"indexes_reused": 2' "$T"/res-dir/cells/*.json || fail "index not reused on the second run"

# smoke suite: result files, report, schema
$BIN run --suite smoke -o "$T/res" -q >"$T/run.txt"
ls "$T"/res/cells/*.json >/dev/null || fail "no cell results"
[[ -s "$T/res/report.md" && -s "$T/res/report.csv" && -s "$T/res/suite.json" ]] || fail "report files missing"
grep -q '"schema": "msabench.result/1"' "$T"/res/cells/*.json || fail "schema tag missing"
grep -q "recall@1" "$T/run.txt" || fail "run did not print the table"
ls "$T" | grep -q partial && fail "partial directory left behind"
$BIN report "$T/res" -o "$T/rep" --no-plot >/dev/null
[[ -s "$T/rep/report.md" ]] || fail "report command wrote nothing"
if $BIN report "$T/nothing-here" 2>"$T/err.txt"; then fail "report on missing dir succeeded"; fi
grep -q "nothing-here" "$T/err.txt" || fail "report error does not name the path"
if $BIN run -d no_such_task -o "$T/x" 2>"$T/err.txt"; then fail "unknown dataset accepted"; fi
[[ ! -e "$T/x" ]] || fail "failed run left an output directory"
# train --checkpoint: a missing checkpoint is named and nothing is written; mixing it with a config is refused
if $BIN train --checkpoint "$T/no-ck" --export "$T/model" 2>"$T/err.txt"; then fail "export of a missing checkpoint succeeded"; fi
grep -q "no-ck.*no checkpoint to export" "$T/err.txt" || fail "export error: $(cat "$T/err.txt")"
[[ ! -e "$T/model" ]] || fail "failed export left a model directory"
if $BIN train --checkpoint "$T/no-ck" --export "$T/model" --probe 4 2>"$T/err.txt"; then fail "--checkpoint with --probe accepted"; fi
grep -q "only exports" "$T/err.txt" || fail "--checkpoint misuse error: $(cat "$T/err.txt")"
if $BIN train 2>"$T/err.txt"; then fail "train without --config accepted"; fi
grep -q "needs --config" "$T/err.txt" || fail "train without config: $(cat "$T/err.txt")"
echo "cli_test: all checks passed"
