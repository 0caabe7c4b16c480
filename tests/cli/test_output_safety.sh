#!/usr/bin/env bash
# test_output_safety.sh STRATA [SHIM] — a user's files and earlier outputs are never damaged
# (docs/DECISIONS.md, "Output directories"): output directories that are inputs, NaN/Inf in
# copied tensors, killed converts, half-finished commits, locks, non-empty directories and
# --overwrite, the free space a shard's sealing needs. SHIM (tests/fault/fault_inject.c)
# makes a file system look full; without it that check is skipped.
set -u
STRATA=${1:?usage: test_output_safety.sh path/to/strata [path/to/libfault_inject.so]}
SHIM=${2:-}
TEST_NAME=safety
. "$(dirname "$0")/lib.sh"
cd "$WORK"

"$STRATA" -q generate --arch llama -o model --layers 4 --hidden 128 >/dev/null || { echo "generate failed"; exit 1; }
awk 'BEGIN { srand(5); for (i = 0; i < 16 * 64; i++) printf "%d ", int(rand() * 511); print "" }' >ids.txt
CAL=(--calib ids.txt --calib-format ids --calib-samples 16 --calib-seq 64)
Q=("$STRATA" quantize model "${CAL[@]}" --scheme fp8)
model_sum=$(md5sum model/* | sort)
model_intact() { [[ "$(md5sum model/* | sort)" == "$model_sum" ]]; }

# tensor_offset FILE NAME: where NAME's data starts in the safetensors FILE
tensor_offset() {
  local n header begin
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  header=$(head -c $((8 + n)) "$1" | tail -c "$n")
  begin=$(printf '%s' "$header" | grep -o "\"$2\":{[^}]*}" | grep -o '"data_offsets":\[[0-9]*' | grep -o '[0-9]*$')
  echo $((8 + n + begin))
}
# poison FILE NAME ELEMENT: writes a bf16 NaN (0x7fc0) over that element
poison() {
  printf '\xc0\x7f' | dd of="$1" bs=1 seek=$(($(tensor_offset "$1" "$2") + 2 * $3)) conv=notrunc 2>/dev/null
}

# --- 1. an output directory the run reads from ---------------------------------------------
for o in model model/../model "$WORK/model/."; do
  run "${Q[@]}" -o "$o"
  check "quantize -o $o (the model) is refused with exit 1" test "$rc" -eq 1
  check "  naming both paths" has "$err" "refusing to write into $o: it is the model directory model"
done
run "$STRATA" convert model -o model --scheme int8
check "convert -o MODEL is refused" has "$err" "it is the model directory"
ln -s model link
run "$STRATA" convert link -o model --scheme int8
check "a symlink to the model is seen through" has "$err" "it is the model directory link"
mkdir hub blobs && cp model/config.json hub/ && cp model/model.safetensors blobs/weights && ln -s ../blobs/weights hub/model.safetensors
run "$STRATA" quantize hub "${CAL[@]}" --scheme fp8 -o blobs
check "the directory a model file's symlink leads to is refused" has "$err" "the model's file hub/model.safetensors is in that directory"
run "${Q[@]}" -o ck --checkpoint-dir ck
check "the checkpoint directory is refused" has "$err" "it is the checkpoint directory ck"
mkdir ck2
run "${Q[@]}" -o ck2/../ck2 --checkpoint-dir "$WORK/ck2"
check "  also when it exists and is named another way" has "$err" "it is the checkpoint directory"
mkdir cal && cp ids.txt cal/config.json
run "$STRATA" quantize model --calib cal/config.json --calib-format ids --calib-samples 16 --calib-seq 64 --scheme fp8 -o cal
check "a calibration file named like an output file is refused" has "$err" "it holds the input file cal/config.json"
check "  before it is read (no parse error about it)" bash -c "! grep -q 'expected near' <<<'$err'"
mkdir bindmnt
if mount --bind model bindmnt 2>/dev/null; then
  run "${Q[@]}" -o bindmnt
  check "a bind mount of the model is refused (device and inode)" has "$err" "it is the model directory"
  umount bindmnt
else
  echo "SKIPPED: bind mount check (mount --bind needs privileges this machine does not give)"
fi
check "the model is intact after all of these" model_intact
check "and none of the refusals created anything" test ! -e cal/config.json.tmp -a ! -e blobs/config.json -a ! -e ck

# --- 2. NaN or Inf in a tensor that is copied --------------------------------------------
cp -r model nan && poison nan/model.safetensors lm_head.weight $((3 * 128 + 17))
run "$STRATA" -q quantize nan "${CAL[@]}" --scheme fp8 -o nan-out
check "NaN in lm_head fails quantize with exit 1" test "$rc" -eq 1
check "  naming the tensor, the file and the position" \
  has "$err" "lm_head.weight (from $WORK/nan/model.safetensors) holds 1 non-finite value, the first NaN at (3, 17)"
check "  and leaves no output directory" test ! -e nan-out
run "$STRATA" -q convert nan -o nan-out --scheme int8
check "and fails convert the same way" has "$err" "lm_head.weight (from nan/model.safetensors) holds 1 non-finite value"
check "  leaving nothing" test ! -e nan-out
run "$STRATA" quantize nan "${CAL[@]}" --scheme fp8 -o nan-out --allow-non-finite
check "--allow-non-finite writes it (exit 0)" test "$rc" -eq 0
check "  with a warning naming it" has "$err" "warning: lm_head.weight (from $WORK/nan/model.safetensors) holds 1 non-finite value"
check "  and a line in the summary" grep -q "lm_head.weight: 1 value, the first NaN at (3, 17)" nan-out/quant_summary.txt
check "  and in quant_summary.json" grep -q '"non_finite"' nan-out/quant_summary.json
# token 511 is not among the calibration ids (all below 511): its embedding row is only copied
cp -r model nan-embed && poison nan-embed/model.safetensors model.embed_tokens.weight $((511 * 128 + 3))
run "$STRATA" -q convert nan-embed -o nan-out2 --scheme int4
check "NaN in an embedding row is refused" has "$err" "model.embed_tokens.weight (from nan-embed/model.safetensors) holds 1 non-finite value, the first NaN at (511, 3)"
cp -r model nan2 && poison nan2/model.safetensors model.layers.1.mlp.down_proj.weight 5
run "$STRATA" -q quantize nan2 "${CAL[@]}" --scheme fp8 -o nan2-out --exclude 'model.layers.1.mlp.down_proj' --allow-non-finite
check "NaN in an excluded linear the forward pass uses is refused even so" has "$err" "tensor model.layers.1.mlp.down_proj.weight holds NaN at row 0, column 5"
run "$STRATA" -q convert nan2 -o nan2-out --scheme int8 --exclude 'model.layers.1.mlp.down_proj'
check "  and by convert, which copies it" has "$err" "model.layers.1.mlp.down_proj.weight (from nan2/model.safetensors) holds 1 non-finite value, the first NaN at (0, 5)"
check "  leaving nothing" test ! -e nan2-out

# --- 3. a convert killed with SIGKILL, and a commit cut short ---------------------------------
"$STRATA" -q generate --arch llama -o big --layers 12 --hidden 768 >/dev/null
"$STRATA" -q convert big -o big-ref --scheme int8 --max-shard-mib 16 >/dev/null
for attempt in 1 2 3; do
  "$STRATA" -q convert big -o cv --scheme int8 --max-shard-mib 16 >/dev/null 2>&1 &
  pid=$!
  # kill it once it is writing (its staging area holds a shard's data)
  for _ in $(seq 1 400); do compgen -G "cv/.strata-partial-*/.model-shard*" >/dev/null && break; sleep 0.01; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
done
check "a killed convert leaves nothing visible in the output directory" test -z "$(ls cv 2>/dev/null)"
run "$STRATA" eval cv --tokens ids.txt --window 64 --max-windows 1
check "eval refuses the unfinished directory" has "$err" "holds no finished output, only the work of a strata run that did not finish"
run "$STRATA" convert big -o cv --scheme int8 --max-shard-mib 16
check "the rerun finishes (exit 0)" test "$rc" -eq 0
check "  removing the killed run's files" test -z "$(find cv -name '.*' -o -name '*.tmp-*' | grep -v '^cv$')"
check "  with the output of an uninterrupted run" same_dir big-ref cv
# A commit cut short by a kill: half the files moved, the journal in the staging area.
cp -a big-ref cut && mkdir cut/.strata-partial-0000cafe
files=$(cd cut && ls | grep -v strata_output.json)
for f in $(echo "$files" | head -4); do mv "cut/$f" cut/.strata-partial-0000cafe/; done
list=$(echo "$files" | sed 's/.*/"&"/' | paste -sd,)
echo "{\"producer\": \"strata\", \"version\": \"x\", \"command\": \"convert\", \"run\": \"0000cafe\", \"files\": [$list], \"replaces\": [\"strata_output.json\"]}" >cut/.strata-partial-0000cafe/.commit.json
rm cut/strata_output.json
run "$STRATA" eval cut --tokens ids.txt --window 64 --max-windows 1
check "eval refuses a directory whose commit was cut short" has "$err" "interrupted while moving its output into place"
run "$STRATA" inspect cut
check "and so does inspect" test "$rc" -eq 1
run "$STRATA" convert big -o cut --scheme int8 --max-shard-mib 16
check "the next run into it finishes the move first" has "$err" "finishing the commit of an interrupted strata run"
check "  then, the output being another run's, asks for --overwrite" has "$err" "already holds a strata output"
rm cut/strata_output.json.tmp-* 2>/dev/null
check "  and the moved output is whole" bash -c "diff <(cd '$WORK/big-ref' && ls | grep -v strata_output) <(cd '$WORK/cut' && ls | grep -v strata_output) && ! ls -A '$WORK/cut' | grep -q strata-partial"

# --- 4. a failed run leaves nothing (every failure point: test_faults.sh) -------------------
run "$STRATA" quantize nan2 "${CAL[@]}" --scheme nvfp4 -o fail-out --checkpoint-dir fail-ck
check "a quantize failing at its second layer exits 1" test "$rc" -eq 1
check "  leaves no output directory" test ! -e fail-out
check "  and keeps the checkpoint it started (for a resume)" test -f fail-ck/manifest.json

# --- 5. one run per directory ------------------------------------------------------------
"$STRATA" -q generate --arch llama -o slow --layers 12 --hidden 512 >/dev/null
"$STRATA" -q quantize slow "${CAL[@]}" --scheme fp8 -o busy --checkpoint-dir busy-ck >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 500); do [[ -s busy/.strata-lock && -s busy-ck/.strata-lock ]] && break; sleep 0.01; done
run "$STRATA" convert model -o busy --scheme int8 --overwrite
check "a second run into a busy output directory is refused" has "$err" "another strata run (pid $pid) is using this output directory"
run "$STRATA" quantize slow "${CAL[@]}" --scheme fp8 -o busy2 --checkpoint-dir busy-ck
check "a second run on a busy checkpoint directory is refused" has "$err" "another strata run (pid $pid) is using this checkpoint directory"
check "  leaving no directory of its own" test ! -e busy2
wait "$pid"
check "the first run finishes undisturbed" test $? -eq 0 -a -f busy/strata_output.json
check "and its lock file is gone" test ! -e busy/.strata-lock -a ! -e busy-ck/.strata-lock
mkdir held && flock held/.strata-lock -c "sleep 3" &
sleep 0.3
run "$STRATA" convert model -o held --scheme int8
check "a lock held by any process refuses the run" has "$err" "another strata run is using this output directory"
wait

# --- 6. non-empty output directories and --overwrite ---------------------------------------
mkdir user && echo notes >user/notes.txt
run "$STRATA" convert model -o user --scheme int8
check "a directory holding a user's file is refused" has "$err" "is not empty (it holds 'notes.txt')"
run "$STRATA" convert model -o q --scheme int8 --max-shard-mib 1
n_before=$(ls q/*.safetensors | wc -l)
run "$STRATA" convert model -o q --scheme int4
check "an earlier strata output is not replaced without --overwrite" has "$err" "already holds a strata output (strata_output.json); pass --overwrite"
echo mine >q/notes.txt
run "$STRATA" convert model -o q --scheme int4 --overwrite
check "--overwrite replaces it (exit 0)" test "$rc" -eq 0
check "  removing every file the earlier output listed ($n_before shards and the index)" \
  test "$(ls q/*.safetensors)" = "q/model.safetensors" -a ! -e q/model.safetensors.index.json
check "  keeping the user's file" test "$(cat q/notes.txt)" = mine
check "  and listing the new files in strata_output.json" grep -q '"model.safetensors"' q/strata_output.json
echo '{}' >q2 && rm q2 && mkdir q2 && echo x >q2/config.json
run "$STRATA" convert model -o q2 --scheme int8 --overwrite
check "--overwrite never replaces a file no strata output listed" has "$err" "holds 'config.json', which the output would replace"
check "  which stays" test "$(cat q2/config.json)" = x
run "${Q[@]}" -o qq
run "${Q[@]}" -o qq
check "running the same quantize again replaces its own output (the same bytes)" test "$rc" -eq 0

# --- 7. the free space sealing a shard needs, and resume's report ------------------------------
if [[ -n "$SHIM" && -d /dev/shm && -w /dev/shm ]]; then
  SHM=$(mktemp -d /dev/shm/strata-safety-XXXXXX)
  run env STRATA_FAULT_FREE_BYTES=100000 LD_PRELOAD="$SHIM" "$STRATA" quantize model "${CAL[@]}" --scheme fp8 \
    --max-shard-mib 1 -o "$SHM/out"
  check "sealing a shard by copying on a full tmpfs fails before the copy" has "$err" "which needs"
  check "  naming the file system" has "$err" "mounted at /dev/shm"
  check "  and leaves nothing" test ! -e "$SHM/out"
  rm -rf "$SHM"
else
  echo "SKIPPED: free-space check (needs the fault shim and a writable /dev/shm)"
fi
"$STRATA" -q quantize model "${CAL[@]}" --scheme fp8 -o resumed --checkpoint-dir resume-ck >/dev/null
run "$STRATA" resume resume-ck
check "strata resume prints the output directory's real path" test "$out" = "$WORK/resumed"

echo "test_output_safety: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
