#!/usr/bin/env bash
# Checks for, and installs when missing, what building and testing need. Idempotent.
#   scripts/setup.sh build   the Wasm toolchain (rustup target, wasm-bindgen CLI, wasm-opt)
#   scripts/setup.sh test    the above, plus Chromium, ChromeDriver, Firefox ESR, geckodriver
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"

say() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

setup_build() {
  command -v cargo >/dev/null || { say "Rust (cargo) is required: https://rustup.rs"; exit 1; }
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  [ -f Cargo.lock ] || cargo generate-lockfile
  local want; want="$(wasm_bindgen_version)"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (a few minutes)"
    # --locked pins the CLI's own dependencies; fall back when one of them was yanked.
    cargo install wasm-bindgen-cli --version "$want" --locked ||
      cargo install wasm-bindgen-cli --version "$want"
  fi
  if [ ! -x scripts/node_modules/.bin/wasm-opt ] || [ ! -x scripts/node_modules/.bin/web-ext ] ||
    [ ! -f scripts/node_modules/axe-core/axe.min.js ]; then
    command -v npm >/dev/null || apt_install npm
    say "installing wasm-opt, web-ext and axe-core (npm, pinned in scripts/package-lock.json)"
    (cd scripts && npm ci --no-audit --no-fund --silent)
  fi
}

setup_test() {
  setup_build
  # The browsers show an extension in Portuguese or Spanish only with those language files.
  apt_install chromium chromium-driver chromium-l10n firefox-esr firefox-esr-l10n-pt-br firefox-esr-l10n-es-es curl
  command -v node >/dev/null || apt_install nodejs  # runs the shell's Wasm tests
  if ! command -v geckodriver >/dev/null; then
    say "installing geckodriver (Debian does not package it)"
    cargo install geckodriver --version 0.37.1 --locked
  fi
}

case "$what" in
  build) setup_build ;;
  test) setup_test ;;
  *) say "usage: scripts/setup.sh build|test"; exit 2 ;;
esac
