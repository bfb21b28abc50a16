#!/usr/bin/env python3
"""Print the side-by-side table of a bench/compare.sh run: figure, Node, mensajero, ratio."""
import json
import os
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
markdown = "--markdown" in sys.argv
results = args[0] if args else os.path.join(os.path.dirname(__file__), "results")


def load(name):
    try:
        with open(os.path.join(results, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def get(doc, *path):
    for key in path:
        if doc is None:
            return None
        doc = doc.get(key)
    return doc


rows = [
    # (label, result, path, better: "lower"|"higher", target ratio node/mensajero or mensajero/node);
    # result is one run name for both servers, or a pair (Node's run, mensajero's run).
    ("off @rate: msgs/s", "off-rate", ("msgs_per_s",), "higher", None),
    ("off @rate: server CPU us/msg", "off-rate", ("server_cpu_us_per_msg",), "lower", 5),
    ("off @rate: p99 ms", "off-rate", ("latency_ms", "p99"), "lower", 5),
    ("off @rate: lost", "off-rate", ("lost",), "lower", None),
    ("off @rate: server context switches/msg", "off-rate", ("server_switches_per_msg",), "lower", None),
    ("off @rate: machine idle cores (of 2)", "off-rate", ("machine_idle_cores",), "higher", None),
    ("off @rate, mensajero acking each: server CPU us/msg", ("off-rate", "off-rate-acked"),
     ("server_cpu_us_per_msg",), "lower", 5),
    ("off @rate, mensajero acking each: p99 ms", ("off-rate", "off-rate-acked"),
     ("latency_ms", "p99"), "lower", 5),
    ("off @rate, paced evenly: server CPU us/msg", "off-even", ("server_cpu_us_per_msg",), "lower", 5),
    ("off @rate, paced evenly: p99 ms", "off-even", ("latency_ms", "p99"), "lower", 5),
    ("off @rate, admins on own thread: server CPU us/msg", "off-readers", ("server_cpu_us_per_msg",), "lower", 5),
    ("off @rate, admins on own thread: p99 ms", "off-readers", ("latency_ms", "p99"), "lower", 5),
    ("off max(16 in flight): msgs/s", "off-max", ("msgs_per_s",), "higher", 2),
    ("off max: p99 ms", "off-max", ("latency_ms", "p99"), "lower", None),
    ("off max: server peak RSS KiB", "off-max", ("server_peak_rss_kib",), "lower", 5),
    ("db @rate: msgs/s", "db-rate", ("msgs_per_s",), "higher", None),
    ("db @rate: acks/s", "db-rate", ("acks_per_s",), "higher", None),
    ("db @rate: server CPU us/msg", "db-rate", ("server_cpu_us_per_msg",), "lower", 5),
    ("db @rate: MariaDB CPU us/msg", "db-rate", ("db_cpu_us_per_msg",), "lower", 3),
    ("db @rate: p99 ms", "db-rate", ("latency_ms", "p99"), "lower", None),
    ("db @rate: messages sent (warm-up and window)", "db-rate", ("sent",), "higher", None),
    ("db @rate: rows stored when the generator was done", "db-rate-stored", ("at_end",), "higher", None),
    ("db @rate: rows stored once MariaDB was quiet", "db-rate-stored", ("settled",), "higher", None),
    ("db @rate: server context switches/msg", "db-rate", ("server_switches_per_msg",), "lower", None),
    ("db @rate: MariaDB context switches/msg", "db-rate", ("db_switches_per_msg",), "lower", None),
    ("db max: delivered msgs/s", "db-max", ("msgs_per_s",), "higher", None),
    ("db max: acks/s", "db-max", ("acks_per_s",), "higher", None),
    ("db max: p99 ms", "db-max", ("latency_ms", "p99"), "lower", None),
    ("db max: machine idle cores (of 2)", "db-max", ("machine_idle_cores",), "higher", None),
    ("db max: rows stored during run", "db-stored", ("stored",), "higher", None),
    ("db max: server peak RSS KiB", "db-stored", ("peak_rss_kib",), "lower", 5),
    ("idle: connections held", "idle", ("connections",), "higher", None),
    ("idle: RSS bytes/connection", "idle", ("rss_bytes_per_connection",), "lower", 3),
    ("idle: handshakes/s", "idle", ("handshakes_per_s",), "higher", 5),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return f"{v:,}"


try:
    with open(os.path.join(results, "machine.txt")) as f:
        print("; ".join(line.strip() for line in f if line.strip()))
        print()
except OSError:
    pass

if markdown:
    print("| figure | Node seed | mensajero | mensajero's advantage | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
else:
    print(f"{'figure':<52} {'node':>14} {'mensajero':>14} {'advantage':>10} {'target':>8}")
for label, result, path, better, target in rows:
    node_run, rust_run = result if isinstance(result, tuple) else (result, result)
    node = get(load("node-" + node_run), *path)
    rust = get(load("mensajero-" + rust_run), *path)
    adv = None
    if isinstance(node, (int, float)) and isinstance(rust, (int, float)) and node and rust:
        adv = node / rust if better == "lower" else rust / node
    adv_s = f"{adv:.1f}x" if adv is not None else "-"
    tgt = f">={target}x" if target else ""
    if markdown:
        print(f"| {label} | {fmt(node)} | {fmt(rust)} | {adv_s} | {tgt} |")
    else:
        print(f"{label:<52} {fmt(node):>14} {fmt(rust):>14} {adv_s:>10} {tgt:>8}")

ceilings = load("ceilings")
if ceilings:
    disk = ceilings["disk_fdatasync_ms"]
    print()
    print(f"machine ceilings: fdatasync of a 4 KiB append in {disk['dir']} ({disk['samples']:,} back to back): "
          f"p50 {disk['p50']:.2f} ms, p99 {disk['p99']:.2f}, p999 {disk['p999']:.2f}, max {disk['max']:.1f}")
    for table, runs in ceilings["mariadb_bulk_insert"].items():
        parts = [f"{r['connections']} conn {r['rows_per_s']:,.0f} rows/s at {r['db_cpu_us_per_row']:.1f} us MariaDB CPU/row"
                 for r in runs]
        print(f"MariaDB bulk INSERT (500 rows/statement, nothing else running), {table}'s table: " + "; ".join(parts))
