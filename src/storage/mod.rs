//! Storage: messages and users in SQLite, PostgreSQL or MySQL/MariaDB through Diesel.
//!
//! Writes go through the message writer (group commit, bounded spool, retries) onto
//! executor threads of their own, one per writer lane; reads go to a SyncArbiter pool of
//! executors, so that neither waits behind the other. All share one r2d2 pool. The rest
//! of the program sees only the types defined here.
//!
//! One file per concern:
//! - `connection`: backend from `DATABASE_URL`, the connection enum, the r2d2 pool and
//!   the SQLite pragmas;
//! - `migrations`: the embedded per-backend Diesel migrations;
//! - `schema`, `models`: the tables and their row types;
//! - `queries`: every statement, written once for the three backends;
//! - `executor`: the `DbExecutor` (reads) and `BatchExecutor` (writes) actors, the only
//!   code that blocks on the database, and their messages;
//! - `writer`: the `MessageWriter` actor: group commit over lanes that keep each sender's
//!   order, acks after commit, the spool, retries with backoff, exactly-once across
//!   ambiguous failures.
//!
//! Decisions worth knowing:
//! - `mensajes` has one column more than the seed's, `clave` (NULL-able, unique): the
//!   writer's idempotency key. A batch retried after a failure that may have hidden a
//!   commit inserts only the rows whose key is not stored yet. Rows written by anything
//!   else (the seed's `INSERT`) leave it NULL.
//! - `fecha` is stored as UTC without a time zone (`timestamp(3)`, `DATETIME(3)`, SQLite
//!   text), cut to milliseconds before it is written, so the ack's `fecha` is the stored
//!   one. Column defaults (for foreign INSERTs) are UTC on SQLite and PostgreSQL and the
//!   session time zone on MySQL, as in the seed.
//! - The ids of a batch: `RETURNING` on PostgreSQL, `last_insert_rowid()` arithmetic on
//!   SQLite (one statement under its write lock numbers rows consecutively),
//!   `LAST_INSERT_ID()` arithmetic on MySQL/MariaDB when `innodb_autoinc_lock_mode` is 0
//!   or 1 (checked at start-up), else a lookup by key.
//!
//! The public items below are what `broker/`, `http/`, `cli.rs` and `server.rs` use.

mod connection;
mod executor;
mod migrations;
mod models;
mod queries;
mod schema;
pub mod volatile;
mod writer;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::StorageSettings;
pub use connection::Backend;
use connection::{Closing, DbPool};
use executor::{
    BatchExecutor, DbError, DbExecutor, FindUser, LoadAdminNames, LoadConversation,
    LoadConversationUsers, LoadUsers, Ping, Release, SaveUser,
};
use queries::MysqlIds;
use writer::{Abandon, Drain, WriterConfig, WriterGauges};
pub use writer::{MessageWriter, WriterLaunch};

/// A message accepted by the broker, not yet stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub de_usuario: String,
    pub para_usuario: String,
    pub mensaje: String,
    /// The broker's timestamp; stored as is (millisecond precision).
    pub fecha: DateTime<Utc>,
}

impl NewMessage {
    /// The message as stored under `id`.
    pub fn stored(self, id: i64) -> StoredMessage {
        StoredMessage {
            id,
            de_usuario: self.de_usuario,
            para_usuario: self.para_usuario,
            mensaje: self.mensaje,
            fecha: self.fecha,
        }
    }
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

/// Store one message; answered once it is committed (or refused). For callers that wait
/// for one answer at a time (actix spawns a task per request to carry the answer back).
#[derive(actix::Message, Debug)]
#[rtype(result = "Result<StoredMessage, StoreError>")]
pub struct Persist(pub NewMessage);

/// Where the answer to a [`Store`] goes.
pub type StoreReply = tokio::sync::oneshot::Sender<Result<StoredMessage, StoreError>>;

/// Store one message and answer on `reply` once it is committed (or refused): the form
/// for a caller with thousands of messages in flight (the broker), which waits on the
/// replies itself instead of on one request future, and one task, per message.
#[derive(actix::Message, Debug)]
#[rtype(result = "()")]
pub struct Store {
    pub message: NewMessage,
    pub reply: StoreReply,
}

/// Storage, started: executor pool and writer.
#[derive(Clone)]
pub struct Storage {
    backend: Backend,
    /// The read executors (the writer has its own).
    executor: Addr<DbExecutor>,
    writer: Addr<MessageWriter>,
    gauges: Arc<WriterGauges>,
    /// Reads waiting for an executor; the SyncArbiter's own queue is unbounded.
    reads: Arc<Semaphore>,
    page_default: i64,
    page_max: i64,
    flush_timeout: Duration,
    ready_timeout: Duration,
    connections: Arc<Connections>,
}

/// What [`Storage::close`] closes: the pool and every executor that keeps a connection.
struct Connections {
    pool: DbPool,
    closing: Closing,
    batch_executors: Vec<Addr<BatchExecutor>>,
    read_executors: usize,
}

/// How long closing the connections may take at exit: one round trip each, unless a
/// call is still running on an executor.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The desk's name as the seed clients spell it; see [`Storage::conversation_users_excluding`].
pub const DEFAULT_DESK_NAME: &str = "admin";

/// Reads allowed to wait for an executor, per executor thread.
const READS_PER_EXECUTOR: usize = 64;

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
        let (storage, writer) = Storage::start_deferred(settings)?;
        writer.run();
        Ok(storage)
    }

    /// As [`Storage::start`], except that the writer runs only when the caller runs the
    /// returned [`WriterLaunch`], on whichever thread the caller chooses (the broker's).
    pub fn start_deferred(
        settings: &StorageSettings,
    ) -> Result<(Storage, WriterLaunch), StorageError> {
        let (backend, pool, closing) = connection::build_pool(settings)?;
        let mysql_ids = prepare(backend, &pool, settings)?;
        let read_executors = settings.read_executors.max(1);
        // SQLite takes one writer at a time: a second would only wait for its lock.
        let write_executors = match backend {
            Backend::Sqlite => 1,
            _ => settings.write_executors.max(1),
        };
        // Separate executors: a batch never queues behind history reads, and a burst of
        // reads never delays an ack.
        let batch_executors: Vec<_> = (0..write_executors)
            .map(|_| BatchExecutor::start_own_thread(pool.clone(), mysql_ids))
            .collect();
        let executor = {
            let pool = pool.clone();
            SyncArbiter::start(read_executors, move || {
                DbExecutor::new(pool.clone(), mysql_ids)
            })
        };
        let gauges = Arc::new(WriterGauges::default());
        let (writer, launch) = MessageWriter::new(
            batch_executors.clone(),
            WriterConfig::from_settings(settings),
            Arc::clone(&gauges),
        )
        .deferred();
        log::info!(
            "storage: {backend} at {} ({write_executors} write and {read_executors} read executors, pool {})",
            connection::redact(&settings.database_url),
            settings.pool_size
        );
        let storage = Storage {
            backend,
            executor,
            writer,
            gauges,
            reads: Arc::new(Semaphore::new(read_executors * READS_PER_EXECUTOR)),
            page_default: settings.history_page_default.max(1),
            page_max: settings.history_page_max.max(1),
            flush_timeout: Duration::from_millis(settings.flush_timeout_ms),
            ready_timeout: Duration::from_millis(settings.connect_timeout_ms.max(1) * 2),
            connections: Arc::new(Connections {
                pool,
                closing,
                batch_executors,
                read_executors,
            }),
        };
        Ok((storage, launch))
    }
    /// Run pending migrations and return (for `mensajero migrate`); no actors needed.
    pub fn migrate(settings: &StorageSettings) -> Result<Vec<String>, StorageError> {
        let mut conn = connection::connect_one(settings)?;
        migrations::run_pending(&mut conn)
    }
    /// The writer: it takes [`Persist`] and [`Store`].
    pub fn writer(&self) -> Addr<MessageWriter> {
        self.writer.clone()
    }
    /// The backend `DATABASE_URL` chose.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// Messages from or to `user`, oldest first within the page.
    pub async fn conversation(
        &self,
        user: &str,
        page: Page,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let limit = if page.limit <= 0 {
            self.page_default
        } else {
            page.limit.min(self.page_max)
        };
        let page = Page {
            before_id: page.before_id,
            limit,
        };
        self.read(LoadConversation {
            user: user.to_string(),
            page,
        })
        .await
    }
    /// Non-admin users that have a conversation with the desk.
    pub async fn conversation_users(&self) -> Result<Vec<String>, StoreError> {
        self.conversation_users_excluding(DEFAULT_DESK_NAME).await
    }
    /// As [`Storage::conversation_users`], for a desk configured under another name:
    /// everyone who sent or received a message, minus `usuarios` admins and `desk_name`,
    /// sorted by name.
    pub async fn conversation_users_excluding(
        &self,
        desk_name: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.read(LoadConversationUsers {
            desk_name: desk_name.to_string(),
        })
        .await
    }
    pub async fn find_user(&self, usuario: &str) -> Result<Option<UserRecord>, StoreError> {
        self.read(FindUser(usuario.to_string())).await
    }
    pub async fn admin_names(&self) -> Result<Vec<String>, StoreError> {
        self.read(LoadAdminNames).await
    }
    /// Insert or replace a user (password already hashed).
    pub async fn upsert_user(&self, user: UserRecord) -> Result<(), StoreError> {
        self.read(SaveUser(user)).await
    }
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(LoadUsers).await
    }
    /// `/readyz`: the database answers and the writer is not in an outage.
    pub async fn ready(&self) -> bool {
        if self.gauges.outage() {
            return false;
        }
        matches!(
            tokio::time::timeout(self.ready_timeout, self.executor.send(Ping)).await,
            Ok(Ok(Ok(())))
        )
    }
    /// Writer gauges for `/metrics`.
    pub fn writer_stats(&self) -> WriterStats {
        self.gauges.snapshot()
    }
    /// Graceful shutdown: stop accepting, store and ack everything accepted.
    pub async fn flush_and_stop(&self) {
        let drained = tokio::time::timeout(self.flush_timeout, self.writer.send(Drain)).await;
        if drained.is_err() {
            let abandoned = self.writer.send(Abandon).await.unwrap_or(0);
            log::error!(
                "storage: shutdown timed out after {:?}; {abandoned} accepted messages were not stored and were answered with an error",
                self.flush_timeout
            );
        }
    }

    /// The last step of shutdown, once nothing reads or writes any more: close every
    /// database connection, each with its protocol's goodbye, before the process exits.
    pub async fn close(&self) {
        let connections = &self.connections;
        connections.closing.start();
        // Each writer executor is addressed directly: a barrier of one.
        let writers = join_all(
            connections
                .batch_executors
                .iter()
                .map(|executor| executor.send(Release(Arc::new(Barrier::new(1))))),
        );
        let everyone = Arc::new(Barrier::new(connections.read_executors));
        let readers = join_all(
            (0..connections.read_executors)
                .map(|_| self.executor.send(Release(Arc::clone(&everyone)))),
        );
        let pool = connections.pool.clone();
        let closed = async move {
            futures_util::join!(writers, readers);
            // What the executors did not hold sits idle in the pool: take it out to close it.
            let _ = tokio::task::spawn_blocking(move || {
                while let Some(idle) = pool.try_get() {
                    drop(idle);
                }
            })
            .await;
        };
        if tokio::time::timeout(CLOSE_TIMEOUT, closed).await.is_err() {
            log::warn!(
                "storage: database connections still open after {CLOSE_TIMEOUT:?}; the process exits on them"
            );
        }
    }

    /// One call on an executor; the caller only learns whether it worked.
    async fn read<M, T>(&self, message: M) -> Result<T, StoreError>
    where
        M: Message<Result = Result<T, DbError>> + Send + 'static,
        T: Send + 'static,
        DbExecutor: Handler<M>,
    {
        let _permit = self
            .reads
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable)?;
        match self.executor.send(message).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                log::warn!("storage: {error}");
                Err(StoreError::Unavailable)
            }
            Err(_) => Err(StoreError::Unavailable),
        }
    }
}

/// Start-up work on one connection: migrations, then what the executors need to know.
fn prepare(
    backend: Backend,
    pool: &DbPool,
    settings: &StorageSettings,
) -> Result<MysqlIds, StorageError> {
    // The first connection may take longer than a checkout at run time is allowed to.
    let startup_wait = settings.startup_wait_ms.max(settings.connect_timeout_ms);
    let mut conn = pool
        .get_timeout(Duration::from_millis(startup_wait.max(1)))
        .map_err(|e| StorageError::Database(e.to_string()))?;
    let applied = migrations::run_pending(&mut conn)?;
    if !applied.is_empty() {
        log::info!("storage: applied migrations {}", applied.join(", "));
    }
    let mysql_ids = if backend == Backend::Mysql {
        let detected = queries::detect_mysql_ids(&mut conn)
            .map_err(|e| StorageError::Database(e.to_string()))?;
        match settings.mysql_ids.as_str() {
            "lookup" => MysqlIds::LookupByKey,
            _ => detected,
        }
    } else {
        MysqlIds::LookupByKey
    };
    if backend == Backend::Mysql {
        log::info!("storage: MySQL ids of a batch: {mysql_ids:?}");
    }
    Ok(mysql_ids)
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WriterStats {
    pub spooled: u64,
    pub stored_total: u64,
    pub refused_total: u64,
    pub batches_total: u64,
    /// Batches sent while another was in flight (lanes working at once).
    pub parallel_batches_total: u64,
    pub store_latency_us_sum: u64,
    pub outage: bool,
}
