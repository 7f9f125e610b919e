#!/usr/bin/env bash
# Runs every check and test: formatting and lints (native and wasm32), the pure core's unit
# tests, wpp-sim's tests, then the real-browser suite (headless Chromium and Firefox with the
# built extension, against wpp-sim on loopback). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

step() { printf '\n[test] %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (native, all targets)"
cargo clippy --workspace --all-targets -- -D warnings
step "clippy (wasm32)"
cargo clippy -p wpp-tabs --lib --target wasm32-unknown-unknown -- -D warnings

step "building the extension"
scripts/build.sh

step "cargo test (core, wpp-sim, real browsers)"
cargo test --workspace
