//! Row types as Diesel sees them, and their conversions to the public types of
//! [`crate::storage`]. Timestamps cross the database as `NaiveDateTime` in UTC.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{mensajes, usuarios};
use super::{NewMessage, StoredMessage, UserRecord};

/// One message as the writer inserts it: every column but `id` is given, so that SQLite
/// gets one multi-row INSERT (Diesel falls back to one per row when a column is DEFAULT).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = mensajes)]
pub struct MessageRow {
    pub de_usuario: String,
    pub para_usuario: String,
    pub mensaje: String,
    pub fecha: NaiveDateTime,
    pub clave: String,
}

impl MessageRow {
    /// `fecha` is cut to whole milliseconds here, once, so that what is acked is exactly
    /// what every backend stores and reads back.
    pub fn new(message: NewMessage, clave: String) -> MessageRow {
        MessageRow {
            de_usuario: message.de_usuario,
            para_usuario: message.para_usuario,
            mensaje: message.mensaje,
            fecha: truncate_to_millis(message.fecha).naive_utc(),
            clave,
        }
    }

    pub fn stored(&self, id: i64) -> StoredMessage {
        StoredMessage {
            id,
            de_usuario: self.de_usuario.clone(),
            para_usuario: self.para_usuario.clone(),
            mensaje: self.mensaje.clone(),
            fecha: self.fecha.and_utc(),
        }
    }
}

pub fn truncate_to_millis(fecha: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(fecha.timestamp_millis()).unwrap_or(fecha)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mensajes)]
pub struct MessageSelect {
    pub id: i64,
    pub de_usuario: String,
    pub para_usuario: String,
    pub mensaje: String,
    pub fecha: NaiveDateTime,
}

impl From<MessageSelect> for StoredMessage {
    fn from(row: MessageSelect) -> StoredMessage {
        StoredMessage {
            id: row.id,
            de_usuario: row.de_usuario,
            para_usuario: row.para_usuario,
            mensaje: row.mensaje,
            fecha: row.fecha.and_utc(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = usuarios)]
pub struct UserRow {
    pub usuario: String,
    pub nombre: String,
    pub rol: String,
    pub pass: String,
    pub imagen: Option<String>,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> UserRecord {
        UserRecord {
            usuario: row.usuario,
            nombre: row.nombre,
            rol: row.rol,
            pass: row.pass,
            imagen: row.imagen,
        }
    }
}

impl From<UserRecord> for UserRow {
    fn from(user: UserRecord) -> UserRow {
        UserRow {
            usuario: user.usuario,
            nombre: user.nombre,
            rol: user.rol,
            pass: user.pass,
            imagen: user.imagen,
        }
    }
}
