#!/bin/bash
# usage: probe.sh CHECKPOINT_DIR...   (from the repository root, after the build)
# For each checkpoint: the held-out copy_ids probe (32 strings, ../s21-copy/probe_config_copy_ids.json)
# and the in-context niah probe (32 samples, ../s22-hop2/probe_config_niah.json), each with its
# init_from set to the checkpoint. Prints exact matches, digit accuracy, target NLL and teacher-forced
# accuracy over the target tokens and over their id tokens. Seconds each.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,5p "$0"; exit 2; }
here=results/msa-small-copy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ck in "$@"; do
  [ -f "$ck/model.safetensors" ] || { echo "probe.sh: $ck has no model.safetensors" >&2; exit 1; }
  for probe in s21-copy/probe_config_copy_ids.json s22-hop2/probe_config_niah.json; do
    python3 - "$here/$probe" "$ck" "$tmp" > "$tmp/config.json" <<'P'
import json, sys
c = json.load(open(sys.argv[1])); c['init_from'] = sys.argv[2]; c['out_dir'] = sys.argv[3] + '/run'
print(json.dumps(c))
P
    build/msabench train -c "$tmp/config.json" --steps 0 --probe 32 2>/dev/null > "$tmp/out.txt"
    python3 - "$tmp/out.txt" "$ck" "$(basename "$probe" .json)" <<'P'
import json, sys
t = open(sys.argv[1]).read(); d = json.loads(t[t.index('{'):])
ids = d['id_target_accuracy']
print(f"{sys.argv[2]}  {sys.argv[3]:<22} exact {round(d['exact_match'] * 32):2d}/32  "
      f"digit accuracy {d['digit_accuracy']:.3f}  target NLL {d['target_nll']:.3f}  "
      f"target tokens {d['target_token_accuracy']:.3f}" + (f"  id tokens {ids:.3f}" if ids >= 0 else ""))
P
  done
done
