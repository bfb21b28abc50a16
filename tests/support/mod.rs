//! Test support: a real `mensajero serve` process on port 0, tokens, and peers.
//!
//! Every test starts its own broker on a fresh SQLite file (or the database it names), and
//! drives it as a client would: over TCP, with the official clients where they matter.

#![allow(dead_code)]

pub mod wire;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mensajero::broker::Role;
use mensajero::broker::auth::TokenService;
use mensajero::config::Settings;

pub const SECRET: &str = "test-secret-0123456789";

/// A running broker; killed when dropped.
pub struct Broker {
    pub child: Child,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    log: PathBuf,
}

#[derive(Default)]
pub struct BrokerOptions {
    pub env: Vec<(String, String)>,
    pub database_url: Option<String>,
    pub demo: bool,
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(BrokerOptions::default())
    }

    pub fn start_with(options: BrokerOptions) -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| dir.path().join("mensajero.db").display().to_string());
        let log = dir.path().join("broker.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_mensajero"));
        command.arg("serve").arg("--bind").arg("127.0.0.1:0");
        if options.demo {
            command.arg("--demo");
        }
        command
            .env("JWT_SECRET", SECRET)
            .env("DATABASE_URL", &database_url)
            .env(
                "RUST_LOG",
                std::env::var("BROKER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env_remove("MENSAJERO_CONFIG")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("spawn mensajero");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("mensajero listening on http://") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "broker did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Broker {
            child,
            addr,
            dir,
            database_url,
            log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Send a signal and wait for the exit status.
    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .expect("kill");
        self.child.wait().expect("wait")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- broker log ----\n{}", self.log());
        }
    }
}

pub fn tokens() -> TokenService {
    TokenService::new(SECRET, &Settings::defaults().auth).expect("token service")
}

pub fn token(user: &str, role: Role) -> String {
    tokens().issue(user, user, role, Duration::from_secs(3600))
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run `node tests/js/<script>` with `env`; returns its last stdout line (a JSON summary).
pub fn node_scenario(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    let dir = repo_root().join("tests/js");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "run `npm ci --prefix tests/js` first (scripts/test.sh does it)"
    );
    scenario("node", &dir.join(script), env)
}

/// Run `python3 tests/python/<script>` with `env`; same contract as [`node_scenario`].
pub fn python_scenario(script: &str, env: &[(&str, String)]) -> serde_json::Value {
    scenario(
        "python3",
        &repo_root().join("tests/python").join(script),
        env,
    )
}

/// A scenario script passes when it exits 0; its last stdout line is its JSON summary.
fn scenario(interpreter: &str, script: &Path, env: &[(&str, String)]) -> serde_json::Value {
    let output = Command::new(interpreter)
        .arg(script)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("run {interpreter}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = script.display();
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or("null");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: bad summary {last:?}: {e}"))
}

/// Rows of `mensajes` in a SQLite file, oldest first, as the seed's JSON rows.
pub fn sqlite_rows(path: &str) -> Vec<serde_json::Value> {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        de_usuario: String,
        #[diesel(sql_type = Text)]
        para_usuario: String,
        #[diesel(sql_type = Text)]
        mensaje: String,
    }
    let mut conn = diesel::SqliteConnection::establish(path).expect("open sqlite");
    let rows: Vec<Row> =
        diesel::sql_query("SELECT id, de_usuario, para_usuario, mensaje FROM mensajes ORDER BY id")
            .load(&mut conn)
            .expect("query mensajes");
    rows.into_iter()
        .map(|r| serde_json::json!({"id": r.id, "de": r.de_usuario, "para": r.para_usuario, "mensaje": r.mensaje}))
        .collect()
}
