//! The wire protocol: Engine.IO v4 (transports, sessions, heartbeat) and Socket.IO v5
//! (packets, namespaces, acks, binary attachments) on top of it.
//!
//! Nothing here knows about chat. An application registers [`socketio::Namespace`]s and
//! receives events through [`socketio::SocketHandler`]s; it talks back through
//! [`socketio::Socket`] handles, which are cheap to clone and safe to hold in other actors.
//!
//! Wiring, once per process (not inside the `HttpServer::new` factory, which runs per
//! worker: every worker must share the one session registry, or a polling client whose
//! requests land on another worker would be unknown there):
//!
//! ```text
//! let sio = SocketIoServer::builder()
//!     .namespace("/", Arc::new(MyNamespace))
//!     .connect_timeout(settings.engine.connect_timeout())
//!     .build();
//! let engine = EngineServer::socketio(engine_config, sio);
//! HttpServer::new(move || {
//!     let engine = engine.clone();
//!     App::new().configure(move |cfg| engine.configure(cfg))
//! })
//! // Without this actix does not notice a client dropping its waiting polling GET, and
//! // the session would only end at the next request or the heartbeat.
//! .h1_allow_half_closed(false)
//! ```
//!
//! [`conformance`] holds the reference servers of the official test suites, built from
//! this public API only.

pub mod conformance;
pub mod engineio;
pub mod socketio;
