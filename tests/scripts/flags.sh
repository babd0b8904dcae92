#!/usr/bin/env bash
# The scripts' flag parsing (scripts/lib/flags.sh), checked without building
# or starting anything: per user-facing script, --help exits 0 and names every
# flag; each flag that takes a value, given without one (last, or followed by
# another flag), exits 2 naming the flag, with no "unbound variable"; an
# unknown flag exits 2 naming it; `--flag=value` is taken. The binaries, sbatch
# and tmux are stand-ins that leave a mark: no check may start one. Prints
# every check; exits 1 when any failed. Run by scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Stand-ins for everything a script could start.
mark="$tmp/started"
mkdir -p "$tmp/bin" "$tmp/runs"
for b in learner actor recorder sbatch sinfo squeue scontrol tmux cargo; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 1\n' "$b" "$mark" >"$tmp/bin/$b"
  chmod +x "$tmp/bin/$b"
done

passed=0 failed=0
ok() { echo "ok:   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# run SCRIPT ARGS...: the script with stand-ins, at most 30 s; sets rc, out, err.
run() {
  local script=$1
  shift
  rm -f "$mark"
  set +e
  AAA_NO_BUILD=1 AAA_NO_TMUX=1 AAA_BIN_DIR="$tmp/bin" AAA_RUNS_ROOT="$tmp/runs" PATH="$tmp/bin:$PATH" \
    timeout 30 "$ROOT/scripts/$script" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  out="$(cat "$tmp/out")" err="$(cat "$tmp/err")"
  if [ -e "$mark" ]; then
    bad "$script $*: started $(tr '\n' ';' <"$mark")"
  fi
}

# usage_error SCRIPT WANT ARGS...: exit 2, WANT in stderr, no shell error.
usage_error() {
  local script=$1 want=$2
  shift 2
  run "$script" "$@"
  local what="$script $*: exit 2, stderr has '$want' and points at --help"
  if ((rc == 2)) && [[ "$err" == *"$want"* && "$err" == *"--help"* ]] &&
    [[ "$err" != *"unbound variable"* && "$err" != *"command not found"* ]]; then
    ok "$what"
  else
    bad "$what; got exit $rc, stderr: ${err:-(empty)}"
  fi
}

# check SCRIPT PASSTHROUGH_FLAGS VALUE_FLAGS...: the checks above for one script.
# PASSTHROUGH_FLAGS (space-separated) take another program's flag as their value.
check() {
  local script=$1 passthrough=" $2 "
  shift 2
  run "$script" --help
  if ((rc == 0)) && [ -n "$out" ]; then ok "$script --help: exit 0"; else bad "$script --help: exit $rc, stderr: $err"; fi
  local flag help="$out"
  for flag in "$@"; do
    [[ "$help" == *"$flag"* ]] && ok "$script --help names $flag" || bad "$script --help does not name $flag"
    usage_error "$script" "$flag needs a value" "$flag"
    usage_error "$script" "$flag needs a value" "$flag" --
    if [[ "$passthrough" == *" $flag "* ]]; then
      # The next argument is the value even when it looks like a flag.
      usage_error "$script" "unknown flag --no-such-flag" "$flag" --some-flag=1 --no-such-flag
    else
      usage_error "$script" "$flag needs a value" "$flag" --no-such-flag
    fi
    # --flag=value is taken (the error is about the flag after it).
    usage_error "$script" "unknown flag --no-such-flag" "$flag=1" --no-such-flag
  done
  usage_error "$script" "unknown flag --no-such-flag" --no-such-flag
  usage_error "$script" "unexpected argument stray" stray
}

check train-local.sh "--model-flag" --xpid --game --preset --agent --model-flag --actors --envs \
  --device --precision --inference --unroll-length --total-frames --record-every --seed --runs-root
check bench/bench-system.sh "" --seconds --actors --envs --game --preset --unroll-length --batch-size \
  --warmup-timeout --device --inference --learner-threads
usage_error bench/bench-system.sh "--warmup-timeout needs a positive number" --warmup-timeout 0
check bench/compare-seeds.sh "" --precisions --seeds --parallel --runs-root --total-frames --prefix
check launch/slurm/submit.sh "--actor-flag" --xpid --game --preset --agent --unroll-length --seed \
  --total-frames --actors --first-actor --envs --record-every --actor-flag --runs-root
usage_error launch/slurm/submit.sh "--xpid NAME is required" --game catch

echo "script flags: $passed checks passed, $failed failed"
((failed == 0))
