# lib.sh — what the CLI test scripts share: a scratch directory ($WORK, removed on exit),
# run (captures $out, $err, $rc), check (counts and reports), has. Source it after setting
# the script's name: TEST_NAME=cli . lib.sh. Also same_dir, kill_repeatedly and kill_after.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-${TEST_NAME:-test}-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

# run CMD...: captures $out, $err, $rc
run() {
  "$@" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  out=$(cat "$WORK/out")
  err=$(cat "$WORK/err")
}
check() { # check DESCRIPTION CONDITION...
  local what=$1
  shift
  if "$@"; then passed=$((passed + 1)); else
    failed=$((failed + 1))
    echo "FAIL: $what"
    echo "  rc=$rc"
    echo "  stdout: ${out:0:400}"
    echo "  stderr: ${err:0:600}"
  fi
}
has() { [[ "$1" == *"$2"* ]]; }
# same_dir A B: every file of A exists in B with the same bytes, and B has no others; the
# per-layer timings (quant_timings.json) must exist in both but hold each run's own times.
same_dir() {
  local a=$1 b=$2 f
  [[ "$(cd "$a" && ls -A | sort)" == "$(cd "$b" && ls -A | sort)" ]] || return 1
  for f in "$a"/*; do
    [[ "$(basename "$f")" == quant_timings.json ]] && continue
    cmp -s "$f" "$b/$(basename "$f")" || { echo "  differs: $(basename "$f")"; return 1; }
  done
}
# kill_repeatedly N CMD...: starts CMD N times, killing it with SIGKILL after a random
# 0.10..0.99 s each time (seeded by RANDOM).
kill_repeatedly() {
  local n=$1 attempt
  shift
  for ((attempt = 0; attempt < n; attempt++)); do
    kill_after "0.$((RANDOM % 9 + 1))$((RANDOM % 10))" "$@"
  done
}

# kill_at_layer CKPT N CMD...: starts CMD (a quantize with --checkpoint-dir CKPT) and kills
# it with SIGKILL as soon as its checkpoint reports N finished layers (polled every 10 ms),
# so the kill lands mid-run on a fast machine as on a slow one. Sets killed_at to the
# layers the checkpoint held when the kill was sent ("" when the run ended first).
kill_at_layer() {
  local ckpt=$1 layers=$2 pid done_layers
  shift 2
  killed_at=""
  "$@" >/dev/null 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    done_layers=$(grep -o '"completed_layers": *[0-9]*' "$ckpt/manifest.json" 2>/dev/null | grep -o '[0-9]*$')
    if [[ -n $done_layers && $done_layers -ge $layers ]]; then
      kill -9 "$pid" 2>/dev/null
      killed_at=$done_layers
      break
    fi
    sleep 0.01
  done
  wait "$pid" 2>/dev/null
}

# kill_after SECONDS CMD...: starts CMD and kills it with SIGKILL after SECONDS.
kill_after() {
  local seconds=$1 pid
  shift
  "$@" >/dev/null 2>&1 &
  pid=$!
  sleep "$seconds"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
