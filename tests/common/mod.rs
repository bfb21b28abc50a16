//! In-process protocol servers and raw clients for the protocol tests: the servers are
//! the conformance ones (or any Engine.IO server a test builds), bound to 127.0.0.1:0;
//! the clients speak HTTP and WebSocket byte for byte, as the official suites do.

#![allow(dead_code)]

pub mod raw_ws;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, web};
use futures_util::{SinkExt, StreamExt};
use mensajero::protocol::conformance::{ConformanceOptions, ConformanceServers};
use mensajero::protocol::engineio::{EngineMetrics, EngineServer, FrontDoor};
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `configure` behind `door` on an ephemeral port for the rest of the test, the
/// way `mensajero serve` does.
pub fn serve<F>(door: FrontDoor, configure: F) -> SocketAddr
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let listener = mensajero::protocol::engineio::bind("127.0.0.1:0")
        .expect("bind")
        .remove(0);
    let addr = listener.local_addr().unwrap();
    let server = actix_server::Server::build()
        .workers(1)
        .disable_signals()
        .listen("test", listener, move || {
            let configure = configure.clone();
            door.service(addr, App::new().configure(move |cfg| configure(cfg)))
        })
        .expect("listen")
        .run();
    actix_rt::spawn(server);
    addr
}

pub fn serve_engines(engines: Vec<EngineServer>) -> SocketAddr {
    let door = FrontDoor::new(engines.clone());
    serve(door, move |cfg| {
        for engine in &engines {
            engine.configure(cfg);
        }
    })
}

pub fn conformance(options: ConformanceOptions) -> (SocketAddr, ConformanceServers) {
    let servers = ConformanceServers::new(&options);
    let mounted = servers.clone();
    let addr = serve(servers.front_door(), move |cfg| mounted.configure(cfg));
    (addr, servers)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn url(addr: SocketAddr, path: &str, query: &str) -> String {
    format!("http://{addr}{path}?{query}")
}

pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let response = client.post(url).body(body).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Opens a polling session, returns its sid and the handshake object.
pub async fn polling_handshake(
    client: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
) -> (String, serde_json::Value) {
    let (status, body) = get(client, &url(addr, path, "EIO=4&transport=polling")).await;
    assert_eq!(status, 200, "handshake: {body}");
    assert!(body.starts_with('0'), "handshake: {body}");
    let value: serde_json::Value = serde_json::from_str(&body[1..]).unwrap();
    (value["sid"].as_str().unwrap().to_string(), value)
}

pub async fn ws_connect(addr: SocketAddr, path: &str, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}?{query}"))
        .await
        .expect("websocket connect");
    ws
}

/// A direct WebSocket session; returns the socket and the handshake object.
pub async fn ws_session(addr: SocketAddr, path: &str) -> (Ws, serde_json::Value) {
    let mut ws = ws_connect(addr, path, "EIO=4&transport=websocket").await;
    let open = recv_text(&mut ws).await;
    assert!(open.starts_with('0'), "handshake: {open}");
    (ws, serde_json::from_str(&open[1..]).unwrap())
}

#[derive(Debug, PartialEq)]
pub enum Got {
    Text(String),
    Binary(Vec<u8>),
    Closed,
    Timeout,
}

pub async fn recv_within(ws: &mut Ws, within: Duration) -> Got {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Got::Timeout,
            Ok(None) | Ok(Some(Err(_))) => return Got::Closed,
            Ok(Some(Ok(Message::Text(text)))) => return Got::Text(text.to_string()),
            Ok(Some(Ok(Message::Binary(data)))) => return Got::Binary(data.to_vec()),
            Ok(Some(Ok(Message::Close(_)))) => return Got::Closed,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The next text frame (panics on anything else within 3 s).
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv_within(ws, Duration::from_secs(3)).await {
        Got::Text(text) => text,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next text frame that is not a PING.
pub async fn recv_data(ws: &mut Ws) -> String {
    loop {
        let text = recv_text(ws).await;
        if text != "2" {
            return text;
        }
    }
}

pub async fn recv_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match recv_within(ws, Duration::from_secs(3)).await {
            Got::Binary(data) => return data,
            Got::Text(text) if text == "2" => continue,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

/// Waits for the server to close the socket, answering nothing (PINGs are skipped).
pub async fn expect_closed(ws: &mut Ws, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match recv_within(ws, left).await {
            Got::Closed => return,
            Got::Timeout => panic!("socket still open after {within:?}"),
            _ => continue,
        }
    }
}

pub async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_string()))
        .await
        .expect("send");
}

pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    ws.send(Message::binary(data.to_vec())).await.expect("send");
}

/// `frames_out_total` once it reaches `at_least` (or after 1 s): frames are counted when
/// `writev` returns, which may be just after the client has read them.
pub async fn frames_out_reaching(metrics: &EngineMetrics, at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while metrics.frames_out_total() < at_least && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    metrics.frames_out_total()
}
