#!/usr/bin/env bash
# Submits one training run to SLURM: the learner and the recorder as one job
# (learner.sbatch), the actors as a job array (actors.sbatch) that starts once
# the learner job has started and finds it through <run dir>/endpoints.json.
#
#   scripts/launch/slurm/submit.sh --xpid sq1 --actors 16                 # Seaquest, paper preset
#   scripts/launch/slurm/submit.sh --xpid demo --demo --actors 3          # built-in catch game, minutes
#   scripts/launch/slurm/submit.sh --xpid sq1 --actors 16 -- --total-frames 5e8   # flags after -- go to the learner
#   scripts/launch/slurm/submit.sh --xpid sq1 --no-actors                 # the learner again (it resumes)
#   scripts/launch/slurm/submit.sh --xpid sq1 --no-learner --actors 8 --first-actor 16   # more actors
#
# The settings below are this script's defaults; set any of them in the
# environment (PARTITION=gpu ACCOUNT=lab scripts/launch/slurm/submit.sh ...) or edit
# them here for your cluster.

# --- cluster settings ---------------------------------------------------------
PARTITION="${PARTITION:-}"            # empty: the cluster's default partition
ACTOR_PARTITION="${ACTOR_PARTITION:-$PARTITION}"  # actors need no GPU: a CPU partition is fine
ACCOUNT="${ACCOUNT:-}"                # empty: your default account
QOS="${QOS:-}"                        # empty: the default QOS
LEARNER_TIME="${LEARNER_TIME:-2-00:00:00}"
LEARNER_CPUS="${LEARNER_CPUS:-4}"     # learner threads = CPUs - 1 (one for the recorder)
LEARNER_MEM="${LEARNER_MEM-32G}"      # empty (LEARNER_MEM=): do not ask
LEARNER_GPUS="${LEARNER_GPUS:-auto}"  # auto: --gres=gpu:1 where the partition has GPUs; none; or a gres (gpu:a100:1)
ACTOR_TIME="${ACTOR_TIME:-$LEARNER_TIME}"
ACTOR_CPUS="${ACTOR_CPUS:-2}"         # inference threads per actor
ACTOR_MEM="${ACTOR_MEM-4G}"           # empty (ACTOR_MEM=): do not ask
TRANSPORT="${TRANSPORT:-auto}"        # auto: ipc when the partitions have one node, else tcp; ipc; tcp
SBATCH_EXTRA="${SBATCH_EXTRA:-}"      # more sbatch options for both jobs, e.g. "--constraint=avx2"
# ------------------------------------------------------------------------------
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"

xpid="" game="seaquest" preset="paper" agent="attention" unroll="" seed="" actors=8 first_actor=0 envs=8
record_every=50 runs_root="${AAA_RUNS_ROOT:-$ROOT/runs}" total_frames="" full_action_set=0
submit_learner=1 submit_actors=1 learner_extra=() actor_extra=()
usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOT'
Flags:
  --xpid NAME          run name (required; the same name again resumes the run)
  --game NAME          Atari game or `catch` (default: seaquest)
  --preset NAME        paper | small (default: paper)
  --agent NAME         attention | baseline, the same agent without attention (default: attention)
  --unroll-length T    (default: the learner's, 50)
  --seed N             run seed (default: the learner's, 1)
  --full-action-set    Atari's 18 actions
  --total-frames F     learner stops after F environment frames (default: 2e9)
  --actors N           array tasks, one actor each (default: 8)
  --first-actor I      id of the first (default: 0): the array is I..I+N-1
  --envs E             environments per actor (default: 8)
  --record-every K     record every K-th episode of each actor (default: 50; 0: none)
  --actor-flag FLAG    pass FLAG to every actor (repeatable; e.g. --actor-flag=--sticky-actions)
  --runs-root DIR      where run directories go, on a shared file system (default: ./runs)
  --demo               catch, small preset, T = 20, B = 8, Adam, 2e5 frames (a plumbing
                       check; learning catch takes --total-frames 4e5 and --actors 1)
  --no-learner         submit actors only (for a learner that runs already)
  --no-actors          submit the learner only (restart: it resumes; running actors reconnect)
Settings (environment): PARTITION ACTOR_PARTITION ACCOUNT QOS LEARNER_TIME LEARNER_CPUS
  LEARNER_MEM LEARNER_GPUS ACTOR_TIME ACTOR_CPUS ACTOR_MEM TRANSPORT SBATCH_EXTRA (see the
  top of this script), AAA_BIN_DIR (default: ./target/release).
EOT
}
demo=0
. "$ROOT/scripts/lib/flags.sh"
while (($#)); do
  case "$1" in
    --xpid | --xpid=*) flag_set xpid "$@"; shift "$FLAG_SHIFT" ;;
    --game | --game=*) flag_set game "$@"; shift "$FLAG_SHIFT" ;;
    --preset | --preset=*) flag_set preset "$@"; shift "$FLAG_SHIFT" ;;
    --agent | --agent=*) flag_set agent "$@"; shift "$FLAG_SHIFT" ;;
    --unroll-length | --unroll-length=*) flag_set unroll "$@"; shift "$FLAG_SHIFT" ;;
    --seed | --seed=*) flag_set seed "$@"; shift "$FLAG_SHIFT" ;;
    --full-action-set) full_action_set=1; shift ;;
    --total-frames | --total-frames=*) flag_set total_frames "$@"; shift "$FLAG_SHIFT" ;;
    --actors | --actors=*) flag_set actors "$@"; shift "$FLAG_SHIFT" ;;
    --first-actor | --first-actor=*) flag_set first_actor "$@"; shift "$FLAG_SHIFT" ;;
    --envs | --envs=*) flag_set envs "$@"; shift "$FLAG_SHIFT" ;;
    --record-every | --record-every=*) flag_set record_every "$@"; shift "$FLAG_SHIFT" ;;
    --actor-flag | --actor-flag=*) flag_add actor_extra "$@"; shift "$FLAG_SHIFT" ;;
    --runs-root | --runs-root=*) flag_set runs_root "$@"; shift "$FLAG_SHIFT" ;;
    --demo) demo=1; game=catch; preset=small; unroll="${unroll:-20}"; total_frames="${total_frames:-2e5}"; shift ;;
    --no-learner) submit_learner=0; shift ;;
    --no-actors) submit_actors=0; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; learner_extra=("$@"); break ;;
    *) flag_unknown "$1" ;;
  esac
done
[ -n "$xpid" ] || flag_die "--xpid NAME is required"
command -v sbatch >/dev/null || { echo "submit.sh: sbatch not found: run this on a SLURM login node" >&2; exit 2; }
export AAA_BIN_DIR="${AAA_BIN_DIR:-$ROOT/target/release}"
for b in learner recorder actor; do
  [ -x "$AAA_BIN_DIR/$b" ] || { echo "submit.sh: $AAA_BIN_DIR/$b is missing: build first (. scripts/bootstrap.sh && cargo build --release)" >&2; exit 2; }
done
mkdir -p "$runs_root"
runs_root="$(cd "$runs_root" && pwd)"
run_dir="$runs_root/$xpid"
mkdir -p "$run_dir"

run_flags=(--xpid "$xpid" --runs-root "$runs_root" --game "$game" --preset "$preset" --agent "$agent")
[ -n "$unroll" ] && run_flags+=(--unroll-length "$unroll")
[ -n "$seed" ] && run_flags+=(--seed "$seed")
((full_action_set)) && run_flags+=(--full-action-set)
learner_flags=()
[ -n "$total_frames" ] && learner_flags+=(--total-frames "$total_frames")
# The learner settings of train-local.sh --demo. With more than one actor the
# policy lag rises and catch is learned later or not at all (docs/learning.md).
. "$ROOT/scripts/launch/demo-settings.sh"
((demo)) && learner_flags+=("${DEMO_LEARNER_FLAGS[@]}")
learner_flags+=("${learner_extra[@]}")
actor_flags=(--num-envs "$envs" --record-every "$record_every" "${actor_extra[@]}")

# The partition a job lands in, for the GPU and node-count checks.
default_partition() { sinfo -h -o %P 2>/dev/null | sed -n 's/\*$//p' | head -1; }
partition_of() { if [ -n "$1" ]; then echo "$1"; else default_partition; fi; }
nodes_in() { sinfo -h -N -p "$1" -o %N 2>/dev/null | sort -u | wc -l; }

common=(--parsable)
[ -n "$ACCOUNT" ] && common+=(--account "$ACCOUNT")
[ -n "$QOS" ] && common+=(--qos "$QOS")
# shellcheck disable=SC2206
[ -n "$SBATCH_EXTRA" ] && common+=($SBATCH_EXTRA)

if [ "$TRANSPORT" = auto ]; then
  lp="$(partition_of "$PARTITION")" ap="$(partition_of "$ACTOR_PARTITION")"
  if [ "$lp" = "$ap" ] && [ "$(nodes_in "$lp")" = 1 ]; then TRANSPORT=ipc; else TRANSPORT=tcp; fi
fi
case "$TRANSPORT" in ipc | tcp) ;; *) echo "submit.sh: TRANSPORT must be auto, ipc or tcp" >&2; exit 2 ;; esac
export AAA_TRANSPORT="$TRANSPORT"

learner_job="" actors_job=""
if ((submit_learner)); then
  opts=("${common[@]}" --job-name "aaa-$xpid-learner" --time "$LEARNER_TIME"
        --cpus-per-task "$LEARNER_CPUS" --output "$run_dir/slurm-learner-%j.out")
  [ -n "$PARTITION" ] && opts+=(--partition "$PARTITION")
  [ -n "$LEARNER_MEM" ] && opts+=(--mem "$LEARNER_MEM")
  gres="$LEARNER_GPUS"
  if [ "$gres" = auto ]; then
    if sinfo -h -p "$(partition_of "$PARTITION")" -o %G 2>/dev/null | grep -q gpu; then gres=gpu:1; else gres=none; fi
  fi
  [ "$gres" = none ] && gres=""
  [ -n "$gres" ] && opts+=(--gres "$gres")
  learner_job="$(sbatch "${opts[@]}" "$HERE/learner.sbatch" "${run_flags[@]}" -- "${learner_flags[@]}")"
  learner_job="${learner_job%%;*}"
fi
if ((submit_actors)) && ((actors > 0)); then
  opts=("${common[@]}" --job-name "aaa-$xpid-actors" --time "$ACTOR_TIME"
        --cpus-per-task "$ACTOR_CPUS" --array "$first_actor-$((first_actor + actors - 1))"
        --output "$run_dir/actor-%a.log")
  [ -n "$ACTOR_PARTITION" ] && opts+=(--partition "$ACTOR_PARTITION")
  [ -n "$ACTOR_MEM" ] && opts+=(--mem "$ACTOR_MEM")
  [ -n "$learner_job" ] && opts+=(--dependency "after:$learner_job")
  actors_job="$(sbatch "${opts[@]}" "$HERE/actors.sbatch" "${run_flags[@]}" -- "${actor_flags[@]}")"
  actors_job="${actors_job%%;*}"
fi

echo "run $xpid ($game, $preset preset, $TRANSPORT sockets): run dir $run_dir"
[ -n "$learner_job" ] && echo "  learner + recorder: job $learner_job${gres:+, gres $gres}"
[ -n "$actors_job" ] && echo "  actors:             job array $actors_job, tasks $first_actor-$((first_actor + actors - 1)), $envs envs each"
echo "  progress: squeue --me; tail -f $run_dir/learner.log"
echo "  stop:     scancel ${learner_job} ${actors_job}   (the learner writes a checkpoint)"
echo "  resume:   the same command again, or --no-actors while the actors still run"
echo "JOBS learner=${learner_job:-none} actors=${actors_job:-none}"
