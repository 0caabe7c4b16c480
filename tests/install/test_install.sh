#!/usr/bin/env bash
# test_install.sh BUILD_DIR — `cmake --install` into a scratch prefix, then build and run a
# client against the shared and the static library through the installed strata.pc.
set -euo pipefail
BUILD=${1:?usage: test_install.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=$(mktemp -d "${TMPDIR:-/tmp}/strata-install-XXXXXX")
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
for f in include/strata.h lib/libstrata.a lib/libstrata.so lib/pkgconfig/strata.pc bin/strata; do
  [[ -e "$PREFIX/$f" ]] || { echo "FAIL: $f not installed"; exit 1; }
done
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
cc "$HERE/client.c" -o "$PREFIX/client-shared" $(pkg-config --cflags --libs strata)
LD_LIBRARY_PATH="$PREFIX/lib" "$PREFIX/client-shared" | grep -q "strata 0.2.0: /nonexistent.safetensors"
cc "$HERE/client.c" -o "$PREFIX/client-static" $(pkg-config --cflags strata) "$PREFIX/lib/libstrata.a" \
  $(pkg-config --libs-only-l --static strata | sed 's/-lstrata//')
"$PREFIX/client-static" | grep -q "strata 0.2.0"
# Only the public API is exported from the shared library.
if nm -D --defined-only "$PREFIX/lib/libstrata.so" | awk '$2 == "T" {print $3}' | grep -v '^strata_'; then
  echo "FAIL: internal symbols exported"; exit 1
fi
"$PREFIX/bin/strata" --version | grep -q "strata 0.2.0"
echo "1 passed, 0 failed"
