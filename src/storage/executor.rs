//! The database executors: actors that run one blocking Diesel call at a time on a
//! connection from the shared r2d2 pool. This is the only place that blocks on the
//! database.
//!
//! - [`DbExecutor`]: the readers (history, users, `/readyz`), a SyncArbiter pool whose
//!   threads share one queue, so a read goes to whichever thread is free. That queue is
//!   unbounded (actix's SyncArbiter has no capacity): reads pass a semaphore in
//!   [`super::Storage`] first.
//! - [`BatchExecutor`]: the writer's, one per writer lane, each an actor on an arbiter
//!   (thread) of its own. A SyncArbiter forwards every message through the System
//!   arbiter's thread, which would cost each batch one more thread wake-up than the call
//!   needs; here the writer's `StoreBatch` lands in this actor's mailbox directly. The
//!   writer gives each executor one batch at a time, so that mailbox never holds more
//!   than one.
//!
//! Both keep a connection between calls; at shutdown [`Release`] makes them let go of it,
//! into a pool that closes it by then.

use std::sync::{Arc, Barrier};

use actix::prelude::*;

use r2d2::PooledConnection;

use super::connection::{DbConnection, DbManager, DbPool};
use super::models::MessageRow;
use super::queries::{self, MysqlIds};
use super::{Page, StoredMessage, UserRecord};

pub struct DbExecutor {
    pool: DbPool,
    mysql_ids: MysqlIds,
    /// The connection this executor keeps between calls while they succeed: checking one
    /// out (and r2d2's liveness test) would cost a round trip per batch. It goes back to
    /// the pool after any failure, so the next call starts on a tested connection.
    held: Option<PooledConnection<DbManager>>,
}

impl DbExecutor {
    pub fn new(pool: DbPool, mysql_ids: MysqlIds) -> DbExecutor {
        DbExecutor {
            pool,
            mysql_ids,
            held: None,
        }
    }

    /// Run a read (or an idempotent write) on the kept connection. A kept connection can
    /// die while it sits unused (an outage, a database restart, the server's idle
    /// timeout) without anyone noticing: if it turns out dead, the call is made once more
    /// on a fresh connection from the pool, so the first read after an outage does not
    /// fail for a reason that is already over.
    fn with_conn<T>(
        &mut self,
        mut f: impl FnMut(&mut DbConnection) -> diesel::QueryResult<T>,
    ) -> Result<T, DbError> {
        if self.held.is_some() {
            // A dead kept connection is dropped by `once`: the second try takes a fresh one.
            match self.once(&mut f) {
                Err(DbError::Unreachable(_)) => {}
                outcome => return outcome,
            }
        }
        self.once(f)
    }

    /// Run `f` once, on the kept connection or else a fresh one. For the writer's batches,
    /// which must not be repeated blindly: whether one committed is for the writer to find
    /// out (its retry looks the keys up).
    fn once<T>(
        &mut self,
        f: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T>,
    ) -> Result<T, DbError> {
        let mut conn = match self.held.take() {
            Some(conn) => conn,
            None => self
                .pool
                .get()
                .map_err(|e| DbError::Unreachable(e.to_string()))?,
        };
        match f(&mut conn) {
            Ok(value) => {
                self.held = Some(conn);
                Ok(value)
            }
            // Whether the database is still there decides what the writer does next:
            // back off as in an outage, or count an attempt against this batch.
            Err(e) if conn.ping().is_ok() => Err(DbError::Failed(e.to_string())),
            Err(e) => Err(DbError::Unreachable(e.to_string())),
        }
    }
}

impl Actor for DbExecutor {
    type Context = SyncContext<Self>;
}

/// The writer's executor: a [`DbExecutor`] on an arbiter of its own.
pub struct BatchExecutor(DbExecutor);

impl BatchExecutor {
    /// Start it on a new arbiter (thread); it lives until the System stops.
    pub fn start_own_thread(pool: DbPool, mysql_ids: MysqlIds) -> Addr<BatchExecutor> {
        let thread = Arbiter::new();
        BatchExecutor::start_in_arbiter(&thread.handle(), move |_| {
            BatchExecutor(DbExecutor::new(pool, mysql_ids))
        })
    }
}

impl Actor for BatchExecutor {
    type Context = Context<Self>;
}

/// Shutdown: let go of the kept connection (the pool, closing by then, closes it). The
/// readers share one queue, so each of them is sent one `Release` holding a barrier sized
/// to their number: a reader that has taken one waits there until every other has too,
/// so no reader takes two and none is missed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release(pub Arc<Barrier>);

impl DbExecutor {
    fn release(&mut self, Release(everyone): Release) {
        self.held = None;
        everyone.wait();
    }
}

impl Handler<Release> for DbExecutor {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut SyncContext<Self>) {
        self.release(msg);
    }
}

impl Handler<Release> for BatchExecutor {
    type Result = ();

    fn handle(&mut self, msg: Release, _: &mut Context<Self>) {
        self.0.release(msg);
    }
}

/// Why a database call did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// No connection, or the connection died: the database is (for now) away.
    #[error("database unreachable: {0}")]
    Unreachable(String),
    /// The database answers but refused this statement.
    #[error("database refused the statement: {0}")]
    Failed(String),
}

/// Store these messages in one transaction; answers their ids, in order.
#[derive(Message)]
#[rtype(result = "Result<Vec<i64>, DbError>")]
pub struct StoreBatch {
    pub rows: Arc<Vec<MessageRow>>,
    /// Some of these rows were in an attempt that may have committed unseen: skip those
    /// already stored (by key) instead of inserting them twice.
    pub recheck: bool,
}

impl Handler<StoreBatch> for BatchExecutor {
    type Result = Result<Vec<i64>, DbError>;

    fn handle(&mut self, msg: StoreBatch, _: &mut Context<Self>) -> Self::Result {
        let executor = &mut self.0;
        let mysql_ids = executor.mysql_ids;
        let started = std::time::Instant::now();
        let outcome =
            executor.once(|c| queries::insert_batch(c, &msg.rows, msg.recheck, mysql_ids));
        log::trace!(
            "storage: batch of {} in {:?}",
            msg.rows.len(),
            started.elapsed()
        );
        outcome
    }
}

/// Is the database answering?
#[derive(Message)]
#[rtype(result = "Result<(), DbError>")]
pub struct Ping;

impl Handler<Ping> for DbExecutor {
    type Result = Result<(), DbError>;

    fn handle(&mut self, _: Ping, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(|c| c.ping())
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<StoredMessage>, DbError>")]
pub struct LoadConversation {
    pub user: String,
    pub page: Page,
}

impl Handler<LoadConversation> for DbExecutor {
    type Result = Result<Vec<StoredMessage>, DbError>;

    fn handle(&mut self, msg: LoadConversation, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(|c| queries::conversation(c, &msg.user, msg.page))
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<String>, DbError>")]
pub struct LoadConversationUsers {
    pub desk_name: String,
}

impl Handler<LoadConversationUsers> for DbExecutor {
    type Result = Result<Vec<String>, DbError>;

    fn handle(&mut self, msg: LoadConversationUsers, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(|c| queries::conversation_users(c, &msg.desk_name))
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<String>, DbError>")]
pub struct LoadAdminNames;

impl Handler<LoadAdminNames> for DbExecutor {
    type Result = Result<Vec<String>, DbError>;

    fn handle(&mut self, _: LoadAdminNames, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(queries::admin_names)
    }
}

#[derive(Message)]
#[rtype(result = "Result<Option<UserRecord>, DbError>")]
pub struct FindUser(pub String);

impl Handler<FindUser> for DbExecutor {
    type Result = Result<Option<UserRecord>, DbError>;

    fn handle(&mut self, msg: FindUser, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(|c| queries::find_user(c, &msg.0))
    }
}

#[derive(Message)]
#[rtype(result = "Result<Vec<UserRecord>, DbError>")]
pub struct LoadUsers;

impl Handler<LoadUsers> for DbExecutor {
    type Result = Result<Vec<UserRecord>, DbError>;

    fn handle(&mut self, _: LoadUsers, _: &mut SyncContext<Self>) -> Self::Result {
        self.with_conn(queries::list_users)
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), DbError>")]
pub struct SaveUser(pub UserRecord);

impl Handler<SaveUser> for DbExecutor {
    type Result = Result<(), DbError>;

    fn handle(&mut self, msg: SaveUser, _: &mut SyncContext<Self>) -> Self::Result {
        // Delete and insert in one transaction: safe to run again.
        self.with_conn(|c| queries::upsert_user(c, msg.0.clone()))
    }
}
