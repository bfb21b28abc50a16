#!/usr/bin/env python3
"""What this machine allows before any broker runs: the ceilings under the MariaDB figures.

bench/compare.sh runs it first (ONLY=ceilings for it alone) and report.py prints it under
the table, so every pass records, on its own machine:

- the disk: `fdatasync` of a 4 KiB append in MariaDB's data directory, back to back for
  a few seconds (the commit a durable INSERT waits for), as p50/p99/p999/max;
- MariaDB's bulk INSERT ceiling with nothing else running: 500-row INSERT statements on
  one and on two connections, as rows/s and mariadbd CPU per row, into mensajero's table
  (its migrations: history indexes, unique `clave`) and into the seed's (no index but
  the primary key). Every broker's figures sit under these: no writer stores faster than
  the database takes rows, nor for less of its CPU per row.

Usage: ceilings.py OUT.json MENSAJERO_DB SEED_SCHEMA_SQL MARIADB_PID
(MENSAJERO_DB: a MariaDB database that already has mensajero's migrations applied.)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROWS_PER_STATEMENT = 500
STATEMENTS_PER_CONNECTION = 120
DISK_SECONDS = 5
TICKS = os.sysconf("SC_CLK_TCK")


def mariadb(*args, stdin=None):
    return subprocess.run(["mariadb", "-h127.0.0.1", "-uroot", *args], stdin=stdin,
                          check=True, capture_output=True, text=True).stdout


def percentiles(samples_ms):
    s = sorted(samples_ms)
    n = len(s)
    return {"samples": n, "p50": s[n // 2], "p99": s[int(n * 0.99)], "p999": s[int(n * 0.999)],
            "max": s[-1]}


def disk(datadir):
    """Back-to-back fdatasync of an appended page, where MariaDB keeps its redo log."""
    where = datadir if os.access(datadir, os.W_OK) else "."
    fd, path = tempfile.mkstemp(prefix="ceiling-fsync-", dir=where)
    page = b"\0" * 4096
    samples = []
    try:
        end = time.monotonic() + DISK_SECONDS
        while time.monotonic() < end:
            os.write(fd, page)
            t = time.perf_counter()
            os.fdatasync(fd)
            samples.append((time.perf_counter() - t) * 1e3)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"dir": where, **percentiles(samples)}


def statements(path, with_key, connection):
    with open(path, "w") as f:
        seq = 0
        for _ in range(STATEMENTS_PER_CONNECTION):
            rows = []
            for i in range(ROWS_PER_STATEMENT):
                seq += 1
                values = f"'u{i % 100}', 'admin', 'hola, ¿me ayudan? {seq}', NOW(3)"
                if with_key:
                    # Shaped like the writer's keys: one incarnation per connection, rising.
                    values += f", '{connection:016x}{seq:016x}'"
                rows.append(f"({values})")
            columns = "de_usuario, para_usuario, mensaje, fecha" + (", clave" if with_key else "")
            f.write(f"INSERT INTO mensajes ({columns}) VALUES {', '.join(rows)};\n")


def db_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def bulk_insert(database, with_key, connections, pid, workdir):
    files = []
    for c in range(connections):
        path = os.path.join(workdir, f"{database}-{c}.sql")
        statements(path, with_key, c + 1)
        files.append(path)
    mariadb(database, "-e", "TRUNCATE TABLE mensajes")
    cpu0, t0 = db_cpu_ticks(pid), time.perf_counter()
    procs = [subprocess.Popen(["mariadb", "-h127.0.0.1", "-uroot", database], stdin=open(p))
             for p in files]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"mariadb failed loading {database}")
    secs = time.perf_counter() - t0
    cpu_secs = (db_cpu_ticks(pid) - cpu0) / TICKS
    rows = connections * STATEMENTS_PER_CONNECTION * ROWS_PER_STATEMENT
    stored = int(mariadb("-N", database, "-e", "SELECT COUNT(*) FROM mensajes").strip())
    if stored != rows:
        raise SystemExit(f"{database}: stored {stored} rows, sent {rows}")
    return {"connections": connections, "rows": rows, "rows_per_s": rows / secs,
            "db_cpu_us_per_row": cpu_secs * 1e6 / rows}


def main():
    out, mensajero_db, seed_schema, pid = sys.argv[1:5]
    datadir = mariadb("-N", "-e", "SELECT @@datadir").strip()
    result = {"disk_fdatasync_ms": disk(datadir), "mariadb_bulk_insert": {}}
    seed_db = "seed_ceiling"
    mariadb("-e", f"DROP DATABASE IF EXISTS {seed_db}; CREATE DATABASE {seed_db}")
    with open(seed_schema) as f:
        mariadb(seed_db, stdin=f)
    with tempfile.TemporaryDirectory() as workdir:
        for table, database, with_key in (("mensajero", mensajero_db, True),
                                          ("seed", seed_db, False)):
            result["mariadb_bulk_insert"][table] = [
                bulk_insert(database, with_key, n, pid, workdir) for n in (1, 2)]
    mariadb("-e", f"DROP DATABASE {seed_db}")
    with open(out, "w") as f:
        json.dump(result, f)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
