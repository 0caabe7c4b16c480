#!/usr/bin/env bash
# scripts/test.sh — the README's test command: builds the release configuration and runs
# the whole suite, fuzzes each libFuzzer target briefly when clang is available, then
# builds the sanitizer (ASan + UBSan) configuration and runs the whole suite again.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# Each stage's wall time, printed at the end (the suite must stay under 30 minutes on an
# idle 2-core machine).
STAGES=()
stage_start=$SECONDS
stage_done() { STAGES+=("$(printf '%-34s %5d s' "$1" $((SECONDS - stage_start)))"); stage_start=$SECONDS; }

scripts/install-deps.sh --with-fuzz --with-mpi --with-browser
stage_done "dependencies"

echo "== release build"
cmake -S . -B "$BUILD/release" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD/release" -j "$JOBS"
stage_done "release build"
(cd "$BUILD/release" && ctest --output-on-failure)
stage_done "release tests"

if command -v clang >/dev/null; then
  echo "== fuzzing (bounded, ${FUZZ_SECONDS:-20}s per target)"
  FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh
  stage_done "fuzzing"
else
  echo "SKIPPED: clang not found; libFuzzer targets did not run (their corpus runs in ctest)"
fi

echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B "$BUILD/sanitize" -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON >/dev/null
cmake --build "$BUILD/sanitize" -j "$JOBS"
stage_done "sanitizer build"
(cd "$BUILD/sanitize" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure)
stage_done "sanitizer tests"

echo "== time per stage"
printf '%s\n' "${STAGES[@]}"
printf '%-34s %5d s\n' "total" "$SECONDS"
