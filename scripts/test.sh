#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: set-up (idempotent), format
# and lint checks, then every test in release mode (the model tests are too
# slow unoptimised, and one profile means one build of the libtorch glue).
#
# Every step runs even when an earlier one failed (cargo test --no-fail-fast:
# every test binary), and the last lines say what failed, which tests were
# skipped on this machine and why, and how long it took. Arguments go to
# `cargo test` (e.g. `scripts/test.sh -p tests --test wire`).
#
# The suite runs with AAA_NO_AUTODETECT=1: an actor or learner whose precision
# or device would come from this machine refuses to start, so no test depends
# on the CPU (bfloat16 or not) or on a GPU (common/agent/src/machine.rs). Tests that
# cannot run here (no GPU, no root for SLURM or a tmpfs) say so and are listed
# as skipped, not passed; AAA_NO_SKIP=1 makes a skip a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh

started=$SECONDS
mkdir -p target/tmp
export AAA_NO_AUTODETECT=1
export AAA_SKIP_LOG="$PWD/target/tmp/skipped-tests.txt"
: >"$AAA_SKIP_LOG"
test_log="$PWD/target/tmp/test-output.txt"
failed=()

step() {
  local name=$1
  shift
  echo "== $name"
  "$@" || failed+=("$name")
}

step "cargo fmt --check" cargo fmt --all --check
step "cargo clippy --all-targets -- -D warnings" \
  cargo clippy --release --workspace --all-targets -- -D warnings
step "the scripts' flag parsing" tests/scripts/flags.sh
step "the code's shape (file and function sizes, no import circles)" .venv/bin/python scripts/checks/code_shape.py
echo "== cargo build (the end-to-end tests start the binaries)"
if ! cargo build --release --workspace --bins; then
  echo "== FAILED: the build; no test ran" >&2
  exit 1
fi
step "the recorder builds and runs without PyTorch" scripts/checks/recorder-without-torch.sh
echo "== cargo test (every test binary, even after a failure; output also in $test_log)"
set +e
cargo test --release --workspace --no-fail-fast "$@" 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
set -e
((test_status == 0)) || failed+=("cargo test")

# The summary: per test binary that failed, its failing tests; the skips.
echo
echo "== summary ($(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s)"
skipped=$(grep -c '^SKIPPED' "$AAA_SKIP_LOG" || true)
awk -v skipped="$skipped" '
  /^ *Running / {
    target = $0; sub(/^ *Running /, "", target); sub(/ \(.*$/, "", target)
    bin = $0; sub(/.*\//, "", bin); sub(/-[0-9a-f]+\)$/, "", bin)
    current = target " [" bin "]"; next
  }
  /^ *Doc-tests / { current = "doc-tests " $2; next }
  /^test .* \.\.\. FAILED$/ { name = $2; bad[current] = bad[current] "\n      " name; nbad++ }
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) passed += $i
      if ($(i + 1) ~ /^failed/) failedn += $i
      if ($(i + 1) ~ /^ignored/) ignored += $i
    }
  }
  END {
    printf "tests: %d passed, %d skipped, %d failed, %d ignored\n", passed - skipped, skipped, failedn, ignored
    for (t in bad) printf "  FAILED in %s:%s\n", t, bad[t]
  }
' "$test_log"
# A test binary that crashed or would not build reports no "FAILED" line: cargo names it.
grep -E '^error: [0-9]+ targets? failed:' -A 40 "$test_log" | grep -E '^ +`' | sed 's/^ */  failed target: /' || true
if grep -q '^SKIPPED' "$AAA_SKIP_LOG" 2>/dev/null; then
  echo "skipped on this machine (cargo's own lines count these as passed):"
  grep '^SKIPPED' "$AAA_SKIP_LOG" | sed 's/^/  /'
fi
if grep -q '^CHECKED LESS' "$AAA_SKIP_LOG" 2>/dev/null; then
  echo "checked less than meant (a shorter check on this machine):"
  grep '^CHECKED LESS' "$AAA_SKIP_LOG" | sed 's/^CHECKED LESS /  /'
fi
if ((${#failed[@]})); then
  echo "== FAILED: ${failed[*]}"
  exit 1
fi
echo "== all passed"
