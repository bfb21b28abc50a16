//! Engine.IO v4 packets: the seven packet types in their text form, and the long-polling
//! payload that carries several of them (joined by the record separator, binary as `b` +
//! base64).
//!
//! Decoding is strict and never panics: whatever a client sends is either a packet or a
//! [`PacketError`], and an error closes only the session that sent it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use bytestring::ByteString;

use super::queue::WireFrame;

/// Separates packets in a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The data of a MESSAGE packet, as the application sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A text message, without the leading `4`.
    Text(ByteString),
    Binary(Bytes),
}

/// One packet received from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Close,
    /// Clients ping only to probe an upgrade (`2probe`); a PING on an open session ends it.
    Ping(ByteString),
    Pong(ByteString),
    Message(Message),
    Upgrade,
    Noop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("a client may not send OPEN")]
    UnexpectedOpen,
    #[error("invalid base64 in a binary packet")]
    Base64,
    #[error("payload is not valid UTF-8")]
    Utf8,
}

impl Inbound {
    /// Decodes one text packet (a WebSocket text frame or one record of a polling payload).
    pub fn decode_text(text: ByteString) -> Result<Inbound, PacketError> {
        let Some(&kind) = text.as_bytes().first() else {
            return Err(PacketError::Empty);
        };
        let data = text.slice_ref(&text[1..]);
        Ok(match kind {
            b'0' => return Err(PacketError::UnexpectedOpen),
            b'1' => Inbound::Close,
            b'2' => Inbound::Ping(data),
            b'3' => Inbound::Pong(data),
            b'4' => Inbound::Message(Message::Text(data)),
            b'5' => Inbound::Upgrade,
            b'6' => Inbound::Noop,
            _ => return Err(PacketError::UnknownType),
        })
    }

    /// Decodes a long-polling POST body into its packets, in order.
    pub fn decode_payload(body: Bytes) -> Result<Vec<Inbound>, PacketError> {
        if body.is_empty() {
            return Err(PacketError::Empty);
        }
        let mut packets = Vec::new();
        let mut rest = body;
        loop {
            let end = rest
                .iter()
                .position(|&byte| byte == RECORD_SEPARATOR)
                .unwrap_or(rest.len());
            let record = rest.split_to(end);
            packets.push(Self::decode_record(record)?);
            if rest.is_empty() {
                break;
            }
            // Skip the separator; a trailing one leaves an empty record, which is an error.
            let _ = rest.split_to(1);
            if rest.is_empty() {
                return Err(PacketError::Empty);
            }
        }
        Ok(packets)
    }

    fn decode_record(record: Bytes) -> Result<Inbound, PacketError> {
        if record.first() == Some(&b'b') {
            let data = BASE64
                .decode(&record[1..])
                .map_err(|_| PacketError::Base64)?;
            return Ok(Inbound::Message(Message::Binary(Bytes::from(data))));
        }
        let text = ByteString::try_from(record).map_err(|_| PacketError::Utf8)?;
        Self::decode_text(text)
    }
}

/// Encodes queued frames as one long-polling response body.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a WireFrame>) -> String {
    fn push(out: &mut String, frame: &WireFrame) {
        match frame {
            WireFrame::Text(text) => {
                separate(out);
                out.push_str(text);
            }
            WireFrame::Binary(data) => {
                separate(out);
                out.push('b');
                BASE64.encode_string(data, out);
            }
            WireFrame::Group(parts) => parts.iter().for_each(|part| push(out, part)),
        }
    }
    fn separate(out: &mut String) {
        if !out.is_empty() {
            out.push(RECORD_SEPARATOR as char);
        }
    }
    let mut out = String::new();
    for frame in frames {
        push(&mut out, frame);
    }
    out
}

/// Text packets the server sends on its own behalf.
pub mod control {
    pub const CLOSE: &str = "1";
    pub const PING: &str = "2";
    pub const PONG_PROBE: &str = "3probe";
    pub const NOOP: &str = "6";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_mixed_payload() {
        let packets =
            Inbound::decode_payload(Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e3")).unwrap();
        assert_eq!(
            packets,
            vec![
                Inbound::Message(Message::Text("hello".into())),
                Inbound::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
                Inbound::Pong("".into()),
            ]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(Inbound::decode_payload(Bytes::from_static(b"abc")).is_err());
        assert!(Inbound::decode_payload(Bytes::from_static(b"")).is_err());
        assert!(Inbound::decode_payload(Bytes::from_static(b"4a\x1e")).is_err());
        assert!(Inbound::decode_payload(Bytes::from_static(b"b!!!")).is_err());
        assert!(Inbound::decode_payload(Bytes::from_static(b"4\xff")).is_err());
        assert!(Inbound::decode_text("0".into()).is_err());
    }

    #[test]
    fn encodes_payload() {
        let frames = [
            WireFrame::Text("4hello".into()),
            WireFrame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        assert_eq!(encode_payload(&frames), "4hello\x1ebAQIDBA==");
    }
}
