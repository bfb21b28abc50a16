//! Engine.IO v4: the handshake, the polling and WebSocket transports, the upgrade between
//! them, heartbeats, and the session actor that outlives any one transport.
//!
//! Layout: [`packet`] is the codec, `queue` the bounded outbound queue, `session` the
//! per-connection actor, `polling` and `ws_transport` the transports (`ws_frame` is the
//! RFC 6455 codec, `ws_handshake` the opening handshake), `server` the endpoint and
//! registry, `front_door` the listener service that takes WebSocket connections away
//! from actix-http, [`app`] the interface an application implements.
//!
//! Routing: [`EngineServer::configure`] mounts exactly `config.path` (any method, told
//! apart by the `EIO`/`transport`/`sid` query), nothing below it, so `<path>socket.io.js`
//! and `<path>socket.io.min.js` can be served by another handler, registered before or
//! after. WebSockets are not served by that route but by a [`FrontDoor`] on the listener,
//! which takes the upgrade before actix-http sees it; serve the `App` through
//! [`FrontDoor::service`] (see `src/server/mod.rs`).

pub mod app;
mod error;
mod front_door;
pub mod packet;
mod polling;
mod queue;
mod server;
mod session;
pub mod ws_frame;
mod ws_handshake;
mod ws_transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use app::{
    CloseReason, EngineApp, EngineConnection, ProtocolViolation, RequestInfo, SessionCtl,
    SessionHandle, Timer,
};
pub use error::EngineError;
pub use front_door::{FrontDoor, bind};
pub use packet::Message;
pub use queue::{EnqueueError, WireFrame};
pub use server::{EngineServer, new_id};

/// The admission check run on every handshake request (Origin policy etc.).
pub type AllowRequest = Arc<dyn Fn(&RequestInfo) -> Result<(), RequestRefusal> + Send + Sync>;

/// Engine.IO settings of one server.
#[derive(Clone)]
pub struct EngineConfig {
    /// Mount path, with leading and trailing slash (`/socket.io/`).
    pub path: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
    /// Frames queued for one client before it is disconnected as a slow consumer.
    pub outbound_queue: usize,
    /// Sessions open at once; handshakes beyond it get 503.
    pub max_sessions: usize,
    /// Checked on every handshake request before a session exists (Origin policy etc.).
    pub allow_request: Option<AllowRequest>,
}

impl Default for EngineConfig {
    /// The defaults of SPEC 1.3, mounted at `/socket.io/`.
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".to_string(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            outbound_queue: 1024,
            max_sessions: 100_000,
            allow_request: None,
        }
    }
}

/// A handshake refused before any session exists.
#[derive(Debug, Clone)]
pub struct RequestRefusal {
    pub status: actix_web::http::StatusCode,
    pub message: &'static str,
}

/// Counters for `/metrics`; all monotonic or gauges read with relaxed ordering.
#[derive(Debug, Default)]
pub struct EngineMetrics {
    pub(crate) sessions_open: AtomicU64,
    pub(crate) sessions_websocket: AtomicU64,
    pub(crate) sessions_polling: AtomicU64,
    pub(crate) handshakes_total: AtomicU64,
    pub(crate) frames_out_total: AtomicU64,
    pub(crate) frames_in_total: AtomicU64,
    pub(crate) slow_consumer_closes: AtomicU64,
    pub(crate) outbound_queued: AtomicU64,
}

impl EngineMetrics {
    /// Sessions open now (gauge).
    pub fn sessions_open(&self) -> u64 {
        self.sessions_open.load(Ordering::Relaxed)
    }
    /// Open sessions whose transport is a WebSocket (gauge).
    pub fn sessions_websocket(&self) -> u64 {
        self.sessions_websocket.load(Ordering::Relaxed)
    }
    /// Open sessions on long-polling (gauge).
    pub fn sessions_polling(&self) -> u64 {
        self.sessions_polling.load(Ordering::Relaxed)
    }
    /// Sessions ever opened.
    pub fn handshakes_total(&self) -> u64 {
        self.handshakes_total.load(Ordering::Relaxed)
    }
    /// Engine.IO packets written to clients (a binary attachment counts as one).
    pub fn frames_out_total(&self) -> u64 {
        self.frames_out_total.load(Ordering::Relaxed)
    }
    /// Engine.IO packets received from clients.
    pub fn frames_in_total(&self) -> u64 {
        self.frames_in_total.load(Ordering::Relaxed)
    }
    /// Sessions closed because their outbound queue filled up.
    pub fn slow_consumer_closes(&self) -> u64 {
        self.slow_consumer_closes.load(Ordering::Relaxed)
    }
    /// Frames waiting in outbound queues now, over all sessions (gauge, approximate).
    pub fn outbound_queued(&self) -> u64 {
        self.outbound_queued.load(Ordering::Relaxed)
    }
}
