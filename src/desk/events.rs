//! The seed's event names and the JSON shapes the desk sends.
//!
//! `mensaje_recibido` keeps the seed's `{de, mensaje}` and adds `para`, `id` and `fecha`;
//! `mensaje_enviado` is additive (copies for the sender's other tabs and the other admins);
//! `mensaje_error` tells a client that sent without an ack callback why a message was
//! refused.

use serde::Serialize;
use serde_json::Value;

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

/// The ack: `{ok: true, id, fecha}` once stored, `{ok: false, error}` when refused (also
/// the argument of `mensaje_error`).
#[derive(Serialize)]
#[serde(untagged)]
pub enum AckBody {
    Stored { ok: bool, id: i64, fecha: String },
    Refused { ok: bool, error: String },
}

impl AckBody {
    pub fn of(outcome: &Result<Posted, PostError>) -> Self {
        match outcome {
            Ok(posted) => AckBody::Stored {
                ok: true,
                id: posted.id,
                fecha: format_fecha(&posted.fecha),
            },
            Err(error) => AckBody::Refused {
                ok: false,
                error: error.to_string(),
            },
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("an ack body serializes")
    }
}
