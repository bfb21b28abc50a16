//! placeholder
pub struct DeskPeer;
