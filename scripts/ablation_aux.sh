#!/usr/bin/env bash
# Auxiliary routing loss ablation (issue #7, the paper's Table 4 direction): two msa-small models
# trained from the same seed, data and schedule, with and without the InfoNCE routing loss
# ($PAIR/train_{aux,noaux}.json), run side by side (one core each), exported and evaluated by
# `msabench run` on held-out NIAH memories at SIZES with the msa backend OPTIONS. Writes
# $PAIR/eval/ and $PAIR/summary.json.
#   PAIR=results/ablation-aux (default): the 150-step recipe, evaluated under the paper's protocol.
#   PAIR=results/ablation-aux/stage3 OPTIONS=max_rounds=3,max_tokens=64,naming=router: the shipped
#     model's recipe (600 steps from the copy checkpoint, about 35 minutes per arm); naming=router
#     because neither model names documents itself.
# Training is resumable: re-running continues from each config's out_dir checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIR=${PAIR:-results/ablation-aux}
SIZES=${SIZES:-64K,256K}
SAMPLES=${SAMPLES:-8}
OPTIONS=${OPTIONS:-max_rounds=3,max_tokens=64}
for v in aux noaux; do
  [[ -f "$PAIR/train_$v.json" ]] || { echo "ablation_aux: $PAIR/train_$v.json not found" >&2; exit 2; }
done
ninja -C build -j"${JOBS:-1}" msabench >/dev/null
pids=()
for v in aux noaux; do
  build/msabench train -c "$PAIR/train_$v.json" --quiet &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done  # a bare `wait` returns 0 even when a training failed
specs=()
for v in aux noaux; do
  dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["out_dir"])' "$PAIR/train_$v.json")
  build/msabench train -c "$PAIR/train_$v.json" --steps 0 --export "$dir/model" --quiet
  specs+=(-b "msa:model=$dir/model,$OPTIONS")
done
build/msabench run "${specs[@]}" -d niah_single_1 -s "$SIZES" --samples "$SAMPLES" --tokenizer bytes --no-plot \
  -o "$PAIR/eval" --quiet
python3 - "$PAIR" "$OPTIONS" "$SIZES" "$SAMPLES" <<'PY'
import glob, json, os, sys
out, options, sizes, samples = sys.argv[1:5]
summary = {"command": f"PAIR={out} OPTIONS={options} SIZES={sizes} SAMPLES={samples} scripts/ablation_aux.sh",
           "options": options, "cells": []}
for v in ("aux", "noaux"):
    log_dir = json.load(open(f"{out}/train_{v}.json"))["out_dir"]
    log = [json.loads(l) for l in open(f"{log_dir}/log.jsonl")]
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
