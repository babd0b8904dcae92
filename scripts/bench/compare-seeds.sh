#!/usr/bin/env bash
# Runs the demo (scripts/train-local.sh --demo: catch, small preset) once per
# precision and seed, several at a time, and prints what each run learned
# (scripts/python/learning_curves.py): the mean episode return over the last 20% of
# its updates (the learning test's measure), the mean per tenth of its frames,
# how far it fell back from its best tenth, and the frames until it first
# reached halfway between random and perfect play; per precision the median.
#
#   scripts/bench/compare-seeds.sh [--precisions "fp32 bf16"] [--seeds "1 2 3"]
#       [--parallel N] [--runs-root DIR] [--total-frames F] [--prefix NAME]
#       [-- flags for train-local.sh, e.g. --agent baseline]
#
# --parallel N: runs at a time (default: 1). Each run is a learner, an actor and
# a recorder with one torch thread each, about 2 cores; on a machine with fewer
# than 2N free cores the runs slow each other down.
# Ctrl-C stops every run cleanly and prints the table as far as they got.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
precisions="fp32 bf16" seeds="1 2 3" parallel=1 runs_root="$ROOT/runs" total_frames="" prefix="seeds"
extra_flags=()
usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
. "$ROOT/scripts/lib/flags.sh"
while (($#)); do
  case "$1" in
    --precisions | --precisions=*) flag_set precisions "$@"; shift "$FLAG_SHIFT" ;;
    --seeds | --seeds=*) flag_set seeds "$@"; shift "$FLAG_SHIFT" ;;
    --parallel | --parallel=*) flag_set parallel "$@"; shift "$FLAG_SHIFT" ;;
    --runs-root | --runs-root=*) flag_set runs_root "$@"; shift "$FLAG_SHIFT" ;;
    --total-frames | --total-frames=*) flag_set total_frames "$@"; shift "$FLAG_SHIFT" ;;
    --prefix | --prefix=*) flag_set prefix "$@"; shift "$FLAG_SHIFT" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra_flags=("$@"); break ;;
    *) flag_unknown "$1" ;;
  esac
done
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || flag_die "--parallel needs a positive number"
if [ "${AAA_NO_BUILD:-0}" != 1 ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
fi
mkdir -p "$runs_root"

runs=()
for p in $precisions; do for s in $seeds; do runs+=("$p:$s"); done; done
pids=()
stopped=0
# Ctrl-C (or SIGTERM): every run stops cleanly, and the table shows what they reached.
stop() {
  trap - INT TERM
  stopped=1
  echo "stopping the runs..."
  # TERM, not INT: a script's background jobs start with SIGINT ignored, and
  # train-local.sh could not trap it.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap stop INT TERM
echo "compare-seeds: ${#runs[@]} run(s), $parallel at a time, in $runs_root"
for run in "${runs[@]}"; do
  p="${run%%:*}" s="${run##*:}" xpid="$prefix-$p-seed$s"
  extra=()
  [ -n "$total_frames" ] && extra+=(--total-frames "$total_frames")
  while ((!stopped)) && (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  ((stopped)) && break
  echo "start $xpid"
  AAA_NO_TMUX=1 AAA_NO_BUILD=1 "$ROOT/scripts/train-local.sh" --demo --xpid "$xpid" \
    --runs-root "$runs_root" --precision "$p" --seed "$s" --device cpu "${extra[@]}" "${extra_flags[@]}" \
    >"$runs_root/$xpid.out" 2>&1 &
  pids+=("$!")
done
while (($(jobs -rp | wc -l) > 0)); do wait || true; done
((stopped)) && echo "stopped early: the table shows the runs as far as they got"

# The learning measures of every run (scripts/python/learning_curves.py), one table
# per precision with its summary line: frames to halfway, last 20%, drops.
for p in $precisions; do
  dirs=()
  for s in $seeds; do dirs+=("$runs_root/$prefix-$p-seed$s"); done
  echo
  echo "### $p"
  python3 "$ROOT/scripts/python/learning_curves.py" --markdown "${dirs[@]}"
done
