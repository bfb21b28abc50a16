#!/usr/bin/env bash
# The whole test suite: unit and integration tests (official socket.io-client and
# python-socketio as peers, SQLite, PostgreSQL and MariaDB for real) and the browser tests.
# Installs the client packages it drives when they are missing; .ci/run installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the MariaDB client library (Diesel's MySQL driver links it) and
# chromium for the browser tests.
missing=()
dpkg -s libmariadb-dev >/dev/null 2>&1 || missing+=(libmariadb-dev libmariadb-dev-compat)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
      || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }
  else
    echo "missing Debian packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

[ -d tests/js/node_modules/socket.io-client ] || npm ci --prefix tests/js --no-audit --no-fund
python3 -c 'import socketio, websocket' 2>/dev/null || python3 -m pip install -q -r tests/python/requirements.txt

# The server backends are the machine's own: PostgreSQL at 127.0.0.1:5432 (trust auth,
# database `test`) and MariaDB at 127.0.0.1:3306 (root, no password, database `test`);
# each test creates and drops a database of its own there.

cargo build --all-targets
cargo test --all-targets -- --test-threads=2

if [ -f tests/browser/package.json ]; then
  [ -d tests/browser/node_modules/playwright-core ] || npm ci --prefix tests/browser --no-audit --no-fund
  MENSAJERO_BIN="$PWD/target/debug/mensajero" npm --prefix tests/browser test
fi
echo "all tests passed"
