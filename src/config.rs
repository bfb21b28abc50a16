//! Settings: one typed struct, layered from `config/default.toml` (compiled in), an
//! optional file named by `MENSAJERO_CONFIG`, then the environment.
//!
//! Environment keys are `MENSAJERO_<SECTION>__<KEY>`; `JWT_SECRET` and `DATABASE_URL` keep
//! the names the seed used so that its deployment files keep working.

use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The compiled-in defaults, so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub engine: EngineSettings,
    pub auth: AuthSettings,
    pub chat: ChatSettings,
    pub storage: StorageSettings,
    /// HMAC secret of the session tokens (`JWT_SECRET`). Empty means unset.
    #[serde(default)]
    pub jwt_secret: String,
    /// Demo mode: creates sign-in accounts and tolerates an unset secret.
    #[serde(default)]
    pub demo: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    pub bind: String,
    pub broker_thread: BrokerThread,
    pub allowed_origins: Vec<String>,
    pub shutdown_timeout_secs: u64,
    pub workers: usize,
}

/// Where the ChatServer and its writer run (see `server::placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerThread {
    /// A thread of its own.
    Own,
    /// The first HTTP worker's thread.
    Worker,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineSettings {
    pub path: String,
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: usize,
    pub connect_timeout_ms: u64,
    pub outbound_queue: usize,
    pub max_sessions: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    pub cookie_name: String,
    pub algorithm: String,
    pub leeway_secs: u64,
    pub session_ttl_secs: u64,
    pub secure_cookie: bool,
    pub login_attempts: u32,
    pub login_window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatSettings {
    pub desk_name: String,
    pub max_message_bytes: usize,
    pub max_recipient_chars: usize,
    pub max_in_flight_per_socket: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageSettings {
    /// `false` stores nothing (benchmarks of fan-out alone); acks are then not durable.
    #[serde(default = "yes")]
    pub persist: bool,
    pub database_url: String,
    pub pool_size: u32,
    pub batch_max: usize,
    pub batch_wait_us: u64,
    pub spool_max: usize,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub sqlite_synchronous: String,
    pub sqlite_busy_timeout_ms: u64,
    pub history_page_default: i64,
    pub history_page_max: i64,
    /// r2d2's checkout timeout: how soon an unreachable database counts as an outage.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long start-up waits for the database's first connection: a database starting
    /// beside the broker, or a slow disk creating a new SQLite file, is not an outage.
    #[serde(default = "default_startup_wait_ms")]
    pub startup_wait_ms: u64,
    /// How long `flush_and_stop` may take to store what was accepted.
    #[serde(default = "default_flush_timeout_ms")]
    pub flush_timeout_ms: u64,
    /// MySQL/MariaDB: `auto` (consecutive ids from `LAST_INSERT_ID()` when the server's
    /// `innodb_autoinc_lock_mode` promises them, else look ids up by key) or `lookup`.
    #[serde(default = "default_mysql_ids")]
    pub mysql_ids: String,
    /// Executor threads for reads (history, users, readiness), apart from the writes'.
    #[serde(default = "default_read_executors")]
    pub read_executors: usize,
    /// Executor threads for writes, one writer lane each (SQLite always has one).
    #[serde(default = "default_write_executors")]
    pub write_executors: usize,
    /// SQLite: WAL pages between automatic checkpoints (SQLite's own default is 1000).
    #[serde(default = "default_sqlite_wal_autocheckpoint")]
    pub sqlite_wal_autocheckpoint: u32,
}

impl StorageSettings {
    /// Executor threads holding a connection each: the writers' and the readers'.
    pub fn executors(&self) -> usize {
        self.write_executors.max(1) + self.read_executors.max(1)
    }
}

fn default_read_executors() -> usize {
    2
}
fn default_write_executors() -> usize {
    2
}
fn default_sqlite_wal_autocheckpoint() -> u32 {
    10000
}

fn default_connect_timeout_ms() -> u64 {
    1000
}
fn default_startup_wait_ms() -> u64 {
    15000
}
fn default_flush_timeout_ms() -> u64 {
    8000
}
fn default_mysql_ids() -> String {
    "auto".to_string()
}

fn yes() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then `MENSAJERO_CONFIG`, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Ok(path) = std::env::var("MENSAJERO_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("MENSAJERO_").split("__"));
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("storage.database_url", url));
        }
        if let Ok(secret) = std::env::var("JWT_SECRET") {
            figment = figment.merge(Serialized::default("jwt_secret", secret));
        }
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Only the compiled-in defaults: what tests start from.
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("config/default.toml is valid")
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if !self.engine.path.starts_with('/') || !self.engine.path.ends_with('/') {
            return invalid("engine.path must start and end with '/'");
        }
        if self.engine.outbound_queue == 0 || self.storage.batch_max == 0 {
            return invalid("engine.outbound_queue and storage.batch_max must be positive");
        }
        if !matches!(self.auth.algorithm.as_str(), "HS256" | "HS384" | "HS512") {
            return invalid("auth.algorithm must be HS256, HS384 or HS512");
        }
        let synchronous = self.storage.sqlite_synchronous.to_ascii_uppercase();
        if !matches!(synchronous.as_str(), "OFF" | "NORMAL" | "FULL" | "EXTRA") {
            return invalid("storage.sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA");
        }
        if !matches!(self.storage.mysql_ids.as_str(), "auto" | "lookup") {
            return invalid("storage.mysql_ids must be auto or lookup");
        }
        if (self.storage.pool_size as usize) < self.storage.executors() {
            return invalid(
                "storage.pool_size must hold a connection for every write and read executor",
            );
        }
        Ok(())
    }
}

impl EngineSettings {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_defaults_are_valid() {
        Settings::defaults().validate().expect("defaults");
    }

    #[test]
    fn the_pool_must_hold_a_connection_per_executor() {
        let mut settings = Settings::defaults();
        settings.storage.write_executors = 2;
        settings.storage.read_executors = 2;
        settings.storage.pool_size = 3;
        let error = settings
            .validate()
            .expect_err("3 connections for 4 executors");
        assert!(error.to_string().contains("storage.pool_size"), "{error}");
        settings.storage.write_executors = 1;
        settings.validate().expect("3 connections for 3 executors");
    }
}
