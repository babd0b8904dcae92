#!/usr/bin/env python3
"""What each run of the catch demo learned, from its logs.csv: the measures
docs/learning.md and the learning tests use.

  scripts/python/learning_curves.py RUN_DIR [RUN_DIR ...] [--markdown] [--halfway R]

Per run:
  last20   mean episode return over the last 20% of updates (the learning
           tests' measure; random play scores about -3.6, following the ball +5)
  tenths   mean return (episode-weighted) in each tenth of the run's frames
  best     the best tenth; drop = best tenth - last tenth (a run that learned
           and fell back has a large drop)
  halfway  frames until the return, averaged over a trailing window of 20k
           frames, first reaches the halfway point between random play and
           perfect play (default 0.7 = (-3.6 + 5) / 2); '-' if never

Reads only logs.csv (columns frames, episodes, mean_episode_return) and
meta.json, so it works on runs of any version that writes them.
"""

import argparse
import csv
import json
import math
import os
import sys

WINDOW = 20_000


def curve(run_dir):
    """[(frames, episodes, mean return)] of the updates with finished episodes."""
    rows = []
    with open(os.path.join(run_dir, "logs.csv")) as f:
        for r in csv.DictReader(f):
            try:
                ret = float(r["mean_episode_return"])
                eps = int(r.get("episodes") or 0)
                frames = int(r["frames"])
            except (ValueError, KeyError):
                continue
            if math.isfinite(ret) and eps > 0:
                rows.append((frames, eps, ret))
    return rows


def measures(rows, halfway):
    returns = [r for _, _, r in rows]
    tail = returns[len(returns) * 4 // 5:]
    last20 = sum(tail) / len(tail) if tail else float("nan")
    total = rows[-1][0] if rows else 0
    tenths = []
    for k in range(10):
        lo, hi = total * k / 10, total * (k + 1) / 10
        sel = [(e, r) for f, e, r in rows if lo < f <= hi or (k == 0 and f == 0)]
        n = sum(e for e, _ in sel)
        tenths.append(sum(e * r for e, r in sel) / n if n else float("nan"))
    # Trailing 20k-frame window, episode-weighted.
    reached = None
    start = 0
    weight = acc = 0.0
    for i, (f, e, r) in enumerate(rows):
        weight += e
        acc += e * r
        while rows[start][0] <= f - WINDOW:
            weight -= rows[start][1]
            acc -= rows[start][1] * rows[start][2]
            start += 1
        if f >= WINDOW and weight > 0 and acc / weight >= halfway:
            reached = f
            break
    finite = [t for t in tenths if math.isfinite(t)]
    best = max(finite) if finite else float("nan")
    drop = best - tenths[-1] if finite and math.isfinite(tenths[-1]) else float("nan")
    return {
        "updates": len(rows),
        "frames": total,
        "last20": last20,
        "tenths": tenths,
        "best": best,
        "drop": drop,
        "halfway": reached,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--halfway", type=float, default=0.7)
    parser.add_argument("--markdown", action="store_true", help="one markdown table")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args()
    results = []
    for run in args.runs:
        try:
            m = measures(curve(run), args.halfway)
        except OSError as e:
            print(f"{run}: no result: {e}", file=sys.stderr)
            continue
        try:
            meta = json.load(open(os.path.join(run, "meta.json")))
            m["precision"] = meta.get("config", {}).get("precision_resolved", "?")
            m["seconds"] = meta.get("final_counters", {}).get("train_seconds")
        except (OSError, ValueError):
            m["precision"] = "?"
            m["seconds"] = None
        m["run"] = os.path.basename(os.path.normpath(run))
        results.append(m)
        if args.json:
            print(json.dumps(m))
    if args.json:
        return
    fmt = lambda x: "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.2f}"
    if args.markdown:
        print("| run | precision | frames | last 20% | best tenth | drop | halfway at | tenths |")
        print("|---|---|---|---|---|---|---|---|")
    for m in results:
        halfway = f"{m['halfway'] / 1000:.0f}k" if m["halfway"] else "-"
        tenths = " ".join(f"{t:.1f}" if math.isfinite(t) else "-" for t in m["tenths"])
        if args.markdown:
            print(f"| {m['run']} | {m['precision']} | {m['frames']} | {fmt(m['last20'])} | "
                  f"{fmt(m['best'])} | {fmt(m['drop'])} | {halfway} | {tenths} |")
        else:
            print(f"{m['run']}: {m['precision']}, {m['frames']} frames, last 20% {fmt(m['last20'])}, "
                  f"best tenth {fmt(m['best'])}, drop {fmt(m['drop'])}, halfway at {halfway}; "
                  f"tenths {tenths}")
    if len(results) > 1:
        reached = sorted(m["halfway"] for m in results if m["halfway"])
        missing = len(results) - len(reached)
        if reached and missing == 0:
            median = reached[len(reached) // 2] if len(reached) % 2 else \
                (reached[len(reached) // 2 - 1] + reached[len(reached) // 2]) / 2
            med = f"{median / 1000:.0f}k"
        elif len(reached) > len(results) / 2:
            med = f"{reached[len(results) // 2] / 1000:.0f}k or more"
        else:
            med = "not reached by half the runs"
        print(f"{len(results)} runs: median frames to halfway {med}; "
              f"last 20% from {fmt(min(m['last20'] for m in results))} "
              f"to {fmt(max(m['last20'] for m in results))}; "
              f"largest drop from the best tenth {fmt(max(m['drop'] for m in results))}")


if __name__ == "__main__":
    main()
