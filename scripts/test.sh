#!/bin/bash
# The whole test suite, from a fresh Debian 12 as root: installs what is
# needed, then builds and runs three trees through ctest:
#   build       gcc, RelWithDebInfo: every unit, system and style test
#               (arguments of this script go to this ctest, e.g. -R dbus);
#   build-asan  gcc with AddressSanitizer + UndefinedBehaviorSanitizer
#               (-DEZIO_SANITIZE=ON): the unit tests and every system test
#               that runs eziod or ezioctl; LeakSanitizer checks each process
#               at exit. Left out: the .deb tests (a package of a sanitized
#               build is not the product) and the style check;
#   build-fuzz  clang (-DEZIO_FUZZ=ON): the libFuzzer targets of fuzz/, each
#               for EZIO_FUZZ_SECONDS (default 20) from its committed corpus.
# EZIO_TEST_SANITIZE=0 or EZIO_TEST_FUZZ=0 skips a tree. Every tree runs even
# when an earlier one failed; the exit status is 0 only if all passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

failed=() passed=()
run() { # run NAME COMMAND...: runs COMMAND, remembers how NAME did
    local name=$1
    shift
    echo "=== $name: $*"
    if "$@"; then passed+=("$name"); else failed+=("$name"); fi
}

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
run build ctest --test-dir build --output-on-failure --no-tests=error "$@"

if [ "${EZIO_TEST_SANITIZE:-1}" != 0 ]; then
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEZIO_SANITIZE=ON
    cmake --build build-asan -j2
    ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run build-asan ctest --test-dir build-asan --output-on-failure --no-tests=error \
        -L 'unit|system' -E '^(system\.test_(deb|systemd_nspawn)|style\..*)$'
fi

if [ "${EZIO_TEST_FUZZ:-1}" != 0 ]; then
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DEZIO_FUZZ=ON -DEZIO_BUILD_TESTS=OFF -DEZIO_FUZZ_SECONDS="${EZIO_FUZZ_SECONDS:-20}"
    cmake --build build-fuzz -j2 --target ezio-fuzzers
    run build-fuzz ctest --test-dir build-fuzz --output-on-failure --no-tests=error -L fuzz -j2
fi

echo "passed: ${passed[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
