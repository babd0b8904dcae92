#!/usr/bin/env python3
"""The random policy's return in an Atari game under the paper's setting,
measured with ALE's own Python package (ale-py), not with this project's
environment code: the baseline a learning curve is compared with.

Setting (common/env/src/lib.rs, EnvSpec::atari_default): 1..30 no-op frames
after each reset, each action repeated for 4 frames, no sticky actions, the
game's minimal action set, whole games (no episode end at a lost life), and a
cap of 108,000 frames. Actions are drawn uniformly at every agent step.

    .venv/bin/python scripts/python/random_policy_return.py seaquest --episodes 100
"""
import argparse
import statistics
import sys
import time
from pathlib import Path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("game", help="ROM name, e.g. seaquest or pong")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rom-dir", help="directory with <game>.bin (default: ale-py's roms)")
    args = p.parse_args()

    try:
        import ale_py
        import numpy as np
    except ImportError as e:
        sys.exit(f"{e}: run it with the project's virtualenv (.venv/bin/python; scripts/bootstrap.sh makes it)")
    rom_dir = Path(args.rom_dir) if args.rom_dir else Path(ale_py.__file__).parent / "roms"
    rom = rom_dir / f"{args.game}.bin"
    if not rom.is_file():
        sys.exit(f"no ROM at {rom}: name a game ale-py ships, or pass --rom-dir")

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.setInt("random_seed", args.seed + 1)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.setInt("frame_skip", 1)
    ale.setInt("max_num_frames_per_episode", 0)
    ale.loadROM(str(rom))
    actions = ale.getMinimalActionSet()
    rng = np.random.default_rng(args.seed)
    noop = ale_py.Action.NOOP

    returns, frames, started = [], 0, time.time()
    for episode in range(args.episodes):
        ale.reset_game()
        played = 0
        for _ in range(rng.integers(1, 31)):
            ale.act(noop)
            played += 1
        total = 0.0
        while not ale.game_over() and played < 108_000:
            a = actions[rng.integers(len(actions))]
            for _ in range(4):
                total += ale.act(a)
                played += 1
                if ale.game_over():
                    break
        returns.append(total)
        frames += played
        if (episode + 1) % 10 == 0:
            print(f"{episode + 1} episodes, mean return {statistics.mean(returns):.1f}", file=sys.stderr)
    sd = statistics.stdev(returns) if len(returns) > 1 else 0.0
    print(
        f"{args.game}: random policy, {len(returns)} episodes: mean return {statistics.mean(returns):.1f} "
        f"(sd {sd:.1f}, standard error {sd / len(returns) ** 0.5:.1f}; median {statistics.median(returns):.1f}; "
        f"min {min(returns):.0f}, max {max(returns):.0f}); {frames / len(returns):.0f} frames per episode; "
        f"{time.time() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
