#!/usr/bin/env bash
# Runs every check and test: formatting and lints (native and wasm32), the pure core's unit
# tests, wpp-sim's tests, then the real-browser suite (headless Chromium and Firefox with the
# extension's test build, against wpp-sim on loopback), then the real wppconnect-server tier
# when its source tree is there (scripts/real-server.sh). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

step() { printf '\n[test] %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (native, all targets)"
cargo clippy --workspace --all-targets -- -D warnings
# The default features hold every entry (entry-worker, entry-popup, ...), so these check the
# code of every Wasm module; scripts/build.sh then builds each entry alone.
step "clippy (wasm32, shipped and test build, every entry)"
cargo clippy -p wpp-tabs --lib --tests --target wasm32-unknown-unknown -- -D warnings
cargo clippy -p wpp-tabs --lib --target wasm32-unknown-unknown --features test-hooks -- -D warnings

step "building the extension"
scripts/build.sh

step "the packages are reproducible: a second build gives the same bytes"
first="$(sha256sum dist/*.zip)"
touch extension/* manifest.json
scripts/build.sh >/dev/null
second="$(sha256sum dist/*.zip)"
[ "$first" = "$second" ] || { printf 'not reproducible:\n%s\n%s\n' "$first" "$second" >&2; exit 1; }

step "web-ext lint of the Firefox package (Mozilla's store checks; warnings fail)"
scripts/node_modules/.bin/web-ext lint --source-dir dist/firefox --warnings-as-errors --output text

step "building the extension's test build (target/test-dist/, feature test-hooks)"
scripts/build.sh --test-build

step "cargo test (core, wpp-sim, real browsers: one test per scenario and browser)"
cargo test --workspace -- --nocapture

step "real wppconnect-server tier: wpp-sim vs the real server, the extension against it (Chromium)"
if real_src="$(scripts/real-server.sh src 2>/dev/null)"; then
  # Whatever happens, no server or Chromium of the tier outlives this step.
  trap 'scripts/real-server.sh stop' EXIT
  scripts/real-server.sh build "$real_src"
  WPP_REAL_SERVER=1 WPP_SERVER_SRC="$real_src" \
    cargo test --test real_server_contract -- --nocapture
  # Each scenario runs its own server, which launches a Chromium per started session.
  WPP_REAL_SERVER=1 WPP_SERVER_SRC="$real_src" \
    cargo test --test browser -- chromium_real_server_ --test-threads 2
  scripts/real-server.sh stop
  trap - EXIT
else
  printf '[test] real wppconnect-server tier SKIPPED: no wppconnect-server source tree (set WPP_SERVER_SRC; see scripts/real-server.sh)\n' >&2
fi

step "Wasm tests of the shell (Node), against wpp-sim over real HTTP"
cargo build -q -p wpp-sim
sim_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
target/debug/wpp-sim --port "$sim_port" --bcrypt-cost 4 --init-delay-ms 300 >target/wasm-test-sim.log 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$sim_port/healthz" >/dev/null && break; sleep 0.1; done
WPP_SIM_URL="http://127.0.0.1:$sim_port" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p wpp-tabs --lib --target wasm32-unknown-unknown
