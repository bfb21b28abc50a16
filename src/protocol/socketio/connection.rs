//! The Socket.IO state of one Engine.IO session: its sockets (one per connected
//! namespace) with their handlers, and the binary packet being reassembled.
//!
//! It lives inside the session actor, so handlers run there without locks, and every
//! malformed input becomes a [`ProtocolViolation`] that closes this session only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use bytes::Bytes;
use serde_json::{Value, json};

use super::namespace::{DisconnectReason, Handshake, SocketHandler};
use super::packet::{Packet, PacketKind, header, write_array};
use super::socket::{AckSender, Socket};
use super::{Payload, SioShared};
use crate::protocol::engineio::{
    CloseReason, EngineConnection, Message, ProtocolViolation, RequestInfo, SessionCtl,
    SessionHandle, Timer, WireFrame,
};

/// Attachments of one packet may not add up to more than this.
const MAX_ATTACHMENT_BYTES: usize = 16 * 1024 * 1024;

/// The handshake request, kept for the CONNECTs to come in a compact form that owns its
/// bytes: a `HeaderMap` costs about 2 KB per idle connection (and its values would pin
/// the connection's read buffer), a boxed slice of `(HeaderName, HeaderValue)` still
/// about 800 B in small allocations; one blob of text is a few hundred bytes.
struct StoredRequest {
    /// `name:value\n` per header, in order: names cannot contain `:`, and neither names
    /// nor values can contain `\n`, so the split is unambiguous.
    headers: Box<[u8]>,
    query: Box<str>,
    remote_addr: Option<SocketAddr>,
}

impl StoredRequest {
    fn new(request: &RequestInfo) -> Self {
        let size = request
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum();
        let mut headers = Vec::with_capacity(size);
        for (name, value) in request.headers.iter() {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.push(b':');
            headers.extend_from_slice(value.as_bytes());
            headers.push(b'\n');
        }
        StoredRequest {
            headers: headers.into_boxed_slice(),
            query: request.query.as_str().into(),
            remote_addr: request.remote_addr,
        }
    }

    fn handshake(&self, auth: Option<Value>) -> Handshake {
        let lines = self.headers.split(|&b| b == b'\n');
        let mut headers = HeaderMap::with_capacity(lines.clone().count().saturating_sub(1));
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = HeaderName::from_bytes(&line[..colon]);
            let value = HeaderValue::from_bytes(&line[colon + 1..]);
            if let (Ok(name), Ok(value)) = (name, value) {
                headers.append(name, value);
            }
        }
        Handshake {
            headers,
            query: self.query.to_string(),
            remote_addr: self.remote_addr,
            auth,
        }
    }
}

/// Requests to a connection from its [`Socket`] handles.
pub enum SioCommand {
    Disconnect { socket: Socket },
    DisconnectAt { socket: Socket, when: Instant },
}

struct Slot {
    socket: Socket,
    handler: Box<dyn SocketHandler>,
}

/// A BINARY_EVENT or BINARY_ACK waiting for its attachments.
struct Reassembly {
    packet: Packet,
    attachments: Vec<Bytes>,
    bytes: usize,
}

pub struct SioConnection {
    shared: Arc<SioShared>,
    session: SessionHandle<SioConnection>,
    request: StoredRequest,
    slots: Vec<Slot>,
    /// Closes the session if no namespace connects in time; cancelled at the first that does.
    connect_timer: Option<Timer>,
    /// Boxed: rare, and a `Packet` inline would be paid by every idle session.
    reassembly: Option<Box<Reassembly>>,
}

impl SioConnection {
    pub(crate) fn new(
        shared: Arc<SioShared>,
        session: SessionHandle<SioConnection>,
        request: &RequestInfo,
    ) -> Self {
        SioConnection {
            shared,
            session,
            request: StoredRequest::new(request),
            slots: Vec::new(),
            connect_timer: None,
            reassembly: None,
        }
    }

    fn dispatch(
        &mut self,
        packet: Packet,
        attachments: Vec<Bytes>,
        ctl: &mut SessionCtl<'_, Self>,
    ) -> Result<(), ProtocolViolation> {
        match packet.kind {
            PacketKind::Connect => return self.connect(packet, ctl),
            PacketKind::Disconnect => {
                if let Some(index) = self.slot_index(&packet.namespace) {
                    let mut slot = self.slots.swap_remove(index);
                    slot.socket.mark_closed();
                    notify_disconnect(&mut slot, DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let Some(index) = self.slot_index(&packet.namespace) else {
                    // Node ignores events for a namespace the client is not in.
                    return Ok(());
                };
                let Some(Value::Array(mut items)) = packet.data else {
                    return Err(violation("event without arguments"));
                };
                let Value::String(event) = items.remove(0) else {
                    return Err(violation("event name is not a string"));
                };
                let slot = &mut self.slots[index];
                let ack = packet.ack_id.map(|id| AckSender {
                    socket: slot.socket.clone(),
                    id,
                });
                let payload = Payload {
                    args: items,
                    attachments,
                };
                let handler = &mut slot.handler;
                guarded("on_event", || handler.on_event(&event, payload, ack))?;
            }
            // The server never asks for acks, so there is nothing to match them with.
            PacketKind::Ack | PacketKind::BinaryAck => {}
            PacketKind::ConnectError => return Err(violation("CONNECT_ERROR from a client")),
        }
        Ok(())
    }

    fn connect(
        &mut self,
        packet: Packet,
        ctl: &mut SessionCtl<'_, Self>,
    ) -> Result<(), ProtocolViolation> {
        let namespace = packet.namespace;
        if self.slot_index(&namespace).is_some() {
            log::debug!("duplicate CONNECT to {namespace} ignored");
            return Ok(());
        }
        let Some(handler_factory) = self.shared.namespaces.get(&namespace).cloned() else {
            let _ = ctl.send(connect_error(&namespace, "Invalid namespace"));
            return Ok(());
        };
        let socket = Socket::new(
            crate::protocol::engineio::new_id(),
            &namespace,
            self.session.clone(),
        );
        let handshake = self.request.handshake(packet.data);
        let accepted = guarded("connect", || {
            handler_factory.connect(socket.clone(), &handshake)
        })
        .inspect_err(|_| socket.mark_closed())?;
        match accepted {
            Ok(handler) => {
                let mut text = header(PacketKind::Connect, &namespace, 0, None);
                text.push_str(&json!({ "sid": socket.id() }).to_string());
                let _ = ctl.send(WireFrame::Text(text.into()));
                socket.mark_connected();
                // Most sessions join one namespace for their whole life: no spare slots.
                self.slots.reserve_exact(1);
                self.slots.push(Slot { socket, handler });
                if let Some(timer) = self.connect_timer.take() {
                    ctl.cancel(timer);
                }
            }
            Err(refusal) => {
                socket.mark_closed();
                let _ = ctl.send(connect_error(&namespace, &refusal.message));
            }
        }
        Ok(())
    }

    fn slot_index(&self, namespace: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.socket.namespace() == namespace)
    }

    /// Ends one socket from the server side: DISCONNECT to the client, then the handler.
    fn disconnect(&mut self, socket: &Socket, ctl: &mut SessionCtl<'_, Self>) {
        let Some(index) = self.slots.iter().position(|slot| slot.socket.same(socket)) else {
            return;
        };
        let mut slot = self.slots.swap_remove(index);
        let _ = ctl.send(disconnect_frame(slot.socket.namespace()));
        slot.socket.mark_closed();
        notify_disconnect(&mut slot, DisconnectReason::ServerNamespaceDisconnect);
    }
}

/// Runs application code so that a panic in it ends this session, not the worker thread
/// and every other session on it.
fn guarded<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, ProtocolViolation> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| {
        log::error!("socket.io: a namespace handler panicked in {what}");
        violation("handler panicked")
    })
}

fn notify_disconnect(slot: &mut Slot, reason: DisconnectReason) {
    let handler = &mut slot.handler;
    let _ = guarded("on_disconnect", || handler.on_disconnect(reason));
}

fn violation(what: &str) -> ProtocolViolation {
    ProtocolViolation(what.to_string())
}

fn connect_error(namespace: &str, message: &str) -> WireFrame {
    let mut text = header(PacketKind::ConnectError, namespace, 0, None);
    text.push_str(&json!({ "message": message }).to_string());
    WireFrame::Text(text.into())
}

fn disconnect_frame(namespace: &str) -> WireFrame {
    WireFrame::Text(header(PacketKind::Disconnect, namespace, 0, None).into())
}

/// Encodes EVENT/BINARY_EVENT or ACK/BINARY_ACK with its attachments as one frame.
pub(crate) fn encode(
    kind: PacketKind,
    namespace: &str,
    ack_id: Option<u64>,
    event: Option<&str>,
    payload: &Payload,
) -> WireFrame {
    let binary = !payload.attachments.is_empty();
    let kind = match (kind, binary) {
        (PacketKind::Event, true) => PacketKind::BinaryEvent,
        (PacketKind::Ack, true) => PacketKind::BinaryAck,
        (kind, _) => kind,
    };
    let mut text = header(kind, namespace, payload.attachments.len(), ack_id).into_bytes();
    write_array(&mut text, event, &payload.args);
    let text = String::from_utf8(text).expect("serde_json writes UTF-8");
    if !binary {
        return WireFrame::Text(text.into());
    }
    let mut parts = Vec::with_capacity(1 + payload.attachments.len());
    parts.push(WireFrame::Text(text.into()));
    parts.extend(payload.attachments.iter().cloned().map(WireFrame::Binary));
    WireFrame::Group(parts.into())
}

impl EngineConnection for SioConnection {
    type Command = SioCommand;

    fn on_open(&mut self, ctl: &mut SessionCtl<'_, Self>) {
        self.connect_timer = Some(ctl.run_later(self.shared.connect_timeout, |conn, ctl| {
            conn.connect_timer = None;
            if conn.slots.is_empty() {
                log::debug!("socket.io: no CONNECT within the connect timeout");
                ctl.close(CloseReason::ServerClose);
            }
        }));
    }

    fn on_message(
        &mut self,
        message: Message,
        ctl: &mut SessionCtl<'_, Self>,
    ) -> Result<(), ProtocolViolation> {
        match message {
            Message::Text(text) => {
                if self.reassembly.is_some() {
                    return Err(violation("text packet while attachments were expected"));
                }
                let packet =
                    Packet::decode(&text).map_err(|error| ProtocolViolation(error.to_string()))?;
                if packet.attachments > 0 {
                    self.reassembly = Some(Box::new(Reassembly {
                        attachments: Vec::with_capacity(packet.attachments),
                        packet,
                        bytes: 0,
                    }));
                    return Ok(());
                }
                self.dispatch(packet, Vec::new(), ctl)
            }
            Message::Binary(data) => {
                let Some(reassembly) = self.reassembly.as_mut() else {
                    return Err(violation("unexpected binary attachment"));
                };
                reassembly.bytes += data.len();
                if reassembly.bytes > MAX_ATTACHMENT_BYTES {
                    return Err(violation("attachments too large"));
                }
                reassembly.attachments.push(data);
                if reassembly.attachments.len() < reassembly.packet.attachments {
                    return Ok(());
                }
                let Some(reassembly) = self.reassembly.take() else {
                    return Ok(());
                };
                let Reassembly {
                    packet,
                    attachments,
                    ..
                } = *reassembly;
                self.dispatch(packet, attachments, ctl)
            }
        }
    }

    fn on_command(&mut self, command: SioCommand, ctl: &mut SessionCtl<'_, Self>) {
        match command {
            SioCommand::Disconnect { socket } => self.disconnect(&socket, ctl),
            SioCommand::DisconnectAt { socket, when } => {
                let delay = when.saturating_duration_since(Instant::now());
                ctl.run_later(delay, move |conn, ctl| conn.disconnect(&socket, ctl));
            }
        }
    }

    fn on_shutdown(&mut self, ctl: &mut SessionCtl<'_, Self>) {
        for slot in &self.slots {
            let _ = ctl.send(disconnect_frame(slot.socket.namespace()));
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        let reason = match reason {
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShutdown => DisconnectReason::ServerShutdown,
            CloseReason::ClientClose
            | CloseReason::TransportClose
            | CloseReason::TransportError
            | CloseReason::ServerClose => DisconnectReason::TransportClose,
        };
        for mut slot in self.slots.drain(..) {
            slot.socket.mark_closed();
            notify_disconnect(&mut slot, reason);
        }
        self.reassembly = None;
    }
}
