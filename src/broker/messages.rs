//! The messages the [`ChatServer`](super::ChatServer) understands, and the [`Peer`] trait
//! through which it reaches a connected socket without knowing its wire format.

use std::sync::atomic::{AtomicU64, Ordering};

use actix::Message;
use chrono::{DateTime, Utc};

use super::identity::Identity;
use super::policy::PolicyError;
use super::validation::{PostRequest, ValidationError};
use crate::storage::{StoreError, StoredMessage};

/// Identifies one connected socket inside the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketKey(u64);

impl SocketKey {
    /// A key never handed out before in this process.
    pub fn next() -> SocketKey {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SocketKey(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Which copy of a message a peer receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryKind {
    /// To the addressee (and, for a user's message, to the admins).
    Received,
    /// To the sender's other sockets and, for an admin's message, to the other admins.
    Sent,
}

/// A connected socket as the broker sees it.
///
/// `encode` runs once per fan-out and `deliver` once per recipient with the shared result,
/// so the wire format is produced once however many sockets a message reaches.
pub trait Peer: Unpin + 'static {
    type Frame;
    fn encode(kind: DeliveryKind, message: &StoredMessage) -> Self::Frame;
    /// Queue the frame without waiting; an error means the socket is gone or not reading.
    fn deliver(&self, frame: &Self::Frame) -> Result<(), PeerGone>;
    /// The socket's credentials expired: end it (the broker has already let it go).
    fn expire(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerGone;

/// A socket joins its rooms: `user:{user}`, and `admins` for admins.
///
/// Sent with `do_send`: each socket sends exactly one `Connect` and one `Disconnect`, so
/// the number queued is bounded by the number of sessions, and neither may be dropped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect<P> {
    pub key: SocketKey,
    pub identity: Identity,
    pub peer: P,
}

/// A socket leaves all its rooms.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub key: SocketKey,
}

/// A socket sends a private message. `reply` is called after the message is stored and
/// fanned out, or at once when it is refused. (A reply of its own, not an actix response:
/// the broker holds thousands of posts in flight without a future, or a task, for each.)
#[derive(Message)]
#[rtype(result = "()")]
pub struct Post {
    pub from: SocketKey,
    pub identity: Identity,
    pub request: PostRequest,
    pub reply: PostReply,
}

/// Where the answer to a [`Post`] goes: called once, on the broker's thread. The protocol
/// side writes the client's ack from it; the broker never learns what an ack looks like.
/// A reply dropped unanswered (the broker stopped with the post) answers "busy", so the
/// sender always hears back and nothing counts it as pending for ever.
pub struct PostReply(Option<Box<dyn FnOnce(PostOutcome) + Send>>);

/// What the sender of a [`Post`] hears.
pub type PostOutcome = Result<Posted, PostError>;

impl PostReply {
    pub fn new(answer: impl FnOnce(PostOutcome) + Send + 'static) -> Self {
        PostReply(Some(Box::new(answer)))
    }

    pub fn send(mut self, outcome: PostOutcome) {
        if let Some(answer) = self.0.take() {
            answer(outcome);
        }
    }
}

impl Drop for PostReply {
    fn drop(&mut self) {
        if let Some(answer) = self.0.take() {
            answer(Err(PostError::Busy));
        }
    }
}

/// What the sender's ack carries: where the message was stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posted {
    pub id: i64,
    pub fecha: DateTime<Utc>,
}

/// Why a message was neither delivered nor stored; `Display` is what the client is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Forbidden(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Demasiados mensajes pendientes; espera las confirmaciones")]
    TooManyInFlight,
    #[error("El servidor está ocupado; inténtalo de nuevo")]
    Busy,
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_reply_dropped_unanswered_answers_busy_and_a_sent_one_answers_once() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let listener = |heard: &Arc<Mutex<Vec<_>>>| {
            let heard = heard.clone();
            PostReply::new(move |outcome| heard.lock().unwrap().push(outcome))
        };
        drop(listener(&heard));
        let stored = Posted {
            id: 3,
            fecha: DateTime::<Utc>::UNIX_EPOCH,
        };
        listener(&heard).send(Ok(stored));
        assert_eq!(*heard.lock().unwrap(), [Err(PostError::Busy), Ok(stored)]);
    }
}
