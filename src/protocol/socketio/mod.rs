//! Socket.IO v5 over Engine.IO: packet codec, namespaces, per-session socket state.
//!
//! CONTRACT of the public items below (used by `desk/`, `server.rs` and the example).

mod namespace;
mod socket;

pub use namespace::{ConnectRefusal, DisconnectReason, Handshake, Namespace, SocketHandler};
pub use socket::{AckSender, SendError, Socket};

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

/// Event arguments: JSON values, plus binary attachments referenced from them by
/// `{"_placeholder":true,"num":N}` (kept as placeholders, in order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    pub args: Vec<Value>,
    pub attachments: Vec<Bytes>,
}

impl Payload {
    pub fn json(args: Vec<Value>) -> Self {
        Payload {
            args,
            attachments: Vec::new(),
        }
    }
}

/// An encoded packet ready for any transport; cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /* implementation-defined, Arc-backed */
    _inner: Arc<()>,
}

impl Frame {
    /// Encode EVENT `[event, ...args]` for `namespace` once.
    pub fn event(namespace: &str, event: &str, args: &[Value]) -> Frame {
        let _ = (namespace, event, args);
        todo!()
    }
}

/// The Socket.IO server: a set of namespaces, plugged into an Engine.IO server.
pub struct SocketIoServer {/* implementation-defined */}

impl SocketIoServer {
    pub fn builder() -> SocketIoBuilder {
        todo!()
    }
}

pub struct SocketIoBuilder {/* implementation-defined */}

impl SocketIoBuilder {
    pub fn namespace(self, name: &str, namespace: Arc<dyn Namespace>) -> Self {
        let _ = (name, namespace);
        todo!()
    }
    pub fn connect_timeout(self, timeout: std::time::Duration) -> Self {
        let _ = timeout;
        todo!()
    }
    pub fn build(self) -> SocketIoServer {
        todo!()
    }
}
