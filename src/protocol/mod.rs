//! The wire protocol: Engine.IO v4 (transports, sessions, heartbeat) and Socket.IO v5
//! (packets, namespaces, acks, binary attachments) on top of it.
//!
//! Nothing here knows about chat. An application registers [`socketio::Namespace`]s and
//! receives events through [`socketio::SocketHandler`]s; it talks back through
//! [`socketio::Socket`] handles, which are cheap to clone and safe to hold in other actors.
//!
//! Wiring, once per process (not inside the per-worker service factory: every worker
//! must share the one session registry, or a polling client whose requests land on
//! another worker would be unknown there):
//!
//! ```text
//! let sio = SocketIoServer::builder()
//!     .namespace("/", Arc::new(MyNamespace))
//!     .connect_timeout(settings.engine.connect_timeout())
//!     .build();
//! let engine = EngineServer::socketio(engine_config, sio);
//! // The front door takes Engine.IO WebSockets off the listener before actix-http, and
//! // serves everything else with the App (TCP_NODELAY, no half-closed connections, which
//! // polling needs to notice a dropped GET).
//! let door = FrontDoor::new([engine.clone()]);
//! for listener in engineio::bind(addr)? {
//!     let addr = listener.local_addr()?;
//!     let (door, engine) = (door.clone(), engine.clone());
//!     builder = builder.listen("name", listener, move || {
//!         let engine = engine.clone();
//!         door.service(addr, App::new().configure(move |cfg| engine.configure(cfg)))
//!     })?;
//! }
//! ```
//!
//! [`conformance`] holds the reference servers of the official test suites, built from
//! this public API only.

pub mod conformance;
pub mod engineio;
pub mod socketio;
