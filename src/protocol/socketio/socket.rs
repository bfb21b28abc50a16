//! Handles through which an application talks to one socket: emit, ack, disconnect.
//!
//! A [`Socket`] only touches the session's outbound queue (never the actor) to send, so
//! emitting from any thread is a lock and a push; disconnects go to the session actor as
//! commands, because they change state the actor owns.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::connection::{SioCommand, SioConnection};
use super::{Frame, Payload};
use crate::protocol::engineio::{EnqueueError, SessionHandle, WireFrame};

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

impl From<EnqueueError> for SendError {
    fn from(error: EnqueueError) -> Self {
        match error {
            EnqueueError::Full => SendError::Full,
            EnqueueError::Closed => SendError::Closed,
        }
    }
}

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSED: u8 = 2;

/// Frames emitted while `Namespace::connect` runs wait here, because the CONNECT answer
/// can only be sent once `connect` has accepted the socket, and must come first.
const MAX_EARLY_FRAMES: usize = 64;

struct SocketInner {
    id: Box<str>,
    namespace: Box<str>,
    session: SessionHandle<SioConnection>,
    state: AtomicU8,
    early: Mutex<Vec<WireFrame>>,
}

/// A cheap, clonable, `Send` handle to one socket (one namespace of one session).
#[derive(Clone)]
pub struct Socket {
    inner: Arc<SocketInner>,
}

impl Socket {
    pub(crate) fn new(id: String, namespace: &str, session: SessionHandle<SioConnection>) -> Self {
        Socket {
            inner: Arc::new(SocketInner {
                id: id.into(),
                namespace: namespace.into(),
                session,
                state: AtomicU8::new(CONNECTING),
                early: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The Socket.IO socket id (not the Engine.IO sid).
    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }
    /// Encode and queue one event. Never blocks; a full queue closes the session.
    pub fn emit(&self, event: &str, payload: Payload) -> Result<(), SendError> {
        self.push(Frame::event_payload(&self.inner.namespace, event, &payload).into_wire())
    }
    /// Queue an already encoded frame (see [`Frame::event`]); a fan-out encodes once and
    /// sends the same frame to every recipient.
    pub fn send(&self, frame: &Frame) -> Result<(), SendError> {
        self.push(frame.wire().clone())
    }
    /// Send DISCONNECT for this namespace and end the socket.
    pub fn disconnect(&self) {
        self.inner.session.command(SioCommand::Disconnect {
            socket: self.clone(),
        });
    }
    /// End the socket at `when` (e.g. when its credentials expire).
    pub fn disconnect_at(&self, when: Instant) {
        self.inner.session.command(SioCommand::DisconnectAt {
            socket: self.clone(),
            when,
        });
    }

    pub(crate) fn push(&self, frame: WireFrame) -> Result<(), SendError> {
        match self.inner.state.load(Ordering::Acquire) {
            CONNECTED => Ok(self.inner.session.send(frame)?),
            CLOSED => Err(SendError::Closed),
            _ => {
                let mut early = self.lock_early();
                // Re-checked under the lock: `mark_connected` flips it while holding it.
                match self.inner.state.load(Ordering::Acquire) {
                    CONNECTING if early.len() < MAX_EARLY_FRAMES => {
                        early.push(frame);
                        Ok(())
                    }
                    CONNECTING => Err(SendError::Full),
                    CONNECTED => {
                        drop(early);
                        Ok(self.inner.session.send(frame)?)
                    }
                    _ => Err(SendError::Closed),
                }
            }
        }
    }

    fn lock_early(&self) -> std::sync::MutexGuard<'_, Vec<WireFrame>> {
        self.inner
            .early
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The CONNECT answer is queued: release what `connect` emitted, in order.
    pub(crate) fn mark_connected(&self) {
        let mut early = self.lock_early();
        for frame in std::mem::take(&mut *early) {
            let _ = self.inner.session.send(frame);
        }
        self.inner.state.store(CONNECTED, Ordering::Release);
    }

    pub(crate) fn mark_closed(&self) {
        let mut early = self.lock_early();
        early.clear();
        self.inner.state.store(CLOSED, Ordering::Release);
    }

    pub(crate) fn same(&self, other: &Socket) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("namespace", &self.inner.namespace)
            .finish()
    }
}

/// Replies to one client ack id; consumed by [`AckSender::send`].
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    pub fn send(self, payload: Payload) -> Result<(), SendError> {
        self.socket
            .push(Frame::ack(self.socket.namespace(), self.id, &payload).into_wire())
    }

    /// Answer with one argument, serialized straight into the packet.
    pub fn send_with<T: serde::Serialize + ?Sized>(self, arg: &T) -> Result<(), SendError> {
        self.socket
            .push(Frame::ack_with(self.socket.namespace(), self.id, arg).into_wire())
    }
}
