#!/usr/bin/env bash
# The project's whole test suite, as CI runs it: set-up (idempotent), format
# and lint checks, then every test in release mode (the model tests are too
# slow unoptimised, and one profile means one build of the libtorch glue).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/bootstrap.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== cargo build (the end-to-end tests start the binaries)"
cargo build --release --workspace --bins
echo "== cargo test"
cargo test --release --workspace "$@"
