#!/usr/bin/env bash
# tools/quality_table.sh [MODEL_DIR] — how well each algorithm keeps a model, one table:
# every scheme x algorithm row quantized on the same calibration (128 windows of 512 tokens
# of groups_merged.txt) and compared with the original by `strata eval --base` on the same
# text (wiki.test.raw, 200 windows of 256), as issue 28's targets are stated. Prints a
# Markdown table: perplexity of the scored tokens (the base's in the bf16 row), mean KL
# divergence, how often the top token agrees, with their standard errors.
#
#   tools/quality_table.sh                              # llama-19m, every row
#   tools/quality_table.sh ../shared/models/qwen3moe-47m  # MoE rows
#   ROWS="nvfp4:max nvfp4:smooth0.5" tools/quality_table.sh
#   ROWS="int4-asym:awq:ct" tools/quality_table.sh        # a third field ct: --format compressed-tensors
#
# Runs build/release/strata (STRATA= to override); outputs under build/quality/<model>/.
# Minutes per row on 2 cores (GPTQ rows the longest). Not run by make test.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$(cd "$ROOT/.." && pwd)/shared}
STRATA=${STRATA:-$ROOT/build/release/strata}
MODEL=${1:-$SHARED/models/llama-19m}
CALIB=$SHARED/data/calib-groups-merged/groups_merged.txt
TEXT=$SHARED/data/wikitext-2-raw/wiki.test.raw
OUT=$ROOT/build/quality/$(basename "$MODEL")
DENSE_ROWS="int4:max int4:mse int4:gptq int4:awq int4:awq+gptq
nvfp4:max nvfp4:mse nvfp4:gptq nvfp4:awq nvfp4:awq+gptq nvfp4:smooth0.5 nvfp4:smooth0.8 nvfp4:smooth0.5+gptq
fp8:max fp8:mse fp8:gptq fp8:smooth0.5 fp8:smooth0.8 fp8:smooth0.5+gptq"
MOE_ROWS="int4:max int4:gptq int4:awq int4:awq+gptq
nvfp4:max nvfp4:gptq nvfp4:awq nvfp4:awq+gptq nvfp4:smooth0.5 nvfp4:smooth0.8 fp8:max fp8:smooth0.5 fp8:smooth0.8
int4-asym:max:ct int4-asym:awq:ct int4-asym:gptq:ct int4-asym:awq+gptq:ct"
if grep -q '"num_experts\|"num_local_experts' "$MODEL/config.json"; then ROWS=${ROWS:-$MOE_ROWS}; else ROWS=${ROWS:-$DENSE_ROWS}; fi
mkdir -p "$OUT"

value() { # value FILE KEY: the "value" of KEY in strata eval's JSON
  grep -o "\"$2\": {\"value\": [-0-9.e+]*, \"error\": [-0-9.e+]*" "$1" | sed 's/.*"value": \([^,]*\), "error": \(.*\)/\1 \2/'
}
row() { # row LABEL EVAL_JSON
  read -r ppl ppl_e < <(value "$2" ppl_q)
  read -r kld kld_e < <(value "$2" kld)
  read -r top top_e < <(value "$2" same_top)
  printf '| %s | %.3f ± %.3f | %.6f ± %.6f | %.2f ± %.2f %% |\n' "$1" "$ppl" "$ppl_e" "$kld" "$kld_e" \
    "$(awk -v t="$top" 'BEGIN { print 100 * t }')" "$(awk -v t="$top_e" 'BEGIN { print 100 * t }')"
}
E=(--text "$TEXT" --window 256 --max-windows 200 --base "$MODEL" --json)

echo "model $MODEL; calibration 128 x 512 of $(basename "$CALIB"); eval 200 windows of 256 of $(basename "$TEXT")"
echo
echo "| scheme : algorithm | PPL (scored tokens) | mean KLD | same top token |"
echo "|---|---|---|---|"
"$STRATA" -q eval "$MODEL" "${E[@]}" >"$OUT/base.json" 2>/dev/null
read -r base base_e < <(value "$OUT/base.json" ppl_base)
printf '| bf16 | %.3f ± %.3f | 0 | 100 %% |\n' "$base" "$base_e"
for spec in $ROWS; do
  format=(--format modelopt)
  [[ $spec == *:ct ]] && format=(--format compressed-tensors)
  name=${spec%:ct}
  scheme=${name%%:*} algo=${name#*:} smooth=()
  if [[ $algo == smooth* ]]; then
    a=${algo#smooth}
    smooth=(--smooth "${a%%+*}")
    [[ $a == *+* ]] && algo=${a#*+} || algo=max
  fi
  dir=$OUT/$scheme-${spec#*:}
  dir=${dir//:/-}
  if [[ ! -f $dir/strata_output.json ]]; then
    "$STRATA" -q quantize "$MODEL" -o "$dir" --overwrite --scheme "$scheme" --algo "$algo" "${smooth[@]}" "${format[@]}" \
      --calib "$CALIB" --calib-samples 128 --calib-seq 512 --error-stats weights --no-report >"$dir.log" 2>&1 ||
      { echo "| $spec | failed: $(tail -1 "$dir.log") | | |"; continue; }
  fi
  "$STRATA" -q eval "$dir" "${E[@]}" >"$dir.eval.json" 2>/dev/null
  row "$spec" "$dir.eval.json"
done
