#!/usr/bin/env bash
# Every GPU measurement of central inference (docs/performance.md, "Central
# inference"), as one call on a lent GPU host that has PyTorch 2.11 but no
# Rust: the binaries are built here and carried.
#
#   scripts/bench/gpu-measure.sh --prepare          # here: build, strip into dist/bin, copy the ROM
#   scripts/bench/gpu-measure.sh [BENCH-SYSTEM FLAGS...]   # there: logs under $OUT (else ./gpu-logs)
#
# On the GPU host it runs scripts/bench/bench-system.sh with --inference both (the
# actors' own inference, then central inference, the same processes), on
# Seaquest with the paper preset at the learner's default T = 50, B = 32,
# 15 actors x 4 envs, 120 s each (precision auto: fp32 on a GPU); flags given replace those defaults
# (e.g. --seconds 60, or --device cpu --game catch --preset small to try it on a CPU).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ "${1:-}" = --prepare ]; then
  . "$ROOT/scripts/bootstrap.sh"
  (cd "$ROOT" && cargo build --release --bins -q)
  mkdir -p "$ROOT/dist/bin" "$ROOT/dist/roms"
  for b in learner actor; do strip -o "$ROOT/dist/bin/$b" "$ROOT/target/release/$b"; done
  rom="$(ls "$ROOT"/.venv/lib/python3*/site-packages/ale_py/roms/seaquest.bin | head -n 1)"
  cp "$rom" "$ROOT/dist/roms/"
  du -sh "$ROOT/dist"
  echo "carry dist/ to the GPU host and run scripts/bench/gpu-measure.sh there"
  exit 0
fi
out="${OUT:-$ROOT/gpu-logs}"
mkdir -p "$out"
# The host's libtorch and CUDA libraries, from its PyTorch.
site="$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
libs="$site/torch/lib"
for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export AAA_ROM_DIR="${AAA_ROM_DIR:-$ROOT/dist/roms}"
{
  date; nproc; lscpu | grep -E "Model name|Flags" | cut -c1-200
  command -v nvidia-smi >/dev/null && nvidia-smi
} >"$out/host.txt" 2>&1
defaults=(--device cuda --actors 15 --envs 4 --seconds 120 --unroll-length 50 --batch-size 32
  --learner-threads 4 --inference both)
# Flags given after the defaults: bench-system.sh takes the last of each.
AAA_NO_BUILD=1 AAA_BIN_DIR="${AAA_BIN_DIR:-$ROOT/dist/bin}" \
  "$ROOT/scripts/bench/bench-system.sh" "${defaults[@]}" "$@" 2>&1 | tee "$out/bench-system.txt"
