#!/usr/bin/env bash
# Writes that hit a file-size limit (ulimit -f: write() fails with EFBIG once msabench ignores
# SIGXFSZ, the same path as ENOSPC on a full disk): `run` and `encode` must exit non-zero with
# an error naming the file and "file too large", leave no temporary file, and leave OUT absent or
# the previous complete version. Also: an impossible --ram-budget is refused before any work.
# usage: disk_full_test.sh path/to/msabench model_dir
source "$(dirname "$0")/lib.sh"
BIN=$1
MODEL=$2
no_tmp() { if find "$T" -name '*.tmp-*' | grep -q .; then fail "temporary files left: $(find "$T" -name '*.tmp-*')"; fi; }
LIMIT_KB=8   # bash counts ulimit -f in KiB; a smoke cell file is larger

# run: nothing appears at OUT
if (ulimit -f $LIMIT_KB; "$BIN" run --suite smoke -q --no-plot -o "$T/new" >/dev/null 2>"$T/err.txt"); then
  fail "run succeeded under a ${LIMIT_KB} KiB file-size limit"
fi
cat "$T/err.txt"
grep -q "^error: $T/new.partial/cells/.*\.json: write failed: file too large" "$T/err.txt" || fail "run error: $(cat "$T/err.txt")"
[[ -e "$T/new" ]] && fail "run left $T/new behind"
no_tmp

# a really full disk (ENOSPC): a 32 KiB tmpfs in a user namespace, where the kernel allows one
mkdir "$T/full"
if unshare -rm true 2>/dev/null; then
  if unshare -rm bash -c 'mount -t tmpfs -o size=32k tmpfs "$1" && "$2" run --suite smoke -q --no-plot -o "$1/out"' \
      _ "$T/full" "$BIN" >/dev/null 2>"$T/err.txt"; then
    fail "run succeeded on a 32 KiB filesystem"
  fi
  cat "$T/err.txt"
  grep -q "write failed: disk full" "$T/err.txt" || fail "ENOSPC error: $(cat "$T/err.txt")"
else
  echo "skipped the ENOSPC case: no user namespaces here"
fi

# run over a previous complete OUT: it stays as it was
"$BIN" run --suite smoke -q --no-plot -o "$T/prev" >/dev/null
before=$(cd "$T/prev" && find . -type f | sort | xargs md5sum)
if (ulimit -f $LIMIT_KB; "$BIN" run --suite smoke --seed 9 -q --no-plot -o "$T/prev" >/dev/null 2>"$T/err.txt"); then
  fail "second run succeeded under the limit"
fi
[[ "$(cd "$T/prev" && find . -type f | sort | xargs md5sum)" == "$before" ]] || fail "previous OUT changed"
no_tmp

# encode: the failing segment or template is named; the bank is not marked complete
python3 - "$T/corpus.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(12):
        f.write(json.dumps({"id": f"d{i}", "text": "memory sparse attention " * (20 + i)}) + "\n")
PY
if (ulimit -f 4; "$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/bank" --segment-docs 4 -q \
      >/dev/null 2>"$T/err.txt"); then
  fail "encode succeeded under a 4 KiB file-size limit"
fi
cat "$T/err.txt"
grep -q "^error: $T/bank/.*: write failed: file too large" "$T/err.txt" || fail "encode error: $(cat "$T/err.txt")"
no_tmp
if [[ -f "$T/bank/manifest.json" ]] && grep -q '"complete": true' "$T/bank/manifest.json"; then
  fail "bank marked complete"
fi
# without the limit the same command resumes and completes
"$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/bank" --segment-docs 4 -q >/dev/null
"$BIN" bank info --verify "$T/bank" | grep -q '"verified": true' || fail "bank not verified after the rerun"
# a RAM budget that cannot be met is refused before any work: no bank directory appears
if "$BIN" encode -m "$MODEL" --corpus "$T/corpus.jsonl" -o "$T/nobank" --ram-budget 1K -q >/dev/null 2>"$T/err.txt"; then
  fail "encode accepted a 1 KiB RAM budget"
fi
grep -q "^error: memory bank does not fit: .* but the RAM budget is" "$T/err.txt" || fail "budget error: $(cat "$T/err.txt")"
[[ -e "$T/nobank" ]] && fail "encode wrote $T/nobank before refusing the budget"
echo "disk_full_test: all checks passed"
