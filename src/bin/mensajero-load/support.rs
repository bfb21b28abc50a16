//! The `support` scenario: users write to the desk, admins receive everything.
//!
//! A message counts as complete when every admin holds a copy (duplicates, which the seed
//! sends to an admin that is both addressee and in `admins`, count as deliveries only).
//! Flow control is by completion, not by ack, so servers without acks measure the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Incoming};
use crate::procstat;

/// Messages of one user that may be incomplete at once in fixed-rate mode.
const RING: usize = 4096;

#[derive(clap::Args, Debug, Clone)]
pub struct SupportArgs {
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    #[arg(long, default_value_t = 5)]
    pub admins: usize,
    /// Total user messages per second; 0 = as fast as `--in-flight` allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Incomplete messages allowed per user when `--rate 0`.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Seconds to wait for stragglers after sending stops.
    #[arg(long, default_value_t = 5)]
    pub drain: u64,
    /// What users address (the desk name).
    #[arg(long, default_value = "admin")]
    pub desk: String,
    /// Ask for acks (mensajero answers them; the seed ignores them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ack: bool,
    /// How a fixed rate is paced: `timer` (each user's tokio interval; sends due within the
    /// same millisecond of tokio's timer leave together) or `thread` (a thread releases each
    /// send at its own instant: an even stream, so less batching for the server).
    #[arg(long, value_enum, default_value_t = Pacing::Timer)]
    pub pacing: Pacing,
    /// Message text length in bytes (at least the 24 the generator needs).
    #[arg(long, default_value_t = 48)]
    pub size: usize,
    /// Read the admins' deliveries on a thread of their own, so that a delivery is timed
    /// when it arrives rather than after the sends the users' thread has in hand.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub admin_thread: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    Timer,
    Thread,
}

struct Shared {
    args: SupportArgs,
    start: Instant,
    window: (Instant, Instant),
    admins: usize,
    /// Per user: how many admins hold each in-flight message (indexed by seq % RING).
    copies: Vec<Box<[AtomicU8]>>,
    permits: Vec<Semaphore>,
    /// Fixed-rate mode: sends due, per user, released by the pacer thread.
    ticks: Vec<Semaphore>,
    /// Messages sent, and [`SENDING_CLOSED`] once the window has ended (see `count_send`).
    sent: AtomicU64,
    completed: AtomicU64,
    completed_in_window: AtomicU64,
    deliveries_in_window: AtomicU64,
    acks: AtomicU64,
    acks_in_window: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
}

/// Set in `Shared::sent` when sending ends: from then on no user counts another message.
const SENDING_CLOSED: u64 = 1 << 63;

impl Shared {
    /// Counts a message about to be sent, unless sending has ended. One atomic step, so
    /// that a user preempted between a check of the clock and the count cannot send a
    /// message after the drain has decided that everything sent is complete.
    fn count_send(&self) -> bool {
        self.sent
            .fetch_update(SeqCst, SeqCst, |n| {
                (n & SENDING_CLOSED == 0).then_some(n + 1)
            })
            .is_ok()
    }

    /// Ends sending and returns how many messages were sent, final from now on.
    fn close_sending(&self) -> u64 {
        self.sent.fetch_or(SENDING_CLOSED, SeqCst) & !SENDING_CLOSED
    }

    fn sent(&self) -> u64 {
        self.sent.load(SeqCst) & !SENDING_CLOSED
    }

    fn in_window(&self, now: Instant) -> bool {
        now >= self.window.0 && now < self.window.1
    }
}

/// The text of a `mensaje_recibido` delivery, found without parsing the JSON: every admin
/// looks at every delivery, and the generator's own texts (`user:seq:micros:xxx…`) hold
/// nothing that JSON escapes. Anything else is not one of ours.
fn delivered_text(body: &str) -> Option<&str> {
    const KEY: &str = "\"mensaje\":\"";
    let fields = body.strip_prefix("[\"mensaje_recibido\",{")?;
    let start = fields.find(KEY)? + KEY.len();
    let len = fields[start..].find('"')?;
    Some(&fields[start..start + len])
}

pub async fn run(args: &crate::Args, s: &SupportArgs) -> Result<Value, String> {
    let url = client::ws_url(&args.url);
    let admin_names: Vec<String> = (0..s.admins)
        .map(|i| {
            if i == 0 {
                s.desk.clone()
            } else {
                format!("{}{}", s.desk, i + 1)
            }
        })
        .collect();
    let admin_cookies: Vec<String> = admin_names
        .iter()
        .map(|name| {
            format!(
                "{}={}",
                args.cookie,
                client::token(&args.secret, name, "admin")
            )
        })
        .collect();
    let mut admin_ws = Vec::new();
    let mut reader = None;
    if s.admin_thread {
        reader = Some(AdminReader::start(url.clone(), admin_cookies).await?);
    } else {
        for cookie in &admin_cookies {
            admin_ws.push(client::connect(&url, cookie).await?);
        }
    }
    let mut user_ws = Vec::new();
    let handshake_start = Instant::now();
    for i in 0..s.users {
        let cookie = format!(
            "{}={}",
            args.cookie,
            client::token(&args.secret, &format!("u{i}"), "user")
        );
        user_ws.push(client::connect(&url, &cookie).await?);
    }
    let handshake_secs = handshake_start.elapsed().as_secs_f64();

    let start = Instant::now();
    let window = (
        start + Duration::from_secs(s.warmup),
        start + Duration::from_secs(s.warmup + s.duration),
    );
    let initial_permits = if s.rate == 0 { s.in_flight } else { RING };
    let shared = Arc::new(Shared {
        args: s.clone(),
        start,
        window,
        admins: s.admins,
        copies: (0..s.users)
            .map(|_| (0..RING).map(|_| AtomicU8::new(0)).collect())
            .collect(),
        permits: (0..s.users)
            .map(|_| Semaphore::new(initial_permits))
            .collect(),
        ticks: (0..s.users).map(|_| Semaphore::new(0)).collect(),
        sent: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        completed_in_window: AtomicU64::new(0),
        deliveries_in_window: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        acks_in_window: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
    });

    let stop_at = window.1;
    let deadline = stop_at + Duration::from_secs(s.drain);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let admins = match reader {
        Some(reader) => Admins::OwnThread(reader.run(shared.clone(), stopped.clone())),
        None => Admins::Here(tokio::spawn(read_admins(
            admin_ws,
            shared.clone(),
            stopped.clone(),
        ))),
    };
    let pacer = (s.rate > 0 && s.pacing == Pacing::Thread).then(|| {
        let shared = shared.clone();
        std::thread::spawn(move || pace(&shared, stop_at))
    });
    let user_tasks: Vec<_> = user_ws
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(user_loop(i, ws, shared.clone(), stop_at, deadline)))
        .collect();

    tokio::time::sleep_until(window.0.into()).await;
    let server_before = args.server_pid.and_then(procstat::cpu);
    let db_before = args.db_pid.and_then(procstat::cpu);
    let idle_before = procstat::machine_idle_secs();
    tokio::time::sleep_until(window.1.into()).await;
    let server_after = args.server_pid.and_then(procstat::cpu);
    let db_after = args.db_pid.and_then(procstat::cpu);
    let idle_after = procstat::machine_idle_secs();
    let memory_at_end = args.server_pid.and_then(procstat::memory_kib);

    // Drain: stop when everything sent is complete (and answered, when acks were asked
    // for: a message's ack and its deliveries leave the server together but arrive on
    // different sockets, read by different tasks), or at the deadline.
    let sent = shared.close_sending();
    let drained =
        || shared.completed.load(Relaxed) >= sent && (!s.ack || shared.acks.load(Relaxed) >= sent);
    while Instant::now() < deadline && !drained() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in &user_tasks {
        t.abort();
    }
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    let _ = stop.send(true);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let histograms = match admins {
        Admins::Here(task) => task.await.unwrap_or_default(),
        Admins::OwnThread(thread) => thread.join().unwrap_or_default(),
    };
    for h in histograms {
        latency.add(h).ok();
    }
    Ok(summary(
        args,
        s,
        &shared,
        &latency,
        handshake_secs,
        (server_before, server_after),
        (db_before, db_after),
        idle_before.zip(idle_after).map(|(a, b)| b - a),
        memory_at_end,
    ))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    args: &crate::Args,
    s: &SupportArgs,
    shared: &Shared,
    latency: &Histogram<u64>,
    handshake_secs: f64,
    server_cpu: procstat::SamplePair,
    db_cpu: procstat::SamplePair,
    machine_idle_secs: Option<f64>,
    memory: Option<(u64, u64)>,
) -> Value {
    let secs = s.duration as f64;
    let msgs = shared.completed_in_window.load(Relaxed) as f64;
    let server_share = procstat::between(server_cpu, procstat::core_share);
    let db_share = procstat::between(db_cpu, procstat::core_share);
    let per_msg =
        |per_sec: Option<f64>| per_sec.map(|r| if msgs > 0.0 { r * secs / msgs } else { 0.0 });
    let per_msg_us = |share: Option<f64>| per_msg(share).map(|secs_per_msg| secs_per_msg * 1e6);
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let sent = shared.sent();
    let completed = shared.completed.load(Relaxed);
    json!({
        "scenario": "support",
        "url": args.url,
        "users": s.users,
        "admins": s.admins,
        "rate_target": s.rate,
        "in_flight": if s.rate == 0 { s.in_flight } else { RING },
        "duration_s": s.duration,
        "msgs_per_s": msgs / secs,
        "deliveries_per_s": shared.deliveries_in_window.load(Relaxed) as f64 / secs,
        "acks_per_s": shared.acks_in_window.load(Relaxed) as f64 / secs,
        "latency_ms": {
            "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "p999": ms(0.999),
            "max": latency.max() as f64 / 1000.0, "samples": latency.len(),
        },
        "sent": sent,
        "completed": completed,
        "lost": sent.saturating_sub(completed),
        "acks": shared.acks.load(Relaxed),
        "error_acks": shared.errors.load(Relaxed),
        "throttled": shared.throttled.load(Relaxed),
        "server_cpu_cores": server_share,
        "server_cpu_us_per_msg": per_msg_us(server_share),
        "db_cpu_cores": db_share,
        "db_cpu_us_per_msg": per_msg_us(db_share),
        "server_switches_per_msg": per_msg(procstat::between(server_cpu, procstat::switch_rate)),
        "db_switches_per_msg": per_msg(procstat::between(db_cpu, procstat::switch_rate)),
        "machine_idle_cores": machine_idle_secs.map(|idle| idle / secs),
        "server_rss_kib": memory.map(|m| m.0),
        "server_peak_rss_kib": memory.map(|m| m.1),
        "connect_secs": handshake_secs,
    })
}

async fn user_loop(
    index: usize,
    ws: client::Ws,
    shared: Arc<Shared>,
    stop_at: Instant,
    deadline: Instant,
) {
    let (mut sink, mut stream) = ws.split();
    let s = &shared.args;
    let padding = "x".repeat(s.size.saturating_sub(24));
    let mut seq: u64 = 0;
    let paced = s.rate > 0;
    let mut ticker = (paced && s.pacing == Pacing::Timer).then(|| {
        let per_user = (s.rate as f64 / s.users as f64).max(0.001);
        let period = Duration::from_secs_f64(1.0 / per_user);
        // Users start at evenly spread phases of the period: a fixed total rate then
        // arrives as a steady stream, not as a burst of every user at the same instant.
        let phase = period.mul_f64(index as f64 / s.users as f64);
        let mut t = tokio::time::interval_at((Instant::now() + phase).into(), period);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let ticks = &shared.ticks[index];
    let permits = &shared.permits[index];
    loop {
        let may_send = Instant::now() < stop_at;
        tokio::select! {
            biased;
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => match client::classify(&text) {
                    Incoming::Ping => { let _ = sink.send(Message::text("3")).await; }
                    Incoming::Ack => {
                        shared.acks.fetch_add(1, Relaxed);
                        if shared.in_window(Instant::now()) { shared.acks_in_window.fetch_add(1, Relaxed); }
                        if text.contains("\"ok\":false") { shared.errors.fetch_add(1, Relaxed); }
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
                _ => return,
            },
            _ = async {
                match ticker.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => {
                        let due = if paced { ticks } else { permits };
                        due.acquire().await.expect("open semaphore").forget();
                    }
                }
            }, if may_send => {
                if paced {
                    match permits.try_acquire() {
                        Ok(p) => p.forget(),
                        Err(_) => { shared.throttled.fetch_add(1, Relaxed); continue; }
                    }
                }
                // A tick that came due before the end may be taken after it.
                if !shared.count_send() { continue; }
                let micros = shared.start.elapsed().as_micros() as u64;
                let text = format!("{index}:{seq}:{micros}:{padding}");
                let packet = client::event_packet(s.ack.then_some(seq), "mensaje_privado", &json!({"para": s.desk, "mensaje": text}));
                seq += 1;
                if sink.send(packet).await.is_err() { return; }
            },
            _ = tokio::time::sleep_until(deadline.into()) => return,
        }
    }
}

/// `--pacing thread`: releases every send at its own instant, to user after user in turn,
/// from a thread of its own. Intervals on the runtime tick on tokio's 1 ms timer wheel,
/// which fires all the sends due within a millisecond together (16 at 15,700/s): their
/// queueing at the server counts as latency, and the server answers them in one batch.
/// A late wake-up releases what is due at once, so the rate holds.
fn pace(shared: &Shared, stop_at: Instant) {
    let rate = shared.args.rate as f64;
    let users = shared.ticks.len() as u64;
    let start = Instant::now();
    for k in 0u64.. {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        if due >= stop_at {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        shared.ticks[(k % users) as usize].add_permits(1);
    }
}

/// Where the admins' receive loops run: on the generator's runtime, or on a thread of
/// their own (`--admin-thread`).
enum Admins {
    Here(tokio::task::JoinHandle<Vec<Histogram<u64>>>),
    OwnThread(std::thread::JoinHandle<Vec<Histogram<u64>>>),
}

/// Every admin's receive loop, on the current runtime; their latency histograms.
async fn read_admins(
    sockets: Vec<client::Ws>,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Histogram<u64>> {
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(admin_loop(ws, Arc::clone(&shared), stop.clone())))
        .collect();
    let mut histograms = Vec::new();
    for t in tasks {
        if let Ok(h) = t.await {
            histograms.push(h);
        }
    }
    histograms
}

/// `--admin-thread`: the admins' connections and receive loops on a runtime of their own,
/// on a thread of its own.
struct AdminReader {
    thread: std::thread::JoinHandle<Vec<Histogram<u64>>>,
    start: tokio::sync::oneshot::Sender<(Arc<Shared>, tokio::sync::watch::Receiver<bool>)>,
}

impl AdminReader {
    /// Connect the admins (before the users, so the desk is staffed when they write).
    async fn start(url: String, cookies: Vec<String>) -> Result<AdminReader, String> {
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let (start, begin) =
            tokio::sync::oneshot::channel::<(Arc<Shared>, tokio::sync::watch::Receiver<bool>)>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(async move {
                let mut sockets = Vec::new();
                for cookie in &cookies {
                    match client::connect(&url, cookie).await {
                        Ok(ws) => sockets.push(ws),
                        Err(e) => {
                            let _ = connected_tx.send(Err(e));
                            return Vec::new();
                        }
                    }
                }
                let _ = connected_tx.send(Ok(()));
                let Ok((shared, stop)) = begin.await else {
                    return Vec::new();
                };
                read_admins(sockets, shared, stop).await
            })
        });
        connected
            .await
            .map_err(|_| "the admin thread ended".to_string())??;
        Ok(AdminReader { thread, start })
    }

    fn run(
        self,
        shared: Arc<Shared>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::thread::JoinHandle<Vec<Histogram<u64>>> {
        let _ = self.start.send((shared, stop));
        self.thread
    }
}

async fn admin_loop(
    ws: client::Ws,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Histogram<u64> {
    let (mut sink, mut stream) = ws.split();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut last_seen: Vec<i64> = vec![-1; shared.args.users];
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = stop.changed() => None,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            _ => return latency,
        };
        match client::classify(&text) {
            Incoming::Ping => {
                let _ = sink.send(Message::text("3")).await;
            }
            Incoming::Event(body) => {
                let Some(text) = delivered_text(body) else {
                    continue;
                };
                let now = Instant::now();
                let in_window = shared.in_window(now);
                if in_window {
                    shared.deliveries_in_window.fetch_add(1, Relaxed);
                }
                let mut parts = text.splitn(4, ':');
                let (Some(u), Some(q), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
                    continue;
                };
                let (Ok(user), Ok(seq), Ok(sent_us)) =
                    (u.parse::<usize>(), q.parse::<i64>(), t.parse::<u64>())
                else {
                    continue;
                };
                if user >= last_seen.len() || seq <= last_seen[user] {
                    continue; // a duplicate copy
                }
                last_seen[user] = seq;
                if in_window {
                    let now_us = now.duration_since(shared.start).as_micros() as u64;
                    latency.saturating_record(now_us.saturating_sub(sent_us).max(1));
                }
                let slot = &shared.copies[user][seq as usize % RING];
                if slot.fetch_add(1, Relaxed) + 1 == shared.admins as u8 {
                    slot.store(0, Relaxed);
                    shared.completed.fetch_add(1, Relaxed);
                    if in_window {
                        shared.completed_in_window.fetch_add(1, Relaxed);
                    }
                    shared.permits[user].add_permits(1);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::delivered_text;

    #[test]
    fn finds_the_text_of_a_delivery_from_either_server() {
        let ours = r#"["mensaje_recibido",{"de":"u3","mensaje":"3:17:12345:xx","para":"admin","id":9,"fecha":"2026-12-01T10:00:00.000Z"}]"#;
        assert_eq!(delivered_text(ours), Some("3:17:12345:xx"));
        let seed = r#"["mensaje_recibido",{"de":"u3","mensaje":"3:17:12345:xx"}]"#;
        assert_eq!(delivered_text(seed), Some("3:17:12345:xx"));
        assert_eq!(
            delivered_text(r#"["mensaje_enviado",{"mensaje":"1:2:3:x"}]"#),
            None
        );
        assert_eq!(delivered_text(r#"["mensaje_recibido",{"de":"u3"}]"#), None);
    }
}
