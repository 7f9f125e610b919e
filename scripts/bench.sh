#!/usr/bin/env bash
# Benchmarks, each printing its figures beside a baseline in one run:
#   - Wasm size: after wasm-opt vs the wasm-bindgen output (raw and gzip)
#   - popup open: cached first paint vs first live state, worker warm and stopped
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh >/dev/null
cargo build -q -p wpp-sim
(cd scripts && npm ci --no-audit --no-fund --silent)

python3 - <<'PY'
import gzip, pathlib
unopt = pathlib.Path("target/wasm-bindgen/wpp_tabs_bg.unopt.wasm").read_bytes()
opt = pathlib.Path("dist/chrome/wasm/wpp_tabs_bg.wasm").read_bytes()
print(f"{'wasm size (bytes)':23} |    raw |   gzip")
for name, data in (("wasm-bindgen (baseline)", unopt), ("after wasm-opt -Oz", opt)):
    print(f"{name:23} | {len(data):6} | {len(gzip.compress(data, 9)):6}")
PY
echo
node scripts/bench/popup-open.mjs "$PWD/dist/chrome" "$PWD/target/debug/wpp-sim" "${BENCH_RUNS:-15}"
