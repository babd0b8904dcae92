#!/usr/bin/env bash
# One training run on this host: a learner, a recorder and N actors over ipc://
# sockets in the run directory. Every process writes its output to
# runs/<xpid>/<name>.log. One Ctrl-C stops them all cleanly (the learner writes
# its checkpoint, the recorder closes its file). With tmux present and a
# terminal attached, the run opens in a tmux session with the logs beside it.
#
#   scripts/train-local.sh                         # Seaquest, paper preset, best device
#   scripts/train-local.sh --demo                  # built-in catch game, small preset, minutes on a CPU
#   scripts/train-local.sh --xpid sq1 --actors 3 --envs 8 -- --total-frames 5e7
#
# Flags after `--` go to the learner. Environment: AAA_NO_TMUX=1 disables tmux,
# AAA_RUNS_ROOT sets where run directories go, AAA_NO_BUILD=1 skips the build,
# AAA_BIN_DIR picks the binaries (default: target/release).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

xpid="" game="seaquest" preset="paper" agent="" actors="" envs="" device="auto" precision="auto" seed="" unroll=""
total_frames="" inference="auto" demo=0 record_every=50 runs_root="${AAA_RUNS_ROOT:-$ROOT/runs}" resume=0
learner_extra=() model_flags=()
usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; cat <<'EOT'
Flags:
  --xpid NAME          run name (default: <game>-<date>-<time>)
  --game NAME          Atari game or `catch` (default: seaquest)
  --preset NAME        paper | small (default: paper)
  --agent NAME         attention | baseline, the same agent without attention (default: attention)
  --model-flag FLAG    pass FLAG to learner, actors and recorder, which must agree on the model
                       (repeatable; e.g. --model-flag=--attention-logits=dot, --model-flag=--normalize-keys=false)
  --actors N           actor processes (default: cores - 1, at least 1)
  --envs E             environments per actor (default: 4)
  --device DEV         learner device: auto | cpu | cuda[:N] (default: auto)
  --inference MODE     central: the learner runs the actors' model on its device, batching
                       every actor's steps; actors: each actor runs its own CPU copy;
                       auto: central when the learner's device is a GPU (default: auto)
  --precision P        fp32 | bf16 | auto, for the learner and the actors (default: auto:
                       bf16 on a CPU with AVX-512 BF16 or AMX, else fp32)
  --unroll-length T    (default: the learner's, 50)
  --total-frames F     stop after F environment frames (default: the learner's, 2e9)
  --record-every K     record every K-th episode of each actor (default: 50; 0: none)
  --seed S             run seed: the learner's initial weights and every environment (default: 1)
  --runs-root DIR      where run directories go (default: ./runs)
  --resume             continue the run named by --xpid from its newest checkpoint
  --demo               catch + small preset, T = 20, 1 actor x 8 envs (2 groups x 4 with
                       --inference central), 4e5 frames, Adam, discount 0.9:
                       learns catch in about 3 minutes on a 2-core CPU (the seeds
                       measured: docs/learning.md)
EOT
}
. "$ROOT/scripts/lib/flags.sh"
while (($#)); do
  case "$1" in
    --xpid | --xpid=*) flag_set xpid "$@"; shift "$FLAG_SHIFT" ;;
    --game | --game=*) flag_set game "$@"; shift "$FLAG_SHIFT" ;;
    --preset | --preset=*) flag_set preset "$@"; shift "$FLAG_SHIFT" ;;
    --agent | --agent=*) flag_set agent "$@"; shift "$FLAG_SHIFT" ;;
    --model-flag | --model-flag=*) flag_add model_flags "$@"; shift "$FLAG_SHIFT" ;;
    --actors | --actors=*) flag_set actors "$@"; shift "$FLAG_SHIFT" ;;
    --envs | --envs=*) flag_set envs "$@"; shift "$FLAG_SHIFT" ;;
    --device | --device=*) flag_set device "$@"; shift "$FLAG_SHIFT" ;;
    --precision | --precision=*) flag_set precision "$@"; shift "$FLAG_SHIFT" ;;
    --inference | --inference=*) flag_set inference "$@"; shift "$FLAG_SHIFT" ;;
    --unroll-length | --unroll-length=*) flag_set unroll "$@"; shift "$FLAG_SHIFT" ;;
    --total-frames | --total-frames=*) flag_set total_frames "$@"; shift "$FLAG_SHIFT" ;;
    --record-every | --record-every=*) flag_set record_every "$@"; shift "$FLAG_SHIFT" ;;
    --seed | --seed=*) flag_set seed "$@"; shift "$FLAG_SHIFT" ;;
    --runs-root | --runs-root=*) flag_set runs_root "$@"; shift "$FLAG_SHIFT" ;;
    --resume) resume=1; shift ;;
    --demo) demo=1; game="catch"; preset="small"; unroll="${unroll:-20}"; total_frames="${total_frames:-4e5}"; actors="${actors:-1}"; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; learner_extra=("$@"); break ;;
    *) flag_unknown "$1" ;;
  esac
done
# The demo's B = 8 is one actor's environments: 8, or 2 groups of 4 under
# central inference (two batches per round would double the policy lag).
# With --inference auto the learner serves inference on a GPU: a device named
# cuda, or auto on a host where nvidia-smi sees one.
central=0
case "$inference" in
  central) central=1 ;;
  auto) [[ "$device" == cuda* ]] && central=1
        [ "$device" = auto ] && nvidia-smi -L >/dev/null 2>&1 && central=1 ;;
esac
if ((demo)) && [ -z "$envs" ]; then
  if ((central)); then envs=4; else envs=8; fi
fi
cores=$(nproc)
actors="${actors:-$(( cores > 1 ? cores - 1 : 1 ))}"
envs="${envs:-4}"
xpid="${xpid:-$game-$(date +%Y%m%d-%H%M%S)}"
run_dir="$runs_root/$xpid"

# Inside tmux: re-run this script in a session, logs in the other panes.
if [ -z "${AAA_NO_TMUX:-}" ] && [ -z "${TMUX:-}" ] && [ -t 0 ] && [ -t 1 ] && command -v tmux >/dev/null; then
  self=("$0" --xpid "$xpid" --game "$game" --preset "$preset" --actors "$actors" --envs "$envs"
        --device "$device" --precision "$precision" --inference "$inference" --record-every "$record_every" --runs-root "$runs_root")
  ((demo)) && self+=(--demo)
  [ -n "$unroll" ] && self+=(--unroll-length "$unroll")
  [ -n "$agent" ] && self+=(--agent "$agent")
  for f in "${model_flags[@]}"; do self+=("--model-flag=$f"); done
  [ -n "$seed" ] && self+=(--seed "$seed")
  [ -n "$total_frames" ] && self+=(--total-frames "$total_frames")
  ((resume)) && self+=(--resume)
  self+=(-- "${learner_extra[@]}")
  mkdir -p "$run_dir"
  session="aaa-$xpid"
  tmux new-session -d -s "$session" -x 200 -y 50 "AAA_NO_TMUX=1 $(printf '%q ' "${self[@]}"); echo; read -rp 'run ended; Enter closes this session'"
  tmux split-window -t "$session" -v "sleep 2; tail -F '$run_dir/learner.log'"
  tmux split-window -t "$session" -h "sleep 3; tail -F '$run_dir/actor-0.log'"
  tmux select-pane -t "$session:0.0"
  echo "run $xpid in tmux session $session (Ctrl-C in the top pane stops everything)"
  exec tmux attach -t "$session"
fi

# Build (and set up, on a fresh machine) first. AAA_NO_BUILD=1: use the
# binaries as they are (tests that built them already, or a machine that only runs them).
if [ "${AAA_NO_BUILD:-0}" != 1 ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
fi
# AAA_BIN_DIR: the binaries to run (tests point it at the profile they built).
BIN="${AAA_BIN_DIR:-$ROOT/target/release}"
mkdir -p "$run_dir"

common=(--xpid "$xpid" --runs-root "$runs_root" --game "$game" --preset "$preset")
[ -n "$unroll" ] && common+=(--unroll-length "$unroll")
[ -n "$agent" ] && common+=(--agent "$agent")
common+=("${model_flags[@]}")
[ -n "$seed" ] && common+=(--seed "$seed")
learner_args=("${common[@]}" --device "$device" --precision "$precision" --threads 1 --inference "$inference")
[ -n "$total_frames" ] && learner_args+=(--total-frames "$total_frames")
. "$ROOT/scripts/launch/demo-settings.sh"
((demo)) && learner_args+=("${DEMO_LEARNER_FLAGS[@]}")
((resume)) && learner_args+=(--resume)
learner_args+=("${learner_extra[@]}")

pids=()
tail_pid=""
stop_all() {
  trap - INT TERM
  echo "stopping: learner, recorder and $actors actor(s) finish cleanly..."
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  # Only our processes: the progress pipeline ignores SIGINT and would never end.
  wait "${pids[@]}" 2>/dev/null || true
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
  echo "stopped; run directory: $run_dir"
  exit 0
}
trap stop_all INT TERM

# Actors follow the learner's choice of inference (--inference auto reads it
# from endpoints.json); under central inference each plays 2 groups of E envs.
echo "run $xpid: $game ($preset preset), $actors actor(s) x $envs envs, inference $inference; logs in $run_dir/*.log"
# Processes ignore the terminal's SIGINT (setsid): the trap forwards one to each, in order.
setsid "$BIN/learner" "${learner_args[@]}" >"$run_dir/learner.log" 2>&1 &
learner_pid=$!
pids+=("$learner_pid")
setsid "$BIN/recorder" serve "${common[@]}" >"$run_dir/recorder.log" 2>&1 &
pids+=("$!")
for ((i = 0; i < actors; i++)); do
  setsid "$BIN/actor" "${common[@]}" --actor-id "$i" --num-envs "$envs" --threads 1 \
    --precision "$precision" \
    --record-every "$record_every" >"$run_dir/actor-$i.log" 2>&1 &
  pids+=("$!")
done

# Progress: the learner's report lines, until it exits (total frames or error).
tail -n +1 -F --pid="$learner_pid" "$run_dir/learner.log" 2>/dev/null \
  | grep --line-buffered -E "step|error|Error|checkpoint" &
tail_pid=$!
set +e
wait "$learner_pid"
status=$?
set -e
kill "$tail_pid" 2>/dev/null || true
echo "learner exited with status $status"
for pid in "${pids[@]:1}"; do kill -INT "$pid" 2>/dev/null || true; done
wait "${pids[@]:1}" 2>/dev/null || true
if ((status == 0)); then
  echo "run finished; run directory: $run_dir"
  echo "  curves:   $BIN/recorder plot $run_dir"
  echo "  episodes: $BIN/recorder inspect $run_dir"
fi
exit "$status"
