//! HTTP: the seed's history API, sign-in, the desk page, health and metrics.
//!
//! `http::configure(cfg, state)` mounts every route; [`HttpState`] is what the
//! handlers need, built once in `server.rs`. `configure` must run before the Engine.IO
//! endpoint is mounted, because the client bundle lives under the same path prefix
//! (`/socket.io/socket.io.js`) and actix matches routes in registration order.
//!
//! Internally the handlers see an [`HttpCore`]: the part of the state they use. It can be
//! built without an Engine.IO server or chat actor, which is what the in-process tests do.

pub mod accounts;
mod api;
mod assets;
mod error;
mod health;
mod login;
pub mod metrics;
mod page;
mod rate_limit;
mod security;
mod session;

use std::sync::{Arc, Mutex, Weak};

use actix::Addr;
use actix_web::web;

use crate::broker::auth::TokenService;
use crate::broker::chat_server::ChatMetrics;
use crate::config::Settings;
use crate::protocol::engineio::EngineServer;
use crate::storage::Storage;

pub use error::HttpError;
pub use rate_limit::LoginLimiter;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    pub settings: Arc<Settings>,
    pub tokens: Arc<TokenService>,
    pub storage: Storage,
    pub engine: EngineServer,
    pub chat: Addr<crate::broker::ChatServer<crate::desk::DeskPeer>>,
    pub chat_metrics: Arc<ChatMetrics>,
}

/// What the handlers actually use. Cheap to clone (every field is shared).
#[derive(Clone)]
pub struct HttpCore {
    pub settings: Arc<Settings>,
    pub tokens: Arc<TokenService>,
    pub storage: Storage,
    /// Source of the transport gauges of `/metrics`; absent in tests without a server.
    pub engine: Option<EngineServer>,
    /// The broker's counters for `/metrics`; absent in tests without a broker.
    pub chat_metrics: Option<Arc<ChatMetrics>>,
    /// Sign-in attempts; one table for every worker of a server.
    pub limiter: Arc<LoginLimiter>,
}

impl HttpCore {
    pub fn new(settings: Arc<Settings>, tokens: Arc<TokenService>, storage: Storage) -> Self {
        let limiter = Arc::new(LoginLimiter::from_settings(&settings.auth));
        HttpCore {
            settings,
            tokens,
            storage,
            engine: None,
            chat_metrics: None,
            limiter,
        }
    }

    pub fn with_engine(mut self, engine: EngineServer) -> Self {
        self.engine = Some(engine);
        self
    }
}

impl From<HttpState> for HttpCore {
    fn from(state: HttpState) -> Self {
        HttpCore {
            limiter: shared_limiter(&state.settings),
            settings: state.settings,
            tokens: state.tokens,
            storage: state.storage,
            engine: Some(state.engine),
            chat_metrics: Some(state.chat_metrics),
        }
    }
}

/// The limiter of the server whose workers share this `Arc<Settings>`.
///
/// actix-web calls the app factory (and so `configure`) once per worker thread; a
/// per-call limiter would multiply the allowed attempts by the number of workers. Keyed
/// by the settings' address, held weakly so that a stopped server's table goes away.
fn shared_limiter(settings: &Arc<Settings>) -> Arc<LoginLimiter> {
    static TABLES: Mutex<Vec<(usize, Weak<LoginLimiter>)>> = Mutex::new(Vec::new());
    let key = Arc::as_ptr(settings) as usize;
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    tables.retain(|(_, weak)| weak.strong_count() > 0);
    if let Some(limiter) = tables
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, weak)| weak.upgrade())
    {
        return limiter;
    }
    let limiter = Arc::new(LoginLimiter::from_settings(&settings.auth));
    tables.push((key, Arc::downgrade(&limiter)));
    limiter
}

pub fn configure(cfg: &mut web::ServiceConfig, state: HttpState) {
    configure_core(cfg, HttpCore::from(state));
}

/// Mount every HTTP route on `cfg` (the client bundle first, see the module doc).
pub fn configure_core(cfg: &mut web::ServiceConfig, core: HttpCore) {
    let page = Arc::new(page::Pages::new(&core.settings));
    cfg.app_data(web::Data::new(core.clone()))
        .app_data(web::Data::from(page));
    assets::configure(cfg, &core.settings.engine.path);
    api::configure(cfg);
    login::configure(cfg);
    page::configure(cfg);
    health::configure(cfg);
    metrics::configure(cfg);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_of_one_server_share_one_limiter() {
        let settings = Arc::new(Settings::defaults());
        let a = shared_limiter(&settings);
        let b = shared_limiter(&settings.clone());
        assert!(Arc::ptr_eq(&a, &b));
        let other = Arc::new(Settings::defaults());
        assert!(!Arc::ptr_eq(&a, &shared_limiter(&other)));
    }
}
