#!/usr/bin/env bash
# Whole-system benchmark on this host: a learner and N actors (no recorder) on
# Seaquest with the paper preset on the CPU, for a fixed time after warm-up.
# Prints environment frames/s of the system (from the learner's logs.csv),
# each process's CPU time, and where the actors' time goes (inference,
# emulation, the rest), i.e. the share outside model compute and emulation.
#
#   scripts/bench-system.sh [--seconds 120] [--actors 1] [--envs 4] [--game seaquest] [--preset paper]
#                           [-- extra flags for learner and actors, e.g. --precision bf16]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=120 actors=1 envs=4 game=seaquest preset=paper unroll=20 batch=8 extra=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --actors) actors="$2"; shift 2 ;;
    --envs) envs="$2"; shift 2 ;;
    --game) game="$2"; shift 2 ;;
    --preset) preset="$2"; shift 2 ;;
    --unroll-length) unroll="$2"; shift 2 ;;
    --batch-size) batch="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench-system.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
# AAA_NO_BUILD=1: run the binaries as they are (AAA_BIN_DIR, else target/release).
if [ "${AAA_NO_BUILD:-0}" != 1 ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
fi
BIN="${AAA_BIN_DIR:-$ROOT/target/release}"
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
common=(--runs-root "$runs" --xpid bench --game "$game" --preset "$preset" --unroll-length "$unroll")
"$BIN/learner" "${common[@]}" --device cpu --threads 1 --batch-size "$batch" --total-frames 1e12 \
  --checkpoint-interval-s 1e9 "${extra[@]}" >"$runs/learner.log" 2>&1 &
pids=($!)
for ((i = 0; i < actors; i++)); do
  "$BIN/actor" "${common[@]}" --actor-id "$i" --num-envs "$envs" --threads 1 --record-every 0 \
    "${extra[@]}" >"$runs/actor-$i.log" 2>&1 &
  pids+=($!)
done
cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
row() { tail -n 1 "$runs/bench/logs.csv" | awk -F, '{print $1, $4}'; }
# Warm-up: until the learner has logged a few updates.
until [ -f "$runs/bench/logs.csv" ] && [ "$(wc -l <"$runs/bench/logs.csv")" -ge 4 ]; do sleep 1; done
read -r t0 f0 < <(row)
declare -A c0; for p in "${pids[@]}"; do c0[$p]=$(cpu_seconds "$p"); done
sleep "$seconds"
read -r t1 f1 < <(row)
declare -A c1; for p in "${pids[@]}"; do c1[$p]=$(cpu_seconds "$p"); done
for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
wait || true

echo "system: $game, $preset preset, CPU, learner (T=$unroll, B=$batch, 1 thread) + $actors actor(s) x $envs envs (1 thread each) ${extra[*]}"
awk -v f0="$f0" -v f1="$f1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "environment frames/s: %.1f  (%d frames in %.0f s)\n", (f1 - f0) / (t1 - t0), f1 - f0, t1 - t0 }'
printf '%-10s %12s\n' process "CPU s"
sub() { awk -v a="$1" -v b="$2" 'BEGIN { print a - b }'; }
printf '%-10s %12.1f\n' learner "$(sub "${c1[${pids[0]}]}" "${c0[${pids[0]}]}")"
for ((i = 0; i < actors; i++)); do
  p=${pids[$((i + 1))]}
  printf '%-10s %12.1f   %s\n' "actor-$i" "$(sub "${c1[$p]}" "${c0[$p]}")" \
    "$(grep -o 'time: .*' "$runs/actor-$i.log" | tail -n 1)"
done
