# lib.sh — what the CLI test scripts share: a scratch directory ($WORK, removed on exit),
# run (captures $out, $err, $rc), check (counts and reports), has. Source it after setting
# the script's name: TEST_NAME=cli . lib.sh
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
