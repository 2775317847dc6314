#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, build-fuzz/) if needed and runs one of them.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#   scripts/fuzz.sh --list
# Seeds come from tests/fixtures, tests/tokenizer/fixtures and tests/fuzz/seeds; inputs that once
# crashed a target live in tests/fuzz/regressions/TARGET/ and are replayed first. The growing
# corpus is build-fuzz/corpus/TARGET; crash artifacts go to build-fuzz/artifacts/.
# MSABENCH_JOBS sets build parallelism (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(fuzz_safetensors fuzz_tokenizer_json fuzz_tokenizer_encode fuzz_loaders fuzz_pickle fuzz_results fuzz_bank)
if [[ "${1:-}" == --list ]]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
if [[ $# -lt 2 ]]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]  (targets: ${TARGETS[*]})" >&2
  exit 2
fi
TARGET=$1 SECONDS_TO_RUN=$2
shift 2
[[ " ${TARGETS[*]} " == *" $TARGET "* ]] || { echo "unknown fuzz target '$TARGET' (${TARGETS[*]})" >&2; exit 2; }

BUILD_DIR=${MSABENCH_FUZZ_BUILD_DIR:-build-fuzz}
CXX_FUZZ=${MSABENCH_FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DMSABENCH_FUZZ=ON
fi
# one build at a time in the directory (another fuzz.sh may be building or running)
flock "$BUILD_DIR/.build.lock" cmake --build "$BUILD_DIR" --target "$TARGET" --parallel "${MSABENCH_JOBS:-$(nproc)}"

SEEDS="$BUILD_DIR/seeds/$TARGET"
CORPUS="$BUILD_DIR/corpus/$TARGET"
rm -rf "$SEEDS"
mkdir -p "$SEEDS" "$CORPUS" "$BUILD_DIR/artifacts"
FIX=tests/fixtures/datasets
case "$TARGET" in
  fuzz_safetensors) cp tests/fuzz/seeds/tiny.safetensors "$SEEDS/" ;;
  fuzz_tokenizer_json) cp tests/tokenizer/fixtures/*.json "$SEEDS/" ;;
  fuzz_tokenizer_encode) cp "$FIX"/*.jsonl "$FIX"/*.tsv "$SEEDS/"; printf 'caf\xc3\xa9 <mask> [W] x\n\xff\xfe' >"$SEEDS/mixed" ;;
  fuzz_pickle) cp "$FIX"/*.pkl "$SEEDS/" ;;
  fuzz_results) cp tests/fuzz/seeds/result_cell.json "$SEEDS/" ;;
  fuzz_bank) cp tests/fuzz/seeds/bank_tiny.bin "$SEEDS/" ;;
  fuzz_loaders)
    # selector byte (fuzz_loaders.cpp's variant index), then the files joined by the separator line
    python3 - "$FIX" "$SEEDS" <<'PY'
import sys, os
fix, out = sys.argv[1], sys.argv[2]
sep = b"\n--8<--\n"
rd = lambda f: open(os.path.join(fix, f), "rb").read()
seeds = {
    0: [["msmarco_qa_v11.jsonl"], ["msmarco_qa_hf.json"], ["msmarco_qa_bad.jsonl"]],
    1: [["hotpotqa_distractor.json"], ["hotpotqa_bad_context.json"]],
    2: [["2wiki_dev.json"]],
    3: [["musique_dev.jsonl"], ["musique_bad.jsonl"]],
    4: [["popqa_corpus.json", "popqa.json"]],
    5: [["msa_qdata.pkl", "msa_mdata.pkl"], ["msa_qdata_badref.pkl", "msa_mdata.pkl"]],
    6: [["msa_qdata.json", "msa_mdata.json"]],
    7: [["msmarco_collection.tsv", "msmarco_queries.tsv", "msmarco_qrels.tsv"]],
    8: [[None]],
}
dir_seed = [b'{"id": "d1", "text": "a b c", "group": "g"}\n{"id": 2, "text": "d e"}',
            b'{"id": "q1", "text": "b?", "answers": ["c"], "gold_doc_ids": ["d1"], "group": "g"}',
            b'{"name": "x", "tokenizer": "whitespace-words"}']
n = 0
for sel, sets in seeds.items():
    for files in sets:
        body = sep.join(dir_seed) if files == [None] else sep.join(rd(f) for f in files)
        open(os.path.join(out, f"seed{n}"), "wb").write(bytes([sel]) + body)
        n += 1
PY
    ;;
esac
DIRS=("$CORPUS" "$SEEDS")
[[ -d "tests/fuzz/regressions/$TARGET" ]] && DIRS+=("tests/fuzz/regressions/$TARGET")

LOG="$BUILD_DIR/$TARGET.log"
set +e
"$BUILD_DIR/tests/fuzz/$TARGET" -max_total_time="$SECONDS_TO_RUN" -print_final_stats=1 -timeout=20 -rss_limit_mb=2048 \
  -artifact_prefix="$BUILD_DIR/artifacts/$TARGET-" "$@" "${DIRS[@]}" 2>&1 | tee "$LOG" | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|Test unit written'
rc=${PIPESTATUS[0]}
set -e
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$LOG" | tail -1 | sed -E 's/.*DONE +//; s/ lim:.*//' || true)
execs=$(awk '/stat::number_of_executed_units/{print $2}' "$LOG")
eps=$(awk '/stat::average_exec_per_sec/{print $2}' "$LOG")
echo "[fuzz] $TARGET: ${SECONDS_TO_RUN}s, execs ${execs:-?}, exec/s ${eps:-?}, ${done_line} (exit $rc, log $LOG)"
exit "$rc"
