//! Handles through which an application talks to one socket: emit, ack, disconnect.
//!
//! CONTRACT (used by `desk/` and the conformance example; keep these signatures).

use std::time::Instant;

use super::{Frame, Payload};

/// Why a frame could not be queued for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The client does not read fast enough; its session is being closed.
    #[error("client outbound queue is full")]
    Full,
    /// The session is gone.
    #[error("socket is closed")]
    Closed,
}

/// A cheap, clonable, `Send` handle to one socket (one namespace of one session).
#[derive(Clone)]
pub struct Socket {/* implementation-defined */}

impl Socket {
    /// The Socket.IO socket id (not the Engine.IO sid).
    pub fn id(&self) -> &str {
        todo!()
    }
    pub fn namespace(&self) -> &str {
        todo!()
    }
    /// Encode and queue one event. Never blocks; a full queue closes the session.
    pub fn emit(&self, event: &str, payload: Payload) -> Result<(), SendError> {
        let _ = (event, payload);
        todo!()
    }
    /// Queue an already encoded frame (see [`Frame::event`]); a fan-out encodes once and
    /// sends the same frame to every recipient.
    pub fn send(&self, frame: &Frame) -> Result<(), SendError> {
        let _ = frame;
        todo!()
    }
    /// Send DISCONNECT for this namespace and end the socket.
    pub fn disconnect(&self) {
        todo!()
    }
    /// End the socket at `when` (e.g. when its credentials expire).
    pub fn disconnect_at(&self, when: Instant) {
        let _ = when;
        todo!()
    }
}

/// Replies to one client ack id; consumed by [`AckSender::send`].
pub struct AckSender {/* implementation-defined */}

impl AckSender {
    pub fn send(self, payload: Payload) -> Result<(), SendError> {
        let _ = payload;
        todo!()
    }
}
