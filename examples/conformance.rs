//! The reference servers of the official Engine.IO v4 and Socket.IO v5 test suites
//! (SPEC 1.5) on `localhost:3000`: `/engine.io/` echoes, `/socket.io/` is Socket.IO.
//!
//! `cargo run --release --example conformance`, then `npm ci && npm test` in each suite.

use actix_web::App;
use mensajero::protocol::conformance::{ConformanceOptions, ConformanceServers};
use mensajero::protocol::engineio;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let servers = ConformanceServers::new(&ConformanceOptions::default());
    let door = servers.front_door();
    let mut builder = actix_server::Server::build();
    // `localhost` resolves to ::1 first on many hosts (Node's fetch uses that order).
    for addr in ["127.0.0.1:3000", "[::1]:3000"] {
        let listener = match engineio::bind(addr) {
            Ok(mut listeners) => listeners.remove(0),
            Err(error) => {
                log::warn!("not listening on {addr}: {error}");
                return Err(error);
            }
        };
        let local = listener.local_addr()?;
        let (door, servers) = (door.clone(), servers.clone());
        // The front door turns off half-closed connections: a client that drops its
        // polling GET must end the session (the suites check it).
        builder = builder.listen("conformance", listener, move || {
            let servers = servers.clone();
            door.service(
                local,
                App::new().configure(move |cfg| servers.configure(cfg)),
            )
        })?;
    }
    log::info!("conformance servers on localhost:3000 (/engine.io/, /socket.io/)");
    builder.run().await
}
