# Sourced by setup.sh, test.sh, demo.sh and bench.sh: which LibTorch to build against, and the build.
#   --torch debian   Debian 12's libtorch-dev 1.13.1 (CPU) in /usr; build folder build/ (the default)
#   --torch pypi     LibTorch 2.x inside PyPI's torch wheel (CUDA build; runs on the CPU without a
#                    GPU), installed into .torch-pypi/ in the checkout; build folder build-pypi/
#                    ($BUILD_DIR-pypi when BUILD_DIR is set)
# YOLO2_TORCH_PYPI_VERSION pins the wheel (the version tested: 2.11.0).
# After `torch_choice "$@"`: YOLO2_TORCH, BUILD_DIR (unless set), TORCH_CMAKE_ARGS (array) and ARGS
# (the arguments that were not --torch).

YOLO2_TORCH_PYPI_VERSION=${YOLO2_TORCH_PYPI_VERSION:-2.11.0}
YOLO2_TORCH_PYPI_DIR=${YOLO2_TORCH_PYPI_DIR:-$PWD/.torch-pypi}

torch_choice() {
  YOLO2_TORCH=debian
  ARGS=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --torch) [ $# -ge 2 ] || { echo "--torch needs a value: debian or pypi" >&2; exit 2; }; YOLO2_TORCH=$2; shift 2 ;;
      --torch=*) YOLO2_TORCH=${1#--torch=}; shift ;;
      *) ARGS+=("$1"); shift ;;
    esac
  done
  case "$YOLO2_TORCH" in
    debian) BUILD_DIR=${BUILD_DIR:-build}; TORCH_CMAKE_ARGS=() ;;
    pypi) BUILD_DIR=${BUILD_DIR:-build}-pypi   # never the Debian build's folder (its CMake cache pins LibTorch)
          TORCH_CMAKE_ARGS=(-DCMAKE_PREFIX_PATH="$YOLO2_TORCH_PYPI_DIR/torch/share/cmake") ;;
    *) echo "--torch: expected debian or pypi, got '$YOLO2_TORCH'" >&2; exit 2 ;;
  esac
}

# Installs what is missing (setup.sh), configures $BUILD_DIR (Release, ninja) and builds; arguments
# go to `cmake --build` (e.g. --target yolo2). Call after torch_choice.
torch_build() {
  bash scripts/setup.sh --torch "$YOLO2_TORCH"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${TORCH_CMAKE_ARGS[@]}" >/dev/null
  cmake --build "$BUILD_DIR" -j "${JOBS:-2}" "$@"
}
