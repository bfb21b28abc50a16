//! The Socket.IO v5 packet codec: `<type>[<attachments>-][<namespace>,][<ack id>][JSON]`.
//!
//! Decoding validates everything a client controls (type, attachment count, namespace,
//! ack id, JSON shape per type) and reports a [`DecodeError`]; encoding writes the full
//! Engine.IO text (`4` + packet) once so that a frame can be sent to any number of
//! sockets without being encoded again.

use std::io::Write as _;

use serde_json::Value;

/// More attachments than this in one packet is refused (each is held until complete).
pub const MAX_ATTACHMENTS: usize = 64;
/// Ack ids beyond JavaScript's safe integers cannot come from a real client.
const MAX_ACK_ID: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl PacketKind {
    fn from_digit(digit: u8) -> Option<Self> {
        Some(match digit {
            b'0' => PacketKind::Connect,
            b'1' => PacketKind::Disconnect,
            b'2' => PacketKind::Event,
            b'3' => PacketKind::Ack,
            b'4' => PacketKind::ConnectError,
            b'5' => PacketKind::BinaryEvent,
            b'6' => PacketKind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        match self {
            PacketKind::Connect => '0',
            PacketKind::Disconnect => '1',
            PacketKind::Event => '2',
            PacketKind::Ack => '3',
            PacketKind::ConnectError => '4',
            PacketKind::BinaryEvent => '5',
            PacketKind::BinaryAck => '6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// A decoded packet; binary attachments arrive separately and are counted here.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketKind,
    pub namespace: String,
    pub ack_id: Option<u64>,
    pub attachments: usize,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type")]
    UnknownType,
    #[error("invalid attachment count")]
    Attachments,
    #[error("invalid ack id")]
    AckId,
    #[error("payload is not JSON: {0}")]
    Json(String),
    #[error("payload does not fit the packet type")]
    Payload,
}

impl Packet {
    pub fn decode(text: &str) -> Result<Packet, DecodeError> {
        let bytes = text.as_bytes();
        let kind = PacketKind::from_digit(*bytes.first().ok_or(DecodeError::Empty)?)
            .ok_or(DecodeError::UnknownType)?;
        let mut i = 1;

        let mut attachments = 0;
        if kind.is_binary() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || i - start > 3 || bytes.get(i) != Some(&b'-') {
                return Err(DecodeError::Attachments);
            }
            attachments = text[start..i]
                .parse()
                .map_err(|_| DecodeError::Attachments)?;
            if attachments > MAX_ATTACHMENTS {
                return Err(DecodeError::Attachments);
            }
            i += 1;
        }

        let mut namespace = "/";
        if bytes.get(i) == Some(&b'/') {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            namespace = &text[start..i];
            if i < bytes.len() {
                i += 1; // the comma
            }
        }

        let mut ack_id = None;
        if bytes.get(i).is_some_and(u8::is_ascii_digit) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let id: u64 = text[start..i].parse().map_err(|_| DecodeError::AckId)?;
            if id > MAX_ACK_ID {
                return Err(DecodeError::AckId);
            }
            ack_id = Some(id);
        }

        let data = if i < bytes.len() {
            Some(
                serde_json::from_str::<Value>(&text[i..])
                    .map_err(|error| DecodeError::Json(error.to_string()))?,
            )
        } else {
            None
        };

        let valid = match (kind, &data) {
            (PacketKind::Connect, None | Some(Value::Object(_))) => true,
            (PacketKind::Disconnect, None) => true,
            (PacketKind::Event | PacketKind::BinaryEvent, Some(Value::Array(items))) => {
                matches!(items.first(), Some(Value::String(_)))
            }
            (PacketKind::Ack | PacketKind::BinaryAck, Some(Value::Array(_))) => ack_id.is_some(),
            _ => false,
        };
        if !valid {
            return Err(DecodeError::Payload);
        }
        Ok(Packet {
            kind,
            namespace: namespace.to_string(),
            ack_id,
            attachments,
            data,
        })
    }
}

/// Starts the Engine.IO text of a packet: `4`, type, attachments, namespace, ack id.
pub fn header(
    kind: PacketKind,
    namespace: &str,
    attachments: usize,
    ack_id: Option<u64>,
) -> String {
    let mut out = Vec::with_capacity(16 + namespace.len());
    write_header(&mut out, kind, namespace, attachments, ack_id);
    String::from_utf8(out).expect("a header is ASCII and the namespace a str")
}

/// [`header`], appended to `out`.
pub fn write_header(
    out: &mut Vec<u8>,
    kind: PacketKind,
    namespace: &str,
    attachments: usize,
    ack_id: Option<u64>,
) {
    // Writing into a Vec cannot fail.
    out.push(b'4');
    out.push(kind.digit() as u8);
    if kind.is_binary() {
        let _ = write!(out, "{attachments}-");
    }
    if namespace != "/" {
        out.extend_from_slice(namespace.as_bytes());
        out.push(b',');
    }
    if let Some(id) = ack_id {
        let _ = write!(out, "{id}");
    }
}

/// Appends `[first, rest...]` as compact JSON.
pub fn write_array(out: &mut Vec<u8>, first: Option<&str>, rest: &[Value]) {
    out.push(b'[');
    let mut comma = false;
    // Writing a `Value` or a `&str` into a Vec cannot fail.
    if let Some(first) = first {
        serde_json::to_writer(&mut *out, first).expect("a string serializes");
        comma = true;
    }
    for value in rest {
        if comma {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, value).expect("a JSON value serializes");
        comma = true;
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_suite_cases() {
        let p = Packet::decode(r#"0/custom,{"token":"abc"}"#).unwrap();
        assert_eq!(
            (p.kind, p.namespace.as_str()),
            (PacketKind::Connect, "/custom")
        );
        assert_eq!(p.data, Some(json!({"token":"abc"})));
        let p = Packet::decode("0/custom").unwrap();
        assert_eq!(p.namespace, "/custom");
        let p = Packet::decode(r#"52-789["m",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(
            (p.kind, p.attachments, p.ack_id),
            (PacketKind::BinaryEvent, 2, Some(789))
        );
        let p = Packet::decode(r#"2456["message-with-ack",1]"#).unwrap();
        assert_eq!(p.ack_id, Some(456));
        assert!(Packet::decode("abc").is_err());
        assert!(Packet::decode("2{}").is_err());
        assert!(Packet::decode(r#"2abc["x"]"#).is_err());
        assert!(Packet::decode(r#"2[1]"#).is_err());
        assert!(Packet::decode(r#"2[]"#).is_err());
        assert!(Packet::decode(r#"5999-["x"]"#).is_err());
        assert!(Packet::decode(r#"5-["x"]"#).is_err());
        assert!(Packet::decode(r#"299999999999999999999["x"]"#).is_err());
        assert!(Packet::decode("1{}").is_err());
        assert!(Packet::decode("").is_err());
    }

    #[test]
    fn encodes_headers() {
        assert_eq!(header(PacketKind::Event, "/", 0, None), "42");
        assert_eq!(header(PacketKind::BinaryAck, "/a", 2, Some(7)), "462-/a,7");
        let mut s = header(PacketKind::Event, "/", 0, None).into_bytes();
        write_array(&mut s, Some("x\"y"), &[json!(1), json!({"a":[true]})]);
        assert_eq!(
            String::from_utf8(s).unwrap(),
            r#"42["x\"y",1,{"a":[true]}]"#
        );
    }
}
