//! The session actor: one per Engine.IO connection, whatever carries it.
//!
//! It owns the application's connection state, the heartbeat, the upgrade state machine
//! and the choice of which transport consumes the outbound queue. Transports talk to it
//! with [`TransportMsg`] (awaited with `send`, so a client that floods us waits for the
//! actor instead of filling its mailbox); the application talks to it through
//! [`SessionHandle`](super::SessionHandle)s.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message as ActixMessage,
    SpawnHandle, WrapFuture,
};
use bytestring::ByteString;
use tokio::sync::oneshot;

use super::app::{AppCommand, CloseReason, CloseSession, EngineConnection, SessionCtl};
use super::error::EngineError;
use super::packet::{Inbound, PacketError, control, encode_payload};
use super::queue::{OutboundQueue, WireFrame};
use super::server::{EngineShared, TransportKind};

/// How long a polling GET that arrives during the upgrade is held before its NOOP, as
/// Node's periodic upgrade check does: the client should be switching, not polling.
const UPGRADE_POLL_HOLD: Duration = Duration::from_millis(100);

/// A polling client that POSTs CLOSE usually has its GET in flight on another connection,
/// which may reach us a moment later: the session waits this long for it, so that the
/// GET ends cleanly with a NOOP instead of a 400.
const CLOSE_POLL_GRACE: Duration = Duration::from_millis(100);

/// Everything a transport tells its session.
#[derive(ActixMessage)]
#[rtype(result = "Result<(), EngineError>")]
pub(crate) enum TransportMsg {
    /// A packet read from the WebSocket.
    Packet(Inbound),
    /// Answered once everything sent before it has been handled; dropped unanswered when
    /// the session is closing.
    Confirm(oneshot::Sender<()>),
    /// The packets of one polling POST, in order.
    Packets(Vec<Inbound>),
    /// The client sent something that is not Engine.IO.
    Malformed(PacketError),
    /// A polling GET: answered through the sender once there is something to say.
    Poll(oneshot::Sender<Result<String, EngineError>>),
    /// A WebSocket with this sid wants to take over; refused unless we are polling.
    UpgradeRequest,
    /// The new WebSocket got `2probe` and answered `3probe`.
    UpgradeProbed,
    /// The client sent `5` on the new WebSocket: it is now the transport.
    UpgradeCompleted,
    /// The probing WebSocket went away before completing.
    UpgradeAborted,
    /// The current transport ended or broke.
    TransportGone(CloseReason),
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    None,
    /// A WebSocket is open for this sid but has not probed yet.
    Requested,
    Probed,
    Done,
}

pub struct EngineSession<C: EngineConnection> {
    sid: Arc<str>,
    shared: Arc<EngineShared>,
    queue: Arc<OutboundQueue>,
    conn: C,
    transport: TransportKind,
    upgrade: Upgrade,
    poll_pending: bool,
    /// When the next PING is due; timers are computed from it so that their lateness
    /// does not add up over the heartbeat.
    next_ping: Instant,
    pong_deadline: Option<SpawnHandle>,
    /// When the outstanding PING times out. Checked on every transport message as well
    /// as by the timer, so a busy worker that runs the timer late cannot keep a dead
    /// session answering.
    pong_due: Option<Instant>,
    /// The client sent CLOSE over polling with no GET pending (see [`CLOSE_POLL_GRACE`]).
    client_closing: bool,
    /// Closed by the server with no GET pending: registered until the client's next GET
    /// has collected the last frames (or a short while has passed).
    lingering: bool,
    closing: Option<CloseReason>,
}

impl<C: EngineConnection> EngineSession<C> {
    pub(crate) fn new(
        sid: Arc<str>,
        shared: Arc<EngineShared>,
        queue: Arc<OutboundQueue>,
        conn: C,
        transport: TransportKind,
        opened: Instant,
    ) -> Self {
        let next_ping = opened + shared.config.ping_interval;
        EngineSession {
            sid,
            shared,
            queue,
            conn,
            transport,
            upgrade: Upgrade::None,
            poll_pending: false,
            next_ping,
            pong_deadline: None,
            pong_due: None,
            client_closing: false,
            lingering: false,
            closing: None,
        }
    }

    /// Runs `f` on the connection with a [`SessionCtl`], then honours any close it asked.
    pub(crate) fn with_connection<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut C, &mut SessionCtl<'_, C>) -> R,
    ) -> Option<R> {
        if self.closing.is_some() {
            return None;
        }
        let mut close = None;
        let result = {
            let mut ctl = SessionCtl {
                queue: &self.queue,
                ctx,
                close: &mut close,
            };
            f(&mut self.conn, &mut ctl)
        };
        if let Some(reason) = close {
            self.close(reason, ctx);
        }
        Some(result)
    }

    fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        let delay = self.next_ping.saturating_duration_since(Instant::now());
        ctx.run_later(delay, |session, ctx| session.ping(ctx));
    }

    fn ping(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.queue
            .push_control(WireFrame::Text(ByteString::from_static(control::PING)));
        let deadline = self.next_ping + self.shared.config.ping_timeout;
        self.pong_due = Some(deadline);
        let delay = deadline.saturating_duration_since(Instant::now());
        self.pong_deadline = Some(ctx.run_later(delay, |session, ctx| {
            session.pong_deadline = None;
            session.close(CloseReason::PingTimeout, ctx);
        }));
    }

    fn on_packet(&mut self, packet: Inbound, ctx: &mut Context<Self>) {
        self.shared
            .metrics
            .frames_in_total
            .fetch_add(1, Ordering::Relaxed);
        match packet {
            Inbound::Close => {
                if self.transport == TransportKind::Polling && !self.poll_pending {
                    self.client_closing = true;
                    ctx.run_later(CLOSE_POLL_GRACE, |session, ctx| {
                        session.close(CloseReason::ClientClose, ctx)
                    });
                } else {
                    self.close(CloseReason::ClientClose, ctx);
                }
            }
            Inbound::Ping(_) => {
                // In Engine.IO v4 the server pings and the client answers (the upgrade's
                // `2probe` is the transport's, never the session's). Node ends such a
                // session ("invalid heartbeat direction"); answering it would let a client
                // queue PONGs, which are control frames outside the queue's bound.
                log::info!(
                    "engine.io session {} closed: the client sent PING (the server pings in v4)",
                    self.sid
                );
                self.close(CloseReason::ParseError, ctx);
            }
            Inbound::Pong(_) => {
                // An unsolicited PONG must not start a second heartbeat.
                if let Some(deadline) = self.pong_deadline.take() {
                    ctx.cancel_future(deadline);
                    self.pong_due = None;
                    self.next_ping = Instant::now() + self.shared.config.ping_interval;
                    self.schedule_ping(ctx);
                }
            }
            Inbound::Message(message) => {
                let result = self.with_connection(ctx, |conn, ctl| conn.on_message(message, ctl));
                if let Some(Err(violation)) = result {
                    log::info!("engine.io session {} closed: {violation}", self.sid);
                    self.close(CloseReason::ParseError, ctx);
                }
            }
            // Only meaningful on a probing WebSocket, which its reader handles.
            Inbound::Upgrade | Inbound::Noop => {}
        }
    }

    /// Ends the session: tells the application, unregisters, and lets the transport
    /// deliver what it still can (or drops it when the client is gone or stuck).
    pub(crate) fn close(&mut self, reason: CloseReason, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(reason);
        match reason {
            CloseReason::SlowConsumer => {
                self.shared
                    .metrics
                    .slow_consumer_closes
                    .fetch_add(1, Ordering::Relaxed);
                log::warn!(
                    "engine.io session {} closed: slow consumer (outbound queue of {} frames full)",
                    self.sid,
                    self.shared.config.outbound_queue
                );
            }
            _ => log::debug!("engine.io session {} closed: {reason:?}", self.sid),
        }
        self.conn.on_close(reason);
        let client_gone = matches!(
            reason,
            CloseReason::SlowConsumer
                | CloseReason::PingTimeout
                | CloseReason::TransportClose
                | CloseReason::TransportError
        );
        match self.transport {
            TransportKind::Polling => {
                // A pending GET ends with CLOSE, or NOOP when the client asked to close.
                let last = if reason == CloseReason::ClientClose {
                    control::NOOP
                } else {
                    control::CLOSE
                };
                if reason == CloseReason::SlowConsumer {
                    self.queue.discard();
                } else {
                    self.queue
                        .push_control(WireFrame::Text(ByteString::from_static(last)));
                    self.queue.close();
                }
                let linger = matches!(
                    reason,
                    CloseReason::ServerClose | CloseReason::ServerShutdown
                );
                if self.poll_pending {
                    // The pending GET takes the last frames, then the actor stops.
                    self.shared.deregister(&self.sid, self.transport);
                } else if linger {
                    // Like Node's polling `closeTimeout`: what the server had to say (the
                    // DISCONNECTs, the CLOSE) waits for the client's next GET, briefly.
                    self.lingering = true;
                    ctx.run_later(self.shared.config.ping_timeout, |_, ctx| ctx.stop());
                } else {
                    self.shared.deregister(&self.sid, self.transport);
                    ctx.stop();
                }
            }
            TransportKind::WebSocket => {
                self.shared.deregister(&self.sid, self.transport);
                if client_gone {
                    self.queue.discard();
                } else {
                    self.queue.close();
                }
                ctx.stop();
            }
        }
    }

    fn start_poll(
        &mut self,
        reply: oneshot::Sender<Result<String, EngineError>>,
        ctx: &mut Context<Self>,
    ) {
        self.poll_pending = true;
        if self.upgrade == Upgrade::Probed {
            let queue = self.queue.clone();
            ctx.run_later(UPGRADE_POLL_HOLD, move |_, _| queue.wake_consumer());
        }
        let queue = self.queue.clone();
        let wait = async move {
            let mut reply = reply;
            let cancelled = tokio::select! {
                _ = queue.ready() => false,
                _ = reply.closed() => true,
            };
            (reply, cancelled)
        };
        ctx.spawn(
            wait.into_actor(self)
                .map(|(reply, cancelled), session, ctx| session.finish_poll(reply, cancelled, ctx)),
        );
    }

    fn finish_poll(
        &mut self,
        reply: oneshot::Sender<Result<String, EngineError>>,
        cancelled: bool,
        ctx: &mut Context<Self>,
    ) {
        self.poll_pending = false;
        if cancelled {
            // The client gave up its GET: Node treats that as the transport closing.
            self.close(CloseReason::TransportClose, ctx);
            ctx.stop();
            return;
        }
        let body = if self.closing.is_none() && self.upgrade == Upgrade::Done {
            // The WebSocket took over while this GET waited.
            Err(EngineError::BadRequest)
        } else if self.closing.is_none() && self.upgrade == Upgrade::Probed {
            Ok(control::NOOP.to_string())
        } else {
            let frames = self.queue.drain();
            if frames.is_empty() {
                Ok(control::NOOP.to_string())
            } else {
                let count: u64 = frames.iter().map(WireFrame::message_count).sum();
                self.shared
                    .metrics
                    .frames_out_total
                    .fetch_add(count, Ordering::Relaxed);
                Ok(encode_payload(&frames))
            }
        };
        let _ = reply.send(body);
        if self.closing.is_some() {
            ctx.stop();
        }
    }
}

impl<C: EngineConnection> Actor for EngineSession<C> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.schedule_ping(ctx);
        self.with_connection(ctx, |conn, ctl| conn.on_open(ctl));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if self.closing.is_none() {
            // Stopped without a close (the arbiter went away): still tell everyone.
            self.closing = Some(CloseReason::ServerShutdown);
            self.conn.on_close(CloseReason::ServerShutdown);
        }
        // Idempotent: most closes have unregistered already, a lingering one has not.
        self.shared.deregister(&self.sid, self.transport);
        if self.transport == TransportKind::Polling {
            self.queue.discard();
        } else {
            self.queue.close();
        }
    }
}

impl<C: EngineConnection> Handler<TransportMsg> for EngineSession<C> {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: TransportMsg, ctx: &mut Context<Self>) -> Self::Result {
        if self.closing.is_some() {
            return match msg {
                TransportMsg::Poll(reply) if self.lingering && !self.poll_pending => {
                    self.start_poll(reply, ctx);
                    Ok(())
                }
                _ => Err(EngineError::UnknownSid),
            };
        }
        if self.pong_due.is_some_and(|due| Instant::now() >= due) {
            self.close(CloseReason::PingTimeout, ctx);
            return Err(EngineError::UnknownSid);
        }
        match msg {
            TransportMsg::Packet(packet) => self.on_packet(packet, ctx),
            TransportMsg::Confirm(reply) => {
                let _ = reply.send(());
            }
            TransportMsg::Packets(packets) => {
                if self.client_closing {
                    return Ok(());
                }
                if self.transport != TransportKind::Polling || self.upgrade == Upgrade::Done {
                    return Err(EngineError::BadRequest);
                }
                for packet in packets {
                    if self.closing.is_some() {
                        break;
                    }
                    self.on_packet(packet, ctx);
                }
            }
            TransportMsg::Malformed(error) => {
                log::info!("engine.io session {} closed: {error}", self.sid);
                self.close(CloseReason::ParseError, ctx);
            }
            TransportMsg::Poll(reply) => {
                if self.transport != TransportKind::Polling || self.upgrade == Upgrade::Done {
                    return Err(EngineError::BadRequest);
                }
                if self.poll_pending {
                    log::info!(
                        "engine.io session {} closed: overlapping polling GET",
                        self.sid
                    );
                    self.close(CloseReason::TransportError, ctx);
                    return Err(EngineError::BadRequest);
                }
                self.start_poll(reply, ctx);
                if self.client_closing {
                    self.close(CloseReason::ClientClose, ctx);
                }
            }
            TransportMsg::UpgradeRequest => {
                if self.transport != TransportKind::Polling || self.upgrade != Upgrade::None {
                    return Err(EngineError::BadRequest);
                }
                self.upgrade = Upgrade::Requested;
            }
            TransportMsg::UpgradeProbed => {
                if self.upgrade != Upgrade::Requested {
                    return Err(EngineError::BadRequest);
                }
                self.upgrade = Upgrade::Probed;
                if self.poll_pending {
                    self.queue.wake_consumer();
                }
            }
            TransportMsg::UpgradeCompleted => {
                if self.upgrade != Upgrade::Probed {
                    return Err(EngineError::BadRequest);
                }
                self.upgrade = Upgrade::Done;
                self.transport = TransportKind::WebSocket;
                self.shared.transport_changed();
                // The WebSocket drains the queue from now on; a pending GET ends empty.
                if self.poll_pending {
                    self.queue.wake_consumer();
                }
            }
            TransportMsg::UpgradeAborted => {
                if self.upgrade != Upgrade::Done {
                    self.upgrade = Upgrade::None;
                }
            }
            TransportMsg::TransportGone(reason) => self.close(reason, ctx),
            TransportMsg::Shutdown => {
                self.with_connection(ctx, |conn, ctl| conn.on_shutdown(ctl));
                self.close(CloseReason::ServerShutdown, ctx);
            }
        }
        Ok(())
    }
}

impl<C: EngineConnection> Handler<CloseSession> for EngineSession<C> {
    type Result = ();
    fn handle(&mut self, msg: CloseSession, ctx: &mut Context<Self>) {
        self.close(msg.0, ctx);
    }
}

impl<C: EngineConnection> Handler<AppCommand<C::Command>> for EngineSession<C> {
    type Result = ();
    fn handle(&mut self, msg: AppCommand<C::Command>, ctx: &mut Context<Self>) {
        self.with_connection(ctx, |conn, ctl| conn.on_command(msg.0, ctl));
    }
}
