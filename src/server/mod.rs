//! Wiring: starts storage, the broker, the protocol and HTTP, and stops them in order.
//!
//! Start-up order follows dependencies (storage before the broker that writes to it, the
//! broker before the sockets that join it). Shutdown runs the other way round, so that
//! every message accepted before the signal is stored and acked before sessions close.

mod origin;
mod placement;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::Arbiter;
use actix_web::{App, http::StatusCode};

pub use origin::OriginPolicy;
use placement::{BrokerStart, OnFirstWorker, Writer};

use crate::broker::auth::{TokenService, TokenSetupError};
use crate::broker::chat_server::ChatMetrics;
use crate::broker::policy::Policy;
use crate::config::{BrokerThread, Settings};
use crate::desk::DeskNamespace;
use crate::http::{self, HttpState};
use crate::protocol::engineio::{self, EngineConfig, EngineServer, FrontDoor, RequestRefusal};
use crate::protocol::socketio::SocketIoServer;
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("JWT_SECRET is not set (use --demo for a throwaway secret)")]
    MissingSecret,
    #[error(transparent)]
    Token(#[from] TokenSetupError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo accounts: {0}")]
    Demo(String),
}

/// Run the broker until SIGINT or SIGTERM, then shut down gracefully.
pub async fn run(mut settings: Settings) -> Result<(), ServeError> {
    if settings.jwt_secret.is_empty() {
        if !settings.demo {
            return Err(ServeError::MissingSecret);
        }
        settings.jwt_secret = random_secret();
        log::warn!("demo mode: JWT_SECRET not set, using a random secret for this run");
    }
    let settings = Arc::new(settings);
    let tokens = Arc::new(TokenService::new(&settings.jwt_secret, &settings.auth)?);

    // The writer runs beside the ChatServer, wherever that is placed (see `placement`).
    let (storage, writer_launch) = Storage::start_deferred(&settings.storage)?;
    if settings.demo {
        print_demo_accounts(&storage).await?;
    }
    let admins = storage.admin_names().await.unwrap_or_else(|e| {
        log::warn!(
            "could not load admin names ({e}); only the desk name and seen admins are addressable"
        );
        Vec::new()
    });

    let chat_metrics = Arc::new(ChatMetrics::default());
    let policy = Policy::new(settings.chat.desk_name.clone(), admins);
    let writer = if settings.storage.persist {
        Writer::Storage(storage.writer().recipient(), Box::new(writer_launch))
    } else {
        log::warn!("storage.persist = false: messages are NOT stored, acks are not durable");
        // The unused storage writer still answers `flush_and_stop` at shutdown.
        writer_launch.run();
        Writer::Volatile
    };
    let (chat, broker) = BrokerStart::new(policy, writer, chat_metrics.clone());
    let (on_first_worker, broker_thread) = if settings.server.broker_thread == BrokerThread::Worker
    {
        (Some(OnFirstWorker::new(broker)), None)
    } else {
        let thread = Arbiter::new();
        broker.run_on(&thread);
        (None, Some(thread))
    };

    let desk = DeskNamespace::new(tokens.clone(), chat.clone(), settings.chat.clone());
    let unanswered = desk.unanswered();
    let socketio = SocketIoServer::builder()
        .namespace("/", Arc::new(desk))
        .connect_timeout(settings.engine.connect_timeout())
        .build();
    let engine = EngineServer::socketio(engine_config(&settings), socketio);

    let state = HttpState {
        settings: settings.clone(),
        tokens,
        storage: storage.clone(),
        engine: engine.clone(),
        chat,
        chat_metrics,
    };
    // The front door takes Engine.IO WebSockets off the listener before actix-http (whose
    // per-connection buffers they would otherwise keep); everything else is the App.
    let door = FrontDoor::new([engine.clone()]);
    let listeners =
        engineio::bind(settings.server.bind.as_str()).map_err(|source| ServeError::Bind {
            addr: settings.server.bind.clone(),
            source,
        })?;
    let mut builder = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_secs);
    if settings.server.workers > 0 {
        builder = builder.workers(settings.server.workers);
    }
    for listener in listeners {
        let addr = listener.local_addr()?;
        let (door, state, engine) = (door.clone(), state.clone(), engine.clone());
        let on_first_worker = on_first_worker.clone();
        builder = builder.listen("mensajero", listener, move || {
            if let Some(broker) = &on_first_worker {
                broker.start_here();
            }
            let (state, engine) = (state.clone(), engine.clone());
            door.service(
                addr,
                App::new().configure(move |cfg| {
                    // HTTP routes first: they include the client bundle under the engine's path.
                    http::configure(cfg, state);
                    engine.configure(cfg);
                }),
            )
        })?;
        log::info!("listening on http://{addr}");
        print_ready(addr);
    }
    let server = builder.run();
    let handle = server.handle();
    let running = actix_web::rt::spawn(server);

    wait_for_signal().await;
    log::info!("shutting down: storing accepted messages, then closing sessions");
    let deadline = Duration::from_secs(settings.server.shutdown_timeout_secs);
    let flushed = tokio::time::timeout(deadline, async {
        storage.flush_and_stop().await;
        // The writer has answered; wait until those answers are queued to their sockets.
        while unanswered.count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if flushed.is_err() {
        log::warn!(
            "shutdown: {} messages still unanswered at the deadline",
            unanswered.count()
        );
    }
    engine.shutdown(deadline / 2).await;
    handle.stop(true).await;
    let _ = running.await;
    // Nothing reads or writes any more: say goodbye to the database.
    storage.close().await;
    if let Some(thread) = broker_thread {
        thread.stop();
    }
    log::info!("stopped");
    Ok(())
}

fn engine_config(settings: &Settings) -> EngineConfig {
    let origins = Arc::new(OriginPolicy::new(&settings.server.allowed_origins));
    EngineConfig {
        path: settings.engine.path.clone(),
        ping_interval: settings.engine.ping_interval(),
        ping_timeout: settings.engine.ping_timeout(),
        max_payload: settings.engine.max_payload,
        outbound_queue: settings.engine.outbound_queue,
        max_sessions: settings.engine.max_sessions,
        allow_request: Some(Arc::new(move |req| {
            if origins.allows_request(req) {
                Ok(())
            } else {
                log::warn!(
                    "handshake refused: origin {:?} not allowed",
                    req.headers.get("origin")
                );
                Err(RequestRefusal {
                    status: StatusCode::FORBIDDEN,
                    message: "Origin not allowed",
                })
            }
        })),
    }
}

/// Scripts and tests wait for this line on stdout to learn the bound port.
fn print_ready(addr: SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "mensajero listening on http://{addr}");
    let _ = out.flush();
}

async fn print_demo_accounts(storage: &Storage) -> Result<(), ServeError> {
    let accounts = http::accounts::seed_demo_accounts(storage)
        .await
        .map_err(|e| ServeError::Demo(e.to_string()))?;
    println!("demo accounts (sign in at /login):");
    for (user, password, role) in accounts {
        println!("  {user:<10} password {password:<14} ({})", role.as_str());
    }
    Ok(())
}

fn random_secret() -> String {
    use rand::RngExt;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM received"),
        _ = int.recv() => log::info!("SIGINT received"),
    }
}
