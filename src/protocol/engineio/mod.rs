//! Engine.IO v4: the handshake, the polling and WebSocket transports, the upgrade between
//! them, heartbeats, and the session actor that outlives any one transport.
//!
//! CONTRACT of the public items below (used by `server.rs` and the conformance example).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, web};

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
    pub allow_request:
        Option<Arc<dyn Fn(&HttpRequest) -> Result<(), RequestRefusal> + Send + Sync>>,
}

/// A handshake refused before any session exists.
#[derive(Debug, Clone)]
pub struct RequestRefusal {
    pub status: actix_web::http::StatusCode,
    pub message: &'static str,
}

/// Counters for `/metrics`; all monotonic or gauges read with relaxed ordering.
#[derive(Debug, Default)]
pub struct EngineMetrics {/* implementation-defined atomics */}

/// An Engine.IO server carrying one application (a bare echo, or Socket.IO).
#[derive(Clone)]
pub struct EngineServer {/* implementation-defined */}

impl EngineServer {
    /// Engine.IO carrying Socket.IO.
    pub fn socketio(config: EngineConfig, app: super::socketio::SocketIoServer) -> Self {
        let _ = (config, app);
        todo!()
    }
    /// Mount the endpoint (GET/POST polling, WebSocket upgrade) under `config.path`.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let _ = cfg;
        todo!()
    }
    pub fn metrics(&self) -> &EngineMetrics {
        todo!()
    }
    /// Graceful shutdown: refuse new sessions, send DISCONNECT on every socket and CLOSE
    /// on every session, resolve once they are gone (or `deadline` passes).
    pub async fn shutdown(&self, deadline: Duration) {
        let _ = deadline;
        todo!()
    }
}

// Accessors read by `/metrics` (src/http/metrics.rs); stubs until the protocol lands.
impl EngineMetrics {
    pub fn sessions_open(&self) -> u64 {
        todo!()
    }
    pub fn sessions_websocket(&self) -> u64 {
        todo!()
    }
    pub fn sessions_polling(&self) -> u64 {
        todo!()
    }
    pub fn handshakes_total(&self) -> u64 {
        todo!()
    }
    pub fn frames_out_total(&self) -> u64 {
        todo!()
    }
    pub fn frames_in_total(&self) -> u64 {
        todo!()
    }
    pub fn slow_consumer_closes(&self) -> u64 {
        todo!()
    }
    pub fn outbound_queued(&self) -> u64 {
        todo!()
    }
}
