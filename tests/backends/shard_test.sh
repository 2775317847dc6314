#!/usr/bin/env bash
# Sharded routing over 2 and 4 Gloo workers on 127.0.0.1 equals unsharded routing.
# usage: shard_test.sh path/to/shard_worker
set -uo pipefail
BIN=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for world in 2 4; do
  pids=()
  for ((r = 0; r < world; ++r)); do
    "$BIN" "$r" "$world" "$T/store-$world" &
    pids+=($!)
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  [[ $status == 0 ]] || { echo "FAIL: sharded routing with $world workers" >&2; exit 1; }
done
echo "shard_test: 2 and 4 workers match unsharded routing"
