//! What an application on top of Engine.IO implements, and the handles it is given.
//!
//! An [`EngineApp`] opens one [`EngineConnection`] per Engine.IO session; the connection
//! lives inside the session actor (so it needs no locking) and is told about messages,
//! its own commands and the close. It talks back through a [`SessionCtl`] while it is
//! being called, and through a [`SessionHandle`] from anywhere else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, AsyncContext, Context, Message as ActixMessage, SpawnHandle};
use actix_web::http::header::HeaderMap;

use super::packet::Message;
use super::queue::{EnqueueError, OutboundQueue, Pushed, WireFrame};
use super::session::EngineSession;

/// The first HTTP request of a session (polling handshake GET or WebSocket upgrade).
///
/// Built by the polling handshake from actix-web's request (its header values share the
/// connection's read buffer) or by the WebSocket front door from the peeked head. Either
/// way it is the application's to copy what it keeps for the life of the session (see
/// Socket.IO's connection), and the input of `allow_request`.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub headers: HeaderMap,
    pub query: String,
    pub remote_addr: Option<SocketAddr>,
}

/// Why an Engine.IO session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent CLOSE.
    ClientClose,
    /// The transport went away (connection closed, polling request cancelled).
    TransportClose,
    /// The transport broke (write failed, protocol error below Engine.IO, duplicate GET).
    TransportError,
    PingTimeout,
    /// The outbound queue filled up: the client does not read.
    SlowConsumer,
    /// The client sent something that is not Engine.IO, or that the application refused.
    ParseError,
    /// The application asked for the close (e.g. no Socket.IO CONNECT in time).
    ServerClose,
    ServerShutdown,
}

/// A protocol violation reported by the application; it closes the session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation: {0}")]
pub struct ProtocolViolation(pub String);

/// An application carried by Engine.IO.
pub trait EngineApp: Send + Sync + 'static {
    type Connection: EngineConnection;
    /// Called once per session, on the thread that will run it, before any message.
    fn open(
        &self,
        session: SessionHandle<Self::Connection>,
        request: &RequestInfo,
    ) -> Self::Connection;
}

/// The application's state for one session.
pub trait EngineConnection: Sized + Unpin + 'static {
    /// Requests sent to this connection from elsewhere through [`SessionHandle::command`].
    type Command: Send + 'static;

    fn on_open(&mut self, ctl: &mut SessionCtl<'_, Self>) {
        let _ = ctl;
    }
    /// A MESSAGE from the client; an error closes the session with `ParseError`.
    fn on_message(
        &mut self,
        message: Message,
        ctl: &mut SessionCtl<'_, Self>,
    ) -> Result<(), ProtocolViolation>;
    fn on_command(&mut self, command: Self::Command, ctl: &mut SessionCtl<'_, Self>);
    /// The server is shutting down: queue any goodbye; the session closes right after.
    fn on_shutdown(&mut self, ctl: &mut SessionCtl<'_, Self>) {
        let _ = ctl;
    }
    /// Called exactly once, when the session ends for any reason.
    fn on_close(&mut self, reason: CloseReason);
}

/// A `Send` handle to one session: queue frames, send commands, close it.
pub struct SessionHandle<C: EngineConnection> {
    pub(crate) queue: Arc<OutboundQueue>,
    pub(crate) addr: Addr<EngineSession<C>>,
}

impl<C: EngineConnection> Clone for SessionHandle<C> {
    fn clone(&self) -> Self {
        SessionHandle {
            queue: self.queue.clone(),
            addr: self.addr.clone(),
        }
    }
}

/// Asks a session to close.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub(crate) struct CloseSession(pub CloseReason);

/// Carries an application command to its connection inside the session actor.
#[derive(ActixMessage)]
#[rtype(result = "()")]
pub(crate) struct AppCommand<T: Send + 'static>(pub T);

impl<C: EngineConnection> SessionHandle<C> {
    /// Queues a frame without blocking. A full queue closes the session as a slow consumer.
    pub fn send(&self, frame: WireFrame) -> Result<(), EnqueueError> {
        match self.queue.push(frame)? {
            Pushed::Queued => Ok(()),
            Pushed::Overflowed => {
                // Only the push that hit the bound gets here, so the close is asked once;
                // `do_send` is fine for that one message even when the mailbox is full.
                self.addr.do_send(CloseSession(CloseReason::SlowConsumer));
                Err(EnqueueError::Full)
            }
        }
    }

    /// Sends a command to the connection. Commands are control traffic (a disconnect, a
    /// timer), a handful per socket, so they are not counted against the outbound bound.
    pub fn command(&self, command: C::Command) {
        self.addr.do_send(AppCommand(command));
    }

    pub fn close(&self, reason: CloseReason) {
        self.addr.do_send(CloseSession(reason));
    }

    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// The session, as seen by its connection while one of its callbacks runs.
/// A callback scheduled by [`SessionCtl::run_later`].
#[derive(Debug, Clone, Copy)]
pub struct Timer(SpawnHandle);

pub struct SessionCtl<'a, C: EngineConnection> {
    pub(crate) queue: &'a Arc<OutboundQueue>,
    pub(crate) ctx: &'a mut Context<EngineSession<C>>,
    pub(crate) close: &'a mut Option<CloseReason>,
}

impl<C: EngineConnection> SessionCtl<'_, C> {
    pub fn handle(&self) -> SessionHandle<C> {
        SessionHandle {
            queue: self.queue.clone(),
            addr: self.ctx.address(),
        }
    }

    /// Queues a frame; see [`SessionHandle::send`].
    pub fn send(&mut self, frame: WireFrame) -> Result<(), EnqueueError> {
        match self.queue.push(frame)? {
            Pushed::Queued => Ok(()),
            Pushed::Overflowed => {
                self.close(CloseReason::SlowConsumer);
                Err(EnqueueError::Full)
            }
        }
    }

    /// Closes the session once the current callback returns.
    pub fn close(&mut self, reason: CloseReason) {
        self.close.get_or_insert(reason);
    }

    /// Calls `f` on the connection after `delay`, unless the session ended first or the
    /// returned timer is cancelled.
    pub fn run_later<F>(&mut self, delay: Duration, f: F) -> Timer
    where
        F: FnOnce(&mut C, &mut SessionCtl<'_, C>) + 'static,
    {
        Timer(self.ctx.run_later(delay, move |session, ctx| {
            session.with_connection(ctx, f);
        }))
    }

    /// Drops a callback of [`run_later`](Self::run_later) that has not run (and the
    /// memory it holds, which a long-lived session would otherwise keep until it fires).
    pub fn cancel(&mut self, timer: Timer) {
        self.ctx.cancel_future(timer.0);
    }
}
