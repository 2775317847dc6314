# Sourced by the fault-injection tests: strict mode, a scratch directory $T removed on exit, fail().
set -euo pipefail
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
