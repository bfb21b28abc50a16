//! The Engine.IO endpoint: request routing by query, the session registry, handshake
//! admission (allow_request, capacity, shutdown) and graceful shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use actix::{Actor, Recipient};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;

use super::app::{EngineApp, RequestInfo, SessionHandle};
use super::error::EngineError;
use super::queue::{OutboundQueue, WireFrame};
use super::session::{EngineSession, TransportMsg};
use super::{EngineConfig, EngineMetrics, polling};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Polling,
    WebSocket,
}

/// What requests of a session need to reach it.
pub(crate) struct SessionEntry {
    pub(crate) recipient: Recipient<TransportMsg>,
    pub(crate) queue: Arc<OutboundQueue>,
    /// A polling POST of this session is being read (two at once is a client error).
    pub(crate) posting: AtomicBool,
}

/// State shared by the endpoint and every session of one server.
pub(crate) struct EngineShared {
    pub(crate) config: EngineConfig,
    pub(crate) metrics: Arc<EngineMetrics>,
    sessions: Mutex<HashMap<Arc<str>, Arc<SessionEntry>>>,
    shutting_down: AtomicBool,
}

impl EngineShared {
    fn sessions(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<SessionEntry>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn deregister(&self, sid: &str, transport: TransportKind) {
        if self.sessions().remove(sid).is_some() {
            self.metrics.sessions_open.fetch_sub(1, Ordering::Relaxed);
            self.transport_gauge(transport)
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn transport_changed(&self) {
        self.metrics
            .sessions_polling
            .fetch_sub(1, Ordering::Relaxed);
        self.metrics
            .sessions_websocket
            .fetch_add(1, Ordering::Relaxed);
    }

    fn transport_gauge(&self, transport: TransportKind) -> &std::sync::atomic::AtomicU64 {
        match transport {
            TransportKind::Polling => &self.metrics.sessions_polling,
            TransportKind::WebSocket => &self.metrics.sessions_websocket,
        }
    }
}

/// Spawns the session actor of one application, hiding the connection type.
trait SessionFactory: Send + Sync {
    fn spawn(&self, init: SessionInit) -> Recipient<TransportMsg>;
}

struct SessionInit {
    sid: Arc<str>,
    shared: Arc<EngineShared>,
    queue: Arc<OutboundQueue>,
    transport: TransportKind,
    request: RequestInfo,
    opened: Instant,
}

struct AppFactory<A>(Arc<A>);

impl<A: EngineApp> SessionFactory for AppFactory<A> {
    fn spawn(&self, init: SessionInit) -> Recipient<TransportMsg> {
        let app = self.0.clone();
        EngineSession::create(move |ctx| {
            let handle = SessionHandle {
                queue: init.queue.clone(),
                addr: actix::AsyncContext::address(ctx),
            };
            let conn = app.open(handle, &init.request);
            EngineSession::new(
                init.sid,
                init.shared,
                init.queue,
                conn,
                init.transport,
                init.opened,
            )
        })
        .recipient()
    }
}

/// A new session, as the handshake request needs it.
pub(crate) struct Opened {
    pub(crate) handshake: String,
    pub(crate) recipient: Recipient<TransportMsg>,
    pub(crate) queue: Arc<OutboundQueue>,
}

/// An Engine.IO server carrying one application (a bare echo, or Socket.IO).
///
/// Build it once and clone it into each worker's `App`: clones share the session
/// registry, which requests of one session reaching different workers rely on.
#[derive(Clone)]
pub struct EngineServer {
    pub(crate) shared: Arc<EngineShared>,
    factory: Arc<dyn SessionFactory>,
}

impl EngineServer {
    /// Engine.IO carrying any [`EngineApp`].
    pub fn with_app<A: EngineApp>(config: EngineConfig, app: A) -> Self {
        EngineServer {
            shared: Arc::new(EngineShared {
                config,
                metrics: Arc::new(EngineMetrics::default()),
                sessions: Mutex::new(HashMap::new()),
                shutting_down: AtomicBool::new(false),
            }),
            factory: Arc::new(AppFactory(Arc::new(app))),
        }
    }

    /// Engine.IO carrying Socket.IO.
    pub fn socketio(config: EngineConfig, app: crate::protocol::socketio::SocketIoServer) -> Self {
        Self::with_app(config, app)
    }

    /// A bare Engine.IO server whose application is `app` (the conformance echo uses it).
    pub fn engine_only<A: EngineApp>(config: EngineConfig, app: A) -> Self {
        Self::with_app(config, app)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Mount the endpoint (GET/POST polling, WebSocket upgrade) under `config.path`.
    ///
    /// Only the path itself is routed (any method, dispatched on the query), so files
    /// under it such as `<path>socket.io.js` stay free for other handlers.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let server = self.clone();
        cfg.service(web::resource(self.shared.config.path.as_str()).to(
            move |req: HttpRequest, body: web::Payload| {
                let server = server.clone();
                async move { server.handle(req, body).await }
            },
        ));
    }

    pub fn metrics(&self) -> &EngineMetrics {
        &self.shared.metrics
    }

    /// Graceful shutdown: refuse new sessions, send DISCONNECT on every socket and CLOSE
    /// on every session, resolve once they are gone (or `deadline` passes).
    pub async fn shutdown(&self, deadline: Duration) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let recipients: Vec<_> = self
            .shared
            .sessions()
            .values()
            .map(|entry| entry.recipient.clone())
            .collect();
        for recipient in recipients {
            recipient.do_send(TransportMsg::Shutdown);
        }
        let until = Instant::now() + deadline;
        while Instant::now() < until && !self.shared.sessions().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Give the writers a moment to flush their DISCONNECT and CLOSE frames.
        let grace = until
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        tokio::time::sleep(grace).await;
    }

    async fn handle(&self, req: HttpRequest, body: web::Payload) -> HttpResponse {
        let query_string = req.query_string().to_owned();
        let query = EngineQuery::parse(&query_string);
        let result = if query.eio != Some("4") {
            Err(EngineError::UnsupportedVersion)
        } else {
            match query.transport {
                Some("polling") => polling::handle(self, req, body, query.sid).await,
                // Upgrades are taken by the front door before actix-http sees them; one
                // that reaches this route came without the front door, or not as the first
                // request of its connection, or without `Upgrade: websocket`.
                Some("websocket") => Err(EngineError::BadRequest),
                _ => Err(EngineError::UnknownTransport),
            }
        };
        result.unwrap_or_else(|error| error.to_response())
    }

    /// `allow_request` alone: every request that opens or upgrades a session.
    pub(crate) fn check_allowed(&self, request: &RequestInfo) -> Result<(), EngineError> {
        if self.shared.shutting_down.load(Ordering::Relaxed) {
            return Err(EngineError::ShuttingDown);
        }
        if let Some(allow) = &self.shared.config.allow_request {
            allow(request).map_err(|refusal| EngineError::Refused {
                status: refusal.status,
                message: refusal.message,
            })?;
        }
        Ok(())
    }

    /// Admission of a new session.
    pub(crate) fn check_handshake(&self, request: &RequestInfo) -> Result<(), EngineError> {
        self.check_allowed(request)?;
        let open = self.shared.metrics.sessions_open.load(Ordering::Relaxed);
        if open >= self.shared.config.max_sessions as u64 {
            return Err(EngineError::TooManySessions);
        }
        Ok(())
    }

    pub(crate) fn lookup(&self, sid: &str) -> Option<Arc<SessionEntry>> {
        self.shared.sessions().get(sid).cloned()
    }

    /// Creates, registers and starts a session; for a WebSocket the handshake is queued
    /// as its first frame, for polling it is the answer to the request.
    pub(crate) fn open_session(&self, request: RequestInfo, transport: TransportKind) -> Opened {
        let shared = &self.shared;
        let config = &shared.config;
        let sid: Arc<str> = new_id().into();
        let upgrades = match transport {
            TransportKind::Polling => r#"["websocket"]"#,
            TransportKind::WebSocket => "[]",
        };
        let handshake = format!(
            r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
            config.ping_interval.as_millis(),
            config.ping_timeout.as_millis(),
            config.max_payload
        );
        let queue = OutboundQueue::new(config.outbound_queue, shared.metrics.clone());
        if transport == TransportKind::WebSocket {
            queue.push_control(WireFrame::Text(handshake.as_str().into()));
        }
        let opened = Instant::now();
        let recipient = self.factory.spawn(SessionInit {
            sid: sid.clone(),
            shared: shared.clone(),
            queue: queue.clone(),
            transport,
            request,
            opened,
        });
        shared.sessions().insert(
            sid,
            Arc::new(SessionEntry {
                recipient: recipient.clone(),
                queue: queue.clone(),
                posting: AtomicBool::new(false),
            }),
        );
        shared
            .metrics
            .handshakes_total
            .fetch_add(1, Ordering::Relaxed);
        shared.metrics.sessions_open.fetch_add(1, Ordering::Relaxed);
        shared
            .transport_gauge(transport)
            .fetch_add(1, Ordering::Relaxed);
        Opened {
            handshake,
            recipient,
            queue,
        }
    }
}

/// 15 random bytes: 20 URL-safe characters, like Node's ids.
pub fn new_id() -> String {
    let mut bytes = [0u8; 15];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The query parameters Engine.IO routes on.
pub(crate) struct EngineQuery<'a> {
    pub(crate) eio: Option<&'a str>,
    pub(crate) transport: Option<&'a str>,
    pub(crate) sid: Option<&'a str>,
}

impl<'a> EngineQuery<'a> {
    pub(crate) fn parse(query: &'a str) -> Self {
        let mut parsed = EngineQuery {
            eio: None,
            transport: None,
            sid: None,
        };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "EIO" => parsed.eio = Some(value),
                "transport" => parsed.transport = Some(value),
                "sid" => parsed.sid = Some(value),
                _ => {}
            }
        }
        parsed
    }
}
