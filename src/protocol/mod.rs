//! The wire protocol: Engine.IO v4 (transports, sessions, heartbeat) and Socket.IO v5
//! (packets, namespaces, acks, binary attachments) on top of it.
//!
//! Nothing here knows about chat. An application registers [`socketio::Namespace`]s and
//! receives events through [`socketio::SocketHandler`]s; it talks back through
//! [`socketio::Socket`] handles, which are cheap to clone and safe to hold in other actors.

pub mod conformance;
pub mod engineio;
pub mod socketio;
