//! The seed's event names and the JSON shapes the desk sends.
//!
//! `mensaje_recibido` keeps the seed's `{de, mensaje}` and adds `para`, `id` and `fecha`;
//! `mensaje_enviado` is additive (copies for the sender's other tabs and the other admins);
//! `mensaje_error` tells a client that sent without an ack callback why a message was
//! refused.

use serde::Serialize;
use serde_json::{Value, json};

use crate::broker::{DeliveryKind, PostError, Posted};
use crate::storage::{StoredMessage, format_fecha};

pub const SEND: &str = "mensaje_privado";
pub const RECEIVED: &str = "mensaje_recibido";
pub const SENT: &str = "mensaje_enviado";
pub const REFUSED: &str = "mensaje_error";

pub fn delivery_event(kind: DeliveryKind) -> &'static str {
    match kind {
        DeliveryKind::Received => RECEIVED,
        DeliveryKind::Sent => SENT,
    }
}

/// `{de, mensaje, para, id, fecha}`: the seed's two fields first, the additive ones after.
#[derive(Serialize)]
pub struct MessageBody<'a> {
    de: &'a str,
    mensaje: &'a str,
    para: &'a str,
    id: i64,
    fecha: String,
}

impl<'a> MessageBody<'a> {
    pub fn of(message: &'a StoredMessage) -> Self {
        MessageBody {
            de: &message.de_usuario,
            mensaje: &message.mensaje,
            para: &message.para_usuario,
            id: message.id,
            fecha: format_fecha(&message.fecha),
        }
    }
}

pub fn ack_body(outcome: &Result<Posted, PostError>) -> Value {
    match outcome {
        Ok(posted) => json!({
            "ok": true,
            "id": posted.id,
            "fecha": format_fecha(&posted.fecha),
        }),
        Err(error) => json!({ "ok": false, "error": error.to_string() }),
    }
}
