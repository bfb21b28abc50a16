//! The chat broker: who is connected, in which rooms, who may write to whom, and where a
//! message goes. It knows no wire format: peers are reached through the [`Peer`] trait.

pub mod auth;
pub mod chat_server;
pub mod cookie;
pub mod identity;
pub mod messages;
pub mod policy;
pub mod validation;

pub use chat_server::ChatServer;
pub use identity::{Identity, Role};
pub use messages::*;
