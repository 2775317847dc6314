#!/bin/bash
# usage: held_out.sh CHECKPOINT_DIR...   (from the repository root, after the build)
# Teacher-forced naming on held-out samples: like ../s24-joint/teacher_forced.sh, but on data seed 777,
# which no training run of this line draws from (they all use 301/302 from step 0, and 311/312 here),
# for two tasks of 60 samples each: "pointer" (hop 1, hop 2, copy_value_acc, answer tokens) and "niah"
# (naming from memory). teacher_forced.sh's 60 samples are the first 60 every run trains on, so its
# figures include memorised samples. Optional LONG=1: pointer documents of 70-110 words, 6-10 per
# sample (the length synth_pointer's 16K memories have). Optional LONG_NIAH=1: the same for niah
# (NIAH 64K's memory documents are 512 bytes, about 100 words; training's are 12-40). The last
# column, stop, is the greedy accuracy on <End-of-Retrieve> after the last injected document (the
# decision to answer; session 31). About 60 s per checkpoint and task on one thread.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,11p "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
long=${LONG:-0}
long_niah=${LONG_NIAH:-0}
echo "checkpoint task id_name_acc hop1 hop2 router_top1 copy_share copy_value_acc answer_tokens stop"
for ck in "$@"; do
  [ -f "$ck/model.safetensors" ] || { echo "held_out.sh: $ck has no model.safetensors" >&2; exit 1; }
  for task in pointer niah; do
    python3 - "$ck" "$tmp" "$task" "$long" "$long_niah" > "$tmp/config.json" <<'Q'
import json, sys
c = json.load(open('results/msa-small-copy/s23-value/train_config_q21.json'))
c.update(init_from=sys.argv[1], out_dir=sys.argv[2] + '/run', lr=1e-9, min_lr=1e-9, warmup_steps=0, log_every=30)
c['data'].update(task=sys.argv[3], seed=777)
if {'pointer': sys.argv[4], 'niah': sys.argv[5]}[sys.argv[3]] == '1':
    c['data'].update(doc_words_min=70, doc_words=110, min_docs=6, max_docs=10)
print(json.dumps(c))
Q
    rm -rf "$tmp/run"
    build/msabench train -c "$tmp/config.json" --steps 30 -q > /dev/null
    python3 - "$tmp/run/log.jsonl" "$ck" "$task" <<'Q'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
keys = ['id_name_acc', 'id_name_acc_first', 'id_name_acc_later', 'router_top1', 'copy_attention_share', 'copy_value_acc', 'answer_token_acc', 'stop_acc']
print(sys.argv[2], sys.argv[3], *('%.3f' % r[k] if k in r else '-' for k in keys))
Q
  done
done
