#!/usr/bin/env bash
# Builds the recorder as a laptop user would, with no PyTorch anywhere: no
# LIBTORCH, no LIBTORCH_USE_PYTORCH, no virtualenv on PATH. It must build, load
# no torch library and run. Fails if anything in the recorder's dependencies
# (`wire`, `env`) reaches libtorch again: torch-sys's build script cannot find
# a libtorch then, and the build stops. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

clean_path=$(tr ':' '\n' <<<"$PATH" | grep -v -e '\.venv' -e 'torch' | paste -sd: -)
run_clean() {
  env -u LIBTORCH -u LIBTORCH_USE_PYTORCH -u LIBTORCH_INCLUDE -u LIBTORCH_LIB \
    -u LD_LIBRARY_PATH -u VIRTUAL_ENV -u AAA_VENV PATH="$clean_path" "$@"
}

if cargo tree -p recorder -e normal,build --prefix none | grep -E '^(tch|torch-sys|agent) '; then
  echo "FAIL: the recorder depends on the crates above, which link libtorch" >&2
  exit 1
fi
run_clean cargo build --release -p recorder
bin=target/release/recorder
if ldd "$bin" | grep -i torch; then
  echo "FAIL: $bin loads the torch libraries above" >&2
  exit 1
fi
run_clean "$bin" schema >/dev/null
echo "recorder built and ran without PyTorch: $(du -h "$bin" | cut -f1), $(ldd "$bin" | wc -l) shared libraries, none of them torch"
