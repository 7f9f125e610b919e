#!/usr/bin/env bash
# Builds the installable extension for both browsers from the one source tree:
#   dist/chrome/, dist/firefox/          unpacked, for "Load unpacked" / about:debugging
#   dist/wpp-tabs-chrome.zip             for the Chrome Web Store or drag-and-drop
#   dist/wpp-tabs-firefox.zip            for addons.mozilla.org (an .xpi is this zip)
#
# Each entry (the background worker and each page) is its own Wasm module: the crate built with
# only that entry's feature (`entry-<name>`), so a module holds only what its entry reaches;
# each loader (extension/<name>.js, the worker's background.js) imports `wasm/<name>.js`.
#
# `scripts/build.sh --test-build` writes the same layout into target/test-dist/ instead, built
# with the `test-hooks` feature: short timings (core::timings::Timings::TEST) and a test-only
# panic trigger, for the browser suite. Nothing of it reaches dist/.
#
# `scripts/build.sh --single-module` builds only the one module with every entry (the layout
# before the split, for scripts/bench.sh's size table) into target/wasm-bindgen-single/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build

entries=(worker popup sessions options diagnostics)
extra="" out=dist bindgen_dir=target/wasm-bindgen
case "${1:-}" in
  "") ;;
  --test-build) extra=",test-hooks" out=target/test-dist bindgen_dir=target/wasm-bindgen-test ;;
  --single-module) out="" bindgen_dir=target/wasm-bindgen-single ;;
  *) echo "usage: scripts/build.sh [--test-build | --single-module]" >&2; exit 2 ;;
esac

profile_dir=target/wasm32-unknown-unknown/release
rm -rf "$bindgen_dir" && mkdir -p "$bindgen_dir/cargo"

# build_module <name> <cargo feature arguments...>: <name>.js (the glue) and <name>_bg.wasm
# (optimised for size; <name>_bg.unopt.wasm keeps the names, for twiggy) in $bindgen_dir.
build_module() {
  local name="$1"; shift
  echo "[build] compiling the Wasm module $name ($*)" >&2
  cargo build --release --lib --target wasm32-unknown-unknown -p wpp-tabs "$@"
  cp "$profile_dir/wpp_tabs.wasm" "$bindgen_dir/cargo/$name.wasm"
  wasm-bindgen --target web --no-typescript --out-dir "$bindgen_dir" "$bindgen_dir/cargo/$name.wasm"
  mv "$bindgen_dir/${name}_bg.wasm" "$bindgen_dir/${name}_bg.unopt.wasm"
  scripts/node_modules/.bin/wasm-opt -Oz --strip-debug --strip-producers \
    -o "$bindgen_dir/${name}_bg.wasm" "$bindgen_dir/${name}_bg.unopt.wasm"
}

if [ -z "$out" ]; then
  build_module wpp_tabs  # the default features: every entry
  exit 0
fi
for entry in "${entries[@]}"; do
  build_module "$entry" --no-default-features --features "entry-$entry$extra"
done

rm -rf "$out" && mkdir -p "$out"
python3 scripts/package.py --manifest manifest.json --extension extension \
  --wasm "$bindgen_dir" --entries "${entries[@]}" --cargo-toml Cargo.toml --out "$out"
