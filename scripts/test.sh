#!/usr/bin/env bash
# The whole test suite: unit and integration tests (official socket.io-client and
# python-socketio as peers, SQLite, PostgreSQL and MariaDB for real) and the browser tests.
# Installs the client packages it drives when they are missing; .ci/run installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -d tests/js/node_modules/socket.io-client ] || npm ci --prefix tests/js --no-audit --no-fund
python3 -c 'import socketio, websocket' 2>/dev/null || python3 -m pip install -q -r tests/python/requirements.txt

# Server backends: the machine's PostgreSQL and MariaDB (override to point elsewhere).
export MENSAJERO_TEST_POSTGRES_URL="${MENSAJERO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export MENSAJERO_TEST_MYSQL_URL="${MENSAJERO_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

cargo build --all-targets
cargo test --all-targets -- --test-threads=2

if [ -f tests/browser/package.json ]; then
  [ -d tests/browser/node_modules/playwright-core ] || npm ci --prefix tests/browser --no-audit --no-fund
  MENSAJERO_BIN="$PWD/target/debug/mensajero" npm --prefix tests/browser test
fi
echo "all tests passed"
