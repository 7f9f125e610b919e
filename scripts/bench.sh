#!/usr/bin/env bash
# Benchmarks, each printing its figures beside a baseline in one run:
#   - Wasm size: after wasm-opt vs the wasm-bindgen output (raw and gzip)
#   - popup open: cached first paint vs first live state, worker warm and stopped
#   - Sessions page load: the server's authenticated requests from 20 connected sessions in a
#     real minute with the Sessions page open and with none, vs a naive 2 s / the seed's 3 s poll
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh >/dev/null

python3 - <<'PY'
import gzip, pathlib
unopt = pathlib.Path("target/wasm-bindgen/wpp_tabs_bg.unopt.wasm").read_bytes()
opt = pathlib.Path("dist/chrome/wasm/wpp_tabs_bg.wasm").read_bytes()
print(f"{'wasm size (bytes)':23} |    raw |   gzip")
for name, data in (("wasm-bindgen (baseline)", unopt), ("after wasm-opt -Oz", opt)):
    print(f"{name:23} | {len(data):6} | {len(gzip.compress(data, 9)):6}")
PY
echo
# The popup-open benchmark runs on the browser suite's harness (tests/browser/bench.rs): the
# shipped build in headless Chromium, wpp-sim in-process; BENCH_RUNS runs per row (default 15).
cargo test -q --test browser -- --ignored --exact bench_popup_open --nocapture \
  | sed -n '/^popup open/,/^worker stopped/p'
echo
# The server's load from the session manager (tests/browser/bench.rs): 20 sessions paired and
# connected in the shipped build, then wpp-sim's authenticated requests counted over
# BENCH_SECONDS of real time (default 60) with the Sessions page open, then as long with none.
cargo test -q --test browser -- --ignored --exact bench_sessions_page_load --nocapture \
  | sed -n '/^sessions page load/,/^baselines/p'
