//! Just enough of an Engine.IO v4 / Socket.IO v5 WebSocket client: open, CONNECT to `/`,
//! answer pings, emit with or without ack ids, and read EVENT/ACK packets.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn token(secret: &str, user: &str, rol: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 24 * 3600;
    let claims = serde_json::json!({"user": user, "name": user, "rol": rol, "exp": exp});
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("non-empty secret");
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("sign")
}

pub fn ws_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .replacen("https://", "wss://", 1)
        .replacen("http://", "ws://", 1);
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

/// Open a session and connect to `/`; returns once the server answered CONNECT.
/// tungstenite zero-fills its whole read buffer before every read (128 KiB by default,
/// which made that fill a seventh of the generator's CPU); 16 KiB still takes an admin's
/// burst of deliveries in one read.
pub async fn connect(url: &str, cookie: &str) -> Result<Ws, String> {
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    connect_with(url, cookie, Some(config)).await
}

/// As [`connect`], with small buffers for scenarios that hold many idle connections,
/// from `source` when given. Tens of thousands of connections from one source address to
/// one server make the kernel search long for a free ephemeral port on every connect;
/// spreading them over several loopback sources keeps the handshake rate the server's.
pub async fn connect_small(url: &str, cookie: &str, source: Option<IpAddr>) -> Result<Ws, String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    match source {
        Some(source) => connect_from(url, cookie, source, config).await,
        None => connect_with(url, cookie, Some(config)).await,
    }
}

async fn connect_from(
    url: &str,
    cookie: &str,
    source: IpAddr,
    config: WebSocketConfig,
) -> Result<Ws, String> {
    let request = request(url, cookie)?;
    let uri = request.uri();
    let host = uri.host().ok_or("url without host")?;
    let port = uri.port_u16().unwrap_or(80);
    let server: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|_| "--source-ips needs an IP address in --url")?;
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(server).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        request,
        MaybeTlsStream::Plain(stream),
        Some(config),
    )
    .await
    .map_err(|e| e.to_string())?;
    open_and_connect(ws).await
}

fn request(
    url: &str,
    cookie: &str,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("cookie", cookie.parse().map_err(|_| "bad cookie")?);
    Ok(request)
}

async fn connect_with(
    url: &str,
    cookie: &str,
    config: Option<WebSocketConfig>,
) -> Result<Ws, String> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request(url, cookie)?, config, true)
        .await
        .map_err(|e| e.to_string())?;
    open_and_connect(ws).await
}

/// Read OPEN, send CONNECT to `/`, wait for its answer.
async fn open_and_connect(mut ws: Ws) -> Result<Ws, String> {
    let open = next_text(&mut ws).await.ok_or("closed before OPEN")?;
    if !open.starts_with('0') {
        return Err(format!("expected OPEN, got {open}"));
    }
    ws.send(Message::text("40"))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let packet = next_text(&mut ws).await.ok_or("closed before CONNECT")?;
        if packet.starts_with("40") {
            return Ok(ws);
        }
        if packet.starts_with("44") {
            return Err(format!("refused: {packet}"));
        }
        if packet == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| e.to_string())?;
        }
    }
}

async fn next_text(ws: &mut Ws) -> Option<Utf8Bytes> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(t)) => return Some(t),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// `42[event,arg]` or, with an ack id, `42<id>[event,arg]`.
pub fn event_packet(ack_id: Option<u64>, event: &str, arg: &serde_json::Value) -> Message {
    let body = serde_json::to_string(&(event, arg)).expect("json");
    match ack_id {
        Some(id) => Message::text(format!("42{id}{body}")),
        None => Message::text(format!("42{body}")),
    }
}

/// What a received text packet is, as far as the scenarios care.
pub enum Incoming<'a> {
    Ping,
    /// EVENT on `/`: the raw JSON array text.
    Event(&'a str),
    /// ACK on `/`.
    Ack,
    Other,
}

pub fn classify(text: &str) -> Incoming<'_> {
    if text == "2" {
        return Incoming::Ping;
    }
    if let Some(rest) = text.strip_prefix("42") {
        return Incoming::Event(rest);
    }
    if let Some(rest) = text.strip_prefix("43")
        && rest.starts_with(|c: char| c.is_ascii_digit())
    {
        return Incoming::Ack;
    }
    Incoming::Other
}
