#!/usr/bin/env bash
# Installs every build dependency from Debian apt (idempotent, non-interactive),
# then configures and builds MSA-Bench (Release) into build/.
#   scripts/setup.sh            install + build
#   MSABENCH_SKIP_APT=1 ...     build only (packages already present)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake ninja-build g++ pkg-config ccache python3 python3-matplotlib
  libtorch-dev libopenblas-dev
  libfaiss-dev libhnswlib-dev
  liblucene++-dev libboost-dev
  nlohmann-json3-dev libcli11-dev zlib1g-dev
  libpcre2-dev libutf8proc-dev libcpp-httplib-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev
  dict-devil
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ "${MSABENCH_SKIP_APT:-0}" != 1 && ${#missing[@]} -gt 0 ]]; then
  echo "[setup] installing ${#missing[@]} apt packages: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
else
  echo "[setup] apt packages present"
fi

BUILD_DIR=${MSABENCH_BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$BUILD_DIR" --parallel "$(nproc)"
echo "[setup] built $BUILD_DIR/msabench"
