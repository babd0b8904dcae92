#!/usr/bin/env bash
# The null result of `recorder analyze` (docs/attention-analysis.md): an
# untrained agent's attention on each game whose objects are read from the
# RAM, against the uniform and time-shuffled baselines. An untrained agent's
# heads look nowhere in particular, so its shares should sit near the
# baselines; where they do not, fixed places that happen to hold objects (a
# paddle's column, a player's start) are the likely reason.
#
# For each game: a learner started and stopped at once writes its initial
# weights (the checkpoint at step 0); an actor evaluates them (--eval, sampled
# actions) for E episodes of at most F frames each, a recorder records them,
# and `recorder analyze` measures them. Prints, per game and object kind, the
# attention share of the heads (mean over heads, and the largest) next to the
# time-shuffled and uniform shares; each game's whole table goes to
# <out>/<game>.txt.
#
#   scripts/bench/attention-null.sh [--games "pong breakout"] [--episodes 4] [--max-frames 4000]
#                                   [--preset paper] [--out DIR]
#
# Flags (`--flag value` or `--flag=value`):
#   --games LIST       space-separated ROM names (default: every game with objects)
#   --episodes E       episodes per game, played side by side (default: 4)
#   --max-frames F     frame cap of an episode (default: 4000, 1,000 agent steps)
#   --preset NAME      paper | small (default: paper)
#   --out DIR          where the tables and run directories go (default: a new temporary directory)
#
# Environment: AAA_NO_BUILD=1 skips the build; AAA_BIN_DIR picks the binaries
# (default: target/release).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
games="" episodes=4 max_frames=4000 preset=paper out=""
usage() { sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
. "$ROOT/scripts/lib/flags.sh"
while (($#)); do
  case "$1" in
    --games | --games=*) flag_set games "$@"; shift "$FLAG_SHIFT" ;;
    --episodes | --episodes=*) flag_set episodes "$@"; shift "$FLAG_SHIFT" ;;
    --max-frames | --max-frames=*) flag_set max_frames "$@"; shift "$FLAG_SHIFT" ;;
    --preset | --preset=*) flag_set preset "$@"; shift "$FLAG_SHIFT" ;;
    --out | --out=*) flag_set out "$@"; shift "$FLAG_SHIFT" ;;
    -h | --help) usage; exit 0 ;;
    *) flag_unknown "$1" ;;
  esac
done
[[ "$episodes" =~ ^[1-9][0-9]*$ ]] || flag_die "--episodes needs a positive number, not '$episodes'"
[[ "$max_frames" =~ ^[1-9][0-9]*$ ]] || flag_die "--max-frames needs a positive number, not '$max_frames'"
if [ "${AAA_NO_BUILD:-0}" != 1 ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
fi
BIN="${AAA_BIN_DIR:-$ROOT/target/release}"
if [ -z "$games" ]; then
  # The games `recorder analyze` names when it finds no episodes.
  empty=$(mktemp -d)
  games=$({ RUST_BACKTRACE=0 "$BIN/recorder" analyze "$empty" 2>&1 || true; } | tr '\n' ' ' |
    sed -n 's/.*from the RAM, \([a-z_ ]*\)\..*/\1/p')
  rmdir "$empty"
  [ -n "$games" ] || { echo "attention-null.sh: cannot list the games with objects" >&2; exit 1; }
fi
out="${out:-$(mktemp -d)}"
mkdir -p "$out"
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to 120 s until the command `$3...` succeeds; fails naming `$1`
# with the end of log `$2`.
wait_for() {
  local what=$1 log=$2 i
  shift 2
  for ((i = 0; i < 1200; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  echo "attention-null.sh: no $what after 120 s; the end of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

# Sends SIGINT to pid $1 and waits for it.
stop() { kill -INT "$1" 2>/dev/null || true; wait "$1" || true; }

printf '%-16s %-14s %7s %7s %7s %7s\n' game kind "share" "best" "shuf" "unif"
for game in $games; do
  runs="$out/runs" xpid="null-$game"
  dir="$runs/$xpid"
  rm -rf "$dir"
  mkdir -p "$dir"
  common=(--runs-root "$runs" --xpid "$xpid" --game "$game" --preset "$preset")
  "$BIN/learner" "${common[@]}" --device cpu --threads 1 >"$dir/learner.out" 2>&1 &
  learner=$!
  pids=("$learner")
  wait_for "checkpoint's run directory" "$dir/learner.out" test -e "$dir/endpoints.json"
  stop "$learner"
  ls "$dir/checkpoints" | grep -q '^ckpt-' || { echo "attention-null.sh: $game: the learner wrote no checkpoint" >&2; tail -n 20 "$dir/learner.out" >&2; exit 1; }
  "$BIN/recorder" serve "${common[@]}" >"$dir/recorder.out" 2>&1 &
  recorder=$!
  pids=("$recorder")
  wait_for "recorder's address" "$dir/recorder.out" grep -qs episodes "$dir/endpoints.json"
  "$BIN/actor" "${common[@]}" --eval --episodes "$episodes" --num-envs "$episodes" --threads 1 \
    --checkpoint "$dir" --max-frames "$max_frames" >"$dir/actor.out" 2>&1 ||
    { echo "attention-null.sh: $game: the actor failed; the end of its log:" >&2; tail -n 20 "$dir/actor.out" >&2; exit 1; }
  stop "$recorder"
  pids=()
  "$BIN/recorder" analyze "$dir" --buckets 1 >"$out/$game.txt" 2>"$dir/analyze.out" ||
    { echo "attention-null.sh: $game: analyze failed:" >&2; tail -n 5 "$dir/analyze.out" >&2; continue; }
  # Columns: params head kind steps present share shuf unif peak shuf unif entropy unif.
  # A kind never on screen in these episodes has no shares ("-").
  awk -v game="$game" 'NR > 1 && $2 ~ /^[0-9]+$/ {
      k = $3; seen[k] += 0
      if ($5 > 0) { n[k]++; s[k] += $6; sh[k] += $7; u[k] += $8; if ($6 > b[k]) b[k] = $6 }
    }
    END { for (k in seen) if (n[k]) printf "%-16s %-14s %7.3f %7.3f %7.3f %7.3f\n", game, k, s[k] / n[k], b[k], sh[k] / n[k], u[k] / n[k]
                        else printf "%-16s %-14s %7s\n", game, k, "not on screen" }' \
    "$out/$game.txt" | sort
done
echo "tables and runs in $out"
