//! Schema migrations: one Diesel migration set per backend under `migrations/`, embedded
//! in the binary (`build.rs` makes Cargo rebuild when they change) and run at start-up
//! and by `mensajero migrate`.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::StorageError;
use super::connection::DbConnection;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Run what is pending; returns the versions applied now, oldest first.
pub fn run_pending(conn: &mut DbConnection) -> Result<Vec<String>, StorageError> {
    let applied = match conn {
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES).map(versions),
        DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL).map(versions),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE).map(versions),
    };
    applied.map_err(|e| StorageError::Migration(e.to_string()))
}

fn versions(applied: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    applied.into_iter().map(|v| v.to_string()).collect()
}
