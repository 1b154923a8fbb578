#!/usr/bin/env bash
# The whole test suite, in one command: bash scripts/test.sh
#
# Installs what is missing (a Python virtualenv with the official SDKs, redis-server, the
# PostgreSQL 15 server), starts a throwaway PostgreSQL and Redis on free loopback ports, runs
# formatting and lint checks, the Rust tests and the end-to-end SDK tests, then stops the
# servers. Every step runs even if an earlier one failed; the exit code is non-zero if any did.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv-test"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$(mktemp -d)
chmod 755 "$WORK"
FAILED=()
PG_USER=${PG_USER:-litellm-test}

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq >/dev/null || true
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cleanup() {
  if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    run_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${REDIS_PID:-}" ]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# PostgreSQL refuses to run as root: run it as an unprivileged user.
run_pg() {
  if [ "$(id -u)" = 0 ]; then
    su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

step() {
  local name=$1
  shift
  log "$name"
  if ! "$@"; then
    FAILED+=("$name")
  fi
}

# --- Dependencies -------------------------------------------------------------------------
log "checking dependencies"
if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  apt_install redis-server
fi
if [ ! -x "$PG_BIN/postgres" ]; then
  echo "installing postgresql-15"
  apt_install postgresql-15
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt_install python3-venv
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/e2e/requirements.txt

# --- Throwaway PostgreSQL -----------------------------------------------------------------
start_postgres() {
  if [ "$(id -u)" = 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  PG_DATA="$WORK/pgdata"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DATA" "$WORK"
  local port
  port=$(free_port)
  run_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null || return 1
  run_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DATA -c fsync=off -c max_connections=300" start >/dev/null || {
    cat "$PG_DATA/server.log"
    return 1
  }
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "postgres on 127.0.0.1:$port"
}

start_redis() {
  local port
  port=$(free_port)
  REDIS_SERVER_BIN=$(command -v redis-server)
  export REDIS_SERVER_BIN
  "$REDIS_SERVER_BIN" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export TEST_REDIS_URL="redis://127.0.0.1:$port"
      echo "redis on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.1
  done
  cat "$WORK/redis.log"
  return 1
}

step "start postgres" start_postgres
step "start redis" start_redis

# --- Checks and tests ---------------------------------------------------------------------
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets --workspace -- -D warnings
step "cargo build" cargo build --bins
step "cargo test" cargo test --workspace --no-fail-fast
step "end-to-end tests (official SDKs)" env LITELLM_BIN="$ROOT/target/debug/litellm" "$VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider

echo
if [ ${#FAILED[@]} -eq 0 ]; then
  echo "all test steps passed"
  exit 0
fi
echo "failed steps:"
printf '  - %s\n' "${FAILED[@]}"
exit 1
