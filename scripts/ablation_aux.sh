#!/usr/bin/env bash
# Auxiliary routing loss ablation (issue #7, the paper's Table 4 direction): two msa-small models
# trained from the same seed, data and schedule for STEPS (default 150) optimizer steps, with and
# without the InfoNCE routing loss (results/ablation-aux/train_{aux,noaux}.json), run side by side
# (one core each), exported and evaluated by `msabench run` on held-out NIAH memories at SIZES
# (default 64K,256K bytes). Training is resumable: re-running continues from the checkpoints under
# build/ablation-aux/. Writes results/ablation-aux/eval/ and summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-64K,256K}
SAMPLES=${SAMPLES:-8}
OUT=${OUT:-results/ablation-aux}
ninja -C build -j"${JOBS:-1}" msabench >/dev/null
for v in aux noaux; do
  build/msabench train -c "$OUT/train_$v.json" --quiet &
done
wait
specs=()
for v in aux noaux; do
  build/msabench train -c "$OUT/train_$v.json" --steps 0 --export "build/ablation-aux/$v/model" --quiet
  specs+=(-b "msa:model=build/ablation-aux/$v/model,max_rounds=3,max_tokens=64")
done
build/msabench run "${specs[@]}" -d niah_single_1 -s "$SIZES" --samples "$SAMPLES" --tokenizer bytes --no-plot \
  -o "$OUT/eval" --quiet
python3 - "$OUT" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
summary = {"command": "scripts/ablation_aux.sh", "cells": []}
for v in ("aux", "noaux"):
    log = [json.loads(l) for l in open(f"build/ablation-aux/{v}/log.jsonl")]
    summary[f"training_{v}"] = [{k: r[k] for k in ("step", "lm_loss", "aux_loss", "router_top1", "id_token_acc") if k in r}
                                for r in log]
for path in sorted(glob.glob(out + "/eval/cells/*.json")):
    cell = json.load(open(path))
    agg = cell["aggregates"]
    # Rank of the gold document in each router layer's first-call top-k (None: not selected).
    layers = {}
    for r in cell["records"]:
        for lr in r["detail"]["calls"][0]["routing"]:
            ids = [str(d) for d in lr["doc_ids"]]
            rank = next((i for i, d in enumerate(ids) if d in set(r["gold_doc_ids"])), None)
            layers.setdefault(str(lr["layer"]), []).append(rank)
    routing = {l: {"gold_at_1": sum(x == 0 for x in ranks) / len(ranks),
                   "gold_in_top_k": sum(x is not None for x in ranks) / len(ranks),
                   "mrr": sum(1 / (x + 1) for x in ranks if x is not None) / len(ranks)} for l, ranks in layers.items()}
    summary["cells"].append({"backend": cell["backend"]["spec"], "size": cell["dataset"]["memory_tokens"],
                             "queries": cell["dataset"]["queries"], "documents": cell["dataset"]["documents"],
                             "aggregates": agg, "routing_by_layer": routing})
json.dump(summary, open(out + "/summary.json.tmp", "w"), indent=1)
os.replace(out + "/summary.json.tmp", out + "/summary.json")
for c in summary["cells"]:
    model = next(p for p in c["backend"].split(":", 1)[1].split(",") if p.startswith("model="))
    print(c["size"], model, "router_recall", c["aggregates"].get("router_recall"),
          "string_match", c["aggregates"].get("ruler_string_match_all"), c["routing_by_layer"])
PY
