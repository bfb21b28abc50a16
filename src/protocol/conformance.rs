//! The reference servers of the Engine.IO v4 and Socket.IO v5 protocol test suites
//! (SPEC 1.5), built from the public protocol API only, so that the example binary and
//! the integration tests run exactly the same thing.
//!
//! - at `/engine.io/`: a bare Engine.IO server echoing every text and binary message;
//! - at `/socket.io/`: Socket.IO whose `/` and `/custom` namespaces emit `auth` with the
//!   client's CONNECT payload, and whose `/` echoes `message` as `message-back` and acks
//!   `message-with-ack` with the same arguments.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use serde_json::json;

use super::engineio::{
    CloseReason, EngineApp, EngineConfig, EngineConnection, EngineServer, FrontDoor, Message,
    ProtocolViolation, RequestInfo, SessionCtl, SessionHandle, WireFrame,
};
use super::socketio::{
    AckSender, ConnectRefusal, DisconnectReason, Handshake, Namespace, Payload, Socket,
    SocketHandler, SocketIoServer,
};

/// Timings and limits of the reference servers; the default is what the suites expect.
#[derive(Debug, Clone)]
pub struct ConformanceOptions {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
    pub connect_timeout: Duration,
    pub outbound_queue: usize,
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        ConformanceOptions {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_millis(1000),
            outbound_queue: 1024,
        }
    }
}

impl ConformanceOptions {
    pub fn engine_config(&self, path: &str) -> EngineConfig {
        EngineConfig {
            path: path.to_string(),
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            max_payload: self.max_payload,
            outbound_queue: self.outbound_queue,
            ..EngineConfig::default()
        }
    }
}

/// Both reference servers; mount them with [`ConformanceServers::configure`].
#[derive(Clone)]
pub struct ConformanceServers {
    pub engine: EngineServer,
    pub socketio: EngineServer,
}

impl ConformanceServers {
    pub fn new(options: &ConformanceOptions) -> Self {
        let engine = EngineServer::engine_only(options.engine_config("/engine.io/"), Echo);
        let socketio = SocketIoServer::builder()
            .namespace("/", Arc::new(AuthEcho { echo: true }))
            .namespace("/custom", Arc::new(AuthEcho { echo: false }))
            .connect_timeout(options.connect_timeout)
            .build();
        let socketio = EngineServer::socketio(options.engine_config("/socket.io/"), socketio);
        ConformanceServers { engine, socketio }
    }

    /// The front door that takes both servers' WebSockets off the listener.
    pub fn front_door(&self) -> FrontDoor {
        FrontDoor::new([self.engine.clone(), self.socketio.clone()])
    }

    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        self.engine.configure(cfg);
        self.socketio.configure(cfg);
    }
}

/// The bare Engine.IO application: every message goes back as it came.
pub struct Echo;

pub struct EchoConnection;

impl EngineApp for Echo {
    type Connection = EchoConnection;
    fn open(
        &self,
        _session: SessionHandle<EchoConnection>,
        _request: &RequestInfo,
    ) -> EchoConnection {
        EchoConnection
    }
}

impl EngineConnection for EchoConnection {
    type Command = ();

    fn on_message(
        &mut self,
        message: Message,
        ctl: &mut SessionCtl<'_, Self>,
    ) -> Result<(), ProtocolViolation> {
        let frame = match message {
            Message::Text(text) => WireFrame::message(&text),
            Message::Binary(data) => WireFrame::Binary(data),
        };
        // A full queue already closes the session; nothing more to do here.
        let _ = ctl.send(frame);
        Ok(())
    }

    fn on_command(&mut self, _command: (), _ctl: &mut SessionCtl<'_, Self>) {}

    fn on_close(&mut self, _reason: CloseReason) {}
}

/// `/` and `/custom` of the Socket.IO reference server.
struct AuthEcho {
    /// Only `/` echoes messages.
    echo: bool,
}

impl Namespace for AuthEcho {
    fn connect(
        &self,
        socket: Socket,
        handshake: &Handshake,
    ) -> Result<Box<dyn SocketHandler>, ConnectRefusal> {
        let auth = handshake.auth.clone().unwrap_or_else(|| json!({}));
        let _ = socket.emit("auth", Payload::json(vec![auth]));
        Ok(Box::new(EchoHandler {
            socket,
            echo: self.echo,
        }))
    }
}

struct EchoHandler {
    socket: Socket,
    echo: bool,
}

impl SocketHandler for EchoHandler {
    fn on_event(&mut self, event: &str, payload: Payload, ack: Option<AckSender>) {
        if !self.echo {
            return;
        }
        match event {
            "message" => {
                let _ = self.socket.emit("message-back", payload);
            }
            "message-with-ack" => {
                if let Some(ack) = ack {
                    let _ = ack.send(payload);
                }
            }
            _ => {}
        }
    }

    fn on_disconnect(&mut self, _reason: DisconnectReason) {}
}
