#!/usr/bin/env bash
# bench/ranks.sh [STRATA] — strata quantize over 1, 2 and 4 MPI ranks of one thread each
# (docs/DISTRIBUTED.md): seconds per layer for llama-19m and qwen3moe-47m (../shared), NVFP4
# with --algo max and INT4 with --algo gptq, 64 windows of 256 tokens of the groups_merged
# text. Rounds alternate the rank counts; the table gives each count's median over the
# rounds, its speed-up over one rank, the decisions' share of a layer (GPTQ's, dealt out by
# linear), and this machine's limit: its core count (ranks beyond it share cores). Each
# run's output is compared with the one-rank output (byte-identical, the timings aside).
set -u
STRATA=${1:-build/release/strata}
SHARED=${SHARED:-../shared}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-ranks-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[[ -d $SHARED/models ]] || { echo "bench/ranks.sh: $SHARED/models is absent"; exit 77; }
"$STRATA" --version | grep -q "mpi: Open MPI" || { echo "bench/ranks.sh: strata built without MPI"; exit 77; }
CORES=$(nproc)
TEXT=$SHARED/data/calib-groups-merged/groups_merged.txt

# seconds per layer of one run: a field of the layers (total, decide) summed over their count
# (quant_timings.json)
per_layer() {
  awk -v key="\"$2\":" '/"layers"/ { in_layers = 1 } in_layers && $1 == key { gsub(/[^0-9.e+-]/, "", $2); sum += $2; n++ }
       END { printf "%.3f", n ? sum / n : 0 }' "$1"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A identical=()
printf '%-14s %-11s %6s %12s %9s %12s %14s %s\n' model run ranks "s per layer" speed-up "s deciding" "machine limit" \
  identical
for model in llama-19m qwen3moe-47m; do
  for run in "nvfp4 max" "int4 gptq"; do
    read -r scheme algo <<<"$run"
    tag=$model-$scheme-$algo
    declare -A times=() decide=()
    for ((round = 0; round < ROUNDS; round++)); do
      for ranks in 1 2 4; do
        out=$WORK/$tag-$ranks-$round
        mpirun --oversubscribe --allow-run-as-root -np "$ranks" "$STRATA" -q quantize "$SHARED/models/$model" -o "$out" \
          --scheme "$scheme" --algo "$algo" --calib "$TEXT" --calib-samples 64 --calib-seq 256 --threads 1 \
          >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
        times[$ranks]+="$(per_layer "$out/quant_timings.json" total) "
        decide[$ranks]+="$(per_layer "$out/quant_timings.json" decide) "
        same=yes
        for f in "$out"/*; do
          [[ $(basename "$f") == quant_timings.json ]] && continue
          cmp -s "$f" "$WORK/$tag-1-0/$(basename "$f")" || same=no
        done
        [[ $ranks -eq 1 ]] || identical[$tag-$ranks]=${identical[$tag-$ranks]:-yes}
        [[ $same == yes ]] || identical[$tag-$ranks]=no
        [[ $ranks -eq 1 && $round -eq 0 ]] || rm -rf "$out" # the one-rank run of round 0 is the reference
      done
    done
    one=$(median "${times[1]}")
    for ranks in 1 2 4; do
      t=$(median "${times[$ranks]}")
      limit=$((ranks < CORES ? ranks : CORES))
      printf '%-14s %-11s %6d %12s %8.2fx %12s %13dx %s\n' "$model" "$scheme $algo" "$ranks" "$t" \
        "$(awk -v a="$one" -v b="$t" 'BEGIN { print a / b }')" "$(median "${decide[$ranks]}")" "$limit" \
        "${identical[$tag-$ranks]:-(reference)}"
    done
    unset times decide
  done
done
