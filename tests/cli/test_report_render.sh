#!/usr/bin/env bash
# test_report_render.sh STRATA — the HTML report as a person sees it: headless Chromium (the
# Debian package, installed by scripts/install-deps.sh --with-browser) renders the report of
# a quantized MoE model with its comparison to the original, and the screenshot is kept as a
# test artifact (build/<config>/test-artifacts/report.png). Chromium is started offline
# (no network, a fresh profile), so a page that needed anything from outside would show it.
# The structure and numbers of the page are checked without a browser in test_quantize.sh.
set -u
STRATA=${1:?usage: test_report_render.sh path/to/strata}
ARTIFACTS=${2:-$PWD/test-artifacts}
TEST_NAME=report-render
. "$(dirname "$0")/lib.sh"

BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [[ -z $BROWSER ]]; then echo "SKIPPED: no chromium (scripts/install-deps.sh --with-browser)"; exit 77; fi

"$STRATA" -q generate --arch qwen3_moe -o "$WORK/model" --layers 3 --hidden 256 --experts 16 >/dev/null
awk 'BEGIN { srand(3); for (i = 0; i < 8 * 64; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/ids.txt"
"$STRATA" -q quantize "$WORK/model" --calib "$WORK/ids.txt" --calib-format ids --calib-samples 2 --calib-seq 16 \
  --scheme nvfp4 -o "$WORK/quant" >/dev/null 2>&1
"$STRATA" -q eval "$WORK/quant" --base "$WORK/model" --tokens "$WORK/ids.txt" --window 64 --json >"$WORK/eval.json"
run "$STRATA" report "$WORK/quant" --eval "$WORK/eval.json" -o "$WORK/report.html"
check "report exits 0" test "$rc" -eq 0
mkdir -p "$ARTIFACTS"
run timeout 120 "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$WORK/profile" --proxy-server="http://0.0.0.0:1" --window-size=1000,3200 \
  --screenshot="$ARTIFACTS/report.png" "file://$WORK/report.html"
check "chromium renders the page (exit 0)" test "$rc" -eq 0
size=$(stat -c %s "$ARTIFACTS/report.png" 2>/dev/null || echo 0)
check "a screenshot, $size bytes, at $ARTIFACTS/report.png" test "$size" -gt 50000
check "  a PNG" test "$(head -c 4 "$ARTIFACTS/report.png" | tail -c 3)" = "PNG"
echo "test_report_render: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
