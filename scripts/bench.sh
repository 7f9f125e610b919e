#!/usr/bin/env bash
# Benchmarks, each printing its figures beside a baseline in one run:
#   - Wasm size: each entry's own module (worker, each page) vs the one module with every
#     entry that each of them loaded before the split, both after wasm-opt (raw and gzip)
#   - popup open: the session and the live state shown vs a static page of the same HTML and
#     CSS (its first possible paint, the floor), worker warm and stopped
#   - Sessions page load: the server's authenticated requests from 20 connected sessions in a
#     real minute with the Sessions page open and with none, vs a naive 2 s / the seed's 3 s poll
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
scripts/build.sh >/dev/null
scripts/build.sh --single-module >/dev/null

python3 - <<'PY'
import gzip, pathlib
def size(path):
    data = pathlib.Path(path).read_bytes()
    return len(data), len(gzip.compress(data, 9))
before = size("target/wasm-bindgen-single/wpp_tabs_bg.wasm")
entries = ("worker", "popup", "sessions", "options", "diagnostics")
after = {e: size(f"dist/chrome/wasm/{e}_bg.wasm") for e in entries}
print(f"{'wasm size (bytes)':17} | before: one module | after: its own module")
print(f"{'module loaded by':17} |    raw  |    gzip  |    raw  |    gzip")
for e in entries:
    print(f"{e:17} | {before[0]:7} | {before[1]:7}  | {after[e][0]:7} | {after[e][1]:7}")
total = [sum(a[i] for a in after.values()) for i in (0, 1)]
print(f"{'package (all)':17} | {before[0]:7} | {before[1]:7}  | {total[0]:7} | {total[1]:7}")
PY
# One benchmark of the browser suite's harness (an ignored test), printing its table: the
# lines from the one starting with $2 to the one starting with $3.
bench() {
  cargo test -q --test browser -- --ignored --exact "$1" --nocapture | sed -n "/^$2/,/^$3/p"
  echo
}

echo
# Popup open (tests/browser/bench.rs): the shipped build in headless Chromium, wpp-sim
# in-process; BENCH_RUNS runs per row (default 15).
bench bench_popup_open "popup open" "worker stopped"
# Where the stopped worker's share of that goes (tests/browser/bench.rs): the shipped build
# with marks in its worker's loader, each mark in ms from the popup's navigation.
bench bench_popup_cold_timeline "popup cold timeline" "Wasm.s answer"
# The server's load from the session manager (tests/browser/bench.rs): 20 sessions paired and
# connected in the shipped build, then wpp-sim's authenticated requests counted over
# BENCH_SECONDS of real time (default 60) with the Sessions page open, then as long with none.
bench bench_sessions_page_load "sessions page load" "baselines"
# Push against polling for one pairing session (tests/browser/bench_push.rs): authenticated
# requests per minute with the popup open and with none, and QR sent -> shown in the popup,
# over BENCH_SECONDS windows (default 60); the baseline is wpp-sim refusing sockets.
bench bench_push_pairing "push vs polling" "QR sent"
# Worker cold start (tests/browser/bench_push.rs): a message waking the stopped worker to its
# first reply, the shipped worker against an empty JS worker; BENCH_RUNS runs each.
bench bench_worker_cold_start "worker cold start" "wpp-tabs worker"
# CORS preflights and time per authenticated call, without and with the server's origin as a
# host permission (tests/browser/bench_push.rs).
bench bench_host_permission "host permission" "granted"
