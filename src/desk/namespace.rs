//! The desk's Socket.IO namespace: authentication at CONNECT, one handler per socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix::Addr;
use actix::dev::SendError;
use actix_web::http::header;

use super::DeskChatServer;
use super::events::{self, AckBody};
use super::peer::DeskPeer;
use crate::broker::auth::TokenService;
use crate::broker::cookie::join_cookie_fields;
use crate::broker::validation::parse_post;
use crate::broker::{Connect, Disconnect, Identity, Post, PostError, PostReply, SocketKey};
use crate::config::ChatSettings;
use crate::protocol::socketio::{
    AckSender, ConnectRefusal, DisconnectReason, Handshake, Namespace, Payload, Socket,
    SocketHandler,
};

pub struct DeskNamespace {
    tokens: Arc<TokenService>,
    chat: Addr<DeskChatServer>,
    limits: Arc<ChatSettings>,
    unanswered: Unanswered,
}

/// Messages of all sockets accepted and not yet answered; shutdown waits for zero so
/// that no ack is cut off by the closing sessions.
#[derive(Clone, Default)]
pub struct Unanswered(Arc<AtomicUsize>);

impl Unanswered {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl DeskNamespace {
    pub fn new(
        tokens: Arc<TokenService>,
        chat: Addr<DeskChatServer>,
        limits: ChatSettings,
    ) -> Self {
        DeskNamespace {
            tokens,
            chat,
            limits: Arc::new(limits),
            unanswered: Unanswered::default(),
        }
    }

    pub fn unanswered(&self) -> Unanswered {
        self.unanswered.clone()
    }
}

/// The handshake's `Cookie` header fields as one string.
fn cookie_header(handshake: &Handshake) -> Option<String> {
    let fields = handshake.headers.get_all(header::COOKIE);
    join_cookie_fields(fields.filter_map(|v| v.to_str().ok()))
}

impl Namespace for DeskNamespace {
    fn connect(
        &self,
        socket: Socket,
        handshake: &Handshake,
    ) -> Result<Box<dyn SocketHandler>, ConnectRefusal> {
        let identity = self
            .tokens
            .authenticate(cookie_header(handshake).as_deref())
            .map_err(|refusal| {
                log::info!(
                    "connection refused from {:?}: {refusal}",
                    handshake.remote_addr
                );
                ConnectRefusal {
                    message: refusal.to_string(),
                }
            })?;
        // The broker ends the socket when the token expires (Connect carries `exp`).
        log::info!(
            "connect user={} rol={} socket={}",
            identity.user,
            identity.role.as_str(),
            socket.id()
        );

        let key = SocketKey::next();
        self.chat.do_send(Connect {
            key,
            identity: identity.clone(),
            peer: DeskPeer::new(socket.clone()),
        });
        Ok(Box::new(DeskSocket {
            key,
            identity,
            socket,
            chat: self.chat.clone(),
            limits: self.limits.clone(),
            in_flight: Arc::default(),
            unanswered: self.unanswered.clone(),
        }))
    }
}

/// One signed-in socket.
struct DeskSocket {
    key: SocketKey,
    identity: Identity,
    socket: Socket,
    chat: Addr<DeskChatServer>,
    limits: Arc<ChatSettings>,
    /// Messages sent and not yet answered; bounded by `chat.max_in_flight_per_socket`.
    in_flight: Arc<AtomicUsize>,
    unanswered: Unanswered,
}

impl DeskSocket {
    fn post(&mut self, payload: Payload, ack: Option<AckSender>) {
        let request = match parse_post(payload.args.into_iter().next(), &self.limits) {
            Ok(request) => request,
            Err(invalid) => return self.answer(ack, Err(invalid.into())),
        };
        if self.in_flight.load(Ordering::Acquire) >= self.limits.max_in_flight_per_socket {
            return self.answer(ack, Err(PostError::TooManyInFlight));
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.unanswered.0.fetch_add(1, Ordering::AcqRel);
        let (socket, user) = (self.socket.clone(), self.identity.user.clone());
        let (in_flight, unanswered) = (self.in_flight.clone(), self.unanswered.clone());
        let post = Post {
            from: self.key,
            identity: self.identity.clone(),
            request,
            reply: PostReply::new(move |outcome| {
                in_flight.fetch_sub(1, Ordering::AcqRel);
                reply(&socket, &user, ack, outcome);
                unanswered.0.fetch_sub(1, Ordering::AcqRel);
            }),
        };
        // The server's mailbox is bounded: when it is full the broker is behind, and the
        // sender hears so at once rather than waiting in a queue of our own.
        if let Err(SendError::Full(post) | SendError::Closed(post)) = self.chat.try_send(post) {
            post.reply.send(Err(PostError::Busy));
        }
    }

    fn answer(&self, ack: Option<AckSender>, outcome: Result<crate::broker::Posted, PostError>) {
        reply(&self.socket, &self.identity.user, ack, outcome);
    }
}

/// Ack the sender, or tell it with `mensaje_error` when it asked for no ack.
fn reply(
    socket: &Socket,
    user: &str,
    ack: Option<AckSender>,
    outcome: Result<crate::broker::Posted, PostError>,
) {
    if let Err(refusal) = &outcome {
        log::info!("message from {user} refused: {refusal}");
    }
    let body = AckBody::of(&outcome);
    let sent = match ack {
        Some(ack) => ack.send_with(&body),
        None if outcome.is_err() => {
            socket.emit(events::REFUSED, Payload::json(vec![body.to_value()]))
        }
        None => Ok(()),
    };
    if let Err(gone) = sent {
        log::debug!("reply to {user} not sent: {gone}");
    }
}

impl SocketHandler for DeskSocket {
    fn on_event(&mut self, event: &str, payload: Payload, ack: Option<AckSender>) {
        match event {
            events::SEND => self.post(payload, ack),
            other => log::debug!("ignored event {other:?} from {}", self.identity.user),
        }
    }

    fn on_disconnect(&mut self, reason: DisconnectReason) {
        log::info!(
            "disconnect user={} socket={} reason={reason:?}",
            self.identity.user,
            self.socket.id()
        );
        self.chat.do_send(Disconnect { key: self.key });
    }
}
