//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the transport, the
//! storage writer and sign-in.
//!
//! Values are read from the layers' own relaxed atomics at scrape time; nothing here keeps
//! state. Other parts of the program (the chat broker, say) can add their own families
//! through [`register_source`] without this module knowing their types.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use actix_web::{HttpResponse, web};

use super::HttpCore;
use super::assets::CLIENT_VERSION;
use super::login::{LOGIN_FAILED, LOGIN_OK, LOGIN_THROTTLED};
use crate::broker::chat_server::ChatMetrics;
use crate::protocol::engineio::EngineMetrics;
use crate::storage::WriterStats;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Something that appends complete metric families (with `# HELP`/`# TYPE`) to a scrape.
pub trait MetricsSource: Send + Sync {
    fn render(&self, out: &mut String);
}

static SOURCES: RwLock<Vec<Arc<dyn MetricsSource>>> = RwLock::new(Vec::new());

/// Add families to every scrape of this process (e.g. the chat broker's gauges).
pub fn register_source(source: Arc<dyn MetricsSource>) {
    SOURCES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(source);
}

/// The transport figures of one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub sessions_open: u64,
    pub sessions_websocket: u64,
    pub sessions_polling: u64,
    pub handshakes_total: u64,
    pub frames_out_total: u64,
    pub frames_in_total: u64,
    pub slow_consumer_closes: u64,
    pub outbound_queued: u64,
}

impl EngineSnapshot {
    pub fn of(m: &EngineMetrics) -> Self {
        EngineSnapshot {
            sessions_open: m.sessions_open(),
            sessions_websocket: m.sessions_websocket(),
            sessions_polling: m.sessions_polling(),
            handshakes_total: m.handshakes_total(),
            frames_out_total: m.frames_out_total(),
            frames_in_total: m.frames_in_total(),
            slow_consumer_closes: m.slow_consumer_closes(),
            outbound_queued: m.outbound_queued(),
        }
    }
}

/// The chat broker's figures of one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatSnapshot {
    pub sockets: u64,
    pub messages_accepted: u64,
    pub messages_refused: u64,
    pub deliveries: u64,
    pub delivery_failures: u64,
}

impl ChatSnapshot {
    pub fn of(m: &ChatMetrics) -> Self {
        ChatSnapshot {
            sockets: m.sockets.load(Ordering::Relaxed),
            messages_accepted: m.messages_accepted.load(Ordering::Relaxed),
            messages_refused: m.messages_refused.load(Ordering::Relaxed),
            deliveries: m.deliveries.load(Ordering::Relaxed),
            delivery_failures: m.delivery_failures.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginSnapshot {
    pub ok: u64,
    pub failed: u64,
    pub throttled: u64,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

async fn scrape(core: web::Data<HttpCore>) -> HttpResponse {
    let engine = core
        .engine
        .as_ref()
        .map(|e| EngineSnapshot::of(e.metrics()));
    let chat = core.chat_metrics.as_deref().map(ChatSnapshot::of);
    let login = LoginSnapshot {
        ok: LOGIN_OK.load(Ordering::Relaxed),
        failed: LOGIN_FAILED.load(Ordering::Relaxed),
        throttled: LOGIN_THROTTLED.load(Ordering::Relaxed),
    };
    let mut body = render(&Scrape {
        engine,
        chat,
        writer: core.storage.writer_stats(),
        login,
    });
    for source in SOURCES.read().unwrap_or_else(|e| e.into_inner()).iter() {
        source.render(&mut body);
    }
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Everything one scrape reports; the parts a test server lacks are `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scrape {
    pub engine: Option<EngineSnapshot>,
    pub chat: Option<ChatSnapshot>,
    pub writer: WriterStats,
    pub login: LoginSnapshot,
}

/// The exposition text; families in a fixed order so scrapes diff cleanly.
pub fn render(scrape: &Scrape) -> String {
    let (writer, login) = (&scrape.writer, &scrape.login);
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "mensajero_build_info",
        "gauge",
        "Build facts, as labels.",
    );
    let _ = writeln!(
        out,
        "mensajero_build_info{{version=\"{}\",socket_io_client=\"{CLIENT_VERSION}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(e) = &scrape.engine {
        single(
            &mut out,
            "mensajero_engine_sessions_open",
            "gauge",
            "Engine.IO sessions open now.",
            e.sessions_open,
        );
        family(
            &mut out,
            "mensajero_engine_sessions",
            "gauge",
            "Engine.IO sessions open now, by current transport.",
        );
        let _ = writeln!(
            out,
            "mensajero_engine_sessions{{transport=\"websocket\"}} {}",
            e.sessions_websocket
        );
        let _ = writeln!(
            out,
            "mensajero_engine_sessions{{transport=\"polling\"}} {}",
            e.sessions_polling
        );
        single(
            &mut out,
            "mensajero_engine_handshakes_total",
            "counter",
            "Engine.IO handshakes completed.",
            e.handshakes_total,
        );
        family(
            &mut out,
            "mensajero_engine_frames_total",
            "counter",
            "Engine.IO packets carried, by direction.",
        );
        let _ = writeln!(
            out,
            "mensajero_engine_frames_total{{direction=\"in\"}} {}",
            e.frames_in_total
        );
        let _ = writeln!(
            out,
            "mensajero_engine_frames_total{{direction=\"out\"}} {}",
            e.frames_out_total
        );
        single(
            &mut out,
            "mensajero_engine_slow_consumer_closes_total",
            "counter",
            "Sessions closed because the client did not read its outbound queue.",
            e.slow_consumer_closes,
        );
        single(
            &mut out,
            "mensajero_engine_outbound_queued",
            "gauge",
            "Frames queued for clients, all sessions together.",
            e.outbound_queued,
        );
    }
    if let Some(c) = &scrape.chat {
        single(
            &mut out,
            "mensajero_chat_sockets",
            "gauge",
            "Chat sockets connected now (one per tab).",
            c.sockets,
        );
        family(
            &mut out,
            "mensajero_chat_messages_total",
            "counter",
            "mensaje_privado events, by outcome at the broker.",
        );
        let _ = writeln!(
            out,
            "mensajero_chat_messages_total{{result=\"accepted\"}} {}",
            c.messages_accepted
        );
        let _ = writeln!(
            out,
            "mensajero_chat_messages_total{{result=\"refused\"}} {}",
            c.messages_refused
        );
        family(
            &mut out,
            "mensajero_chat_deliveries_total",
            "counter",
            "Copies of messages handed to sockets, by outcome.",
        );
        let _ = writeln!(
            out,
            "mensajero_chat_deliveries_total{{result=\"ok\"}} {}",
            c.deliveries
        );
        let _ = writeln!(
            out,
            "mensajero_chat_deliveries_total{{result=\"failed\"}} {}",
            c.delivery_failures
        );
    }
    single(
        &mut out,
        "mensajero_messages_stored_total",
        "counter",
        "Messages committed to the database.",
        writer.stored_total,
    );
    single(
        &mut out,
        "mensajero_messages_refused_total",
        "counter",
        "Messages refused by storage (spool full, shutting down).",
        writer.refused_total,
    );
    single(
        &mut out,
        "mensajero_storage_spool_depth",
        "gauge",
        "Accepted messages waiting to be stored.",
        writer.spooled,
    );
    single(
        &mut out,
        "mensajero_storage_batches_total",
        "counter",
        "Group-commit transactions committed.",
        writer.batches_total,
    );
    single(
        &mut out,
        "mensajero_storage_parallel_batches_total",
        "counter",
        "Batches sent while another was in flight (writer lanes at work together).",
        writer.parallel_batches_total,
    );
    family(
        &mut out,
        "mensajero_storage_store_latency_seconds",
        "summary",
        "Time from acceptance to commit of stored messages.",
    );
    let _ = writeln!(
        out,
        "mensajero_storage_store_latency_seconds_sum {}",
        writer.store_latency_us_sum as f64 / 1_000_000.0
    );
    let _ = writeln!(
        out,
        "mensajero_storage_store_latency_seconds_count {}",
        writer.stored_total
    );
    single(
        &mut out,
        "mensajero_storage_outage",
        "gauge",
        "1 while the database is unreachable and messages are spooled.",
        u64::from(writer.outage),
    );
    family(
        &mut out,
        "mensajero_logins_total",
        "counter",
        "Sign-in attempts, by outcome.",
    );
    let _ = writeln!(out, "mensajero_logins_total{{result=\"ok\"}} {}", login.ok);
    let _ = writeln!(
        out,
        "mensajero_logins_total{{result=\"failed\"}} {}",
        login.failed
    );
    let _ = writeln!(
        out,
        "mensajero_logins_total{{result=\"throttled\"}} {}",
        login.throttled
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_well_formed() {
        let engine = EngineSnapshot {
            sessions_open: 3,
            sessions_websocket: 2,
            sessions_polling: 1,
            handshakes_total: 10,
            frames_out_total: 100,
            frames_in_total: 50,
            slow_consumer_closes: 1,
            outbound_queued: 7,
        };
        let writer = WriterStats {
            spooled: 4,
            stored_total: 20,
            refused_total: 2,
            batches_total: 5,
            parallel_batches_total: 3,
            store_latency_us_sum: 1_500_000,
            outage: true,
        };
        let chat = ChatSnapshot {
            sockets: 4,
            messages_accepted: 9,
            messages_refused: 1,
            deliveries: 30,
            delivery_failures: 0,
        };
        let text = render(&Scrape {
            engine: Some(engine),
            chat: Some(chat),
            writer,
            login: LoginSnapshot {
                ok: 1,
                failed: 2,
                throttled: 3,
            },
        });
        for line in [
            "mensajero_engine_sessions{transport=\"websocket\"} 2",
            "mensajero_engine_sessions{transport=\"polling\"} 1",
            "mensajero_engine_handshakes_total 10",
            "mensajero_engine_frames_total{direction=\"out\"} 100",
            "mensajero_engine_outbound_queued 7",
            "mensajero_messages_stored_total 20",
            "mensajero_messages_refused_total 2",
            "mensajero_storage_spool_depth 4",
            "mensajero_storage_parallel_batches_total 3",
            "mensajero_storage_store_latency_seconds_sum 1.5",
            "mensajero_storage_store_latency_seconds_count 20",
            "mensajero_storage_outage 1",
            "mensajero_logins_total{result=\"throttled\"} 3",
            "mensajero_chat_sockets 4",
            "mensajero_chat_messages_total{result=\"accepted\"} 9",
            "mensajero_chat_deliveries_total{result=\"ok\"} 30",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample belongs to a family declared just before it.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = name
                    .strip_suffix("_sum")
                    .or_else(|| name.strip_suffix("_count"))
                    .filter(|b| declared.contains(*b))
                    .unwrap_or(name);
                assert!(declared.contains(base), "undeclared {name}");
            }
        }
        // Without an engine (tests), storage and sign-in families remain.
        let text = render(&Scrape::default());
        assert!(!text.contains("mensajero_engine"));
        assert!(text.contains("mensajero_messages_stored_total 0"));
    }
}
