//! The `idle` scenario: hold many signed-in connections and see what they cost the server.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::client;
use crate::procstat;

#[derive(clap::Args, Debug, Clone)]
pub struct IdleArgs {
    /// Connections to hold (mind the per-process open-file limit on both sides).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds to hold them once all are open.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Spread connections over this many loopback source addresses (127.0.0.1 up), when
    /// the server is on a loopback address; 1 uses the system's choice.
    #[arg(long, default_value_t = 8)]
    pub source_ips: u8,
    /// Give up opening after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub open_timeout: u64,
}

pub async fn run(args: &crate::Args, s: &IdleArgs) -> Result<Value, String> {
    let url = Arc::new(client::ws_url(&args.url));
    let memory_before = args.server_pid.and_then(procstat::memory_kib);
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(s.concurrency.max(1)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loopback = args.url.contains("://127.");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(s.open_timeout);
    let mut tasks = Vec::with_capacity(s.connections);
    for i in 0..s.connections {
        let permit = gate.clone().acquire_owned().await.expect("gate");
        if Instant::now() > deadline {
            break;
        }
        let source = (s.source_ips > 1 && loopback).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (i % s.source_ips as usize) as u8,
            ))
        });
        let cookie = format!(
            "{}={}",
            args.cookie,
            client::token(&args.secret, &format!("idle{i}"), "user")
        );
        let (url, opened, failed, mut stopped) =
            (url.clone(), opened.clone(), failed.clone(), stopped.clone());
        tasks.push(tokio::spawn(async move {
            let ws = match client::connect_small(&url, &cookie, source).await {
                Ok(ws) => ws,
                Err(e) => {
                    if failed.fetch_add(1, Relaxed) < 3 {
                        eprintln!("connect failed: {e}");
                    }
                    return;
                }
            };
            opened.fetch_add(1, Relaxed);
            drop(permit);
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(t))) if t.as_str() == "2" => { let _ = sink.send(Message::text("3")).await; }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                    _ = stopped.changed() => { let _ = sink.close().await; return; }
                }
            }
        }));
    }
    while opened.load(Relaxed) + failed.load(Relaxed) < tasks.len() as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let open_secs = start.elapsed().as_secs_f64();
    let server_cpu_before = args.server_pid.and_then(procstat::cpu);
    tokio::time::sleep(Duration::from_secs(s.hold)).await;
    let server_cpu_after = args.server_pid.and_then(procstat::cpu);
    let memory_held = args.server_pid.and_then(procstat::memory_kib);
    let held = opened.load(Relaxed);
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let per_conn = match (memory_before, memory_held) {
        (Some(b), Some(h)) if held > 0 => {
            Some((h.0.saturating_sub(b.0)) as f64 * 1024.0 / held as f64)
        }
        _ => None,
    };
    let idle_cpu = procstat::between((server_cpu_before, server_cpu_after), procstat::core_share);
    Ok(json!({
        "scenario": "idle",
        "url": args.url,
        "connections": held,
        "failed": failed.load(Relaxed),
        "open_secs": open_secs,
        "handshakes_per_s": held as f64 / open_secs,
        "server_rss_kib_before": memory_before.map(|m| m.0),
        "server_rss_kib_held": memory_held.map(|m| m.0),
        "server_peak_rss_kib": memory_held.map(|m| m.1),
        "rss_bytes_per_connection": per_conn,
        "server_cpu_cores_idle": idle_cpu,
    }))
}
