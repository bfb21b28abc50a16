//! How the broker reaches a desk socket: encode once as a Socket.IO EVENT, queue per socket.

use crate::broker::{DeliveryKind, Peer, PeerGone};
use crate::protocol::socketio::{Frame, Socket};
use crate::storage::StoredMessage;

use super::events::{delivery_event, message_body};

pub struct DeskPeer {
    socket: Socket,
}

impl DeskPeer {
    pub fn new(socket: Socket) -> Self {
        DeskPeer { socket }
    }
}

impl Peer for DeskPeer {
    type Frame = Frame;

    fn encode(kind: DeliveryKind, message: &StoredMessage) -> Frame {
        Frame::event("/", delivery_event(kind), &[message_body(message)])
    }

    fn deliver(&self, frame: &Frame) -> Result<(), PeerGone> {
        self.socket.send(frame).map_err(|_| PeerGone)
    }
}
