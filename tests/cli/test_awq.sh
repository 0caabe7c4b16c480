#!/usr/bin/env bash
# test_awq.sh STRATA — `strata quantize --algo awq` as a user meets it, on generated models
# (no shared data needed; the reference libraries' numbers are test_awq_golden's and
# test_awq_ct_golden's): what the checkpoint holds for INT4 (W4A16_AWQ) and NVFP4 (NVFP4_AWQ),
# and on MoE models, and for compressed-tensors (llm-compressor's AWQ, dense and MoE), the summary's choices, evaluating the
# output, kill -9 followed by resume (byte-identical), and what it refuses.
set -u
STRATA=${1:?usage: test_awq.sh path/to/strata}
TEST_NAME=awq
. "$(dirname "$0")/lib.sh"

# Grouped-query attention (2 KV heads of 4): o_proj keeps its pre_quant_scale under NVFP4.
MODEL=$WORK/model
"$STRATA" -q generate --arch llama -o "$MODEL" --layers 4 --hidden 256 \
  --config '{"num_attention_heads": 4, "num_key_value_heads": 2}' >/dev/null || { echo "generate failed"; exit 1; }
awk 'BEGIN { srand(11); for (i = 0; i < 16 * 128; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/ids.txt"
# The sanitizer build runs the same checks on a quarter of the windows (small inputs).
SAMPLES=16
[[ ${STRATA_SANITIZE_BUILD:-0} == 1 ]] && SAMPLES=4
Q=("$STRATA" quantize "$MODEL" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128
   --algo awq)
# The JSON header of an output's safetensors file (its first 8 bytes give its length).
header() {
  local n
  n=$(od -An -tu8 -N8 "$1/model.safetensors" | tr -d ' ')
  head -c $((8 + n)) "$1/model.safetensors" | tail -c "$n" >"$1.header"
  echo "$1.header"
}

# --- INT4: W4A16_AWQ ----------------------------------------------------------------------
run "${Q[@]}" --scheme int4 -o "$WORK/int4"
check "awq int4 exits 0" test "$rc" -eq 0
check "hf_quant_config says W4A16_AWQ" grep -q '"quant_algo": "W4A16_AWQ"' "$WORK/int4/hf_quant_config.json"
check "  with pre_quant_scale true" grep -q '"pre_quant_scale": true' "$WORK/int4/hf_quant_config.json"
h=$(header "$WORK/int4")
check "o_proj and down_proj carry pre_quant_scale tensors (4 layers x 2)" \
  test "$(grep -o '[a-z_]*\.pre_quant_scale' "$h" | grep -c '^o_proj\|^down_proj')" -eq 8
check "  q/k/v and gate/up none (folded into the norms)" \
  test "$(grep -o '[a-z_]*\.pre_quant_scale' "$h" | wc -l)" -eq 8
check "the summary names each linear's a" test "$(grep -c '  awq a [01]\.[0-9]' "$WORK/int4/quant_summary.txt")" -eq 28
check "  and quant_summary.json its 11 losses" test "$(grep -A14 '"awq": {' "$WORK/int4/quant_summary.json" | grep -c '^ *[0-9][0-9.e-]*,\?$')" -ge 11
run "$STRATA" inspect "$WORK/int4"
check "inspect reads the output, every tensor attributed" has "$out" "unexpected    0"
E=(--tokens "$WORK/ids.txt" --window 128 --max-windows 8 --json)
# kld_of OUT BASE: the mean KL divergence of output OUT against model BASE on the ids'
# windows (strata eval's JSON kept as OUT.eval.json)
kld_of() {
  "$STRATA" -q eval "$1" --base "$2" "${E[@]}" >"$1.eval.json" 2>/dev/null
  grep -o '"kld": {"value": [0-9.e-]*' "$1.eval.json" | grep -o '[0-9.e-]*$'
}
kld=$(kld_of "$WORK/int4" "$MODEL")
check "eval of the AWQ output against the original: small positive KLD ($kld)" \
  awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'
# The pre_quant_scale tensors matter: without them the model is another one.
"$STRATA" -q quantize "$MODEL" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128 \
  --scheme int4 -o "$WORK/rtn" >/dev/null 2>&1
kld_of "$WORK/rtn" "$MODEL" >/dev/null
check "  and not the round-to-nearest output's" bash -c "! cmp -s '$WORK/int4.eval.json' '$WORK/rtn.eval.json'"

# --- NVFP4: NVFP4_AWQ ----------------------------------------------------------------------
run "${Q[@]}" --scheme nvfp4 -o "$WORK/nvfp4" --kv-cache fp8
check "awq nvfp4 exits 0" test "$rc" -eq 0
check "hf_quant_config says NVFP4_AWQ" grep -q '"quant_algo": "NVFP4_AWQ"' "$WORK/nvfp4/hf_quant_config.json"
check "  without config_groups (ModelOpt writes none for it)" bash -c "! grep -q config_groups '$WORK/nvfp4/config.json'"
h=$(header "$WORK/nvfp4")
check "down_proj's scale folded into up_proj's rows: no down_proj.pre_quant_scale" \
  test "$(grep -o 'down_proj\.pre_quant_scale' "$h" | wc -l)" -eq 0
check "grouped-query attention keeps o_proj's (4 layers), and only those" \
  test "$(grep -o '[a-z_]*\.pre_quant_scale' "$h" | grep -c '^o_proj')" -eq 4 -a \
  "$(grep -o '[a-z_]*\.pre_quant_scale' "$h" | wc -l)" -eq 4
kld=$(kld_of "$WORK/nvfp4" "$MODEL")
check "eval of the NVFP4 AWQ output: small positive KLD ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.1) }'

# --- kill -9 and resume: byte-identical ----------------------------------------------------
kill_at_layer "$WORK/ckpt" 2 "${Q[@]}" --scheme nvfp4 -o "$WORK/half" --kv-cache fp8 --checkpoint-dir "$WORK/ckpt"
check "the run was killed half way (after layer ${killed_at:-none} of 4)" test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ckpt"
check "strata resume finishes" test "$rc" -eq 0
check "the resumed output is byte-identical" same_dir "$WORK/nvfp4" "$WORK/half"

# --- compressed-tensors: llm-compressor's AWQModifier ---------------------------------------
# Multi-head attention (4 KV heads of 4): v_proj -> o_proj is a mapping too.
MHA=$WORK/mha
"$STRATA" -q generate --arch llama -o "$MHA" --layers 4 --hidden 256 \
  --config '{"num_attention_heads": 4, "num_key_value_heads": 4}' >/dev/null || { echo "generate failed"; exit 1; }
C=("$STRATA" quantize "$MHA" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128
   --format compressed-tensors --scheme int4-asym)
run "${C[@]}" --algo awq -o "$WORK/ct"
check "awq --format compressed-tensors int4-asym exits 0" test "$rc" -eq 0
check "config.json: a plain pack-quantized W4A16_ASYM checkpoint" grep -q '"format": "pack-quantized"' "$WORK/ct/config.json"
check "  asymmetric" grep -q '"symmetric": false' "$WORK/ct/config.json"
h=$(header "$WORK/ct")
check "  no pre_quant_scale tensors (the scales are in the norms and rows)" bash -c "! grep -q pre_quant_scale '$h'"
check "the summary says llm-compressor's AWQ" grep -q "llm-compressor's AWQ" "$WORK/ct/quant_summary.txt"
check "  every linear of the 4 mappings x 4 layers searched (o_proj too, without GQA)" \
  test "$(grep -c '  awq \(r [01]\.[0-9]*\|unscaled\)' "$WORK/ct/quant_summary.txt")" -eq 28
check "  and quant_summary.json its 20 losses" \
  test "$(grep -A24 '"awq": {' "$WORK/ct/quant_summary.json" | grep -c '^ *[0-9][0-9.e-]*,\?$')" -ge 20
kld=$(kld_of "$WORK/ct" "$MHA")
check "eval of the output against the original: small positive KLD ($kld)" \
  awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'
run "${C[@]}" -o "$WORK/ct_rtn"
check "  and the norms are not the round-to-nearest output's" bash -c \
  "! cmp -s <('$STRATA' inspect '$WORK/ct' --stats 2>/dev/null | grep layernorm) <('$STRATA' inspect '$WORK/ct_rtn' --stats 2>/dev/null | grep layernorm)"
run "${C[@]}" --algo awq+gptq -o "$WORK/ct_gptq"
check "awq+gptq --format compressed-tensors exits 0, GPTQ on every linear" \
  test "$rc" -eq 0 -a "$(grep -c '  gptq' "$WORK/ct_gptq/quant_summary.txt")" -eq 28
kill_at_layer "$WORK/ckpt_ct" 2 "${C[@]}" --algo awq -o "$WORK/ct_half" --checkpoint-dir "$WORK/ckpt_ct"
check "the compressed-tensors run was killed half way (after layer ${killed_at:-none} of 4)" \
  test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ckpt_ct"
check "strata resume finishes" test "$rc" -eq 0
check "the resumed output is byte-identical" same_dir "$WORK/ct" "$WORK/ct_half"

# --- compressed-tensors on mixture-of-experts: llm-compressor's MoE mappings ----------------
# qwen3_moe with transformers 5's stacked experts (the output stores them per expert). The
# release build only: alloc_faults runs this code under the sanitizers.
if [[ ${STRATA_SANITIZE_BUILD:-0} != 1 ]]; then
QMOE=$WORK/qwen3moe
"$STRATA" -q generate --arch qwen3_moe -o "$QMOE" --layers 4 --hidden 128 --stacked-experts >/dev/null ||
  { echo "generate failed"; exit 1; }
M=("$STRATA" quantize "$QMOE" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128
   --format compressed-tensors --scheme int4-asym --algo awq)
run "${M[@]}" -o "$WORK/moe_ct"
check "awq --format compressed-tensors on an MoE model exits 0" test "$rc" -eq 0
check "  every expert's gate, up and down searched (4 layers x 8 experts x 3)" \
  test "$(grep -c 'experts\.[0-9]*\.\(gate\|up\|down\)_proj .*awq \(r\|unscaled\)' "$WORK/moe_ct/quant_summary.txt")" -eq 96
check "  each router's columns scaled with its experts' s" \
  test "$(grep -c "mlp.gate .*awq: columns times the experts' s" "$WORK/moe_ct/quant_summary.txt")" -eq 4
"$STRATA" inspect "$QMOE" --stats 2>/dev/null | grep 'mlp.gate.weight' >"$WORK/routers_in"
"$STRATA" inspect "$WORK/moe_ct" --stats 2>/dev/null | grep 'mlp.gate.weight' >"$WORK/routers_out"
check "  the routers written scaled, in bf16" \
  test "$(grep -c BF16 "$WORK/routers_out")" -eq 4 -a -n "$(cmp -s "$WORK/routers_in" "$WORK/routers_out" || echo differ)"
kld=$(kld_of "$WORK/moe_ct" "$QMOE")
check "eval of the MoE output against the original: small positive KLD ($kld)" \
  awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.05) }'
kill_at_layer "$WORK/ckpt_moe" 2 "${M[@]}" -o "$WORK/moe_half" --checkpoint-dir "$WORK/ckpt_moe"
check "the MoE run was killed half way (after layer ${killed_at:-none} of 4)" \
  test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ckpt_moe"
check "strata resume finishes" test "$rc" -eq 0
check "the resumed output is byte-identical (the routers' scales restored)" same_dir "$WORK/moe_ct" "$WORK/moe_half"
"$STRATA" -q generate --arch qwen2_moe -o "$WORK/shared_moe" --layers 2 --hidden 128 >/dev/null
run "$STRATA" quantize "$WORK/shared_moe" --calib "$WORK/ids.txt" --calib-format ids --calib-samples 4 --calib-seq 128 \
  --algo awq --format compressed-tensors --scheme int4-asym -o "$WORK/x"
check "a shared expert (qwen2_moe) is refused by name (exit 1)" test "$rc" -eq 1 -a -n "$(has "$err" "shared expert" && echo y)"

# --- ModelOpt's awq_lite on mixture-of-experts (NVFP4_AWQ) -----------------------------------
MO=("$STRATA" quantize "$QMOE" --calib "$WORK/ids.txt" --calib-format ids --calib-samples $SAMPLES --calib-seq 128
    --scheme nvfp4 --algo awq)
run "${MO[@]}" -o "$WORK/moe_mo"
check "ModelOpt's awq on an MoE model exits 0" test "$rc" -eq 0
check "  every expert's gate, up and down searched on its routed tokens (4 layers x 8 experts x 3)" \
  test "$(grep -c 'experts\.[0-9]*\.\(gate\|up\|down\)_proj .*awq a [01]\.[0-9]' "$WORK/moe_mo/quant_summary.txt")" -eq 96
h=$(header "$WORK/moe_mo")
check "  each expert's gate and up carry a pre_quant_scale (no norm folding), down_proj none (in up's rows)" \
  test "$(grep -o 'experts\.[0-9]*\.[a-z_]*\.pre_quant_scale' "$h" | grep -c 'gate_proj\|up_proj')" -eq 64 -a \
  "$(grep -o 'experts\.[0-9]*\.down_proj\.pre_quant_scale' "$h" | wc -l)" -eq 0
kld=$(kld_of "$WORK/moe_mo" "$QMOE")
check "  eval against the original: small positive KLD ($kld)" awk -v k="${kld:-x}" 'BEGIN { exit !(k > 0 && k < 0.1) }'
kill_at_layer "$WORK/ckpt_mo" 2 "${MO[@]}" -o "$WORK/moe_mo_half" --checkpoint-dir "$WORK/ckpt_mo"
check "the run was killed half way (after layer ${killed_at:-none} of 4)" test -n "$killed_at" -a "${killed_at:-4}" -lt 4
run "$STRATA" resume "$WORK/ckpt_mo"
check "strata resume finishes" test "$rc" -eq 0
check "the resumed output is byte-identical (the experts' averaged scales restored)" \
  same_dir "$WORK/moe_mo" "$WORK/moe_mo_half"
run "${MO[@]}" --calib-all-experts -o "$WORK/x"
check "  with --calib-all-experts refused by name (exit 1)" test "$rc" -eq 1 -a -n "$(has "$err" "calib-all-experts" && echo y)"
fi

# --- refused -------------------------------------------------------------------------------
run "${Q[@]}" --scheme fp8 -o "$WORK/x"
check "awq with fp8 is refused (exit 1)" test "$rc" -eq 1
check "  naming the schemes it runs" has "$err" "--algo awq runs with --scheme int4 (W4A16_AWQ) or nvfp4"
run "${Q[@]}" --scheme nvfp4 --format compressed-tensors -o "$WORK/x"
check "awq --format compressed-tensors with nvfp4 is refused (exit 1)" test "$rc" -eq 1
check "  naming W4A16's schemes" has "$err" "--scheme int4 or int4-asym"
"$STRATA" -q generate --arch qwen2_moe -o "$WORK/shared_moe_mo" --layers 2 --hidden 128 >/dev/null
run "$STRATA" quantize "$WORK/shared_moe_mo" --calib "$WORK/ids.txt" --calib-format ids --calib-samples 4 \
  --calib-seq 128 --algo awq --scheme int4 -o "$WORK/x"
check "ModelOpt's awq with a shared expert (qwen2_moe) is refused by name (exit 1)" \
  test "$rc" -eq 1 -a -n "$(has "$err" "shared expert" && echo y)"
check "  and nothing was written" test ! -e "$WORK/x/model.safetensors"

echo "test_awq: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
