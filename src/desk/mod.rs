//! The support desk on Socket.IO: where the wire protocol meets the chat broker.
//!
//! [`DeskNamespace`] authenticates each socket at CONNECT and registers it with the
//! [`ChatServer`](crate::broker::ChatServer); [`DeskPeer`] is how the broker reaches it
//! back. Event names and payload shapes of the seed's API live here and nowhere else.

mod events;
mod namespace;
mod peer;

pub use namespace::DeskNamespace;
pub use peer::DeskPeer;

/// The broker as the desk uses it.
pub type DeskChatServer = crate::broker::ChatServer<DeskPeer>;
