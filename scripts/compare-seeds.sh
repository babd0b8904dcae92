#!/usr/bin/env bash
# Runs the demo (scripts/train-local.sh --demo: catch, small preset, 1e6
# frames) once per precision and seed, several at a time, and prints what each
# run learned: the mean episode return over the last 20% of its updates (the
# learning test's measure), its frames/s, and per precision the mean and spread.
#
#   scripts/compare-seeds.sh [--precisions "fp32 bf16"] [--seeds "1 2 3"]
#       [--parallel N] [--runs-root DIR] [--total-frames F] [--prefix NAME]
#
# --parallel N: runs at a time (default: 1). Each run is a learner, an actor and
# a recorder with one torch thread each, about 2 cores; on a machine with fewer
# than 2N free cores the runs slow each other down.
# Ctrl-C stops every run cleanly and prints the table as far as they got.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
precisions="fp32 bf16" seeds="1 2 3" parallel=1 runs_root="$ROOT/runs" total_frames="" prefix="seeds"
while (($#)); do
  case "$1" in
    --precisions) precisions="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --runs-root) runs_root="$2"; shift 2 ;;
    --total-frames) total_frames="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-seeds.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "compare-seeds.sh: --parallel needs a positive number" >&2; exit 2; }
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
    --runs-root "$runs_root" --precision "$p" --seed "$s" "${extra[@]}" \
    >"$runs_root/$xpid.out" 2>&1 &
  pids+=("$!")
done
while (($(jobs -rp | wc -l) > 0)); do wait || true; done
((stopped)) && echo "stopped early: the table shows the runs as far as they got"

python3 - "$runs_root" "$prefix" "$precisions" "$seeds" <<'EOF'
import csv, json, statistics, sys, os
root, prefix, precisions, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
print("\n| precision | seed | resolved | updates | frames | frames/s | return, last 20% of updates |")
print("|---|---|---|---|---|---|---|")
summary = {}
for p in precisions:
    for s in seeds:
        d = os.path.join(root, f"{prefix}-{p}-seed{s}")
        try:
            rows = list(csv.DictReader(open(os.path.join(d, "logs.csv"))))
            meta = json.load(open(os.path.join(d, "meta.json")))
        except OSError as e:
            print(f"| {p} | {s} | - | - | - | - | no result: {e} |")
            continue
        returns = [float(r["mean_episode_return"]) for r in rows if r["mean_episode_return"] not in ("", "nan")]
        tail = returns[len(returns) * 4 // 5:]
        learned = sum(tail) / len(tail) if tail else float("nan")
        frames = int(rows[-1]["frames"]) if rows else 0
        seconds = float(rows[-1]["time"]) - float(rows[0]["time"]) if len(rows) > 1 else float("nan")
        resolved = meta.get("config", meta).get("precision_resolved", "?")
        print(f"| {p} | {s} | {resolved} | {len(rows)} | {frames} | {frames / seconds:.0f} | {learned:.2f} |")
        summary.setdefault(p, []).append(learned)
print("\n| precision | runs | mean return | standard deviation | min | max |")
print("|---|---|---|---|---|---|")
for p, v in summary.items():
    sd = statistics.stdev(v) if len(v) > 1 else float("nan")
    print(f"| {p} | {len(v)} | {statistics.mean(v):.2f} | {sd:.2f} | {min(v):.2f} | {max(v):.2f} |")
EOF
