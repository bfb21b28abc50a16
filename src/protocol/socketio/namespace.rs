//! The application-facing side of Socket.IO: what a namespace is and what it is told.
//!
//! Applications (the desk, the conformance example) implement these two traits.

use std::net::SocketAddr;

use actix_web::http::header::HeaderMap;
use serde_json::Value;

use super::Payload;
use super::socket::{AckSender, Socket};

/// What the client presented when it opened the Engine.IO session and sent CONNECT.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Request headers of the first HTTP request of the session (polling GET or WS upgrade).
    pub headers: HeaderMap,
    /// Raw query string of that request.
    pub query: String,
    pub remote_addr: Option<SocketAddr>,
    /// The CONNECT packet's payload (`auth` in the official client), if any.
    pub auth: Option<Value>,
}

/// Why a namespace refuses a socket; sent as CONNECT_ERROR `{"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRefusal {
    pub message: String,
}

/// Why a socket ended, as told to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for the namespace.
    ClientNamespaceDisconnect,
    /// The server called [`Socket::disconnect`].
    ServerNamespaceDisconnect,
    /// The Engine.IO session closed (transport error, close packet, ping timeout, ...).
    TransportClose,
    PingTimeout,
    /// The client could not keep up with its outbound queue.
    SlowConsumer,
    /// A malformed packet closed the session.
    ParseError,
    /// The server is shutting down.
    ServerShutdown,
}

/// A namespace: decides on CONNECT and builds the handler of each accepted socket.
///
/// `connect` runs on the session's thread; the handler it returns lives inside the session
/// actor, so it needs no locking. It may spawn local tasks (`actix::spawn`) for work that
/// waits, and reply through the [`Socket`] or [`AckSender`] handles.
pub trait Namespace: Send + Sync + 'static {
    fn connect(
        &self,
        socket: Socket,
        handshake: &Handshake,
    ) -> Result<Box<dyn SocketHandler>, ConnectRefusal>;
}

/// One accepted socket's event handler.
pub trait SocketHandler: 'static {
    /// An EVENT or BINARY_EVENT; `ack` is present when the client asked for one.
    fn on_event(&mut self, event: &str, payload: Payload, ack: Option<AckSender>);
    /// Called exactly once when the socket ends, whatever the cause.
    fn on_disconnect(&mut self, reason: DisconnectReason);
}
