"""Reads a recorder run directory with h5py only, as an outside user would,
and compares it with what a test sent (manifest.json written by the test).

usage: h5check.py RUN_DIR MANIFEST
Prints a JSON summary; exits 1 with a message on the first mismatch.
"""
import glob
import json
import math
import os
import sys

import h5py
import numpy as np


def fail(msg):
    print("MISMATCH: " + msg)
    sys.exit(1)


def main():
    run_dir, manifest_path = sys.argv[1], sys.argv[2]
    manifest = json.load(open(manifest_path))
    found = {}
    files = sorted(glob.glob(os.path.join(run_dir, "episodes-*.h5")))
    for path in files:
        with h5py.File(path, "r") as f:
            if f.attrs["format"] != "attention-agent-episodes":
                fail(f"{path}: format attribute {f.attrs['format']!r}")
            if int(f.attrs["format_version"]) != 1:
                fail(f"{path}: format_version")
            if f.attrs["run_id"] != manifest["run_id"]:
                fail(f"{path}: run_id {f.attrs['run_id']!r}")
            cfg = json.loads(f.attrs["model_config"])
            if cfg["heads"] != manifest["heads"]:
                fail(f"{path}: model_config heads {cfg['heads']}")
            json.loads(f.attrs["env"])
            for name, g in f["episodes"].items():
                if g["frame"].attrs["axes"] != "step,row,column,channel":
                    fail(f"{name}/frame: axes attribute {g['frame'].attrs['axes']!r}")
                if "units" not in g["attention"].attrs:
                    fail(f"{name}/attention: no units attribute")
                if name in found:
                    fail(f"episode {name} stored twice ({found[name][0]} and {path})")
                found[name] = (path, {k: g.attrs[k] for k in g.attrs},
                               {k: (g[k].dtype.name, g[k].shape, g[k][()]) for k in g})
    for uid in manifest["absent"]:
        if uid in found:
            fail(f"episode {uid} should not be stored")
    summary = {"files": len(files), "episodes": {}}
    for e in manifest["episodes"]:
        uid = e["uid"]
        if uid not in found and e["mode"] == "optional-prefix":
            summary["episodes"][uid] = None
            continue
        if uid not in found:
            fail(f"episode {uid} not found among {sorted(found)}")
        path, attrs, data = found[uid]
        steps = int(attrs["steps"])
        if e["mode"] == "exact" and steps != e["steps"]:
            fail(f"{uid}: {steps} steps stored, {e['steps']} sent")
        if e["mode"] in ("prefix", "optional-prefix") and steps > e["steps"]:
            fail(f"{uid}: {steps} steps stored, only {e['steps']} sent")
        if e["complete"] is not None and bool(attrs["complete"]) != e["complete"]:
            fail(f"{uid}: complete={attrs['complete']}, expected {e['complete']}")
        if e["end_reason"] is not None and attrs["end_reason"] != e["end_reason"]:
            fail(f"{uid}: end_reason={attrs['end_reason']!r}, expected {e['end_reason']!r}")
        if e["mode"] == "exact" and int(attrs["missing_chunks"]) != e["missing_chunks"]:
            fail(f"{uid}: missing_chunks={attrs['missing_chunks']}, expected {e['missing_chunks']}")
        if e["episode_return"] is not None and e["mode"] == "exact":
            if not math.isclose(float(attrs["episode_return"]), e["episode_return"]):
                fail(f"{uid}: episode_return {attrs['episode_return']}")
        for field, spec in e["fields"].items():
            if field not in data:
                fail(f"{uid}: dataset {field} missing")
            dtype, shape, values = data[field]
            if dtype != spec["dtype"]:
                fail(f"{uid}/{field}: dtype {dtype}, expected {spec['dtype']}")
            if list(shape) != [steps] + spec["rest"]:
                fail(f"{uid}/{field}: shape {shape}, expected {[steps] + spec['rest']}")
            sent = np.frombuffer(open(spec["file"], "rb").read(), dtype=np.dtype(dtype).newbyteorder("<"))
            sent = sent.reshape([-1] + spec["rest"])[:steps]
            if not np.array_equal(sent, values):
                bad = np.argwhere(sent != values)[:3].tolist()
                fail(f"{uid}/{field}: values differ at {bad}")
        summary["episodes"][uid] = {"steps": steps, "file": os.path.basename(path),
                                    "end_reason": attrs["end_reason"], "complete": bool(attrs["complete"])}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
