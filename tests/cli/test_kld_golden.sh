#!/usr/bin/env bash
# test_kld_golden.sh STRATA — `strata eval QUANT --base ORIGINAL` on llama-19m against the
# reference: tests/golden/kld/llama-19m.json holds the statistics numpy computes from
# transformers logits of ModelOpt's own fake-quantized model and of the original, both in
# fp32, over the same windows (tools/gen_golden_kld.py). strata quantizes llama-19m with the
# same calibration windows (its exports equal ModelOpt's byte for byte: test_e2e_golden),
# evaluates its output with --fp32 and must land within the tolerances below. The base
# forward passes agree to 1e-7 (PPL(base)); the quantized ones are two emulations of the same
# checkpoint (ModelOpt's fake quantization in its fp32 model, where NVFP4 needs CUDA and the
# tool substitutes ModelOpt's NVFP4QTensor; strata's engine emulation), whose rounding noise
# differs token by token: measured, KLD within 3%, PPL(Q) 0.4%, RMS dp 11% (the few tokens
# that dominate it move most). The tolerances are a little wider: 5%, 0.5%, 15%; the exact
# properties (KLD 0 against itself, ModelOpt and fakequant outputs alike) are test_quantize's.
# Release build only (heavy, and no memory-safety question test_quantize does not ask).
set -u
STRATA=${1:?usage: test_kld_golden.sh path/to/strata}
TEST_NAME=kld-golden
. "$(dirname "$0")/lib.sh"

GOLDEN_DIR=$(cd "$(dirname "$0")/../golden" && pwd)
SHARED=${STRATA_SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
MODEL=$SHARED/models/llama-19m
if [[ ! -d $MODEL ]]; then echo "SKIPPED: $MODEL is absent (../shared)"; exit 77; fi
if [[ ${STRATA_SANITIZE_BUILD:-0} == 1 ]]; then echo "SKIPPED (sanitizer build): runs in the release build"; exit 77; fi
GOLDEN=$GOLDEN_DIR/kld/llama-19m.json

golden() { grep -o "\"$1\": [-0-9.e]*" "$GOLDEN" | grep -o '[-0-9.e]*$'; }
actual() { grep -o "\"$2\": {\"value\": [-0-9.e]*" "$1" | grep -o '[-0-9.e]*$'; }
median() { grep -o '"50": [-0-9.e]*' "$1" | head -1 | grep -o '[-0-9.e]*$'; }
# within A B REL: |A - B| <= REL * |B|
within() { awk -v a="${1:-nan}" -v b="${2:-nan}" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; exit !(a == a + 0 && d <= r * m) }'; }

for scheme in fp8 nvfp4 int4; do
  run "$STRATA" -q quantize "$MODEL" --calib "$GOLDEN_DIR/e2e/calib-ids.json" --calib-format ids --calib-samples 16 \
    --calib-seq 128 --scheme $scheme -o "$WORK/$scheme"
  check "$scheme: quantize exits 0" test "$rc" -eq 0
  "$STRATA" -q eval "$WORK/$scheme" --base "$MODEL" --tokens "$GOLDEN_DIR/kld/eval-ids.json" --window 256 --fp32 \
    --json >"$WORK/$scheme.json" 2>"$WORK/$scheme.err"
  out=$(cat "$WORK/$scheme.json")
  err=$(cat "$WORK/$scheme.err")
  check "$scheme: scores the golden's tokens" test "$(grep -o '"scored_tokens": [0-9]*' "$WORK/$scheme.json")" = \
    "\"scored_tokens\": $(golden $scheme.scored_tokens)"
  for stat in kld ppl_q ppl_base p_diff_rms same_top; do
    a=$(actual "$WORK/$scheme.json" $stat) g=$(golden $scheme.$stat)
    case $stat in
      kld) tolerance=0.05 ;;
      ppl_base) tolerance=0.0005 ;;
      ppl_q) tolerance=0.005 ;;
      same_top) tolerance=0.015 ;;
      p_diff_rms) tolerance=0.15 ;;
    esac
    check "$scheme: $stat $a, the reference's $g (within ${tolerance})" within "$a" "$g" $tolerance
  done
  a=$(median "$WORK/$scheme.json") g=$(golden $scheme.kld_percentiles.50)
  check "$scheme: median KLD $a, the reference's $g" within "$a" "$g" 0.05
  printf '%-6s %s\n' "$scheme" "$(for s in kld ppl_q ppl_base p_diff_rms same_top; do printf '%s %s/%s  ' $s \
    "$(actual "$WORK/$scheme.json" $s)" "$(golden $scheme.$s)"; done)"
done
echo "test_kld_golden: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
