#!/bin/bash
# usage: probe.sh CHECKPOINT_DIR...   (from the repository root, after the build)
# The copy probe on held-out pointer transcripts: data seed 777 (no training run of this line draws
# it; the probe adds 1000003), 32 samples, documents of 12-100 words as in s31's y3 config, the gold
# documents in context and no memory. Prints, per checkpoint: exact matches of the word answer,
# per-character accuracy of greedy decoding, teacher-forced accuracy and NLL of the answer tokens,
# the teacher-forced accuracy by place in the word, and the first four generated answers.
# About 20 s per checkpoint on one thread.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,8p "$0"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ck in "$@"; do
  python3 - "$ck" "$tmp" > "$tmp/cfg.json" <<'P'
import json, sys
c = json.load(open('results/msa-small-copy/s31-stop/train_config_y3.json'))
c['init_from'] = sys.argv[1]; c['out_dir'] = sys.argv[2] + '/run'
c['data']['task'] = 'pointer'; c['data']['seed'] = 777
print(json.dumps(c))
P
  build/msabench train -c "$tmp/cfg.json" --steps 0 --probe 32 -q > "$tmp/probe.json"
  python3 - "$ck" "$tmp/probe.json" <<'P'
import json, sys
j = json.load(open(sys.argv[2]))
print('%s exact %d/%d chars %.3f tf_acc %.3f tf_nll %.3f' % (sys.argv[1], round(j['exact_match'] * j['samples']), j['samples'],
      j['digit_accuracy'], j['target_token_accuracy'], j['target_nll']))
print('  by place', ' '.join('%.2f' % a for a in j['target_accuracy_by_place']))
print('  writes', ', '.join('%s (%s)' % (e['generated'], e['gold']) for e in j['examples'][:4]))
P
done
