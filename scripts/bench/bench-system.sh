#!/usr/bin/env bash
# Whole-system benchmark on this host: a learner and N actors (no recorder) on
# Seaquest with the paper preset, for a fixed time after warm-up. Prints
# environment frames/s of the system (from the learner's logs.csv), each
# process's CPU time, where the actors' time goes (inference or waiting for
# the learner, emulation, the rest), and on a GPU how busy it was
# (nvidia-smi, sampled every second). With `--inference both` it measures
# the actors' own inference and then central inference, with the same
# processes, one after the other; with `--transport both`, each over ipc and
# then over tcp loopback, where every message is sealed (wire::seal).
#
#   scripts/bench/bench-system.sh [--seconds 120] [--actors 1] [--envs 4] [--game seaquest] [--preset paper]
#                           [--device cpu] [--inference actors|central|both] [--transport ipc|tcp|both]
#                           [-- extra flags for learner and actors, e.g. --precision bf16]
#
# Flags (`--flag value` or `--flag=value`):
#   --seconds S          measured time after the warm-up (default: 120)
#   --actors N           actor processes, one thread each (default: 1)
#   --envs E             environments per actor (default: 4)
#   --game NAME          Atari game or `catch` (default: seaquest)
#   --preset NAME        paper | small (default: paper)
#   --unroll-length T    (default: 20)
#   --batch-size B       the learner's (default: 8)
#   --device DEV         the learner's: cpu | cuda[:N] | auto (default: cpu)
#   --inference MODE     actors: each actor runs its model; central: the learner
#                        does, and each actor plays 2 groups of E envs; both: one
#                        run of each (default: actors)
#   --transport T        ipc: the run directory's sockets, unsealed (a local
#                        run); tcp: loopback ports, every message sealed (what
#                        a run across nodes pays); both: one run of each, per
#                        inference mode (default: ipc)
#   --learner-threads N  the learner's torch threads (default: 1)
#   --warmup-timeout S   give up when the learner has not logged 4 updates after
#                        S seconds, or when a process exits during the warm-up
#                        (default: 600)
#
# Environment: AAA_NO_BUILD=1 skips the build; AAA_BIN_DIR picks the binaries
# (default: target/release).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=120 actors=1 envs=4 game=seaquest preset=paper unroll=20 batch=8 warmup_timeout=600 extra=()
device=cpu inference=actors learner_threads=1 transport=ipc
usage() { sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
. "$ROOT/scripts/lib/flags.sh"
while (($#)); do
  case "$1" in
    --seconds | --seconds=*) flag_set seconds "$@"; shift "$FLAG_SHIFT" ;;
    --actors | --actors=*) flag_set actors "$@"; shift "$FLAG_SHIFT" ;;
    --envs | --envs=*) flag_set envs "$@"; shift "$FLAG_SHIFT" ;;
    --game | --game=*) flag_set game "$@"; shift "$FLAG_SHIFT" ;;
    --preset | --preset=*) flag_set preset "$@"; shift "$FLAG_SHIFT" ;;
    --unroll-length | --unroll-length=*) flag_set unroll "$@"; shift "$FLAG_SHIFT" ;;
    --batch-size | --batch-size=*) flag_set batch "$@"; shift "$FLAG_SHIFT" ;;
    --warmup-timeout | --warmup-timeout=*) flag_set warmup_timeout "$@"; shift "$FLAG_SHIFT" ;;
    --device | --device=*) flag_set device "$@"; shift "$FLAG_SHIFT" ;;
    --inference | --inference=*) flag_set inference "$@"; shift "$FLAG_SHIFT" ;;
    --learner-threads | --learner-threads=*) flag_set learner_threads "$@"; shift "$FLAG_SHIFT" ;;
    --transport | --transport=*) flag_set transport "$@"; shift "$FLAG_SHIFT" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) flag_unknown "$1" ;;
  esac
done
[[ "$warmup_timeout" =~ ^[1-9][0-9]*$ ]] || flag_die "--warmup-timeout needs a positive number of seconds, not '$warmup_timeout'"
case "$inference" in
  actors | central) modes=("$inference") ;;
  both) modes=(actors central) ;;
  *) flag_die "--inference is actors, central or both, not '$inference'" ;;
esac
case "$transport" in
  ipc | tcp) transports=("$transport") ;;
  both) transports=(ipc tcp) ;;
  *) flag_die "--transport is ipc, tcp or both, not '$transport'" ;;
esac
# AAA_NO_BUILD=1: run the binaries as they are (AAA_BIN_DIR, else target/release).
if [ "${AAA_NO_BUILD:-0}" != 1 ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
fi
BIN="${AAA_BIN_DIR:-$ROOT/target/release}"
runs=""
pids=() running=()
# On every exit (the end, a failed warm-up, Ctrl-C): the processes still
# running get SIGINT, then SIGKILL after 10 s; then the run directory goes.
any_running() { local p; for p in "${running[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
cleanup() {
  local p i
  for p in "${running[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do any_running || break; sleep 0.1; done
  if any_running; then
    exec 2>/dev/null # no "Killed" line from the shell for each
    for p in "${running[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait || true
  fi
  [ -n "$runs" ] && rm -rf "$runs"
  running=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on now.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# One measurement with the learner's --inference $1 over transport $2.
measure() {
local mode=$1 via=$2 i p
runs=$(mktemp -d)
pids=() running=()
common=(--runs-root "$runs" --xpid bench --game "$game" --preset "$preset" --unroll-length "$unroll")
addresses=()
if [[ "$via" == tcp ]]; then
  # The learner's sockets on loopback ports; the actors read them from endpoints.json.
  addresses=(--trajectories-address "tcp://127.0.0.1:$(free_port)"
    --params-address "tcp://127.0.0.1:$(free_port)" --inference-address "tcp://127.0.0.1:$(free_port)")
fi
"$BIN/learner" "${common[@]}" --device "$device" --threads "$learner_threads" --batch-size "$batch" \
  --total-frames 1e12 --checkpoint-interval-s 1e9 --inference "$mode" "${addresses[@]}" "${extra[@]}" \
  >"$runs/learner.log" 2>&1 &
pids=($!) running=($!)
for ((i = 0; i < actors; i++)); do
  "$BIN/actor" "${common[@]}" --actor-id "$i" --num-envs "$envs" --threads 1 --record-every 0 \
    "${extra[@]}" >"$runs/actor-$i.log" 2>&1 &
  pids+=($!) running+=($!)
done
cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
row() { tail -n 1 "$runs/bench/logs.csv" | awk -F, '{print $1, $4}'; }
# The warm-up failed: say why, with the end of the process's log (the run
# directory goes on exit), and stop (cleanup stops the processes).
warmup_failed() {
  local log=$2
  echo "bench-system.sh: $1; the end of $(basename "$log"):" >&2
  tail -n 20 "$log" 2>/dev/null | sed 's/^/  /' >&2
  exit 1
}
# Warm-up: until the learner has logged a few updates, at most --warmup-timeout seconds.
warmup_start=$SECONDS
until [ -f "$runs/bench/logs.csv" ] && [ "$(wc -l <"$runs/bench/logs.csv")" -ge 4 ]; do
  kill -0 "${pids[0]}" 2>/dev/null || warmup_failed "the learner exited during the warm-up" "$runs/learner.log"
  for ((i = 0; i < actors; i++)); do
    kill -0 "${pids[i + 1]}" 2>/dev/null ||
      warmup_failed "actor $i exited during the warm-up" "$runs/actor-$i.log"
  done
  if ((SECONDS - warmup_start >= warmup_timeout)); then
    warmup_failed "no 4 learner updates after the ${warmup_timeout} s warm-up timeout (--warmup-timeout); stopping the learner and $actors actor(s)" "$runs/learner.log"
  fi
  sleep 1
done
read -r t0 f0 < <(row)
declare -A c0; for p in "${pids[@]}"; do c0[$p]=$(cpu_seconds "$p"); done
gpu_samples=""
if [[ "$device" != cpu ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -l 1 >"$runs/gpu.txt" 2>/dev/null &
  gpu_samples=$!
fi
sleep "$seconds"
read -r t1 f1 < <(row)
declare -A c1; for p in "${pids[@]}"; do c1[$p]=$(cpu_seconds "$p"); done
[ -n "$gpu_samples" ] && kill "$gpu_samples" 2>/dev/null
for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
wait || true
running=()

local per_actor="$envs envs"
[[ "$mode" == central ]] && per_actor="2 groups x $envs envs, no model"
echo "system: $game, $preset preset, learner on $device (T=$unroll, B=$batch, $learner_threads thread(s)), inference: $mode, $actors actor(s) x $per_actor (1 thread each), transport: $via ${extra[*]}"
awk -v f0="$f0" -v f1="$f1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "environment frames/s: %.1f  (%d frames in %.0f s)\n", (f1 - f0) / (t1 - t0), f1 - f0, t1 - t0 }'
printf '%-10s %12s\n' process "CPU s"
sub() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
printf '%-10s %12.1f\n' learner "$(sub "${c1[${pids[0]}]}" "${c0[${pids[0]}]}")"
for ((i = 0; i < actors; i++)); do
  p=${pids[$((i + 1))]}
  printf '%-10s %12.1f   %s\n' "actor-$i" "$(sub "${c1[$p]}" "${c0[$p]}")" \
    "$(grep -o 'time: .*' "$runs/actor-$i.log" | tail -n 1)"
done
if [ -s "$runs/gpu.txt" ]; then
  awk '{ s += $1; n++; if ($1 < lo || n == 1) lo = $1; if ($1 > hi) hi = $1 }
       END { printf "GPU busy (nvidia-smi utilization, %d samples): mean %.0f%%, min %d%%, max %d%%\n", n, s / n, lo, hi }' "$runs/gpu.txt"
fi
if [[ "$mode" == central ]]; then
  grep -o 'central inference: .*' "$runs/learner.log" | tail -n 1
fi
rm -rf "$runs"
runs=""
}

for mode in "${modes[@]}"; do
  for via in "${transports[@]}"; do
    measure "$mode" "$via"
    echo
  done
done
