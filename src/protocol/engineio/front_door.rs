//! The front door of the listener: every accepted connection is looked at before
//! actix-http gets it, and the ones that open an Engine.IO WebSocket are taken over.
//!
//! Why: actix-http's HTTP/1 dispatcher keeps two 8 KiB buffers per connection for its
//! whole life, and a WebSocket through actix-web adds channels and a streaming body on
//! top. For the thousands of idle sockets a broker holds, that was most of its memory.
//! A taken connection is served by [`WsConnection`](super::ws_transport::WsConnection),
//! which keeps no buffer while idle.
//!
//! The head is only *peeked*: a connection that is not an Engine.IO upgrade (any other
//! request, a WebSocket to another path, a head that does not arrive quickly) reaches
//! actix-http byte for byte as the client sent it. Only the first request of a
//! connection is looked at: a client that upgrades after earlier requests on the same
//! connection is answered by the endpoint's HTTP route (400), as browsers never do that.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_http::HttpService;
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_factory};
use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, ServiceRequest, ServiceResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::app::RequestInfo;
use super::error::EngineError;
use super::server::{EngineQuery, EngineServer, TransportKind};
use super::session::TransportMsg;
use super::ws_handshake::{self, UpgradeHead};
use super::ws_transport::{self, WsConnection};

/// A request head longer than this is not an upgrade we take.
const MAX_HEAD: usize = 8 * 1024;

/// How long to wait for a whole head once its first bytes look like an upgrade; after
/// that actix-http gets the connection (and applies its own request timeout).
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to look again at a head that arrived in pieces. Peeking does not consume,
/// so readiness stays set and cannot be awaited.
const HEAD_RECHECK: Duration = Duration::from_millis(2);

enum Admitted {
    /// Not ours: actix-http serves it.
    Http(TcpStream),
    /// Switched to WebSocket; the transport runs it from here.
    WebSocket(WsConnection),
    /// Answered and closed (a refused handshake).
    Done,
}

/// Which Engine.IO servers take WebSocket connections on a listener.
#[derive(Clone)]
pub struct FrontDoor {
    engines: Arc<[EngineServer]>,
}

impl FrontDoor {
    pub fn new(engines: impl IntoIterator<Item = EngineServer>) -> Self {
        FrontDoor {
            engines: engines.into_iter().collect(),
        }
    }

    /// The connection service of one worker: Engine.IO WebSockets are taken, everything
    /// else is served by the actix-web `app`, as `HttpServer` would
    /// (TCP_NODELAY, and no half-closed connections, which polling relies on to notice a
    /// dropped GET).
    pub fn service<T, B>(
        &self,
        local_addr: SocketAddr,
        app: App<T>,
    ) -> impl ServiceFactory<
        actix_rt::net::TcpStream,
        Config = (),
        Response = (),
        Error = actix_http::error::DispatchError,
        InitError = (),
    > + use<T, B>
    where
        B: MessageBody + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
    {
        let app = app
            .into_factory()
            .map_err(|error: actix_web::Error| error.error_response());
        let http = HttpService::build()
            .tcp_nodelay(true)
            .h1_allow_half_closed(false)
            .local_addr(local_addr)
            .finish(actix_service::map_config(app, |_: ()| AppConfig::default()))
            .tcp();
        let door = self.clone();
        fn_factory(move || {
            let http = http.new_service(());
            let door = door.clone();
            async move {
                let http = Rc::new(http.await?);
                Ok(actix_service::fn_service(move |io: TcpStream| {
                    let (http, door) = (http.clone(), door.clone());
                    async move {
                        match Box::pin(door.admit(io)).await {
                            // Boxed: inline, actix-http's dispatcher would size this future.
                            Admitted::Http(io) => Box::pin(http.call(io)).await,
                            Admitted::WebSocket(connection) => {
                                // A task of its own, sized by the transport alone: this
                                // future also holds the handshake's states and actix-http's.
                                // Shutdown does not need actix-server to count it: the engine
                                // closes its sessions (and so these tasks) first.
                                actix_rt::spawn(connection.run());
                                Ok(())
                            }
                            Admitted::Done => Ok(()),
                        }
                    }
                }))
            }
        })
    }

    /// Takes the connection if it opens an Engine.IO WebSocket, or gives it back untouched.
    async fn admit(&self, io: TcpStream) -> Admitted {
        let Some(head) = self.peek(&io).await else {
            return Admitted::Http(io);
        };
        let engine = &self.engines[head.mount];
        match accept(engine, io, head).await {
            Some(connection) => Admitted::WebSocket(connection),
            None => Admitted::Done,
        }
    }

    async fn peek(&self, io: &TcpStream) -> Option<UpgradeHead> {
        let paths: Vec<&str> = self
            .engines
            .iter()
            .map(|engine| engine.config().path.as_str())
            .collect();
        let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
        // Wait without a buffer: a connection opened ahead of its request costs nothing.
        tokio::time::timeout_at(deadline, io.readable())
            .await
            .ok()?
            .ok()?;
        let mut buf = vec![0u8; MAX_HEAD];
        loop {
            let n = tokio::time::timeout_at(deadline, io.peek(&mut buf))
                .await
                .ok()?
                .ok()?;
            let seen = &buf[..n];
            if n == 0 || !ws_handshake::may_be_upgrade(seen, &paths) {
                return None;
            }
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                return ws_handshake::parse(seen, &paths);
            }
            if n == MAX_HEAD {
                return None;
            }
            tokio::time::sleep(HEAD_RECHECK).await;
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
        }
    }
}

/// Binds `addr` (every address it resolves to) the way actix-web does: address reuse
/// and a backlog of 1024, for bursts of handshakes.
pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    let mut last_error = None;
    for addr in addr.to_socket_addrs()? {
        let listen = || -> io::Result<TcpListener> {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            socket.bind(&addr.into())?;
            socket.listen(1024)?;
            Ok(socket.into())
        };
        match listen() {
            Ok(listener) => listeners.push(listener),
            Err(error) => last_error = Some(error),
        }
    }
    if listeners.is_empty() {
        return Err(
            last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))
        );
    }
    Ok(listeners)
}

/// The WebSocket endpoint: admission and the 101; returns the transport to run.
async fn accept(
    engine: &EngineServer,
    mut io: TcpStream,
    head: UpgradeHead,
) -> Option<WsConnection> {
    // The head was peeked; take it off the socket so that frames follow.
    let mut consumed = vec![0u8; head.len];
    if io.read_exact(&mut consumed).await.is_err() {
        return None;
    }
    drop(consumed);
    let _ = io.set_nodelay(true);
    let request = RequestInfo {
        remote_addr: io.peer_addr().ok(),
        headers: head.headers,
        query: head.query,
    };
    let sid = EngineQuery::parse(&request.query).sid.map(str::to_owned);
    let shared = engine.shared.clone();
    let Some(sid) = sid else {
        let accept = engine
            .check_handshake(&request)
            .and_then(|()| ws_handshake::accept_key(&request.headers));
        let accept = match accept {
            Ok(accept) => accept,
            Err(error) => return refuse(io, &error).await,
        };
        switch(&mut io, &accept).await.ok()?;
        let opened = engine.open_session(request, TransportKind::WebSocket);
        return Some(WsConnection::direct(
            io,
            opened.recipient,
            opened.queue,
            shared,
        ));
    };
    if let Err(error) = engine.check_allowed(&request) {
        return refuse(io, &error).await;
    }
    let Some(entry) = engine.lookup(&sid) else {
        return refuse(io, &EngineError::UnknownSid).await;
    };
    let (recipient, queue) = (entry.recipient.clone(), entry.queue.clone());
    drop(entry);
    let granted = match recipient.send(TransportMsg::UpgradeRequest).await {
        Ok(granted) => granted.is_ok(),
        Err(_) => return refuse(io, &EngineError::UnknownSid).await,
    };
    let accept = match ws_handshake::accept_key(&request.headers) {
        Ok(accept) => accept,
        Err(error) => {
            if granted {
                recipient.do_send(TransportMsg::UpgradeAborted);
            }
            return refuse(io, &error).await;
        }
    };
    if switch(&mut io, &accept).await.is_err() {
        if granted {
            recipient.do_send(TransportMsg::UpgradeAborted);
        }
        return None;
    }
    if granted {
        Some(WsConnection::upgrade(io, recipient, queue, shared))
    } else {
        // The session already has (or is getting) a WebSocket: like Node, accept this
        // one and close it at once, leaving the session be.
        WsConnection::refuse(io).await;
        None
    }
}

async fn switch(io: &mut TcpStream, accept: &str) -> io::Result<()> {
    io.write_all(&ws_handshake::switching_protocols(accept))
        .await
}

async fn refuse(mut io: TcpStream, error: &EngineError) -> Option<WsConnection> {
    if io
        .write_all(&ws_handshake::error_response(error))
        .await
        .is_ok()
    {
        ws_transport::linger(io).await;
    }
    None
}
