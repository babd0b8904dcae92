#!/usr/bin/env bash
# Prepares this checkout on a fresh Debian machine: system packages, the project
# virtualenv (PyTorch 2.11.0 for libtorch, ale-py for its ROMs, h5py/numpy and
# tensorboard for tests that read our files as users do), and the variables the
# build needs (protobuf-compiler: the TensorBoard event format's build).
#
# Idempotent and fast when already done. Source it (`. scripts/bootstrap.sh`)
# to get LIBTORCH_USE_PYTORCH and PATH set in the calling shell (it leaves the
# shell's options alone), or run it directly to only install.

_aaa_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AAA_VENV="${AAA_VENV:-$_aaa_root/.venv}"

# The installing part runs in a subshell with strict options of its own.
(
  set -euo pipefail
  TORCH_VERSION="2.11.0"
  PY_PACKAGES=("torch==$TORCH_VERSION" "ale-py==0.10.1" "h5py" "numpy" "safetensors" "tensorboard")
  APT_PACKAGES=(cmake clang libclang-dev zlib1g-dev libhdf5-dev pkg-config python3-venv protobuf-compiler)
  say() { printf '[bootstrap] %s\n' "$*" >&2; }

  # 1. System packages.
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
      say "installing system packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      say "missing system packages: ${missing[*]}"
      say "run:  sudo apt-get install -y ${missing[*]}   and then this command again"
      exit 1
    fi
  fi

  # 2. Project virtualenv.
  stamp="$AAA_VENV/.aaa-requirements"
  want="${PY_PACKAGES[*]}"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "creating virtualenv $AAA_VENV with: $want (first time: a few minutes, ~5 GB)"
    [ -x "$AAA_VENV/bin/python" ] || python3 -m venv "$AAA_VENV"
    "$AAA_VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
    printf '%s' "$want" >"$stamp"
  fi
) || { echo "[bootstrap] failed: see the messages above" >&2; return 1 2>/dev/null || exit 1; }

# 3. Build variables. A user with their own libtorch 2.11 sets LIBTORCH;
# otherwise tch's build script asks the virtualenv's python where the wheel's
# libtorch is.
export AAA_VENV
export PATH="$AAA_VENV/bin:$PATH"
if [ -z "${LIBTORCH:-}" ]; then
  export LIBTORCH_USE_PYTORCH=1
fi
unset _aaa_root
