//! A WebSocket client that writes and reads RFC 6455 frames byte for byte, so tests can
//! send what a library would refuse to (unmasked frames, bad UTF-8, odd fragmentation).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub struct RawWs {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// The request head of a WebSocket opening handshake, with `extra` header lines.
pub fn upgrade_request(addr: SocketAddr, target: &str, extra: &str) -> String {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Sends `request` and reads the response head; returns the head and the connection.
pub async fn request_head(addr: SocketAddr, request: &str) -> (String, RawWs) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut ws = RawWs {
        stream,
        buf: Vec::new(),
    };
    let head = ws.read_head().await;
    (head, ws)
}

/// Opens a WebSocket at `target`, asserting the 101.
pub async fn connect(addr: SocketAddr, target: &str) -> RawWs {
    let (head, ws) = request_head(addr, &upgrade_request(addr, target, "")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "handshake: {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "handshake: {head}"
    );
    ws
}

pub fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask = [0xA1, 0x0B, 0x7C, 0x33];
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Frame {
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    },
    Eof,
    Timeout,
}

impl RawWs {
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_raw(&frame(true, opcode, payload, true)).await;
    }

    async fn fill(&mut self, want: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.buf.len() < want {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head).unwrap();
            }
            let want = self.buf.len() + 1;
            if !self.fill(want, Duration::from_secs(3)).await {
                return String::from_utf8_lossy(&self.buf).into_owned();
            }
        }
    }

    /// The body after a response head (everything until the server closes).
    pub async fn read_to_end(&mut self) -> String {
        let mut rest = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(3), self.stream.read_to_end(&mut rest)).await;
        self.buf.extend(rest);
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }

    /// The next server frame, checked to be unmasked.
    pub async fn read_within(&mut self, within: Duration) -> Read {
        let deadline = tokio::time::Instant::now() + within;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.fill(2, left()).await {
            return if self.buf.is_empty() && left().is_zero() {
                Read::Timeout
            } else {
                Read::Eof
            };
        }
        let (b0, b1) = (self.buf[0], self.buf[1]);
        assert_eq!(b1 & 0x80, 0, "server frames are never masked");
        let (len, header) = match b1 & 0x7F {
            126 => {
                assert!(self.fill(4, left()).await);
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                assert!(self.fill(10, left()).await);
                let mut be = [0u8; 8];
                be.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(be) as usize, 10)
            }
            n => (n as usize, 2),
        };
        assert!(self.fill(header + len, left()).await, "truncated frame");
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Read::Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload,
        }
    }

    pub async fn read(&mut self) -> Read {
        self.read_within(Duration::from_secs(3)).await
    }

    /// The next text frame that is not an Engine.IO PING.
    pub async fn read_text(&mut self) -> String {
        loop {
            match self.read().await {
                Read::Frame {
                    opcode: TEXT,
                    payload,
                    ..
                } if payload != b"2" => return String::from_utf8(payload).unwrap(),
                Read::Frame { opcode: TEXT, .. } => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Expects a close frame with `code`, then the end of the connection.
    pub async fn expect_close(&mut self, code: u16) {
        loop {
            match self.read().await {
                Read::Frame {
                    opcode: CLOSE,
                    payload,
                    ..
                } => {
                    assert_eq!(&payload[..2], &code.to_be_bytes(), "close code");
                    break;
                }
                Read::Frame { opcode: TEXT, .. } => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
        assert_eq!(self.read().await, Read::Eof);
    }
}
