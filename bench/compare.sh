#!/usr/bin/env bash
# Side by side: mensajero and the Node original (../shared/reference/seed-node), one after
# the other, with the same generator (mensajero-load), the same users, the same MariaDB.
# Prints each figure for both and the ratio; the JSON of every run lands in bench/results/.
#
#   bench/compare.sh            # everything (about 4 minutes)
#   ONLY=idle bench/compare.sh  # one group: ceilings | off | mariadb | idle
#
# Knobs: USERS ADMINS DURATION RATE_OFF RATE_DB IDLE_CONNS GEN_THREADS SEED_DIR, and
# MENSAJERO_ENV="KEY=VALUE ..." for extra settings of mensajero (e.g. placement).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
USERS=${USERS:-100} ADMINS=${ADMINS:-5} DURATION=${DURATION:-10}
RATE_OFF=${RATE_OFF:-15700} RATE_DB=${RATE_DB:-8000} IDLE_CONNS=${IDLE_CONNS:-19000}
GEN_THREADS=${GEN_THREADS:-1} ONLY=${ONLY:-all}
SECRET=bench-secret PORT=${PORT:-3900}
SEED_SRC=${SEED_SRC:-$root/../shared/reference/seed-node}
results=$root/bench/results && mkdir -p "$results"
ulimit -n 20000

echo "== building (release)"
cargo build --release --bin mensajero --bin mensajero-load 2>&1 | tail -1
gen=$root/target/release/mensajero-load
bin=$root/target/release/mensajero

seed=${SEED_DIR:-/tmp/mensajero-bench-seed}
if [ ! -d "$seed/node_modules/socket.io" ]; then
  echo "== installing the Node baseline in $seed"
  rm -rf "$seed" && cp -r "$SEED_SRC" "$seed" && (cd "$seed" && npm ci --no-audit --no-fund >/dev/null)
fi

# Which machine of the kind this is: figures move with the CPU model (see BENCHMARKS.md).
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "node: $(node --version), mariadb: $(mariadb --version | grep -o 'Distrib [^,]*' | cut -d' ' -f2)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "$results/machine.txt"

echo "== databases (MariaDB at 127.0.0.1:3306)"
mariadb -h127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS seed_node; CREATE DATABASE IF NOT EXISTS mensajero_bench'
mariadb -h127.0.0.1 -uroot seed_node < "$seed/schema.sql"
MENSAJERO_DB=mysql://root@127.0.0.1:3306/mensajero_bench
DATABASE_URL=$MENSAJERO_DB JWT_SECRET=$SECRET "$bin" migrate >/dev/null
db_pid=$(pgrep -o mariadbd)
tmp=$(mktemp -d)

server_pid=
start_mensajero() { # $1 = persist true|false
  local url=$MENSAJERO_DB
  [ "$1" = false ] && url=$tmp/volatile.db
  mariadb -h127.0.0.1 -uroot mensajero_bench -e 'TRUNCATE TABLE mensajes'
  # shellcheck disable=SC2086 # MENSAJERO_ENV is a list of assignments
  env ${MENSAJERO_ENV:-} RUST_LOG=warn JWT_SECRET=$SECRET DATABASE_URL=$url MENSAJERO_STORAGE__PERSIST=$1 \
    "$bin" serve --bind 127.0.0.1:$PORT >"$tmp/mensajero.log" 2>&1 &
  server_pid=$!
  wait_port
}
start_node() { # $1 = persist 1|0
  mariadb -h127.0.0.1 -uroot seed_node -e 'TRUNCATE TABLE mensajes'
  (cd "$seed" && JWT_SECRET=$SECRET PORT=$PORT PERSIST=$1 DB_NAME=seed_node exec node server.js >"$tmp/node.log" 2>&1) &
  server_pid=$!
  wait_port
}
wait_port() {
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start"; exit 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  sleep 1
}
load() { # $1 = result name, rest = generator args
  local name=$1; shift
  "$gen" --url http://127.0.0.1:$PORT --secret $SECRET --server-pid "$server_pid" --db-pid "$db_pid" \
    --threads "$GEN_THREADS" --label "$name" "$@" | tail -1 >"$results/$name.json"
  jq -c '{label: .label, msgs_per_s: .msgs_per_s, p99: .latency_ms.p99, cpu_us: .server_cpu_us_per_msg, lost: .lost, conns: .connections}' \
    "$results/$name.json"
}
# Start every database run on an idle database: after a run the server may still flush
# pages (or, after the seed's max run, its INSERT backlog), and a checkpoint stalling the
# next run's commits would measure the previous one.
wait_db_quiet() {
  local ticks=$(getconf CLK_TCK) last now quiet=0
  last=$(awk '{print $14+$15}' /proc/$db_pid/stat)
  for _ in $(seq 1 60); do
    sleep 0.5
    now=$(awk '{print $14+$15}' /proc/$db_pid/stat)
    # under 4 % of a core over half a second, twice in a row
    if [ $(( (now - last) * 100 )) -lt $(( ticks * 2 )) ]; then quiet=$((quiet + 1)); else quiet=0; fi
    last=$now
    [ $quiet -ge 2 ] && return 0
  done
  echo "   (MariaDB still busy after 30 s; measuring anyway)"
}
stored_rows() { mariadb -h127.0.0.1 -uroot -N "$1" -e 'SELECT COUNT(*) FROM mensajes'; }

# The machine's own ceilings under the MariaDB figures (disk commit, bulk INSERT), measured
# before any server runs; see bench/ceilings.py.
if [ "$ONLY" = all ] || [ "$ONLY" = ceilings ]; then
  echo "== machine ceilings (disk fdatasync, MariaDB bulk INSERT)"
  mariadb -h127.0.0.1 -uroot -e 'DROP DATABASE IF EXISTS mensajero_ceiling; CREATE DATABASE mensajero_ceiling'
  DATABASE_URL=mysql://root@127.0.0.1:3306/mensajero_ceiling JWT_SECRET=$SECRET "$bin" migrate >/dev/null
  python3 "$root/bench/ceilings.py" "$results/ceilings.json" mensajero_ceiling "$seed/schema.sql" "$db_pid" >/dev/null
  mariadb -h127.0.0.1 -uroot -e 'DROP DATABASE mensajero_ceiling'
  jq -c '{fdatasync_ms: .disk_fdatasync_ms | {p99, max}, mensajero_rows_per_s: [.mariadb_bulk_insert.mensajero[].rows_per_s | floor], seed_rows_per_s: [.mariadb_bulk_insert.seed[].rows_per_s | floor]}' "$results/ceilings.json"
fi

support=(support --users "$USERS" --admins "$ADMINS" --duration "$DURATION" --warmup 2 --drain 5)

if [ "$ONLY" = all ] || [ "$ONLY" = off ]; then
  for who in node mensajero; do
    echo "== $who, persistence off"
    if [ $who = node ]; then start_node 0; ack=false; else start_mensajero false; ack=true; fi
    # Like for like: the same client on both, asking for no acks (the seed sends none).
    load "$who-off-rate" "${support[@]}" --rate "$RATE_OFF" --ack false
    # mensajero again with an ack for every message, as its clients ask for them.
    if [ $who = mensajero ]; then load "$who-off-rate-acked" "${support[@]}" --rate "$RATE_OFF" --ack true; fi
    # The same rate paced evenly (one send every 1/rate s) instead of by tokio's 1 ms timer.
    load "$who-off-even" "${support[@]}" --rate "$RATE_OFF" --ack false --pacing thread
    # The same rate with the admins' deliveries read on a thread of their own, as separate
    # clients would: a delivery is timed when it arrives, not after the users' sends.
    load "$who-off-readers" "${support[@]}" --rate "$RATE_OFF" --ack false --admin-thread true
    load "$who-off-max" "${support[@]}" --rate 0 --in-flight 16 --ack $ack
    stop_server
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = mariadb ]; then
  for who in node mensajero; do
    echo "== $who, MariaDB"
    if [ $who = node ]; then start_node 1; ack=false; dbname=seed_node; else start_mensajero true; ack=true; dbname=mensajero_bench; fi
    wait_db_quiet
    rate_before=$(stored_rows $dbname)
    load "$who-db-rate" "${support[@]}" --rate "$RATE_DB" --ack $ack
    # A server whose inserts fall behind at this rate makes MariaDB work less within the
    # window: the rows stored when the generator is done, against those it sent, show it.
    rate_at_end=$(stored_rows $dbname)
    wait_db_quiet
    echo "{\"at_end\": $((rate_at_end - rate_before)), \"settled\": $(( $(stored_rows $dbname) - rate_before ))}" >"$results/$who-db-rate-stored.json"
    before=$(stored_rows $dbname); t0=$(date +%s.%N)
    load "$who-db-max" "${support[@]}" --rate 0 --in-flight 16 --ack $ack
    after=$(stored_rows $dbname); t1=$(date +%s.%N)
    peak=$(grep VmHWM /proc/$server_pid/status | awk '{print $2}')
    echo "{\"stored\": $((after - before)), \"secs\": $(echo "$t1 - $t0" | bc), \"peak_rss_kib\": $peak}" >"$results/$who-db-stored.json"
    stop_server
  done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = idle ]; then
  for who in node mensajero; do
    echo "== $who, $IDLE_CONNS idle connections"
    if [ $who = node ]; then start_node 0; else start_mensajero false; fi
    load "$who-idle" idle --connections "$IDLE_CONNS" --hold 10 --concurrency 64
    stop_server
  done
fi
rm -rf "$tmp"

echo
python3 "$root/bench/report.py" "$results"
