//! Connections: which backend a `DATABASE_URL` names, one connection type over the three
//! Diesel backends, and the r2d2 pool that the executors share, which [`Closing`] empties
//! at shutdown.
//!
//! The connection is a plain enum rather than `#[derive(MultiConnection)]`: every query
//! here is written once and compiled per backend through [`on_inner!`], so nothing is
//! limited to the derive's common subset (batch inserts, `RETURNING`), and the backend is
//! chosen from the URL's scheme instead of by trying each driver in turn (which would
//! report a PostgreSQL outage as a SQLite error about a strange file name).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self as dr2d2, R2D2Connection};
use diesel::{MysqlConnection, PgConnection, SqliteConnection};

use super::StorageError;
use crate::config::StorageSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Mysql,
    Sqlite,
}

impl Backend {
    /// `postgres://` / `postgresql://` and `mysql://` name servers; anything else is a
    /// SQLite file (`sqlite://` prefix optional).
    pub fn from_url(url: &str) -> Result<(Backend, String), StorageError> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok((Backend::Postgres, url.to_string()))
        } else if lower.starts_with("mysql://") || lower.starts_with("mariadb://") {
            let rest = &url[url.find("://").map(|i| i + 3).unwrap_or(0)..];
            Ok((Backend::Mysql, format!("mysql://{rest}")))
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            if path.is_empty() || path.contains("://") {
                return Err(StorageError::UnsupportedUrl(redact(url)));
            }
            Ok((Backend::Sqlite, path.to_string()))
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        })
    }
}

/// A URL fit for logs: the password, if any, replaced.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end + 3],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// One connection to whichever backend the URL named.
pub enum DbConnection {
    Postgres(PgConnection),
    Mysql(MysqlConnection),
    Sqlite(SqliteConnection),
}

/// Evaluate `$body` with `$c` bound to the inner Diesel connection: the body is written
/// once and type-checked per backend.
macro_rules! on_inner {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::storage::connection::DbConnection::Postgres($c) => $body,
            $crate::storage::connection::DbConnection::Mysql($c) => $body,
            $crate::storage::connection::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_inner;

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgres(_) => Backend::Postgres,
            DbConnection::Mysql(_) => Backend::Mysql,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }

    pub fn ping(&mut self) -> QueryResult<()> {
        on_inner!(self, c => R2D2Connection::ping(c))
    }

    pub fn batch_execute(&mut self, sql: &str) -> QueryResult<()> {
        on_inner!(self, c => c.batch_execute(sql))
    }
}

/// The r2d2 manager: opens connections of the configured backend.
#[derive(Debug)]
pub struct DbManager {
    backend: Backend,
    url: String,
    closing: Closing,
}

/// Shutdown's switch for the pool. A connection the process merely exits on is dropped
/// by the server as aborted (MariaDB logs a warning for each and counts it in
/// `Aborted_clients`), and a PostgreSQL connection still open on another thread races
/// the process's TLS teardown. Once set, the pool opens no connection and closes (with
/// the protocol's goodbye) every one handed back to it, instead of keeping it.
#[derive(Debug, Clone, Default)]
pub struct Closing(Arc<AtomicBool>);

impl Closing {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn started(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl r2d2::ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = dr2d2::Error;

    fn connect(&self) -> Result<DbConnection, dr2d2::Error> {
        if self.closing.started() {
            return Err(dr2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection("the pool is closing".into()),
            ));
        }
        let conn = match self.backend {
            Backend::Postgres => PgConnection::establish(&self.url).map(DbConnection::Postgres),
            Backend::Mysql => MysqlConnection::establish(&self.url).map(DbConnection::Mysql),
            Backend::Sqlite => SqliteConnection::establish(&self.url).map(DbConnection::Sqlite),
        };
        conn.map_err(dr2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), dr2d2::Error> {
        conn.ping().map_err(dr2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        // A "broken" connection is dropped, not kept: that is how a closing pool closes.
        self.closing.started() || on_inner!(conn, c => R2D2Connection::is_broken(c))
    }
}

/// SQLite tuning, applied to every new connection. Each PRAGMA is its own statement:
/// applied as one multi-statement string, `busy_timeout` silently stayed 0.
#[derive(Debug)]
pub struct SqliteTuning {
    synchronous: String,
    busy_timeout_ms: u64,
    wal_autocheckpoint: u32,
}

/// Bytes of WAL kept after a checkpoint; beyond it the file is truncated.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

impl SqliteTuning {
    pub fn new(settings: &StorageSettings) -> Result<SqliteTuning, StorageError> {
        let synchronous = settings.sqlite_synchronous.to_ascii_uppercase();
        if !matches!(synchronous.as_str(), "OFF" | "NORMAL" | "FULL" | "EXTRA") {
            return Err(StorageError::Database(format!(
                "storage.sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {:?}",
                settings.sqlite_synchronous
            )));
        }
        Ok(SqliteTuning {
            synchronous,
            busy_timeout_ms: settings.sqlite_busy_timeout_ms,
            wal_autocheckpoint: settings.sqlite_wal_autocheckpoint,
        })
    }
}

impl r2d2::CustomizeConnection<DbConnection, dr2d2::Error> for SqliteTuning {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), dr2d2::Error> {
        if conn.backend() != Backend::Sqlite {
            return Ok(());
        }
        // busy_timeout first: switching to WAL itself needs the lock another
        // connection may be holding.
        let pragmas = [
            format!("PRAGMA busy_timeout = {}", self.busy_timeout_ms),
            "PRAGMA journal_mode = WAL".to_string(),
            format!("PRAGMA synchronous = {}", self.synchronous),
            // Each group commit rewrites many of the same index pages; checkpointing
            // rarely copies each page once for many commits instead of once per two.
            format!("PRAGMA wal_autocheckpoint = {}", self.wal_autocheckpoint),
            format!("PRAGMA journal_size_limit = {}", WAL_SIZE_LIMIT),
        ];
        for pragma in &pragmas {
            conn.batch_execute(pragma)
                .map_err(dr2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// r2d2 reports every failed connection attempt; during an outage that is one line per
/// attempt per pool slot. The writer reports outages itself, once, so these go to debug.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<dr2d2::Error> for QuietErrors {
    fn handle_error(&self, error: dr2d2::Error) {
        log::debug!("storage: connection attempt failed: {error}");
    }
}

pub type DbPool = r2d2::Pool<DbManager>;

/// The pool, built without waiting for it to fill: the first checkout reports whether
/// the database is there. The [`Closing`] switch shuts it.
pub fn build_pool(settings: &StorageSettings) -> Result<(Backend, DbPool, Closing), StorageError> {
    let (backend, url) = Backend::from_url(&settings.database_url)?;
    let closing = Closing::default();
    let pool = r2d2::Pool::builder()
        .max_size(settings.pool_size.max(1))
        // Only the executors hold connections (the writers and the readers); more idle
        // ones would just be kept open.
        .min_idle(Some(
            (settings.executors() as u32).min(settings.pool_size.max(1)),
        ))
        .connection_timeout(Duration::from_millis(settings.connect_timeout_ms.max(1)))
        .connection_customizer(Box::new(SqliteTuning::new(settings)?))
        .error_handler(Box::new(QuietErrors))
        .build_unchecked(DbManager {
            backend,
            url,
            closing: closing.clone(),
        });
    Ok((backend, pool, closing))
}

/// One connection outside any pool, tuned as the pool's are, for a command that needs
/// just one (`mensajero migrate`): it closes when dropped, where a pool would still be
/// opening its idle connections when the process exits.
pub fn connect_one(settings: &StorageSettings) -> Result<DbConnection, StorageError> {
    let (backend, url) = Backend::from_url(&settings.database_url)?;
    let manager = DbManager {
        backend,
        url,
        closing: Closing::default(),
    };
    let mut conn = r2d2::ManageConnection::connect(&manager)
        .map_err(|e| StorageError::Database(e.to_string()))?;
    r2d2::CustomizeConnection::on_acquire(&SqliteTuning::new(settings)?, &mut conn)
        .map_err(|e| StorageError::Database(e.to_string()))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        let pick = |url: &str| Backend::from_url(url).ok();
        assert_eq!(
            pick("postgres://u@h/db"),
            Some((Backend::Postgres, "postgres://u@h/db".into()))
        );
        assert_eq!(
            pick("postgresql://h/db").map(|p| p.0),
            Some(Backend::Postgres)
        );
        assert_eq!(
            pick("mysql://root@127.0.0.1:3306/test").map(|p| p.0),
            Some(Backend::Mysql)
        );
        assert_eq!(
            pick("mariadb://h/db"),
            Some((Backend::Mysql, "mysql://h/db".into()))
        );
        assert_eq!(
            pick("mensajero.db"),
            Some((Backend::Sqlite, "mensajero.db".into()))
        );
        assert_eq!(
            pick("sqlite:///var/lib/m.db"),
            Some((Backend::Sqlite, "/var/lib/m.db".into()))
        );
        assert_eq!(pick("redis://h"), None);
        assert_eq!(pick(""), None);
    }

    #[test]
    fn sqlite_connections_are_tuned() {
        use diesel::dsl::sql;
        use diesel::sql_types::{BigInt, Text};
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::defaults().storage;
        settings.database_url = dir.path().join("t.db").to_string_lossy().into_owned();
        settings.sqlite_synchronous = "normal".into();
        let (backend, pool, _) = build_pool(&settings).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        let mut conn = pool.get().unwrap();
        let DbConnection::Sqlite(c) = &mut *conn else {
            panic!("not SQLite")
        };
        let int = |c: &mut SqliteConnection, q: &str| -> i64 {
            diesel::select(sql::<BigInt>(q)).get_result(c).unwrap()
        };
        let mode: String = diesel::select(sql::<Text>("* FROM pragma_journal_mode()"))
            .get_result(c)
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(int(c, "* FROM pragma_busy_timeout()"), 5000);
        assert_eq!(int(c, "* FROM pragma_synchronous()"), 1, "NORMAL");
        settings.sqlite_synchronous = "sometimes".into();
        assert!(build_pool(&settings).is_err());
    }

    #[test]
    fn a_closing_pool_closes_what_it_gets_back_and_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = crate::config::Settings::defaults().storage;
        settings.database_url = dir.path().join("t.db").to_string_lossy().into_owned();
        settings.connect_timeout_ms = 300;
        // One connection at most: none is being opened behind the test's back.
        settings.pool_size = 1;
        let (_, pool, closing) = build_pool(&settings).unwrap();
        let held = pool.get().unwrap();
        assert_eq!(pool.state().connections, 1);
        closing.start();
        drop(held);
        assert_eq!(pool.state().connections, 0, "handed back, closed");
        assert!(pool.get().is_err(), "no new connection once closing");
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("mensajero.db"), "mensajero.db");
    }
}
