//! A minimal Socket.IO client over a raw WebSocket, for tests that need to send what the
//! official clients never would (malformed packets, forged headers).

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct WireClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub handshake: Value,
}

/// Open `ws://addr/socket.io/?EIO=4&transport=websocket` with the given extra headers.
pub async fn open(
    addr: &str,
    headers: &[(&str, &str)],
) -> Result<WireClient, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    let mut client = WireClient {
        ws,
        handshake: Value::Null,
    };
    let open = client.next_text().await.expect("open packet");
    assert!(open.starts_with('0'), "expected OPEN, got {open:?}");
    client.handshake = serde_json::from_str(&open[1..]).expect("handshake json");
    Ok(client)
}

impl WireClient {
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_string()))
            .await
            .expect("send");
    }

    /// The next text frame, answering pings on the way; `None` when the socket closes.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .ok()??;
            match frame.ok()? {
                Message::Text(t) if t.as_str() == "2" => self.send_text("3").await,
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// CONNECT to `/`; returns the server's answer packet (`40{...}` or `44{...}`).
    pub async fn connect(&mut self) -> String {
        self.send_text("40").await;
        self.next_text().await.expect("connect answer")
    }

    /// EVENT with ack id `id`; returns the ACK's first argument.
    pub async fn call(&mut self, id: u64, event: &str, arg: Value) -> Value {
        let packet = format!(
            "42{id}{}",
            serde_json::to_string(&serde_json::json!([event, arg])).unwrap()
        );
        self.send_text(&packet).await;
        let prefix = format!("43{id}");
        loop {
            let text = self.next_text().await.expect("ack");
            if let Some(body) = text.strip_prefix(&prefix) {
                let args: Vec<Value> = serde_json::from_str(body).expect("ack args");
                return args.into_iter().next().unwrap_or(Value::Null);
            }
        }
    }

    /// Send EVENT `[event, arg]` with ack id `id` without waiting for the ack.
    pub async fn emit_with_ack(&mut self, id: u64, event: &str, arg: Value) -> bool {
        let packet = format!(
            "42{id}{}",
            serde_json::to_string(&serde_json::json!([event, arg])).unwrap()
        );
        self.ws.send(Message::text(packet)).await.is_ok()
    }

    /// Send EVENTs `[event, arg]` with ack ids `first..`, all in one TCP write, without
    /// waiting for the acks: the server reads them together, before any ack can return.
    pub async fn emit_all_at_once(&mut self, first: u64, event: &str, args: &[Value]) {
        for (i, arg) in args.iter().enumerate() {
            let packet = format!(
                "42{}{}",
                first + i as u64,
                serde_json::to_string(&serde_json::json!([event, arg])).unwrap()
            );
            self.ws.feed(Message::text(packet)).await.expect("queue");
        }
        self.ws.flush().await.expect("send");
    }

    /// The next ACK `(id, first argument)`, skipping events; `None` once the session ends.
    pub async fn next_ack(&mut self) -> Option<(u64, Value)> {
        loop {
            let text = self.next_text().await?;
            let Some(rest) = text.strip_prefix("43") else {
                continue;
            };
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let id = rest[..digits].parse().ok()?;
            let args: Vec<Value> = serde_json::from_str(&rest[digits..]).ok()?;
            return Some((id, args.into_iter().next().unwrap_or(Value::Null)));
        }
    }

    /// True if the server closes the connection within the timeout.
    pub async fn is_closed_by_server(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(3), self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
