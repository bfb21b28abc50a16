//! The reference servers of the official Engine.IO v4 and Socket.IO v5 test suites
//! (SPEC 1.5) on `localhost:3000`: `/engine.io/` echoes, `/socket.io/` is Socket.IO.
//!
//! `cargo run --release --example conformance`, then `npm ci && npm test` in each suite.

use actix_web::{App, HttpServer};
use mensajero::protocol::conformance::{ConformanceOptions, ConformanceServers};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let servers = ConformanceServers::new(&ConformanceOptions::default());
    let app_servers = servers.clone();
    let mut server = HttpServer::new(move || {
        let servers = app_servers.clone();
        App::new().configure(move |cfg| servers.configure(cfg))
    })
    // A client that drops its polling GET must end the session (the suites check it):
    // only without half-closed connections does actix notice the EOF while it waits.
    .h1_allow_half_closed(false)
    .bind(("127.0.0.1", 3000))?;
    // `localhost` resolves to ::1 first on many hosts (Node's fetch uses that order).
    match server.bind(("::1", 3000)) {
        Ok(bound) => server = bound,
        Err(error) => {
            log::warn!("not listening on [::1]:3000: {error}");
            return Err(error);
        }
    }
    log::info!("conformance servers on localhost:3000 (/engine.io/, /socket.io/)");
    server.run().await
}
