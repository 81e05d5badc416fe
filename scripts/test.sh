#!/bin/bash
# The whole test suite, from a fresh Debian 12 as root: installs what is
# needed, builds, and runs every unit and system test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
cd build
ctest --output-on-failure --no-tests=error "$@"
