#!/usr/bin/env bash
# test_compressed_tensors.sh STRATA — compressed-tensors checkpoints as a user meets them, on
# a generated Llama and a generated Mixtral: every scheme written by quantize; its eval
# equal, bit for bit, to the fakequant output of the same numerics (--convention
# compressed-tensors); GPTQ in the format, its kill -9 resume byte-identical; convert
# --format compressed-tensors writing quantize's tensors for data-free schemes (in file
# order, so compared by table and by eval); inspect; the
# packed checkpoint refused as a quantize source (exit 1, nothing written), a
# float-quantized FP8 one accepted; --convention refused outside fakequant; mixed schemes
# (--attention fp8) evaluated linear by linear in every format. The golden
# comparison with llm-compressor's own checkpoints is tests/unit/test_e2e_golden.c.
set -u
STRATA=${1:?usage: test_compressed_tensors.sh path/to/strata}
TEST_NAME=compressed-tensors
. "$(dirname "$0")/lib.sh"

MODEL=$WORK/model
"$STRATA" -q generate --arch llama -o "$MODEL" --layers 3 --hidden 256 >/dev/null || { echo "generate failed"; exit 1; }
awk 'BEGIN { srand(5); for (i = 0; i < 16 * 64; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/ids.txt"
CALIB=(--calib "$WORK/ids.txt" --calib-format ids --calib-samples 16 --calib-seq 64)
EVAL=(--tokens "$WORK/ids.txt" --window 64)

# --- every scheme: the checkpoint, and eval against fakequant of the same numerics ---------
SCHEMES=(fp8 fp8-dynamic fp8-block nvfp4 nvfp4-weight-only int8 int8-w8a8 int4 int4-asym mxfp4)
# the sanitizers see the same code on the layouts the later checks use
[[ ${STRATA_SANITIZE_BUILD:-} == 1 ]] && SCHEMES=(fp8-dynamic nvfp4 int8-w8a8 int4 int4-asym)
for scheme in "${SCHEMES[@]}"; do
  run "$STRATA" -q quantize "$MODEL" "${CALIB[@]}" --scheme "$scheme" --format compressed-tensors -o "$WORK/ct-$scheme"
  check "$scheme: quantize --format compressed-tensors exits 0" test "$rc" -eq 0
  check "$scheme: config.json says compressed-tensors, compressed" grep -q '"quantization_status": "compressed"' \
    "$WORK/ct-$scheme/config.json"
  check "$scheme: no hf_quant_config.json (vLLM would take it for ModelOpt's)" test ! -e "$WORK/ct-$scheme/hf_quant_config.json"
  run "$STRATA" -q quantize "$MODEL" "${CALIB[@]}" --scheme "$scheme" --format fakequant --convention compressed-tensors \
    -o "$WORK/fq-$scheme"
  run "$STRATA" -q eval "$WORK/ct-$scheme" "${EVAL[@]}"
  ppl_ct=$out
  run "$STRATA" -q eval "$WORK/fq-$scheme" "${EVAL[@]}"
  check "$scheme: eval of the checkpoint ($ppl_ct) equals the fakequant one's ($out)" \
    test -n "$ppl_ct" -a "$ppl_ct" = "$out"
done
run "$STRATA" inspect "$WORK/ct-int4-asym"
check "inspect names the format" has "$out" "compressed-tensors pack-quantized"
check "inspect attributes every tensor" has "$out" "unexpected    0"
check "int4 is pack-quantized int32" grep -q '"format": "pack-quantized"' "$WORK/ct-int4/config.json"

# --- convert writes the same weights data-free ------------------------------------------
for scheme in int4-asym int8-w8a8; do
  run "$STRATA" -q convert "$MODEL" --scheme "$scheme" --format compressed-tensors -o "$WORK/cv-$scheme"
  check "$scheme: convert --format compressed-tensors exits 0" test "$rc" -eq 0
  run "$STRATA" inspect "$WORK/cv-$scheme"
  tables_cv=$(tail -n +2 <<<"$out" | sort)
  run "$STRATA" inspect "$WORK/ct-$scheme"
  check "$scheme: convert writes quantize's tensors (names, dtypes, shapes)" test "$tables_cv" = "$(tail -n +2 <<<"$out" | sort)"
  run "$STRATA" -q eval "$WORK/cv-$scheme" "${EVAL[@]}"
  ppl_cv=$out
  run "$STRATA" -q eval "$WORK/ct-$scheme" "${EVAL[@]}"
  check "$scheme: and the same values (eval $ppl_cv)" test -n "$ppl_cv" -a "$ppl_cv" = "$out"
done
run "$STRATA" -q convert "$MODEL" --scheme int4-asym -o "$WORK/cv-modelopt"
check "convert int4-asym as ModelOpt is refused (exit 1)" test "$rc" -eq 1
check "saying which format holds it" has "$err" "--format compressed-tensors"

# --- GPTQ in the format: kill -9, resume, byte-identical --------------------------------
G=("$STRATA" quantize "$MODEL" "${CALIB[@]}" --scheme int4 --algo gptq --format compressed-tensors)
run "${G[@]}" -o "$WORK/gptq-ref"
check "GPTQ --format compressed-tensors exits 0" test "$rc" -eq 0
kill_at_layer "$WORK/ckpt" 1 "${G[@]}" -o "$WORK/gptq-resumed" --checkpoint-dir "$WORK/ckpt"
run "${G[@]}" -o "$WORK/gptq-resumed" --checkpoint-dir "$WORK/ckpt"
check "GPTQ resumed after kill -9 exits 0" test "$rc" -eq 0
check "the resumed output is byte-identical" same_dir "$WORK/gptq-ref" "$WORK/gptq-resumed"
run "$STRATA" -q quantize "$MODEL" "${CALIB[@]}" --scheme int4 --algo gptq --format fakequant -o "$WORK/gptq-other" \
  --checkpoint-dir "$WORK/ckpt"
check "the checkpoint refuses a run of another format (exit 1)" test "$rc" -eq 1

# --- sources ------------------------------------------------------------------------------
run "$STRATA" -q quantize "$WORK/ct-int4" "${CALIB[@]}" --scheme fp8 -o "$WORK/twice"
check "a pack-quantized checkpoint is refused as a source (exit 1)" test "$rc" -eq 1
check "naming its format" has "$err" "compressed-tensors pack-quantized"
check "and nothing is written" test ! -e "$WORK/twice"
run "$STRATA" -q quantize "$WORK/ct-fp8-dynamic" "${CALIB[@]}" --scheme int4 -o "$WORK/from-fp8"
check "a float-quantized FP8 checkpoint is read as a source" test "$rc" -eq 0
run "$STRATA" -q quantize "$MODEL" "${CALIB[@]}" --scheme int4 --convention compressed-tensors -o "$WORK/conv"
check "--convention with the ModelOpt format is refused (exit 1)" test "$rc" -eq 1
check "saying where it applies" has "$err" "--format fakequant"

# --- a mixture of experts: per-expert tensors, eval equal to fakequant --------------------
if [[ ${STRATA_SANITIZE_BUILD:-} != 1 ]]; then
  MOE=$WORK/mixtral
  "$STRATA" -q generate --arch mixtral -o "$MOE" --layers 2 >/dev/null || { echo "generate mixtral failed"; exit 1; }
  for scheme in nvfp4 int4; do
    run "$STRATA" -q quantize "$MOE" "${CALIB[@]}" --scheme "$scheme" --format compressed-tensors -o "$WORK/moe-$scheme"
    check "mixtral $scheme: exits 0" test "$rc" -eq 0
    run "$STRATA" inspect "$WORK/moe-$scheme"
    check "mixtral $scheme: per-expert tensors" has "$out" "block_sparse_moe.experts.0.w1.weight_packed"
    run "$STRATA" -q quantize "$MOE" "${CALIB[@]}" --scheme "$scheme" --format fakequant --convention compressed-tensors \
      -o "$WORK/moe-fq-$scheme"
    run "$STRATA" -q eval "$WORK/moe-$scheme" "${EVAL[@]}"
    ppl_ct=$out
    run "$STRATA" -q eval "$WORK/moe-fq-$scheme" "${EVAL[@]}"
    check "mixtral $scheme: eval equals fakequant's ($ppl_ct)" test -n "$ppl_ct" -a "$ppl_ct" = "$out"
  done
  check "routers are in the ignore list" grep -q '"model.layers.0.block_sparse_moe.gate"' "$WORK/moe-nvfp4/config.json"

  # Mixed schemes (DeepSeek-V3 with FP8 attention beside NVFP4 MLPs): each linear's inputs
  # quantized its own way at eval, in every format.
  DS=$WORK/deepseek
  "$STRATA" -q generate --arch deepseek_v3 --layers 3 --config '{"intermediate_size": 352}' -o "$DS" >/dev/null ||
    { echo "generate deepseek_v3 failed"; exit 1; }
  awk 'BEGIN { srand(7); for (i = 0; i < 8 * 64; i++) printf "%d ", int(rand() * 500); print "" }' >"$WORK/ds-ids.txt"
  M=("$STRATA" -q quantize "$DS" --calib "$WORK/ds-ids.txt" --calib-format ids --calib-samples 8 --calib-seq 64
     --scheme nvfp4 --attention fp8)
  for convention in compressed-tensors modelopt; do
    run "${M[@]}" --format "$convention" -o "$WORK/ds-$convention"
    check "deepseek mixed $convention: exits 0" test "$rc" -eq 0
    run "${M[@]}" --format fakequant --convention "$convention" -o "$WORK/ds-fq-$convention"
    run "$STRATA" -q eval "$WORK/ds-$convention" --tokens "$WORK/ds-ids.txt" --window 64
    ppl_mixed=$out
    run "$STRATA" -q eval "$WORK/ds-fq-$convention" --tokens "$WORK/ds-ids.txt" --window 64
    check "deepseek mixed $convention: eval equals fakequant's ($ppl_mixed)" test -n "$ppl_mixed" -a "$ppl_mixed" = "$out"
  done
  check "the compressed-tensors config is mixed-precision" grep -q '"format": "mixed-precision"' \
    "$WORK/ds-compressed-tensors/config.json"
fi

echo "test_compressed_tensors: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
