#!/usr/bin/env python3
"""Prints the scalars of the TensorBoard event files under a directory as JSON,
{tag: [[step, value], ...]}, read with TensorBoard's own reader (the one
`tensorboard --logdir` uses). Usage: tb_scalars.py runs/<xpid>/tb"""
import json
import sys

from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    mux = EventMultiplexer(size_guidance={"scalars": 0})
    mux.AddRunsFromDirectory(sys.argv[1])
    mux.Reload()
    out = {}
    for run, tags in mux.Runs().items():
        for tag in tags.get("scalars", []):
            out.setdefault(tag, []).extend([e.step, e.value] for e in mux.Scalars(run, tag))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
