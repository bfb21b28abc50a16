//! How the broker reaches a desk socket: encode once as a Socket.IO EVENT, queue per socket.

use crate::broker::{DeliveryKind, Peer, PeerGone};
use crate::protocol::socketio::{Frame, Socket};
use crate::storage::StoredMessage;

use super::events::{MessageBody, delivery_event};

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
        Frame::event_with("/", delivery_event(kind), &MessageBody::of(message))
    }

    fn deliver(&self, frame: &Frame) -> Result<(), PeerGone> {
        self.socket.send(frame).map_err(|_| PeerGone)
    }

    fn expire(&self) {
        self.socket.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::protocol::engineio::WireFrame;

    #[test]
    fn a_delivery_is_one_socket_io_event_with_the_seeds_fields_first() {
        let message = StoredMessage {
            id: 7,
            de_usuario: "ana".into(),
            para_usuario: "admin".into(),
            mensaje: "hola \"desk\" <b>".into(),
            fecha: chrono::Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
        };
        let frame = DeskPeer::encode(DeliveryKind::Received, &message);
        let WireFrame::Text(text) = frame.wire() else {
            panic!("text frame expected")
        };
        assert_eq!(
            &**text,
            r#"42["mensaje_recibido",{"de":"ana","mensaje":"hola \"desk\" <b>","para":"admin","id":7,"fecha":"2026-12-01T08:00:00.000Z"}]"#
        );
    }
}
