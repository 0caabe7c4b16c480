#!/usr/bin/env bash
# test_faults.sh STRATA SHIM — every failure strata can meet while writing, one at a time:
# each allocation, open, read, write, fsync and rename call site of the strata executable
# that a run reaches fails once (its first call; for I/O also its last when it is called
# more than once), through the LD_PRELOAD library tests/fault/fault_inject.c. After each
# failure:
#   - the run exits 1 with "strata: error: ..." (no crash), or exits 0 with the output
#     byte-identical to an undisturbed run (a failure strata may legitimately absorb: a
#     fallback such as copying where a range cannot be collapsed);
#   - nothing that existed before is changed, and nothing of the run is left behind; for
#     a checkpointed run, running the same command again finishes with the same output.
# Scenarios: quantize into a new directory, quantize --overwrite over an earlier output,
# convert, quantize with --checkpoint-dir, and strata resume of a half-done checkpoint.
set -u
STRATA=${1:?usage: test_faults.sh path/to/strata path/to/libfault_inject.so}
SHIM=${2:?usage: test_faults.sh path/to/strata path/to/libfault_inject.so}
TEST_NAME=faults
. "$(dirname "$0")/lib.sh"

cd "$WORK"
"$STRATA" -q generate --arch llama -o model --layers 4 --hidden 192 >/dev/null || { echo "generate failed"; exit 1; }
awk 'BEGIN { srand(3); for (i = 0; i < 8 * 32; i++) printf "%d ", int(rand() * 512); print "" }' >ids.txt
Q=("$STRATA" -q quantize model --calib ids.txt --calib-format ids --calib-samples 8 --calib-seq 32 --scheme fp8
   --kv-cache fp8 --max-shard-mib 1)
C=("$STRATA" -q convert model --scheme int4 --max-shard-mib 1 --read-mib 1)

# snapshot DIR...: every file (hidden ones too) with its checksum, every directory
snapshot() { find "$@" -printf '%y %p\n' 2>/dev/null | sort; find "$@" -type f -exec md5sum {} + 2>/dev/null | sort; }
# faulted KIND:SITE:N CMD...: runs CMD with that call failing; sets rc, err
faulted() {
  local spec=$1
  shift
  STRATA_FAULT=$spec LD_PRELOAD=$SHIM "$@" >/dev/null 2>"$WORK/err"
  rc=$?
  err=$(head -c 600 "$WORK/err")
  out=""
}
# sites CMD...: "kind site calls" for every call site an undisturbed run reaches
sites() {
  rm -f "$WORK/count"
  STRATA_FAULT_COUNT=$WORK/count LD_PRELOAD=$SHIM "$@" >/dev/null 2>&1 || return 1
  sort -u "$WORK/count"
}
# each_fault SETUP CHECK CMD...: for every site (first call, and last when called more
# than once): SETUP, run CMD with the fault, CHECK (sees $spec, $rc, $err)
n_faults=0
each_fault() {
  local setup=$1 check=$2 kind site calls n
  shift 2
  $setup
  local list
  list=$(sites "$@") || { failed=$((failed + 1)); echo "FAIL: an undisturbed run of $* fails under the shim"; return; }
  while read -r kind site calls; do
    for n in 1 "$calls"; do
      $setup
      spec=$kind:$site:$n
      faulted "$spec" "$@"
      n_faults=$((n_faults + 1))
      $check
      [[ $calls == 1 || $kind == alloc ]] && break
    done
  done <<<"$list"
}
outcome_ok() { # the run failed cleanly or succeeded with the reference output ($1)
  if [[ $rc -eq 0 ]]; then same_dir "$1" out && return 0; echo "  $spec: exit 0 with a different output"; return 1; fi
  [[ $rc -eq 1 && "$err" == *"strata: error:"* ]] && return 0
  echo "  $spec: exit $rc: $err"
  return 1
}

# --- references -----------------------------------------------------------------------------
"${Q[@]}" -o ref_q >/dev/null || { echo "quantize failed"; exit 1; }
"${C[@]}" -o ref_c >/dev/null || { echo "convert failed"; exit 1; }
"${C[@]}" -o earlier >/dev/null

# --- 1. quantize into a new directory: nothing left ---------------------------------------
setup_new() { rm -rf out; before=$(snapshot "$WORK/model" "$WORK/ids.txt" "$WORK/ref_q"); }
check_new() {
  local ok=true
  outcome_ok ref_q || ok=false
  if [[ $rc -ne 0 ]]; then
    [[ ! -e out ]] || { echo "  $spec: left $(ls -A out | head -3 | tr '\n' ' ')"; ok=false; }
  fi
  [[ "$(snapshot "$WORK/model" "$WORK/ids.txt" "$WORK/ref_q")" == "$before" ]] || { echo "  $spec: changed an input"; ok=false; }
  check "quantize with $spec fails cleanly" $ok
}
each_fault setup_new check_new "${Q[@]}" -o out

# --- 2. quantize --overwrite over an earlier output: it stays whole on failure -------------
setup_over() { rm -rf out; cp -a earlier out; before=$(snapshot out); }
check_over() {
  local ok=true
  outcome_ok ref_q || ok=false
  if [[ $rc -ne 0 ]]; then
    [[ "$(snapshot out)" == "$before" ]] || { echo "  $spec: the earlier output changed"; ok=false; }
  fi
  check "quantize --overwrite with $spec leaves the earlier output as it was" $ok
}
each_fault setup_over check_over "${Q[@]}" -o out --overwrite

# --- 3. convert -------------------------------------------------------------------------------
check_convert() {
  local ok=true
  outcome_ok ref_c || ok=false
  if [[ $rc -ne 0 && -e out ]]; then echo "  $spec: left $(ls -A out | head -3 | tr '\n' ' ')"; ok=false; fi
  check "convert with $spec fails cleanly" $ok
}
each_fault setup_new check_convert "${C[@]}" -o out

# --- 4. quantize with a checkpoint: the same command again finishes it ----------------------
setup_ckpt() { rm -rf out ckpt; }
check_ckpt() {
  local ok=true
  outcome_ok ref_q || ok=false
  if [[ $rc -ne 0 ]]; then
    rm -f "$WORK/count"
    "${Q[@]}" -o out --checkpoint-dir ckpt >/dev/null 2>"$WORK/err2" || { echo "  $spec: the rerun failed: $(head -c 300 "$WORK/err2")"; ok=false; }
    $ok && { same_dir ref_q out || { echo "  $spec: the rerun's output differs"; ok=false; }; }
  fi
  check "quantize --checkpoint-dir with $spec: exit 1, then the rerun finishes identically" $ok
}
each_fault setup_ckpt check_ckpt "${Q[@]}" -o out --checkpoint-dir ckpt

# --- 5. strata resume of a half-done checkpoint ----------------------------------------------
# The half-done state: a quantize whose busiest rename site (it holds the checkpoint's atomic
# replacements, and the output's small files) fails at the first call that leaves two or
# three of the four layers done.
rm -rf out ckpt
read -r kind site calls < <(sites "${Q[@]}" -o out --checkpoint-dir ckpt | awk '$1 == "rename"' | sort -k3 -n -r | head -1)
completed=0
for ((n = 1; n <= calls; n++)); do
  rm -rf out ckpt
  faulted "rename:$site:$n" "${Q[@]}" -o out --checkpoint-dir ckpt
  completed=$(grep -o '"completed_layers": [0-9]*' ckpt/manifest.json 2>/dev/null | grep -o '[0-9]*$')
  [[ ${completed:-0} -ge 2 && ${completed:-4} -lt 4 ]] && break
done
check "the half-done checkpoint has some layers done ($completed of 4)" test "${completed:-0}" -gt 0 -a "${completed:-4}" -lt 4
rm -rf half && mkdir half && cp -a ckpt half/ && { [[ ! -e out ]] || cp -a out half/; }
setup_resume() { rm -rf out ckpt; cp -a half/ckpt .; [[ -e half/out ]] && cp -a half/out .; }
check_resume() {
  local ok=true
  outcome_ok ref_q || ok=false
  if [[ $rc -ne 0 ]]; then
    "$STRATA" -q resume ckpt >/dev/null 2>"$WORK/err2" || { echo "  $spec: a second resume failed: $(head -c 300 "$WORK/err2")"; ok=false; }
    $ok && { same_dir ref_q out || { echo "  $spec: the second resume's output differs"; ok=false; }; }
  fi
  check "resume with $spec: exit 1, then a second resume finishes identically" $ok
}
each_fault setup_resume check_resume "$STRATA" -q resume ckpt

echo "test_faults: $n_faults injected failures; $passed passed, $failed failed"
[[ $failed -eq 0 ]]
