#!/usr/bin/env bash
# The test command: installs what is missing, configures, builds (Release, ninja) and runs ctest.
#   scripts/test.sh                  against Debian 12's LibTorch 1.13.1, in build/
#   scripts/test.sh --torch pypi     against PyPI's LibTorch 2.x (CUDA build), in build-pypi/
# Other arguments go to ctest (e.g. -R Loss). Tests that need a GPU are skipped without one.
# CTEST_JOBS tests run at a time (default 2: the tests' training runs use one thread each).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch-choice.sh
torch_choice "$@"
torch_build
cd "$BUILD_DIR"
ctest --output-on-failure -j "${CTEST_JOBS:-2}" "${ARGS[@]}"
