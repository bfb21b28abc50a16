//! HTTP: the seed's history API, sign-in, the desk page, health and metrics.
//!
//! CONTRACT: `http::configure(cfg, state)` mounts every route; [`HttpState`] is what the
//! handlers need, built once in `server.rs`.

use std::sync::Arc;

use actix::Addr;
use actix_web::web;

use crate::broker::auth::TokenService;
use crate::config::Settings;
use crate::protocol::engineio::EngineServer;
use crate::storage::Storage;

pub mod accounts;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    pub settings: Arc<Settings>,
    pub tokens: Arc<TokenService>,
    pub storage: Storage,
    pub engine: EngineServer,
    pub chat: Addr<crate::broker::ChatServer<crate::desk::DeskPeer>>,
    pub chat_metrics: Arc<crate::broker::chat_server::ChatMetrics>,
}

pub fn configure(cfg: &mut web::ServiceConfig, state: HttpState) {
    let _ = (cfg, state);
}
