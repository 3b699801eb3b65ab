#!/usr/bin/env bash
# Installs everything yolo2 needs to build, test and run. Idempotent: when everything is already
# there it only checks (no apt-get or pip call), so it is cheap to run before every build.
#   scripts/setup.sh                 Debian packages, LibTorch 1.13.1 from Debian (CPU)
#   scripts/setup.sh --torch pypi    Debian packages, LibTorch 2.x from PyPI's torch wheel (with CUDA)
#                                    into .torch-pypi/ (about 2.7 GB to download, 4.6 GB on disk)
#   scripts/setup.sh --fuzz          also clang and its libFuzzer / sanitizer runtimes (scripts/fuzz.sh)
# Test references from PyPI (pycocotools, onnxruntime, tensorboard) go into .test-deps/, for the
# tests only: yolo2 itself never imports or links them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch-choice.sh
torch_choice "$@"
FUZZ=0
for a in "${ARGS[@]+"${ARGS[@]}"}"; do [ "$a" = --fuzz ] && FUZZ=1; done

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libopenblas0-openmp    # without it libtorch falls back to the reference BLAS (~60x slower matmul)
  libopencv-dev          # image I/O, augmentation, drawing, and cv::dnn for the darknet parity test
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libpugixml-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libgloo-dev            # c10d Gloo process groups (distributed training); the torch wheel has no gloo headers
  libdnnl-dev            # oneDNN's C++ API: the compiled CPU inference plan
  zlib1g-dev             # CRC-32 checks of checkpoints
  libonnx-dev            # ONNX's protobuf classes, checker and shape inference: export --format onnx
  libprotobuf-dev protobuf-compiler  # TensorBoard's event records (train.tensorboard)
  libjpeg-dev            # libjpeg-turbo's API: JPEG decoding with its damaged-data warnings as errors
  clang-format           # scripts/format.sh (the code style)
  python3                # scripts/experiment_report.py and its test, scripts/gpu-check.sh's reference
  python3-pip            # the tests' references from PyPI (.test-deps/)
  curl                   # scripts/get-voc.sh (VOC's archives) and its test
)
case "$YOLO2_TORCH" in
  debian) PACKAGES+=(libtorch-dev) ;;                 # LibTorch 1.13.1 (CPU), the C++ frontend
  pypi) ;;                                            # the wheel comes through pip (above)
esac
if [ "$FUZZ" = 1 ]; then PACKAGES+=(clang libclang-rt-14-dev); fi  # libFuzzer, ASan and UBSan (clang 14)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # python3 and pip may come from elsewhere (pyenv, a venv): what matters is that they run.
    case "$p" in
      python3) command -v python3 >/dev/null && continue ;;
      python3-pip) python3 -m pip --version >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$YOLO2_TORCH" = pypi ]; then
  # The CUDA wheel's CMake files look for the CUDA toolkit (nvcc, headers) even to build CPU code.
  if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "setup: --torch pypi needs the CUDA toolkit (nvcc): install it (e.g. NVIDIA's cuda-toolkit-13-0) and put nvcc on PATH" >&2
    exit 1
  fi
  marker="$YOLO2_TORCH_PYPI_DIR/torch-$YOLO2_TORCH_PYPI_VERSION.dist-info"
  if [ -d "$marker" ]; then
    echo "setup: torch $YOLO2_TORCH_PYPI_VERSION (PyPI) present in $YOLO2_TORCH_PYPI_DIR"
  else
    echo "setup: installing torch==$YOLO2_TORCH_PYPI_VERSION from PyPI into $YOLO2_TORCH_PYPI_DIR"
    rm -rf "$YOLO2_TORCH_PYPI_DIR.partial"
    # --target: a private folder (no virtual environment, no system site-packages touched).
    python3 -m pip install --quiet --no-cache-dir --target "$YOLO2_TORCH_PYPI_DIR.partial" \
      "torch==$YOLO2_TORCH_PYPI_VERSION"
    rm -rf "$YOLO2_TORCH_PYPI_DIR"
    mv "$YOLO2_TORCH_PYPI_DIR.partial" "$YOLO2_TORCH_PYPI_DIR"
  fi
fi
# The tests' references, pinned: pycocotools and its numpy (tests/coco_eval_test.py), ONNX Runtime
# (tests/onnx_check.py; also `yolo2 bench`'s ONNX Runtime figures where it is importable) and
# TensorBoard's event loader with what it imports (tests/tensorboard_check.py). Never yolo2's runtime.
TEST_DEPS_DIR=${YOLO2_TEST_DEPS_DIR:-$PWD/.test-deps}
TEST_DEPS=("pycocotools==2.0.8" "numpy==2.2.6" "onnxruntime==1.20.1" "tensorboard==2.21.0" "protobuf==7.36.2"
           "absl-py==2.5.1" "six==1.17.0" "packaging==26.4")
test_deps_marker="$TEST_DEPS_DIR/.installed-$(printf '%s ' "${TEST_DEPS[@]}" | cksum | cut -d' ' -f1)"
if [ -f "$test_deps_marker" ]; then
  echo "setup: test references present in $TEST_DEPS_DIR"
else
  echo "setup: installing the test references ${TEST_DEPS[*]} from PyPI into $TEST_DEPS_DIR"
  rm -rf "$TEST_DEPS_DIR.partial"
  # --no-deps: the pins above are all that the tests import (not pycocotools' matplotlib, nor
  # TensorBoard's web server or onnxruntime's flatbuffers, coloredlogs and sympy).
  python3 -m pip install --quiet --no-deps --target "$TEST_DEPS_DIR.partial" "${TEST_DEPS[@]}"
  rm -rf "$TEST_DEPS_DIR"
  mv "$TEST_DEPS_DIR.partial" "$TEST_DEPS_DIR"
  touch "$test_deps_marker"
fi
echo "setup: done ($YOLO2_TORCH LibTorch)"
