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
# same_dir A B: every file of A exists in B with the same bytes, and B has no others.
same_dir() {
  local a=$1 b=$2 f
  [[ "$(cd "$a" && ls -A | sort)" == "$(cd "$b" && ls -A | sort)" ]] || return 1
  for f in "$a"/*; do cmp -s "$f" "$b/$(basename "$f")" || { echo "  differs: $(basename "$f")"; return 1; }; done
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
