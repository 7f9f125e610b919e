#!/usr/bin/env bash
# Builds and runs the REAL wppconnect-server (upstream v2.10.4) on loopback, for the test tier
# that checks wpp-sim and the extension against the real thing (see wpp-sim/README.md).
#
#   scripts/real-server.sh build [--force] [SRC]   copy SRC to target/real-server/build, then
#                                                 `npm ci` and `npm run build`; each is skipped
#                                                 while what it depends on is unchanged (hashed)
#   scripts/real-server.sh start [--port P] [SRC]  build if needed, start one server instance on
#                                                 127.0.0.1:P (default 21465) with empty tokens/
#                                                 and userDataDir/, wait for GET /healthz 200,
#                                                 print its URL
#   scripts/real-server.sh stop [--port P]         stop that instance (default: every instance):
#                                                 SIGINT node, then end the Chromiums it launched
#                                                 (by PID); safe when nothing runs
#   scripts/real-server.sh pids [--port P] [--session S]
#                                                 PIDs of the Chromium browsers an instance runs
#                                                 (for one session's profile, or all)
#   scripts/real-server.sh status                  the instances and whether they run
#   scripts/real-server.sh src [SRC]               print the source tree; exit 3 when absent
#
# SRC: the argument, else $WPP_SERVER_SRC, else ../shared/wppconnect-server next to the repo.
# Environment: WPP_SERVER_SECRET (SECRET_KEY, default THISISMYSECURETOKEN),
# WPP_REAL_SERVER_DIR (work dir, default target/real-server), CHROME_PATH (/usr/bin/chromium).
# Each instance runs in target/real-server/run/<port>/ (server.log there).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
base="${WPP_REAL_SERVER_DIR:-$root/target/real-server}"
build="$base/build"
secret="${WPP_SERVER_SECRET:-THISISMYSECURETOKEN}"
chrome="${CHROME_PATH:-/usr/bin/chromium}"

say() { printf '[real-server] %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# The source tree: $1, else WPP_SERVER_SRC, else ../shared/wppconnect-server. Prints its
# absolute path; exit 3 when it is not a wppconnect-server tree.
source_tree() {
  local src="${1:-${WPP_SERVER_SRC:-$root/../shared/wppconnect-server}}"
  if [[ ! -f "$src/package.json" || ! -f "$src/package-lock.json" || ! -d "$src/src" ]]; then
    say "no wppconnect-server source tree at $src (set WPP_SERVER_SRC or pass the path)"
    return 3
  fi
  (cd "$src" && pwd)
}

# sha256 over the named files/directories of $1 (paths relative to it), plus the Node version.
hash_of() {
  local dir="$1"
  shift
  (
    cd "$dir"
    node --version
    { find "$@" -type f -print0 2>/dev/null || true; } | sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -d' ' -f1
}

copy_in() { # copy_in SRC NAME...: replaces build/NAME with SRC/NAME (writable)
  local src="$1"
  shift
  for name in "$@"; do
    [[ -e "$src/$name" ]] || continue
    rm -rf "${build:?}/$name"
    cp -r "$src/$name" "$build/$name"
    chmod -R u+w "$build/$name"
  done
}

# The preload that binds every listen() without a host to 127.0.0.1 only (upstream calls
# http.listen(PORT) and would listen on every interface).
write_preload() {
  cat >"$build/bind-loopback.cjs" <<'JS'
// Preload (`node -r ./bind-loopback.cjs`): a listen() given no host binds 127.0.0.1 only.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  const isPort = (v) => typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
  if (args.length === 0 || typeof first === 'function') {
    args.unshift(0, '127.0.0.1');
  } else if (isPort(first)) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
  } else if (first && typeof first === 'object' && !(first instanceof net.Server)
      && first._handle === undefined && first.fd === undefined
      && first.path === undefined && first.host === undefined) {
    args[0] = Object.assign({}, first, { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
JS
}

cmd_build() {
  local force=0 src_arg=""
  while (($#)); do
    case "$1" in
      --force) force=1 ;;
      *) src_arg="$1" ;;
    esac
    shift
  done
  local src
  src="$(source_tree "$src_arg")" || exit $?
  command -v node >/dev/null || die "node is not installed"
  command -v npm >/dev/null || die "npm is not installed"
  mkdir -p "$build"
  # One build at a time (tests may start instances concurrently).
  exec 9>"$base/build.lock"
  flock 9
  local deps_hash src_hash t0
  deps_hash="$(hash_of "$src" package.json package-lock.json .npmrc)"
  src_hash="$(hash_of "$src" src types.d.ts tsconfig.json .babelrc package.json)"
  if ((force)) || [[ ! -d "$build/node_modules" || "$(cat "$build/.deps-hash" 2>/dev/null)" != "$deps_hash" ]]; then
    say "npm ci in $build (dependencies of $src changed or never installed)"
    rm -f "$build/.deps-hash" "$build/.src-hash"
    copy_in "$src" package.json package-lock.json .npmrc LICENSE
    t0=$SECONDS
    # HUSKY=0 and the git ceiling: upstream's `prepare` (husky) must not touch this repo's git.
    (cd "$build" && HUSKY=0 GIT_CEILING_DIRECTORIES="$base" \
      PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=true \
      npm ci --no-audit --no-fund >&2)
    say "npm ci took $((SECONDS - t0)) s"
    echo "$deps_hash" >"$build/.deps-hash"
  else
    say "npm ci skipped (package-lock.json unchanged)"
  fi
  if ((force)) || [[ ! -f "$build/dist/server.js" || "$(cat "$build/.src-hash" 2>/dev/null)" != "$src_hash" ]]; then
    say "npm run build in $build"
    rm -f "$build/.src-hash"
    copy_in "$src" src types.d.ts tsconfig.json .babelrc
    t0=$SECONDS
    (cd "$build" && HUSKY=0 GIT_CEILING_DIRECTORIES="$base" npm run build >&2)
    say "npm run build took $((SECONDS - t0)) s"
    echo "$src_hash" >"$build/.src-hash"
  else
    say "build skipped (sources unchanged)"
  fi
  write_preload
  # Release the lock (and its fd, which a server started next would inherit).
  flock -u 9
  exec 9>&-
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# PIDs of processes whose --user-data-dir is under $1 (a run dir's userDataDir/), or, with $2,
# is exactly $1/$2. Relative paths are resolved against the process's cwd.
profile_pids() {
  local under="$1" session="${2:-}" p pid arg dir cwd
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [[ -r "$p/cmdline" ]] || continue
    arg="$(tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -m1 '^--user-data-dir=' || true)"
    [[ -n "$arg" ]] || continue
    dir="${arg#--user-data-dir=}"
    if [[ "$dir" != /* ]]; then
      cwd="$(readlink "$p/cwd" 2>/dev/null || true)"
      [[ -n "$cwd" ]] || continue
      dir="$cwd/$dir"
    fi
    dir="$(realpath -m "$dir")"
    if [[ -n "$session" ]]; then
      [[ "$dir" == "$under/$session" ]] && echo "$pid"
    else
      [[ "$dir" == "$under"/* ]] && echo "$pid"
    fi
  done
  return 0
}

# $@ and all their descendants.
with_descendants() {
  local all=" $* " changed=1 pid ppid
  while ((changed)); do
    changed=0
    while read -r pid ppid; do
      if [[ "$all" == *" $ppid "* && "$all" != *" $pid "* ]]; then
        all+="$pid "
        changed=1
      fi
    done < <(ps -e -o pid=,ppid=)
  done
  echo "$all"
}

port_arg() { # port_arg DEFAULT ARGS...: the value of --port, else DEFAULT
  local port="$1"
  shift
  while (($#)); do
    case "$1" in
      --port) port="$2"; shift ;;
      --port=*) port="${1#--port=}" ;;
    esac
    shift
  done
  echo "$port"
}

stop_instance() {
  local dir="$1" pid chromiums t
  [[ -d "$dir" ]] || return 0
  dir="$(realpath "$dir")"
  pid="$(cat "$dir/node.pid" 2>/dev/null || true)"
  if alive "$pid"; then
    say "stopping node $pid ($(basename "$dir"))"
    kill -INT "$pid" 2>/dev/null || true
    for t in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      say "node $pid ignored SIGINT for 5 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/node.pid"
  # SIGINT can leave the browsers running (and close-session leaks them): end them by PID.
  chromiums="$(profile_pids "$dir/userDataDir")"
  if [[ -n "${chromiums// /}" ]]; then
    local all
    # shellcheck disable=SC2086
    all="$(with_descendants $chromiums)"
    say "ending $(wc -w <<<"$all") Chromium process(es) of $(basename "$dir")"
    # shellcheck disable=SC2086
    kill -KILL $all 2>/dev/null || true
    for t in $(seq 30); do
      [[ -z "$(profile_pids "$dir/userDataDir")" ]] && break
      sleep 0.1
    done
  fi
  # The profiles are the bulk of an instance (its log stays for a look afterwards).
  rm -rf "$dir/userDataDir"
}

cmd_start() {
  local port src_arg=""
  port="$(port_arg 21465 "$@")"
  while (($#)); do
    case "$1" in
      --port) shift ;;
      --port=*) ;;
      *) src_arg="$1" ;;
    esac
    shift
  done
  [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"
  cmd_build ${src_arg:+"$src_arg"}
  [[ -x "$chrome" ]] || die "no Chromium at $chrome (run scripts/setup.sh test, or set CHROME_PATH)"
  local run="$base/run/$port"
  stop_instance "$run"
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
    die "port $port is already in use"
  fi
  rm -rf "$run"
  mkdir -p "$run/tokens" "$run/userDataDir"
  # The instance's own working directory: the build is shared, the state (tokens/,
  # userDataDir/, log/, uploads/, WhatsAppImages/) is its own.
  ln -s "$build/dist" "$run/dist"
  ln -s "$build/node_modules" "$run/node_modules"
  ln -s "$build/package.json" "$run/package.json"
  (
    cd "$run"
    # Its own session (so a Ctrl-C in the caller's terminal does not reach it); stdio to the
    # log, so that whoever captures this script's output is not held open by the server.
    CHROME_PATH="$chrome" PORT="$port" SECRET_KEY="$secret" HOST="http://127.0.0.1" \
      setsid bash -c 'echo $$ >node.pid; exec node -r "$0" dist/server.js' \
      "$build/bind-loopback.cjs" </dev/null >"$run/server.log" 2>&1 &
  )
  local url="http://127.0.0.1:$port" pid="" code t
  for t in $(seq 600); do
    pid="$(cat "$run/node.pid" 2>/dev/null || true)"
    # No Content-Type: with `application/json` upstream's /healthz never answers.
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/healthz" || true)"
    [[ "$code" == 200 ]] && break
    if [[ -n "$pid" ]] && ! alive "$pid"; then
      tail -n 30 "$run/server.log" >&2 || true
      die "the server exited during start-up (log: $run/server.log)"
    fi
    sleep 0.1
  done
  if [[ "$code" != 200 ]]; then
    tail -n 30 "$run/server.log" >&2 || true
    stop_instance "$run"
    die "no 200 from $url/healthz after 60 s (log: $run/server.log)"
  fi
  say "started node $pid on $url (log: $run/server.log)"
  echo "$url"
}

cmd_stop() {
  local port
  port="$(port_arg "" "$@")"
  if [[ -n "$port" ]]; then
    stop_instance "$base/run/$port"
  else
    local dir
    for dir in "$base"/run/*/; do
      [[ -d "$dir" ]] && stop_instance "$dir"
    done
  fi
  return 0
}

cmd_pids() {
  local port session=""
  port="$(port_arg 21465 "$@")"
  while (($#)); do
    case "$1" in
      --session) session="$2"; shift ;;
    esac
    shift
  done
  local dir="$base/run/$port"
  [[ -d "$dir" ]] || return 0
  dir="$(realpath "$dir")"
  # Browser processes only (their helpers carry --type=).
  local pid
  for pid in $(profile_pids "$dir/userDataDir" "$session"); do
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '^--type=' || echo "$pid"
  done
}

cmd_status() {
  local dir pid
  for dir in "$base"/run/*/; do
    [[ -d "$dir" ]] || continue
    pid="$(cat "$dir/node.pid" 2>/dev/null || true)"
    if alive "$pid"; then
      echo "$(basename "$dir"): running (node $pid, $(profile_pids "$(realpath "$dir")/userDataDir" | wc -l) Chromium processes)"
    else
      echo "$(basename "$dir"): stopped"
    fi
  done
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  pids) shift; cmd_pids "$@" ;;
  status) shift; cmd_status ;;
  src) shift; source_tree "${1:-}" ;;
  *)
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
