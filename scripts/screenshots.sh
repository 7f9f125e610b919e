#!/usr/bin/env bash
# The README's pictures: the built extension in headless Chromium against wpp-sim, the popup
# (QR, phone code, connected, an error), the Sessions page and the options page, in English
# and Portuguese, light and dark, written to docs/screenshots/<page>-<lang>-<theme>.png.
# QR codes, IDs and times differ on every run: commit the pictures only when the UI changed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh --test-build >/dev/null
cargo test --test browser -- --ignored --exact screenshots --nocapture
