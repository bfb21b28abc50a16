//! The HTTP side of a WebSocket opening handshake (RFC 6455 §4) as the front door sees
//! it: recognising an Engine.IO upgrade in a request head, validating it, and the raw
//! responses written before the connection switches protocols.
//!
//! Pure functions over bytes, so the front door can decide on a peeked head without
//! consuming it: whatever is not ours stays in the socket for actix-http.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

use super::error::EngineError;

/// Headers beyond this many make the head someone else's problem (actix-http's).
const MAX_HEADERS: usize = 64;

const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A request head that asks to open an Engine.IO WebSocket at one of our paths.
pub(crate) struct UpgradeHead {
    /// Index of the matching path in the list given to [`parse`].
    pub(crate) mount: usize,
    /// Length of the head, blank line included: the bytes to consume.
    pub(crate) len: usize,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
}

/// Does `prefix` (the first bytes of a request) still allow a `GET <path>?` for one of
/// `paths`? Lets everything else go to actix-http without waiting for a whole head.
pub(crate) fn may_be_upgrade(prefix: &[u8], paths: &[&str]) -> bool {
    paths.iter().any(|path| {
        let wanted = [b"GET ".as_slice(), path.as_bytes(), b"?"];
        let mut at = 0;
        for part in wanted {
            for &byte in part {
                match prefix.get(at) {
                    None => return true,
                    Some(&got) if got != byte => return false,
                    Some(_) => at += 1,
                }
            }
        }
        true
    })
}

/// Parses a complete head; `Some` only for `GET <path>?...EIO=4...transport=websocket`
/// with `Upgrade: websocket`. Anything else (including malformed heads) is not ours.
pub(crate) fn parse(buf: &[u8], paths: &[&str]) -> Option<UpgradeHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = request.parse(buf).ok()? else {
        return None;
    };
    if request.method? != "GET" || request.version? != 1 {
        return None;
    }
    let (path, query) = request.path?.split_once('?')?;
    let mount = paths.iter().position(|p| *p == path)?;
    let (mut eio, mut transport) = (None, None);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("EIO", value)) => eio = Some(value),
            Some(("transport", value)) => transport = Some(value),
            _ => {}
        }
    }
    if eio != Some("4") || transport != Some("websocket") {
        return None;
    }
    let mut map = HeaderMap::with_capacity(request.headers.len());
    for header in request.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        map.append(name, value);
    }
    if !has_token(&map, "upgrade", "websocket") {
        return None;
    }
    Some(UpgradeHead {
        mount,
        len,
        query: query.to_string(),
        headers: map,
    })
}

/// `Sec-WebSocket-Accept` for a valid upgrade, or why it is not one.
pub(crate) fn accept_key(headers: &HeaderMap) -> Result<String, EngineError> {
    if !has_token(headers, "connection", "upgrade") {
        return Err(EngineError::BadRequest);
    }
    let version = headers
        .get("sec-websocket-version")
        .map(HeaderValue::as_bytes);
    if version != Some(b"13") {
        return Err(EngineError::BadRequest);
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or(EngineError::BadRequest)?
        .as_bytes()
        .trim_ascii();
    match STANDARD.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(EngineError::BadRequest),
    }
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    Ok(STANDARD.encode(sha.finalize()))
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

pub(crate) fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// The same status and JSON body as [`EngineError::to_response`], for a connection that
/// is closed right after.
pub(crate) fn error_response(error: &EngineError) -> Vec<u8> {
    let status = error.status();
    let body = serde_json::json!({"code": error.code(), "message": error.to_string()}).to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&str] = &["/engine.io/", "/socket.io/"];

    #[test]
    fn prefix_filter() {
        assert!(may_be_upgrade(b"GE", PATHS));
        assert!(may_be_upgrade(b"GET /socket.io/?EIO", PATHS));
        assert!(!may_be_upgrade(b"POST /socket.io/", PATHS));
        assert!(!may_be_upgrade(b"GET /socket.io/socket.io.js", PATHS));
        assert!(!may_be_upgrade(b"GET /other", PATHS));
    }

    #[test]
    fn recognises_and_accepts() {
        let head = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
            Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nrest";
        let parsed = parse(head, PATHS).expect("an upgrade");
        assert_eq!(parsed.mount, 1);
        assert_eq!(parsed.len, head.len() - 4);
        // The example of RFC 6455 §1.3.
        assert_eq!(
            accept_key(&parsed.headers).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let polling =
            b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
        assert!(parse(polling, PATHS).is_none());
        let no_upgrade = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\r\n";
        assert!(parse(no_upgrade, PATHS).is_none());
    }
}
