//! mensajero: a Socket.IO message broker for support-desk chat.
//!
//! The crate is layered so that each layer can be read on its own:
//!
//! - [`protocol`] speaks Engine.IO v4 and Socket.IO v5 (codecs, sessions, transports) and
//!   knows nothing of chat: applications plug in as Socket.IO namespaces.
//! - [`broker`] is the chat itself: the `ChatServer` actor that owns room membership, the
//!   routing rules, authentication and the authorization policy. It knows no wire format.
//! - [`storage`] persists messages and users through Diesel, behind a pool of synchronous
//!   executor actors and a group-commit writer.
//! - [`desk`] is the one place where the three meet: the Socket.IO namespace that turns
//!   sockets into chat members.
//! - [`http`] serves the history API, sign-in, the desk page, health and metrics.
//! - [`config`] is the one typed settings struct; [`cli`] and [`server`] wire it all up.

pub mod broker;
pub mod cli;
pub mod config;
pub mod desk;
pub mod http;
pub mod protocol;
pub mod server;
pub mod storage;
