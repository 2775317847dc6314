#!/bin/bash
# usage: teacher_forced.sh CHECKPOINT_DIR...   (from the repository root, after the build)
# Teacher-forced naming on 60 training samples (30 joint steps of ../s23-value/train_config_q21.json's
# data, seed 301, at lr 1e-9 so the weights stay put): one line per checkpoint with id_name_acc,
# hop 1 (id_name_acc_first), hop 2 (id_name_acc_later), router top-1, the copy attention share and
# copy_value_acc. About 90 s each on one thread.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,6p "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "checkpoint id_name_acc hop1 hop2 router_top1 copy_share copy_value_acc"
for ck in "$@"; do
  [ -f "$ck/model.safetensors" ] || { echo "teacher_forced.sh: $ck has no model.safetensors" >&2; exit 1; }
  python3 - "$ck" "$tmp" > "$tmp/config.json" <<'Q'
import json, sys
c = json.load(open('results/msa-small-copy/s23-value/train_config_q21.json'))
c.update(init_from=sys.argv[1], out_dir=sys.argv[2] + '/run', lr=1e-9, min_lr=1e-9, warmup_steps=0, log_every=30)
print(json.dumps(c))
Q
  rm -rf "$tmp/run"
  build/msabench train -c "$tmp/config.json" --steps 30 -q > /dev/null
  python3 - "$tmp/run/log.jsonl" "$ck" <<'Q'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
keys = ['id_name_acc', 'id_name_acc_first', 'id_name_acc_later', 'router_top1', 'copy_attention_share', 'copy_value_acc']
print(sys.argv[2], *('%.3f' % r[k] if k in r else '-' for k in keys))
Q
done
