#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, check formatting and lints,
# build once, run everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo build --locked --all-targets
cargo test --locked --lib --bins --tests
