#!/bin/bash
# Hop 2 of a pointer transcript, no memory: after document [12] has been injected, does MODEL write
# the id the injected text points to? Usage: hop2_check.sh MODEL_DIR (a model exported with
# `msabench train -c CONFIG --steps 0 --export DIR`). Prints, per pointed-to id B, the 2 tokens it writes.
set -euo pipefail
model=$1
for B in 845 1203 77 1999 330; do
  P=$'<|im_start|>user\nWhat is the special magic word for apple mentioned in the provided text?<|im_end|>\n<|im_start|>assistant\n[12]<|object_ref_end|>[12]. The grass is green and the sky. The special magic word for apple is kept in document ['"$B"$'] under code 4821937. One of the days.\n<|object_ref_end|>'
  echo "B=[$B]: $(build/msabench generate -m "$model" -p "$P" --raw -n 2 2>&1 | grep -v 'prompt tokens' | tr '\n' ' ')"
done
