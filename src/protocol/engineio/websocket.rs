//! The WebSocket transport: the upgrade handshake of a request, the reader task that
//! feeds the session actor with backpressure, and the writer task that drains the
//! session's outbound queue into the socket.
//!
//! Both tasks are plain futures on the worker's runtime (no thread, no actor each), and
//! both end when the session's queue closes, so nothing outlives its session.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::Recipient;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, Session};

use super::app::CloseReason;
use super::error::EngineError;
use super::packet::{Inbound, Message, control};
use super::queue::{OutboundQueue, WireFrame};
use super::server::{EngineServer, EngineShared, TransportKind};
use super::session::TransportMsg;

/// How long a probing WebSocket may take to send `5` (Node's `upgradeTimeout`).
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// `GET ...&transport=websocket[&sid=...]`.
pub(crate) async fn handle(
    server: &EngineServer,
    req: HttpRequest,
    body: web::Payload,
    sid: Option<&str>,
) -> Result<HttpResponse, EngineError> {
    let max_payload = server.shared.config.max_payload;
    match sid {
        None => {
            server.check_handshake(&req)?;
            let (response, ws, stream) =
                actix_ws::handle(&req, body).map_err(|_| EngineError::BadRequest)?;
            let opened = server.open_session(&req, TransportKind::WebSocket, Some(ws.clone()));
            let stream = limit(stream, max_payload);
            actix_web::rt::spawn(read_loop(stream, ws, opened.recipient, opened.queue));
            Ok(response)
        }
        Some(sid) => {
            server.check_allowed(&req)?;
            let entry = server.lookup(sid).ok_or(EngineError::UnknownSid)?;
            let (recipient, queue) = (entry.recipient.clone(), entry.queue.clone());
            match recipient.send(TransportMsg::UpgradeRequest).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // The session exists but already has (or is getting) a WebSocket: like
                    // Node, accept the socket and close it at once, leaving the session be.
                    let (response, ws, _stream) =
                        actix_ws::handle(&req, body).map_err(|_| EngineError::BadRequest)?;
                    actix_web::rt::spawn(ws.close(None));
                    return Ok(response);
                }
                Err(_) => return Err(EngineError::UnknownSid),
            }
            let (response, ws, stream) = match actix_ws::handle(&req, body) {
                Ok(parts) => parts,
                Err(_) => {
                    recipient.do_send(TransportMsg::UpgradeAborted);
                    return Err(EngineError::BadRequest);
                }
            };
            let stream = limit(stream, max_payload);
            actix_web::rt::spawn(probe_then_read(stream, ws, recipient, queue));
            Ok(response)
        }
    }
}

/// A message larger than `maxPayload` ends the connection, framed in one piece or not.
fn limit(stream: actix_ws::MessageStream, max_payload: usize) -> AggregatedMessageStream {
    stream
        .max_frame_size(max_payload)
        .aggregate_continuations()
        .max_continuation_size(max_payload)
}

enum Read {
    Packet(Inbound),
    Malformed(super::packet::PacketError),
    /// A WebSocket-level ping, answered here.
    Ping(bytes::Bytes),
    Ignore,
    Closed(CloseReason),
}

async fn next(stream: &mut AggregatedMessageStream, queue: &OutboundQueue) -> Read {
    let item = tokio::select! {
        item = stream.recv() => item,
        _ = queue.closed() => return Read::Closed(CloseReason::TransportClose),
    };
    match item {
        Some(Ok(AggregatedMessage::Text(text))) => match Inbound::decode_text(text) {
            Ok(packet) => Read::Packet(packet),
            Err(error) => Read::Malformed(error),
        },
        Some(Ok(AggregatedMessage::Binary(data))) => {
            Read::Packet(Inbound::Message(Message::Binary(data)))
        }
        Some(Ok(AggregatedMessage::Ping(data))) => Read::Ping(data),
        Some(Ok(AggregatedMessage::Pong(_))) => Read::Ignore,
        Some(Ok(AggregatedMessage::Close(_))) | None => Read::Closed(CloseReason::TransportClose),
        Some(Err(error)) => {
            log::debug!("websocket read error: {error}");
            Read::Closed(CloseReason::TransportError)
        }
    }
}

/// Forwards every packet to the session, waiting for it to be handled before reading
/// the next: a client cannot make us buffer more than one frame per connection.
async fn read_loop(
    mut stream: AggregatedMessageStream,
    mut ws: Session,
    session: Recipient<TransportMsg>,
    queue: Arc<OutboundQueue>,
) {
    loop {
        match next(&mut stream, &queue).await {
            Read::Packet(packet) => match session.send(TransportMsg::Packet(packet)).await {
                Ok(Ok(())) => {}
                _ => return,
            },
            Read::Malformed(error) => {
                session.do_send(TransportMsg::Malformed(error));
                return;
            }
            Read::Ping(data) => {
                if ws.pong(&data).await.is_err() {
                    session.do_send(TransportMsg::TransportGone(CloseReason::TransportClose));
                    return;
                }
            }
            Read::Ignore => {}
            Read::Closed(reason) => {
                if !queue.is_closed() {
                    session.do_send(TransportMsg::TransportGone(reason));
                }
                return;
            }
        }
    }
}

/// A WebSocket opened for an existing polling session: answer the probe, wait for `5`,
/// hand the socket to the session, then read as usual.
async fn probe_then_read(
    mut stream: AggregatedMessageStream,
    mut ws: Session,
    session: Recipient<TransportMsg>,
    queue: Arc<OutboundQueue>,
) {
    let completed = tokio::time::timeout(UPGRADE_TIMEOUT, async {
        loop {
            match next(&mut stream, &queue).await {
                Read::Packet(Inbound::Ping(data)) if &*data == "probe" => {
                    if ws.text(control::PONG_PROBE).await.is_err() {
                        return false;
                    }
                    if !matches!(session.send(TransportMsg::UpgradeProbed).await, Ok(Ok(()))) {
                        return false;
                    }
                }
                Read::Packet(Inbound::Upgrade) => {
                    return matches!(
                        session
                            .send(TransportMsg::UpgradeCompleted(ws.clone()))
                            .await,
                        Ok(Ok(()))
                    );
                }
                Read::Ping(data) => {
                    if ws.pong(&data).await.is_err() {
                        return false;
                    }
                }
                Read::Ignore => {}
                _ => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    if completed {
        read_loop(stream, ws, session, queue).await;
    } else {
        session.do_send(TransportMsg::UpgradeAborted);
        let _ = ws.close(None).await;
    }
}

/// Drains the queue into the socket. Each write waits for room in the socket (actix-ws
/// bounds it), and a write that cannot finish within a heartbeat means a client that
/// does not read: the session is closed as a slow consumer.
pub(crate) async fn write_loop(
    queue: Arc<OutboundQueue>,
    mut ws: Session,
    session: Recipient<TransportMsg>,
    shared: Arc<EngineShared>,
) {
    let write_timeout = shared.config.ping_interval + shared.config.ping_timeout;
    while let Some(frame) = queue.next().await {
        let count = frame.message_count();
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(write_timeout, write_frame(&mut ws, frame)) => outcome,
            _ = queue.discarded() => return,
        };
        match outcome {
            Ok(Ok(())) => {
                shared
                    .metrics
                    .frames_out_total
                    .fetch_add(count, Ordering::Relaxed);
            }
            Ok(Err(_closed)) => {
                session.do_send(TransportMsg::TransportGone(CloseReason::TransportClose));
                queue.discard();
                return;
            }
            Err(_elapsed) => {
                session.do_send(TransportMsg::TransportGone(CloseReason::SlowConsumer));
                queue.discard();
                return;
            }
        }
    }
    let _ = ws.close(None).await;
}

async fn write_frame(ws: &mut Session, frame: WireFrame) -> Result<(), actix_ws::Closed> {
    match frame {
        WireFrame::Text(text) => ws.text(text).await,
        WireFrame::Binary(data) => ws.binary(data).await,
        WireFrame::Group(parts) => {
            for part in parts.iter() {
                match part {
                    WireFrame::Text(text) => ws.text(text.clone()).await?,
                    WireFrame::Binary(data) => ws.binary(data.clone()).await?,
                    // Groups are built flat by the Socket.IO encoder.
                    WireFrame::Group(_) => {}
                }
            }
            Ok(())
        }
    }
}
