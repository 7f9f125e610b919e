#!/usr/bin/env bash
# Builds the installable extension for both browsers from the one source tree:
#   dist/chrome/, dist/firefox/          unpacked, for "Load unpacked" / about:debugging
#   dist/wpp-tabs-chrome.zip             for the Chrome Web Store or drag-and-drop
#   dist/wpp-tabs-firefox.zip            for addons.mozilla.org (an .xpi is this zip)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

profile_dir=target/wasm32-unknown-unknown/release
bindgen_dir=target/wasm-bindgen
echo "[build] compiling the Wasm module" >&2
cargo build --release --lib --target wasm32-unknown-unknown -p wpp-tabs
rm -rf "$bindgen_dir" && mkdir -p "$bindgen_dir"
wasm-bindgen --target web --no-typescript --out-dir "$bindgen_dir" "$profile_dir/wpp_tabs.wasm"

echo "[build] optimising for size" >&2
mv "$bindgen_dir/wpp_tabs_bg.wasm" "$bindgen_dir/wpp_tabs_bg.unopt.wasm"
scripts/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
  -o "$bindgen_dir/wpp_tabs_bg.wasm" "$bindgen_dir/wpp_tabs_bg.unopt.wasm"

rm -rf dist && mkdir -p dist
python3 scripts/package.py --manifest manifest.json --extension extension \
  --wasm "$bindgen_dir" --cargo-toml Cargo.toml --out dist
