//! Storage: messages and users in SQLite, PostgreSQL or MySQL/MariaDB through Diesel.
//!
//! Writes go through [`MessageWriter`] (group commit, bounded spool, retries) onto a
//! SyncArbiter pool of [`DbExecutor`]s sharing an r2d2 pool; reads go to the executors
//! directly. The rest of the program sees only the message types defined here.
//!
//! CONTRACT of the public items below (used by `broker/`, `http/`, `cli.rs`, `server.rs`).

use actix::Addr;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::StorageSettings;

/// A message accepted by the broker, not yet stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub de_usuario: String,
    pub para_usuario: String,
    pub mensaje: String,
    /// The broker's timestamp; stored as is (millisecond precision).
    pub fecha: DateTime<Utc>,
}

/// A row of `mensajes`; serializes to the seed's JSON row shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredMessage {
    pub id: i64,
    pub de_usuario: String,
    pub para_usuario: String,
    pub mensaje: String,
    /// RFC 3339, UTC, milliseconds (`2026-12-01T08:00:00.123Z`).
    #[serde(serialize_with = "serialize_fecha")]
    pub fecha: DateTime<Utc>,
}

pub fn format_fecha(fecha: &DateTime<Utc>) -> String {
    fecha.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn serialize_fecha<S: serde::Serializer>(f: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_fecha(f))
}

/// A row of `usuarios`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserRecord {
    pub usuario: String,
    pub nombre: String,
    pub rol: String,
    #[serde(skip)]
    pub pass: String,
    pub imagen: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The database is away and the spool is full.
    #[error("el almacenamiento está saturado; inténtalo de nuevo")]
    SpoolFull,
    #[error("base de datos no disponible")]
    Unavailable,
    #[error("el servidor se está apagando")]
    ShuttingDown,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported DATABASE_URL: {0}")]
    UnsupportedUrl(String),
    #[error("database: {0}")]
    Database(String),
    #[error("migrations: {0}")]
    Migration(String),
}

/// Store one message; answered once it is committed (or refused).
#[derive(actix::Message, Debug)]
#[rtype(result = "Result<StoredMessage, StoreError>")]
pub struct Persist(pub NewMessage);

/// Storage, started: executor pool and writer.
#[derive(Clone)]
pub struct Storage {/* implementation-defined */}

/// Which page of a history: the newest `limit` rows, or those older than `before_id`.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Storage {
    /// Connect, run pending migrations, start the executors and the writer.
    /// Must be called inside a running actix System.
    pub fn start(settings: &StorageSettings) -> Result<Storage, StorageError> {
        let _ = settings;
        todo!()
    }
    /// Run pending migrations and return (for `mensajero migrate`); no actors needed.
    pub fn migrate(settings: &StorageSettings) -> Result<Vec<String>, StorageError> {
        let _ = settings;
        todo!()
    }
    pub fn writer(&self) -> actix::Recipient<Persist> {
        todo!()
    }
    /// Messages from or to `user`, oldest first within the page.
    pub async fn conversation(
        &self,
        user: &str,
        page: Page,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let _ = (user, page);
        todo!()
    }
    /// Non-admin users that have a conversation with the desk.
    pub async fn conversation_users(&self) -> Result<Vec<String>, StoreError> {
        todo!()
    }
    pub async fn find_user(&self, usuario: &str) -> Result<Option<UserRecord>, StoreError> {
        let _ = usuario;
        todo!()
    }
    pub async fn admin_names(&self) -> Result<Vec<String>, StoreError> {
        todo!()
    }
    /// Insert or replace a user (password already hashed).
    pub async fn upsert_user(&self, user: UserRecord) -> Result<(), StoreError> {
        let _ = user;
        todo!()
    }
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        todo!()
    }
    /// `/readyz`: the database answers and the writer is not in an outage.
    pub async fn ready(&self) -> bool {
        todo!()
    }
    /// Writer gauges for `/metrics`.
    pub fn writer_stats(&self) -> WriterStats {
        todo!()
    }
    /// Graceful shutdown: stop accepting, store and ack everything accepted.
    pub async fn flush_and_stop(&self) {
        todo!()
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WriterStats {
    pub spooled: u64,
    pub stored_total: u64,
    pub refused_total: u64,
    pub batches_total: u64,
    pub store_latency_us_sum: u64,
    pub outage: bool,
}
