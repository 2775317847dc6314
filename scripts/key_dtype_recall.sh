#!/usr/bin/env bash
# Effect of reduced-precision routing keys on routing (issue #5): the shipped model on NIAH, the torch
# routing path vs key_dtype=fp32|bf16|int8 over the same banks (one bank_dir, encoded once). Reports,
# per size and key type, how often the gold document is in the first call's top-k (each router layer)
# and the top-k overlap with the torch path. SIZES (default 64K,256K), SAMPLES (default 4),
# OUT (default results/scale/key_dtype_recall.json).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-64K,256K}
SAMPLES=${SAMPLES:-4}
OUT=${OUT:-results/scale/key_dtype_recall.json}
RUN=${RUN:-build/key-dtype-run}
ninja -C build -j"${JOBS:-1}" msabench >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
base="msa:max_rounds=1,max_tokens=8,bank_dir=$RUN/banks"
cmd=(build/msabench run -b "$base" -b "$base,key_dtype=fp32" -b "$base,key_dtype=bf16" -b "$base,key_dtype=int8"
     -d niah_single_1 -s "$SIZES" --samples "$SAMPLES" --tokenizer bytes --no-plot -o "$RUN/out" --quiet)
"${cmd[@]}"
python3 - "$RUN/out" "$OUT" "${cmd[*]}" <<'PY'
import collections, glob, json, sys
out, dest, command = sys.argv[1], sys.argv[2], sys.argv[3]
by = collections.defaultdict(dict)  # size -> variant -> {query_id: [top-k list per router layer]}
gold = {}
for path in glob.glob(out + "/cells/*.json"):
    cell = json.load(open(path))
    spec = cell["backend"]["spec"]
    variant = next((p.split("=")[1] for p in spec.split(":", 1)[1].split(",") if p.startswith("key_dtype=")), "torch")
    size = cell["dataset"]["memory_tokens"]
    lists = {}
    for r in cell["records"]:
        routing = r["detail"]["calls"][0]["routing"]
        lists[r["query_id"]] = [[str(d) for d in layer["doc_ids"]] for layer in routing]
        gold[(size, r["query_id"])] = set(r["gold_doc_ids"])
    by[size][variant] = lists
result = {"command": command, "model": "msa-small (shipped)", "dataset": "niah_single_1", "sizes": {}}
for size, variants in sorted(by.items(), key=lambda kv: str(kv[0])):
    torch_lists = variants["torch"]
    rows = {}
    for variant, lists in sorted(variants.items()):
        overlap, recall, n = 0.0, 0, 0  # per (query, router layer)
        for qid, layers in lists.items():
            for li, ids in enumerate(layers):
                ref = torch_lists[qid][li]
                overlap += len(set(ids) & set(ref)) / max(1, len(ref))
                recall += bool(gold[(size, qid)] & set(ids))
                n += 1
        rows[variant] = {"queries": len(lists), "gold_in_topk": recall / max(1, n),
                         "topk_overlap_vs_torch_path": overlap / max(1, n)}
    result["sizes"][str(size)] = rows
json.dump(result, open(dest + ".tmp", "w"), indent=1)
import os; os.replace(dest + ".tmp", dest)
for size, rows in result["sizes"].items():
    for v, r in rows.items():
        print(f"{size} {v:6s} gold in top-k {r['gold_in_topk']:.3f} overlap {r['topk_overlap_vs_torch_path']:.3f} ({r['queries']} queries)")
PY
