#!/usr/bin/env bash
# Installs every Debian package yolo2 needs to build, test and run. Idempotent: when everything is
# already installed it only checks (no apt-get call), so it is cheap to run before every build.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev           # LibTorch 1.13.1 (CPU), the C++ frontend
  libopenblas0-openmp    # without it libtorch falls back to the reference BLAS (~60x slower matmul)
  libopencv-dev          # image I/O, augmentation, drawing, and cv::dnn for the darknet parity test
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libpugixml-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libgloo-dev            # c10d Gloo process groups (distributed training)
  libdnnl-dev            # oneDNN's C++ API: the compiled CPU inference plan (LibTorch loads the same libdnnl)
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
