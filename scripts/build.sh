#!/usr/bin/env bash
# Builds the installable extension for both browsers from the one source tree:
#   dist/chrome/, dist/firefox/          unpacked, for "Load unpacked" / about:debugging
#   dist/wpp-tabs-chrome.zip             for the Chrome Web Store or drag-and-drop
#   dist/wpp-tabs-firefox.zip            for addons.mozilla.org (an .xpi is this zip)
#
# `scripts/build.sh --test-build` writes the same layout into target/test-dist/ instead, built
# with the `test-hooks` feature: short timings (core::timings::Timings::TEST) and a test-only
# panic trigger, for the browser suite. Nothing of it reaches dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

features=() out=dist name=wpp_tabs_bg
case "${1:-}" in
  "") ;;
  --test-build) features=(--features test-hooks) out=target/test-dist ;;
  *) echo "usage: scripts/build.sh [--test-build]" >&2; exit 2 ;;
esac

profile_dir=target/wasm32-unknown-unknown/release
bindgen_dir="target/wasm-bindgen${features:+-test}"
echo "[build] compiling the Wasm module ${features[*]}" >&2
cargo build --release --lib --target wasm32-unknown-unknown -p wpp-tabs "${features[@]}"
rm -rf "$bindgen_dir" && mkdir -p "$bindgen_dir"
wasm-bindgen --target web --no-typescript --out-dir "$bindgen_dir" "$profile_dir/wpp_tabs.wasm"

echo "[build] optimising for size" >&2
mv "$bindgen_dir/$name.wasm" "$bindgen_dir/$name.unopt.wasm"
scripts/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
  -o "$bindgen_dir/$name.wasm" "$bindgen_dir/$name.unopt.wasm"

rm -rf "$out" && mkdir -p "$out"
python3 scripts/package.py --manifest manifest.json --extension extension \
  --wasm "$bindgen_dir" --cargo-toml Cargo.toml --out "$out"
