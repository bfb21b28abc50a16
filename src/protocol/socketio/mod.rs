//! Socket.IO v5 over Engine.IO: packet codec, namespaces, per-session socket state.
//!
//! Layout: `packet` is the codec, `connection` the per-session state inside the Engine.IO
//! session actor, `namespace` and `socket` what applications implement and hold.

mod connection;
mod namespace;
pub mod packet;
mod socket;

pub use connection::{SioCommand, SioConnection};
pub use namespace::{ConnectRefusal, DisconnectReason, Handshake, Namespace, SocketHandler};
pub use socket::{AckSender, SendError, Socket};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::protocol::engineio::{EngineApp, RequestInfo, SessionHandle, WireFrame};
use packet::PacketKind;

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
///
/// It holds the complete Engine.IO text (`4` + Socket.IO packet) and any attachments,
/// so queueing it for a WebSocket is a reference-count increment.
#[derive(Debug, Clone)]
pub struct Frame {
    wire: WireFrame,
}

impl Frame {
    /// Encode EVENT `[event, ...args]` for `namespace` once.
    pub fn event(namespace: &str, event: &str, args: &[Value]) -> Frame {
        Frame::encoded(PacketKind::Event, namespace, None, |text| {
            packet::write_array(text, Some(event), args)
        })
    }

    /// Encode EVENT `[event, arg]` straight from a serializable value, without building a
    /// JSON tree first: what a fan-out of one typed message needs.
    pub fn event_with<T: serde::Serialize + ?Sized>(
        namespace: &str,
        event: &str,
        arg: &T,
    ) -> Frame {
        Frame::encoded(PacketKind::Event, namespace, None, |text| {
            text.push(b'[');
            serde_json::to_writer(&mut *text, event).expect("event name serializes");
            text.push(b',');
            serde_json::to_writer(&mut *text, arg).expect("event argument serializes");
            text.push(b']');
        })
    }

    /// Encode the answer `[arg]` to ack `id` straight from a serializable value: what an
    /// ack per message needs.
    pub fn ack_with<T: serde::Serialize + ?Sized>(namespace: &str, id: u64, arg: &T) -> Frame {
        Frame::encoded(PacketKind::Ack, namespace, Some(id), |text| {
            text.push(b'[');
            serde_json::to_writer(&mut *text, arg).expect("ack argument serializes");
            text.push(b']');
        })
    }

    /// The header, then what `write_body` writes. Written into a buffer this thread
    /// reuses and copied out once at its exact size: a packet's size is not known before
    /// it is written, and growing a fresh buffer to it would reallocate it several times.
    /// Serializing into a Vec cannot fail unless a value's own Serialize impl does: a
    /// programming error.
    fn encoded(
        kind: PacketKind,
        namespace: &str,
        ack_id: Option<u64>,
        write_body: impl FnOnce(&mut Vec<u8>),
    ) -> Frame {
        /// Past this the buffer is not kept (one huge packet should not pin its size).
        const KEEP_AT_MOST: usize = 64 * 1024;
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|text| {
            text.clear();
            packet::write_header(text, kind, namespace, 0, ack_id);
            write_body(text);
            let frame = Frame::text(text);
            if text.capacity() > KEEP_AT_MOST {
                *text = Vec::new();
            }
            frame
        })
    }

    fn text(text: &[u8]) -> Frame {
        let text = std::str::from_utf8(text).expect("serde_json writes UTF-8");
        Frame {
            wire: WireFrame::Text(text.to_owned().into()),
        }
    }

    /// Encode an event with binary attachments (BINARY_EVENT when there are any).
    pub fn event_payload(namespace: &str, event: &str, payload: &Payload) -> Frame {
        Frame {
            wire: connection::encode(PacketKind::Event, namespace, None, Some(event), payload),
        }
    }

    /// Encode the answer to ack `id` (BINARY_ACK when there are attachments).
    pub fn ack(namespace: &str, id: u64, payload: &Payload) -> Frame {
        Frame {
            wire: connection::encode(PacketKind::Ack, namespace, Some(id), None, payload),
        }
    }

    /// The frame as the engine sends it.
    pub fn wire(&self) -> &WireFrame {
        &self.wire
    }

    /// The frame as the engine sends it, for one recipient: moved, where a clone of a
    /// frame just encoded would allocate the bytes' shared header to count one owner.
    pub fn into_wire(self) -> WireFrame {
        self.wire
    }
}

/// What every session of one Socket.IO server shares.
pub(crate) struct SioShared {
    pub(crate) namespaces: HashMap<String, Arc<dyn Namespace>>,
    pub(crate) connect_timeout: Duration,
}

/// The Socket.IO server: a set of namespaces, plugged into an Engine.IO server.
pub struct SocketIoServer {
    shared: Arc<SioShared>,
}

impl SocketIoServer {
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder {
            namespaces: HashMap::new(),
            connect_timeout: Duration::from_millis(45_000),
        }
    }
}

impl EngineApp for SocketIoServer {
    type Connection = SioConnection;

    fn open(&self, session: SessionHandle<SioConnection>, request: &RequestInfo) -> SioConnection {
        SioConnection::new(self.shared.clone(), session, request)
    }
}

pub struct SocketIoBuilder {
    namespaces: HashMap<String, Arc<dyn Namespace>>,
    connect_timeout: Duration,
}

impl SocketIoBuilder {
    pub fn namespace(mut self, name: &str, namespace: Arc<dyn Namespace>) -> Self {
        self.namespaces.insert(name.to_string(), namespace);
        self
    }
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    pub fn build(self) -> SocketIoServer {
        SocketIoServer {
            shared: Arc::new(SioShared {
                namespaces: self.namespaces,
                connect_timeout: self.connect_timeout,
            }),
        }
    }
}
