#!/usr/bin/env bash
# test_mpi.sh STRATA — strata quantize under mpirun on this machine (docs/DISTRIBUTED.md):
# 2 and 3 ranks (one thread each, --oversubscribe, --allow-run-as-root as CI runs as root)
# write outputs byte-identical to one process's (the timings aside) for a dense model and a
# mixture of experts, NVFP4, FP8 with an FP8 KV cache, mse, and GPTQ (INT4 dense, NVFP4
# MoE, experts in groups), every expert on every token, SmoothQuant, both AWQs (llm-compressor's on the MoE
# too); only rank 0 reads the calibration data; with --expert-parallel
# (max, mse, GPTQ, an FP8 KV cache) the same bytes again; a run killed with kill -9 resumes from its checkpoint with
# another number of ranks (and with one process) to the same bytes; a rank that fails stops
# every rank with its message; a rank killed with SIGKILL ends the run (no hang) and no
# output appears; a rank that hangs is ended by the others' collective time-out; what is
# not distributed yet is refused by name. Skips (77) without MPI.
set -u
STRATA=${1:?usage: test_mpi.sh path/to/strata}
TEST_NAME=mpi
. "$(dirname "$0")/lib.sh"

if ! command -v mpirun >/dev/null || "$STRATA" --version | grep -q "mpi: not built in"; then
  echo "test_mpi: SKIPPED: strata built without MPI, or no mpirun"
  exit 77
fi
MPIRUN=(timeout 300 mpirun --oversubscribe --allow-run-as-root)

"$STRATA" -q generate --arch llama -o "$WORK/dense" --layers 3 --hidden 256 >/dev/null || { echo "generate failed"; exit 1; }
"$STRATA" -q generate --arch mixtral -o "$WORK/moe" --layers 2 >/dev/null || { echo "generate mixtral failed"; exit 1; }
awk 'BEGIN { srand(5); for (i = 0; i < 12 * 64; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/ids.txt"
C=(--calib "$WORK/ids.txt" --calib-format ids --calib-samples 12 --calib-seq 64 --threads 1)

# --- byte-identical to one process ---------------------------------------------------------
CASES=("dense nvfp4" "moe nvfp4" "moe fp8 --kv-cache fp8" "moe int4 --algo mse" "dense int4 --algo gptq"
       "moe nvfp4 --algo gptq" "moe int4 --algo gptq --experts-per-group 3" "moe nvfp4 --calib-all-experts"
       "dense fp8 --smooth 0.5" "moe nvfp4 --smooth 0.8 --algo gptq" "moe int4 --algo awq"
       "dense nvfp4 --algo awq+gptq" "moe int4-asym --algo awq+gptq --format compressed-tensors")
[[ ${STRATA_SANITIZE_BUILD:-} == 1 ]] && CASES=("moe nvfp4 --algo gptq") # the same code for the rest
for case in "${CASES[@]}"; do
  read -r model scheme extra <<<"$case"
  tag=$(tr ' ' '-' <<<"$case")
  run "$STRATA" -q quantize "$WORK/$model" "${C[@]}" --scheme $scheme $extra -o "$WORK/one-$tag"
  check "$case: one process exits 0" test "$rc" -eq 0
  for np in 2 3; do
    run "${MPIRUN[@]}" -np $np "$STRATA" -q quantize "$WORK/$model" "${C[@]}" --scheme $scheme $extra -o "$WORK/np$np-$tag"
    check "$case: $np ranks exit 0" test "$rc" -eq 0
    check "$case: $np ranks print the output once" test "$out" = "$WORK/np$np-$tag"
    check "$case: $np ranks write the same bytes as one process" same_dir "$WORK/one-$tag" "$WORK/np$np-$tag"
  done
done

run "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/moe" "${C[@]}" --scheme int4 --algo awq \
  --format compressed-tensors --expert-parallel -o "$WORK/np2-llmc-awq"
check "llm-compressor's AWQ with --expert-parallel is refused (exit 1), saying so" \
  test "$rc" -eq 1 -a -n "$(has "$err" "without --expert-parallel" && echo y)"
check "  and nothing was written" test ! -e "$WORK/np2-llmc-awq"

# Rank 0 alone reads the calibration data and sends the windows: the other ranks are given
# a path that does not exist, and the output is still one process's (the case both builds run).
cat >"$WORK/rank0-calib.sh" <<EOF
#!/usr/bin/env bash
calib=$WORK/ids.txt
[[ \${OMPI_COMM_WORLD_RANK:-0} != 0 ]] && calib=$WORK/no-such-file
exec "$STRATA" -q quantize "$WORK/moe" --calib "\$calib" --calib-format ids --calib-samples 12 --calib-seq 64 \\
  --threads 1 --scheme nvfp4 --algo gptq -o "$WORK/rank0-calib"
EOF
chmod +x "$WORK/rank0-calib.sh"
run "${MPIRUN[@]}" -np 2 "$WORK/rank0-calib.sh"
check "the other ranks never read the calibration data" test "$rc" -eq 0
check "rank 0's windows reach them: one process's bytes" same_dir "$WORK/one-moe-nvfp4---algo-gptq" "$WORK/rank0-calib"

# --- expert parallelism: each rank holds its share of the experts; the same bytes -------------
EP_CASES=("nvfp4" "int4 --algo gptq" "fp8 --kv-cache fp8" "nvfp4 --algo mse --error-stats weights")
[[ ${STRATA_SANITIZE_BUILD:-} == 1 ]] && EP_CASES=("int4 --algo gptq")
for case in "${EP_CASES[@]}"; do
  tag=ep-$(tr ' ' '-' <<<"$case")
  run "$STRATA" -q quantize "$WORK/moe" "${C[@]}" --scheme $case -o "$WORK/one-$tag"
  check "expert parallel $case: one process exits 0" test "$rc" -eq 0
  for np in 2 3; do
    run "${MPIRUN[@]}" -np $np "$STRATA" quantize "$WORK/moe" "${C[@]}" --scheme $case --expert-parallel \
      -o "$WORK/np$np-$tag"
    check "expert parallel $case: $np ranks exit 0" test "$rc" -eq 0
    [[ $np -eq 3 ]] && check "rank 0 holds its share of the 8 experts" has "$err" "holds routed experts 0 to 1 of 8"
    check "expert parallel $case: $np ranks write the same bytes as one process" \
      same_dir "$WORK/one-$tag" "$WORK/np$np-$tag"
  done
done
run "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/moe" "${C[@]}" --scheme nvfp4 --expert-parallel \
  --experts-per-group 2 -o "$WORK/ep-grouped"
check "--expert-parallel with experts in groups is refused" test "$rc" -ne 0 -a "$rc" -ne 124
check "saying so" has "$err" "--expert-parallel with experts in groups"
check "nothing written" test ! -e "$WORK/ep-grouped"
run "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/dense" "${C[@]}" --scheme nvfp4 --expert-parallel \
  -o "$WORK/ep-dense"
check "--expert-parallel on a model without experts is refused" has "$err" "has no routed experts"

# --- failures stop every rank ---------------------------------------------------------------
mkdir -p "$WORK/busy" && touch "$WORK/busy/theirs"
run "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/dense" "${C[@]}" --scheme nvfp4 -o "$WORK/busy"
check "a rank's failure ends the run with a failure" test "$rc" -ne 0 -a "$rc" -ne 124
check "naming the rank and the reason" has "$err" "rank 0 of 2: $WORK/busy is not empty"
check "and the user's file is untouched" test -e "$WORK/busy/theirs" -a "$(ls -A "$WORK/busy")" = theirs

run "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/moe" "${C[@]}" --scheme nvfp4 --calib-all-experts \
  --expert-parallel -o "$WORK/all"
check "--expert-parallel with --calib-all-experts is refused, not run wrong" test "$rc" -ne 0 -a "$rc" -ne 124
check "saying so" has "$err" "--expert-parallel with --calib-all-experts is not built yet"
check "nothing written" test ! -e "$WORK/all"

# --- kill -9 under mpirun, resume with another number of ranks: the same bytes -------------
# GPTQ (its layer checkpoints hold the updated weights); the saved inputs are every rank's
# rows, gathered by rank 0, and each rank of the resumed run reads its own share of them.
# kill_at_layer CKPT LAYERS OUT CMD...: runs CMD and, once CKPT records LAYERS layers, kills
# one of its strata processes with kill -9 (a machine lost), then waits until mpirun has
# ended the job and no process of it is left.
kill_at_layer() {
  local ckpt=$1 layers=$2 out=$3 done_layers victim p
  shift 3
  "$@" >/dev/null 2>&1 &
  local job=$!
  for ((t = 0; t < 600; t++)); do
    done_layers=$(grep -o '"completed_layers": [0-9]*' "$ckpt/manifest.json" 2>/dev/null | grep -o '[0-9]*$')
    [[ ${done_layers:-0} -ge $layers ]] && break
    sleep 0.05
  done
  victim=$(pgrep -f -- "-o $out" | while read -r p; do
    [[ "$(cat /proc/$p/comm 2>/dev/null)" == strata ]] && echo "$p"; done | tail -1)
  [[ -n $victim ]] && kill -9 "$victim"
  wait "$job" 2>/dev/null
  for ((t = 0; t < 200; t++)); do pgrep -f -- "-o $out" >/dev/null || break; sleep 0.05; done
  [[ ${done_layers:-0} -ge $layers && -n $victim ]]
}
if [[ ${STRATA_SANITIZE_BUILD:-} != 1 ]]; then
  awk 'BEGIN { srand(7); for (i = 0; i < 48 * 64; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/48.txt"
  "$STRATA" -q generate --arch llama -o "$WORK/deep" --layers 6 --hidden 512 >/dev/null || { echo "generate failed"; exit 1; }
  G=(quantize "$WORK/deep" --calib "$WORK/48.txt" --calib-format ids --calib-samples 48 --calib-seq 64 --threads 1
     --scheme int4 --algo gptq)
  run "$STRATA" -q "${G[@]}" -o "$WORK/deep-one"
  check "GPTQ on the six-layer model: one process exits 0" test "$rc" -eq 0
  kill_at_layer "$WORK/ck-a" 2 "$WORK/deep-a" "${MPIRUN[@]}" -np 2 "$STRATA" -q "${G[@]}" -o "$WORK/deep-a" \
    --checkpoint-dir "$WORK/ck-a"
  check "2 ranks killed with kill -9 after two layers" test $? -eq 0 -a ! -e "$WORK/deep-a/model.safetensors"
  run "${MPIRUN[@]}" -np 3 "$STRATA" -q resume "$WORK/ck-a" --threads 1
  check "strata resume under 3 ranks finishes" test "$rc" -eq 0
  check "and writes the bytes of one uninterrupted process" same_dir "$WORK/deep-one" "$WORK/deep-a"
  kill_at_layer "$WORK/ck-b" 2 "$WORK/deep-b" "${MPIRUN[@]}" -np 3 "$STRATA" -q "${G[@]}" -o "$WORK/deep-b" \
    --checkpoint-dir "$WORK/ck-b" --save-every 2
  check "3 ranks killed with kill -9 after two layers" test $? -eq 0
  run "$STRATA" -q "${G[@]}" -o "$WORK/deep-b" --checkpoint-dir "$WORK/ck-b" --save-every 2
  check "the same command in one process resumes and finishes" test "$rc" -eq 0
  check "to the same bytes" same_dir "$WORK/deep-one" "$WORK/deep-b"
  run "${MPIRUN[@]}" -np 2 "$STRATA" -q "${G[@]}" -o "$WORK/deep-c" --checkpoint-dir "$WORK/ck-c"
  check "2 ranks with a checkpoint directory, uninterrupted: the same bytes" same_dir "$WORK/deep-one" "$WORK/deep-c"
fi

# A rank killed mid-run: mpirun ends the job (no hang), and the output never appears.
if [[ ${STRATA_SANITIZE_BUILD:-} != 1 ]]; then
  awk 'BEGIN { srand(6); for (i = 0; i < 96 * 64; i++) printf "%d ", int(rand() * 512); print "" }' >"$WORK/many.txt"
  "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/moe" --calib "$WORK/many.txt" --calib-format ids \
    --calib-samples 96 --calib-seq 64 --threads 1 --scheme nvfp4 -o "$WORK/killed" >/dev/null 2>"$WORK/killed.err" &
  job=$!
  for ((t = 0; t < 100; t++)); do
    victim=$(pgrep -f -- "-o $WORK/killed" | while read -r p; do
      [[ "$(cat /proc/$p/comm 2>/dev/null)" == strata ]] && echo "$p"; done | tail -1)
    [[ -n $victim ]] && break
    sleep 0.05
  done
  [[ -n $victim ]] && kill -9 "$victim"
  wait "$job"
  rc=$?
  err=$(cat "$WORK/killed.err")
  check "a rank killed with SIGKILL ends the run with a failure" test -n "$victim" -a "$rc" -ne 0 -a "$rc" -ne 124
  check "and no output appears" test ! -e "$WORK/killed/model.safetensors"

  # A rank that hangs (SIGSTOP) once the run is under way: the others' watchdog ends the job
  # after STRATA_MPI_TIMEOUT seconds of waiting in a collective.
  "$STRATA" -q generate --arch llama -o "$WORK/wide" --layers 4 --hidden 512 >/dev/null || { echo "generate failed"; exit 1; }
  STRATA_MPI_TIMEOUT=2 "${MPIRUN[@]}" -np 2 "$STRATA" -q quantize "$WORK/wide" --calib "$WORK/many.txt" \
    --calib-format ids --calib-samples 96 --calib-seq 64 --threads 1 --scheme nvfp4 -o "$WORK/hung" \
    >/dev/null 2>"$WORK/hung.err" &
  job=$!
  victim=""
  for ((t = 0; t < 200; t++)); do # rank 1, once rank 0 has made the output directory
    [[ -n $victim ]] && break
    if [[ -d $WORK/hung ]]; then
      for p in $(pgrep -f -- "-o $WORK/hung"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
      done
    fi
    [[ -z $victim ]] && sleep 0.02
  done
  [[ -n $victim ]] && kill -STOP "$victim"
  start=$SECONDS
  wait "$job"
  rc=$?
  err=$(cat "$WORK/hung.err")
  check "a hung rank ends the run with a failure, not a hang" test -n "$victim" -a "$rc" -ne 0 -a "$rc" -ne 124
  check "within the time-out and mpirun's clean-up ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 60
  check "saying why" has "$err" "have not answered a collective for 2 s (STRATA_MPI_TIMEOUT)"
  [[ -n $victim ]] && kill -KILL "$victim" 2>/dev/null
fi

echo "test_mpi: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
