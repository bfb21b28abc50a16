//! The shipped load generator (`mensajero-load`) against a real broker: each scenario
//! finishes on its own and its one-line JSON summary reports what happened.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Broker, SECRET};

/// Runs the generator against `broker` with `scenario` (its arguments, space-separated)
/// and returns its summary.
fn generate(broker: &Broker, scenario: &str) -> Value {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_mensajero-load"))
        .args([
            "--url",
            &broker.url(),
            "--secret",
            SECRET,
            "--label",
            "test",
        ])
        .args(["--server-pid", &broker.child.id().to_string()])
        .args(scenario.split_whitespace())
        .output()
        .expect("run mensajero-load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mensajero-load failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it stops by itself"
    );
    let last = stdout.lines().last().expect("a summary line");
    let summary: Value = serde_json::from_str(last).expect("the summary is one line of JSON");
    assert_eq!(summary["label"], "test");
    summary
}

fn support_at_a_fixed_rate(options: &str) {
    let broker = Broker::start();
    let summary = generate(
        &broker,
        &format!(
            "support --users 10 --admins 2 --rate 400 --duration 2 --warmup 1 --drain 3 {options}"
        ),
    );
    let sent = summary["sent"].as_u64().unwrap();
    // 400/s for the 3 s of warm-up and measurement.
    assert!((1000..=1300).contains(&sent), "sent {sent}");
    assert_eq!(summary["completed"].as_u64(), Some(sent), "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["acks"].as_u64(), Some(sent), "every message acked");
    assert_eq!(summary["error_acks"], 0);
    let rate = summary["msgs_per_s"].as_f64().unwrap();
    assert!((340.0..=460.0).contains(&rate), "msgs/s {rate}");
    let latency = &summary["latency_ms"];
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency[q].as_f64().unwrap() > 0.0, "{q} in {latency}");
    }
    assert!(latency["p50"].as_f64() <= latency["max"].as_f64());
    assert!(summary["server_cpu_us_per_msg"].as_f64().unwrap() > 0.0);
    // At 400/s the broker sleeps between the generator's ticks, so each tick wakes it.
    let switches = summary["server_switches_per_msg"].as_f64().unwrap();
    assert!(switches > 0.0, "{summary}");
    assert!(
        summary["db_switches_per_msg"].is_null(),
        "no --db-pid given"
    );
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    let idle = summary["machine_idle_cores"].as_f64().unwrap();
    assert!(
        (0.0..=cores + 0.1).contains(&idle),
        "idle {idle} of {cores} cores"
    );
    // Two admins, each holding every message once.
    let deliveries = summary["deliveries_per_s"].as_f64().unwrap();
    assert!((1.8 * rate..=2.2 * rate).contains(&deliveries), "{summary}");
}

#[test]
fn support_paced_by_timers_delivers_and_acks_everything() {
    support_at_a_fixed_rate("--pacing timer");
}

#[test]
fn support_with_the_admins_on_a_thread_of_their_own_delivers_and_acks_everything() {
    support_at_a_fixed_rate("--admin-thread true");
}

#[test]
fn support_paced_by_a_thread_delivers_and_acks_everything() {
    support_at_a_fixed_rate("--pacing thread");
}

#[test]
fn support_with_a_bound_in_flight_never_exceeds_it() {
    let broker = Broker::start();
    let summary = generate(
        &broker,
        "support --users 4 --admins 1 --rate 0 --in-flight 2 --duration 1 --warmup 1 --drain 3",
    );
    assert_eq!(summary["lost"], 0, "{summary}");
    assert_eq!(summary["completed"], summary["sent"]);
    assert_eq!(summary["in_flight"], 2);
    assert!(summary["msgs_per_s"].as_f64().unwrap() > 50.0, "{summary}");
}

#[test]
fn idle_holds_its_connections_and_reads_the_servers_memory() {
    let broker = Broker::start();
    let summary = generate(&broker, "idle --connections 300 --hold 1 --concurrency 16");
    assert_eq!(summary["connections"], 300, "{summary}");
    let per_connection = summary["rss_bytes_per_connection"].as_f64().unwrap();
    // Anything from a few hundred bytes to a megabyte is plausible; zero or negative is not.
    assert!(per_connection > 100.0 && per_connection < 1e6, "{summary}");
    assert!(summary["handshakes_per_s"].as_f64().unwrap() > 10.0);
}
