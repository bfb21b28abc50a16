//! RFC 6455 framing for the server side: decoding client frames into whole messages and
//! encoding frame headers for what we send.
//!
//! The decoder owns the only per-connection read state the WebSocket transport keeps: the
//! bytes of a frame that has not fully arrived and the fragments of a message that has not
//! finished. Both are normally empty, and are freed (not just cleared) when they drain, so
//! an idle connection holds no buffer. Both are bounded by `maxPayload`.

use bytes::Bytes;
use bytestring::ByteString;

pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// Close status codes we send (RFC 6455 §7.4.1).
pub(crate) const CLOSE_NORMAL: u16 = 1000;
pub(crate) const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub(crate) const CLOSE_INVALID_DATA: u16 = 1007;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// The longest header of a server frame: 2 bytes plus a 64-bit length, never a mask.
pub(crate) const MAX_HEADER: usize = 10;

/// Why a client's byte stream is not acceptable WebSocket; each ends the connection with
/// the close code of [`FrameError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set without an extension")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("client frame not masked")]
    Unmasked,
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("message of {0} bytes or more exceeds maxPayload")]
    TooLarge(u64),
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    #[error("new data frame inside a fragmented message")]
    Interleaved,
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    #[error("malformed close frame")]
    BadClose,
}

impl FrameError {
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            FrameError::TooLarge(_) => CLOSE_TOO_BIG,
            FrameError::InvalidUtf8 => CLOSE_INVALID_DATA,
            _ => CLOSE_PROTOCOL_ERROR,
        }
    }
}

/// One complete thing a client said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// The client started the closing handshake; the code is echoed back (none if absent).
    Close(Option<u16>),
}

/// Reassembles client frames into [`Event`]s.
pub(crate) struct Decoder {
    max_payload: usize,
    /// An unfinished frame (header included), exactly as received.
    partial: Vec<u8>,
    /// Unmasked payloads of a fragmented message so far, and its opcode.
    fragments: Vec<u8>,
    fragment_opcode: Option<u8>,
    closed: bool,
}

struct Head {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

impl Decoder {
    pub(crate) fn new(max_payload: usize) -> Self {
        Decoder {
            max_payload,
            partial: Vec::new(),
            fragments: Vec::new(),
            fragment_opcode: None,
            closed: false,
        }
    }

    /// Feeds freshly read bytes; complete messages are appended to `events`. Nothing is
    /// decoded after a close frame.
    pub(crate) fn feed(&mut self, input: &[u8], events: &mut Vec<Event>) -> Result<(), FrameError> {
        if self.closed {
            return Ok(());
        }
        if self.partial.is_empty() {
            let used = self.decode(input, events)?;
            if used < input.len() && !self.closed {
                self.partial.extend_from_slice(&input[used..]);
            }
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(input);
            let used = self.decode(&partial, events)?;
            if used < partial.len() && !self.closed {
                partial.drain(..used);
                self.partial = partial;
            }
            // Otherwise `partial` drops here: an idle connection keeps no buffer.
        }
        Ok(())
    }

    /// Decodes every complete frame at the start of `buf`; returns the bytes consumed.
    fn decode(&mut self, buf: &[u8], events: &mut Vec<Event>) -> Result<usize, FrameError> {
        let mut at = 0;
        while !self.closed {
            let Some(head) = self.head(&buf[at..])? else {
                break;
            };
            let end = at + head.header_len + head.payload_len;
            if end > buf.len() {
                break;
            }
            let payload = &buf[at + head.header_len..end];
            self.frame(&head, payload, events)?;
            at = end;
        }
        Ok(at)
    }

    /// Parses and validates a frame header; `None` until all of it has arrived. Sizes are
    /// checked here, so an oversized frame is refused before its payload is buffered.
    fn head(&self, buf: &[u8]) -> Result<Option<Head>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            other => return Err(FrameError::UnknownOpcode(other)),
        }
        if b1 & 0x80 == 0 {
            return Err(FrameError::Unmasked);
        }
        let (len, mut header_len) = match b1 & 0x7F {
            126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
            127 if buf.len() >= 10 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(&buf[2..10]);
                (u64::from_be_bytes(be), 10)
            }
            126 | 127 => return Ok(None),
            short => (u64::from(short), 2),
        };
        if opcode >= OP_CLOSE && (!fin || len > 125) {
            return Err(FrameError::BadControlFrame);
        }
        let so_far = if opcode == OP_CONTINUATION {
            self.fragments.len() as u64
        } else {
            0
        };
        if so_far + len > self.max_payload as u64 {
            return Err(FrameError::TooLarge(so_far + len));
        }
        if buf.len() < header_len + 4 {
            return Ok(None);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[header_len..header_len + 4]);
        header_len += 4;
        Ok(Some(Head {
            fin,
            opcode,
            mask,
            header_len,
            payload_len: len as usize,
        }))
    }

    fn frame(
        &mut self,
        head: &Head,
        masked: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), FrameError> {
        match head.opcode {
            OP_TEXT | OP_BINARY => {
                if self.fragment_opcode.is_some() {
                    return Err(FrameError::Interleaved);
                }
                if head.fin {
                    events.push(message(head.opcode, unmask(masked, head.mask))?);
                } else {
                    self.fragment_opcode = Some(head.opcode);
                    self.fragments = unmask(masked, head.mask);
                }
            }
            OP_CONTINUATION => {
                let Some(opcode) = self.fragment_opcode else {
                    return Err(FrameError::UnexpectedContinuation);
                };
                let start = self.fragments.len();
                self.fragments.extend_from_slice(masked);
                apply_mask(&mut self.fragments[start..], head.mask);
                if head.fin {
                    self.fragment_opcode = None;
                    let whole = std::mem::take(&mut self.fragments);
                    events.push(message(opcode, whole)?);
                }
            }
            OP_PING => events.push(Event::Ping(unmask(masked, head.mask).into())),
            OP_PONG => events.push(Event::Pong),
            OP_CLOSE => {
                let body = unmask(masked, head.mask);
                events.push(Event::Close(close_code(&body)?));
                self.closed = true;
                self.partial = Vec::new();
                self.fragments = Vec::new();
            }
            _ => unreachable!("opcodes are checked by head()"),
        }
        Ok(())
    }
}

fn message(opcode: u8, data: Vec<u8>) -> Result<Event, FrameError> {
    if opcode == OP_TEXT {
        let text = String::from_utf8(data).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(Event::Text(text.into()))
    } else {
        Ok(Event::Binary(data.into()))
    }
}

/// The status code of a close frame, validated (RFC 6455 §5.5.1, §7.4).
fn close_code(body: &[u8]) -> Result<Option<u16>, FrameError> {
    match body.len() {
        0 => Ok(None),
        1 => Err(FrameError::BadClose),
        _ => {
            let code = u16::from_be_bytes([body[0], body[1]]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid || std::str::from_utf8(&body[2..]).is_err() {
                return Err(FrameError::BadClose);
            }
            Ok(Some(code))
        }
    }
}

fn unmask(masked: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut data = masked.to_vec();
    apply_mask(&mut data, mask);
    data
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    // Word at a time: this runs over every byte a client sends.
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// Writes the header of an unfragmented, unmasked server frame; returns its length.
pub(crate) fn encode_header(opcode: u8, len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        frame
    }

    #[test]
    fn byte_at_a_time_then_buffer_freed() {
        let mut decoder = Decoder::new(1 << 20);
        let frame = client_frame(true, OP_TEXT, "4héllo wörld, a longer message".as_bytes());
        let mut events = Vec::new();
        for byte in &frame {
            decoder
                .feed(std::slice::from_ref(byte), &mut events)
                .unwrap();
        }
        assert_eq!(
            events,
            vec![Event::Text("4héllo wörld, a longer message".into())]
        );
        assert_eq!(decoder.partial.capacity(), 0);
    }

    #[test]
    fn fragments_and_interleaved_ping() {
        let mut decoder = Decoder::new(1 << 20);
        let mut input = client_frame(false, OP_BINARY, &[1, 2]);
        input.extend(client_frame(true, OP_PING, b"p"));
        input.extend(client_frame(false, OP_CONTINUATION, &[3]));
        input.extend(client_frame(
            true,
            OP_CONTINUATION,
            &[4, 5, 6, 7, 8, 9, 10, 11],
        ));
        let mut events = Vec::new();
        decoder.feed(&input, &mut events).unwrap();
        assert_eq!(
            events,
            vec![
                Event::Ping(Bytes::from_static(b"p")),
                Event::Binary(Bytes::from(vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])),
            ]
        );
    }

    #[test]
    fn limits_and_violations() {
        let refuse = |max: usize, input: Vec<u8>| {
            Decoder::new(max).feed(&input, &mut Vec::new()).unwrap_err()
        };
        assert_eq!(
            refuse(10, client_frame(true, OP_TEXT, &[b'a'; 11])),
            FrameError::TooLarge(11)
        );
        let mut split = client_frame(false, OP_TEXT, &[b'a'; 6]);
        split.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 6]));
        assert_eq!(refuse(10, split), FrameError::TooLarge(12));
        assert_eq!(refuse(100, vec![0x81, 0x01, b'a']), FrameError::Unmasked);
        assert_eq!(
            refuse(100, vec![0xC1, 0x80, 0, 0, 0, 0]),
            FrameError::ReservedBits
        );
        assert_eq!(
            refuse(100, client_frame(true, OP_TEXT, &[0xFF, 0xFE])),
            FrameError::InvalidUtf8
        );
        assert_eq!(
            refuse(100, client_frame(false, OP_PING, b"")),
            FrameError::BadControlFrame
        );
        assert_eq!(
            refuse(100, client_frame(true, OP_CONTINUATION, b"x")),
            FrameError::UnexpectedContinuation
        );
        assert_eq!(
            refuse(100, client_frame(true, 0x3, b"")),
            FrameError::UnknownOpcode(3)
        );
        assert_eq!(
            refuse(100, client_frame(true, OP_CLOSE, &[0x03])),
            FrameError::BadClose
        );
    }

    #[test]
    fn close_stops_decoding() {
        let mut decoder = Decoder::new(100);
        let mut input = client_frame(true, OP_CLOSE, &1000u16.to_be_bytes());
        input.extend(client_frame(true, OP_TEXT, b"4late"));
        let mut events = Vec::new();
        decoder.feed(&input, &mut events).unwrap();
        assert_eq!(events, vec![Event::Close(Some(1000))]);
    }

    #[test]
    fn header_lengths() {
        let mut out = [0u8; MAX_HEADER];
        assert_eq!(encode_header(OP_TEXT, 125, &mut out), 2);
        assert_eq!(encode_header(OP_TEXT, 126, &mut out), 4);
        assert_eq!(&out[..4], &[0x81, 126, 0, 126]);
        assert_eq!(encode_header(OP_BINARY, 70_000, &mut out), 10);
        assert_eq!(out[1], 127);
    }
}
