#!/usr/bin/env bash
# test_smooth.sh STRATA — `strata quantize --smooth A` (SmoothQuant) and `--algo awq+gptq` as
# a user meets them, on generated models (llm-compressor's own numbers are
# test_smooth_golden's): the summary, evaluating the outputs, the combinations with GPTQ,
# mixture-of-experts layers (attention only), kill -9 followed by resume (byte-identical),
# and what is refused.
set -u
STRATA=${1:?usage: test_smooth.sh path/to/strata}
TEST_NAME=smooth
. "$(dirname "$0")/lib.sh"

MODEL=$WORK/model
"$STRATA" -q generate --arch llama -o "$MODEL" --layers 4 --hidden 256 \
  --config '{"num_attention_heads": 4, "num_key_value_heads": 2}' >/dev/null || { echo "generate failed"; exit 1; }
# The sanitizer build runs the same checks on a quarter of the windows (small inputs).
SAMPLES=16
[[ ${STRATA_SANITIZE_BUILD:-0} == 1 ]] && SAMPLES=4
awk 'BEGIN { srand(13); for (i = 0; i < 16 * 128; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/ids.txt"
Q=("$STRATA" quantize "$MODEL" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128)
E=(--tokens "$WORK/ids.txt" --window 128 --max-windows $((SAMPLES / 2)) --json)
kld_of() { # kld_of OUT: mean KLD of OUT against the original
  "$STRATA" -q eval "$1" --base "$MODEL" "${E[@]}" 2>/dev/null | grep -o '"kld": {"value": [0-9.e-]*' | grep -o '[0-9.e-]*$'
}

# --- FP8 W8A8 with SmoothQuant ---------------------------------------------------------------
run "${Q[@]}" --scheme fp8 --smooth 0.8 -o "$WORK/fp8"
check "fp8 --smooth 0.8 exits 0" test "$rc" -eq 0
check "the summary states the smoothing" grep -q '^smooth       SmoothQuant a 0.8' "$WORK/fp8/quant_summary.txt"
check "  and each smoothed linear's s (q/k/v, gate/up: 4 layers x 5)" \
  test "$(grep -c '  smooth s [0-9]' "$WORK/fp8/quant_summary.txt")" -eq 20
check "  none on o_proj or down_proj" bash -c "! grep -E '(o_proj|down_proj).*smooth s' '$WORK/fp8/quant_summary.txt'"
check "quant_summary.json records the strength" grep -q '"smooth": 0.8' "$WORK/fp8/quant_summary.json"
kld=$(kld_of "$WORK/fp8")
check "eval of the smoothed output: small positive KLD ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'
"${Q[@]}" --scheme fp8 -o "$WORK/fp8-plain" >/dev/null 2>&1
plain=$(kld_of "$WORK/fp8-plain")
check "  and another model than the unsmoothed output's ($plain)" test -n "$plain" -a "$plain" != "$kld"
run "${Q[@]}" --scheme int8-w8a8 --format compressed-tensors --smooth 0.5 -o "$WORK/int8"
check "int8-w8a8 (dynamic inputs) --smooth 0.5 --format compressed-tensors exits 0" test "$rc" -eq 0
kld=$(kld_of "$WORK/int8")
check "  and evaluates ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'

# --- SmoothQuant then GPTQ (NVFP4: the Hessians of the smoothed, quantized inputs) -----------
run "${Q[@]}" --scheme nvfp4 --algo gptq --smooth 0.5 -o "$WORK/sq-gptq"
check "nvfp4 --algo gptq --smooth 0.5 exits 0" test "$rc" -eq 0
check "  GPTQ ran on every linear" test "$(grep -c '  gptq [0-9]' "$WORK/sq-gptq/quant_summary.txt")" -eq 28
kld=$(kld_of "$WORK/sq-gptq")
check "  and evaluates ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.1) }'
kill_at_layer "$WORK/ck1" 2 "${Q[@]}" --scheme nvfp4 --algo gptq --smooth 0.5 -o "$WORK/sq-gptq-half" \
  --checkpoint-dir "$WORK/ck1"
check "killed half way (after layer ${killed_at:-none} of 4)" test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ck1"
check "strata resume finishes, byte-identical" test "$rc" -eq 0 -a -n "$(same_dir "$WORK/sq-gptq" "$WORK/sq-gptq-half" && echo y)"

# --- AWQ then GPTQ ----------------------------------------------------------------------------
run "${Q[@]}" --scheme int4 --algo awq+gptq -o "$WORK/awq-gptq"
check "int4 --algo awq+gptq exits 0" test "$rc" -eq 0
check "  W4A16_AWQ" grep -q '"quant_algo": "W4A16_AWQ"' "$WORK/awq-gptq/hf_quant_config.json"
check "  each linear's a and GPTQ in the summary" \
  test "$(grep '  awq a [01]\.[0-9]' "$WORK/awq-gptq/quant_summary.txt" | grep -c '  gptq [0-9]')" -eq 28
kld=$(kld_of "$WORK/awq-gptq")
check "  evaluates ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'
run "${Q[@]}" --scheme nvfp4 --algo awq+gptq -o "$WORK/awq-gptq4"
check "nvfp4 --algo awq+gptq exits 0 (NVFP4_AWQ)" test "$rc" -eq 0 -a \
  -n "$(grep -q '"quant_algo": "NVFP4_AWQ"' "$WORK/awq-gptq4/hf_quant_config.json" && echo y)"
kill_at_layer "$WORK/ck2" 2 "${Q[@]}" --scheme nvfp4 --algo awq+gptq -o "$WORK/awq-gptq4-half" \
  --checkpoint-dir "$WORK/ck2"
check "killed half way (after layer ${killed_at:-none} of 4)" test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ck2"
check "strata resume finishes, byte-identical" test "$rc" -eq 0 -a -n "$(same_dir "$WORK/awq-gptq4" "$WORK/awq-gptq4-half" && echo y)"

# --- mixture of experts: attention only (the router reads the MLP's norm) --------------------
"$STRATA" -q generate --arch mixtral -o "$WORK/moe" --layers 2 --hidden 128 >/dev/null
run "$STRATA" quantize "$WORK/moe" --calib "$WORK/ids.txt" --calib-format ids --calib-samples 4 --calib-seq 128 \
  --scheme fp8 --smooth 0.8 -o "$WORK/moe-fp8"
check "an MoE model with --smooth exits 0" test "$rc" -eq 0
check "  q/k/v smoothed (2 layers x 3), no expert" test "$(grep -c '  smooth s [0-9]' "$WORK/moe-fp8/quant_summary.txt")" -eq 6 -a \
  "$(grep 'experts\.' "$WORK/moe-fp8/quant_summary.txt" | grep -c 'smooth s')" -eq 0

M=("$STRATA" quantize "$WORK/moe" --calib "$WORK/ids.txt" --calib-format ids --calib-samples 4 --calib-seq 128
   --scheme nvfp4 --algo gptq --smooth 0.5)
run "${M[@]}" -o "$WORK/moe-gptq"
check "  with GPTQ on NVFP4 too" test "$rc" -eq 0
run "${M[@]}" -o "$WORK/moe-gptq-grouped" --experts-per-group 2
check "  the same bytes with its experts materialized two at a time" same_dir "$WORK/moe-gptq" "$WORK/moe-gptq-grouped"

# --- refused ------------------------------------------------------------------------------------
run "${Q[@]}" --scheme int4 --smooth 0.5 -o "$WORK/x"
check "--smooth with a weight-only scheme is refused (exit 1)" test "$rc" -eq 1
check "  saying why" has "$err" "quantizes weights only"
run "${Q[@]}" --scheme nvfp4 --algo awq --smooth 0.5 -o "$WORK/x"
check "--smooth with --algo awq is refused (exit 1)" test "$rc" -eq 1 -a -n "$(has "$err" "AWQ searches its own" && echo y)"
run "${Q[@]}" --scheme fp8 --smooth 1.5 -o "$WORK/x"
check "--smooth 1.5 is a usage error (exit 2)" test "$rc" -eq 2
run "${Q[@]}" --scheme fp8 --smooth 0 -o "$WORK/x"
check "--smooth 0 is a usage error (exit 2)" test "$rc" -eq 2
check "  and nothing was written" test ! -e "$WORK/x/model.safetensors"

echo "test_smooth: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
