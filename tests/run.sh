#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, build once, run everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo build --locked --all-targets
cargo test --locked --lib --bins --tests
