//! The HTTP long-polling transport: the handshake GET, the data GET that waits for
//! something to send, and the POST that carries the client's packets.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpRequest, HttpResponse, http::Method, web};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::sync::oneshot;

use super::app::{CloseReason, RequestInfo};
use super::error::EngineError;
use super::packet::Inbound;
use super::server::{EngineServer, TransportKind};
use super::session::TransportMsg;

const TEXT: &str = "text/plain; charset=UTF-8";

pub(crate) async fn handle(
    server: &EngineServer,
    req: HttpRequest,
    body: web::Payload,
    sid: Option<&str>,
) -> Result<HttpResponse, EngineError> {
    let Some(sid) = sid else {
        if req.method() != Method::GET {
            return Err(EngineError::BadHandshakeMethod);
        }
        let request = RequestInfo {
            headers: req.headers().clone(),
            query: req.query_string().to_string(),
            remote_addr: req.peer_addr(),
        };
        server.check_handshake(&request)?;
        let opened = server.open_session(request, TransportKind::Polling);
        return Ok(HttpResponse::Ok().content_type(TEXT).body(opened.handshake));
    };
    let entry = server.lookup(sid).ok_or(EngineError::UnknownSid)?;
    let session = &entry.recipient;
    match *req.method() {
        Method::GET => {
            let (reply, answer) = oneshot::channel();
            match session.send(TransportMsg::Poll(reply)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(EngineError::UnknownSid),
            }
            // If this future is dropped (the server gives up on the request), `answer` goes
            // with it and the session sees the GET cancelled.
            match answer.await {
                Ok(Ok(body)) => Ok(HttpResponse::Ok().content_type(TEXT).body(body)),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(EngineError::UnknownSid),
            }
        }
        Method::POST => {
            if entry.posting.swap(true, Ordering::AcqRel) {
                // Like Node: overlapping POSTs could reorder packets, so the session ends.
                log::info!("engine.io session {sid} closed: overlapping polling POST");
                session.do_send(TransportMsg::TransportGone(CloseReason::TransportError));
                return Err(EngineError::BadRequest);
            }
            let _posting = Posting(&entry.posting);
            let max = server.shared.config.max_payload;
            let body = match read_body(&req, body, max).await {
                Ok(body) => body,
                Err(error) => {
                    if error == EngineError::PayloadTooLarge {
                        log::info!("engine.io session {sid}: POST over maxPayload ({max} bytes)");
                        session.do_send(TransportMsg::TransportGone(CloseReason::ParseError));
                    }
                    return Err(error);
                }
            };
            let packets = match Inbound::decode_payload(body.freeze()) {
                Ok(packets) => packets,
                Err(error) => {
                    session.do_send(TransportMsg::Malformed(error));
                    return Err(EngineError::BadRequest);
                }
            };
            match session.send(TransportMsg::Packets(packets)).await {
                Ok(Ok(())) => Ok(HttpResponse::Ok().content_type("text/html").body("ok")),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(EngineError::UnknownSid),
            }
        }
        _ => Err(EngineError::BadRequest),
    }
}

/// Marks the session's POST slot free again however the request ends.
struct Posting<'a>(&'a AtomicBool);

impl Drop for Posting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

async fn read_body(
    req: &HttpRequest,
    mut body: web::Payload,
    max: usize,
) -> Result<BytesMut, EngineError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(EngineError::PayloadTooLarge);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(max));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| EngineError::BadRequest)?;
        if buf.len() + chunk.len() > max {
            return Err(EngineError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}
