#!/usr/bin/env bash
# scripts/fuzz.sh — builds the libFuzzer targets with clang (ASan + UBSan) and runs each
# for FUZZ_SECONDS (default 60) on a scratch copy of its committed corpus. New crashes
# are saved as crash-* files in the build directory and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B "$BUILD/fuzz" -DCMAKE_BUILD_TYPE=Debug -DSTRATA_SANITIZE=ON -DSTRATA_FUZZ=ON \
  -DSTRATA_WITH_MPI=OFF >/dev/null
cmake --build "$BUILD/fuzz" -j "${JOBS:-2}" --target fuzz_safetensors_header fuzz_config fuzz_tokenizer_json
for target in safetensors_header config tokenizer_json; do
  scratch="$BUILD/fuzz/corpus-$target"
  mkdir -p "$scratch"
  cp tests/fuzz/corpus/$target/* "$scratch/"
  echo "fuzz_$target: ${SECONDS_PER_TARGET}s"
  "$BUILD/fuzz/tests/fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
     -rss_limit_mb=2048 -artifact_prefix="$BUILD/fuzz/" "$scratch" "tests/fuzz/corpus/$target" 2>&1 | tail -3
done
