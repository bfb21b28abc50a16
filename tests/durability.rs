//! Nothing acknowledged is lost: graceful shutdown under load, a crash under load, and a
//! database that goes away while clients send (PostgreSQL and MariaDB behind a TCP proxy
//! the test controls, so the shared servers stay up for everyone else).

#[path = "storage_support/mod.rs"]
mod storage_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use mensajero::broker::Role;
use serde_json::json;
use storage_support::{Kind, Proxy, TestDb};
use support::{Broker, BrokerOptions, token, wire};

/// What one client saw: message text -> ack (`Some(id)` stored, `None` refused).
type Outcomes = BTreeMap<String, Option<i64>>;

/// Keep `window` messages in flight from one client until `stop`, then collect the acks
/// still due. Returns every answered message; unanswered ones are absent.
async fn client(addr: String, name: String, window: u64, stop: Arc<AtomicBool>) -> Outcomes {
    let cookie = format!("token={}", token(&name, Role::User));
    let mut outcomes = Outcomes::new();
    let Ok(mut ws) = wire::open(&addr, &[("cookie", &cookie)]).await else {
        return outcomes;
    };
    if !ws.connect().await.starts_with("40") {
        return outcomes;
    }
    let (mut next, mut in_flight) = (0u64, 0u64);
    let mut texts = BTreeMap::new();
    loop {
        while in_flight < window && !stop.load(Ordering::Relaxed) {
            let text = format!("{name}-{next}");
            if !ws
                .emit_with_ack(
                    next,
                    "mensaje_privado",
                    json!({"para": "admin", "mensaje": text}),
                )
                .await
            {
                return outcomes;
            }
            texts.insert(next, text);
            next += 1;
            in_flight += 1;
        }
        if in_flight == 0 {
            return outcomes;
        }
        let Some((id, ack)) = ws.next_ack().await else {
            return outcomes;
        };
        in_flight -= 1;
        let Some(text) = texts.remove(&id) else {
            continue;
        };
        outcomes.insert(
            text,
            if ack["ok"] == true {
                ack["id"].as_i64()
            } else {
                None
            },
        );
    }
}

async fn load(
    addr: &str,
    clients: usize,
    window: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Outcomes>> {
    (0..clients)
        .map(|i| {
            tokio::spawn(client(
                addr.to_string(),
                format!("c{i}"),
                window,
                stop.clone(),
            ))
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Outcomes>>) -> Outcomes {
    let mut all = Outcomes::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// The texts of the messages that were acked as stored.
fn acked(outcomes: &Outcomes) -> BTreeSet<&String> {
    outcomes
        .iter()
        .filter(|(_, id)| id.is_some())
        .map(|(text, _)| text)
        .collect()
}

/// `mensaje` -> number of rows holding it, for the given database.
fn stored_texts(db_url: &str, kind: Kind) -> BTreeMap<String, usize> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        mensaje: String,
    }
    let query = diesel::sql_query("SELECT mensaje FROM mensajes");
    let rows: Vec<Row> = match kind {
        Kind::Sqlite => query
            .load(&mut SqliteConnection::establish(db_url).unwrap())
            .unwrap(),
        Kind::Postgres => query
            .load(&mut PgConnection::establish(db_url).unwrap())
            .unwrap(),
        Kind::Mysql => query
            .load(&mut MysqlConnection::establish(db_url).unwrap())
            .unwrap(),
    };
    let mut counts = BTreeMap::new();
    for row in rows {
        *counts.entry(row.mensaje).or_insert(0) += 1;
    }
    counts
}

/// Start a broker, keep 6 clients sending 16 messages in flight each for 1.5 s, send it
/// `signal`; returns the broker, its exit status and what the clients saw.
async fn signal_under_load(signal: &str) -> (Broker, std::process::ExitStatus, Outcomes) {
    let mut broker = Broker::start();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&broker.addr, 6, 16, &stop).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = tokio::task::block_in_place(|| broker.signal(signal));
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(tasks).await;
    let answered = outcomes.values().filter(|id| id.is_some()).count();
    assert!(answered > 100, "load was running: {answered} acked");
    (broker, status, outcomes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_stores_and_acks_everything_accepted() {
    let (broker, status, outcomes) = signal_under_load("TERM").await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let acked = acked(&outcomes);
    let stored = stored_texts(&broker.database_url, Kind::Sqlite);
    assert!(stored.values().all(|n| *n == 1), "nothing stored twice");
    let stored: BTreeSet<&String> = stored.keys().collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    let unacked: Vec<_> = stored.difference(&acked).collect();
    assert!(
        lost.is_empty() && unacked.is_empty(),
        "after SIGTERM acked == stored; lost {lost:?}, stored without ack {unacked:?}"
    );
    assert!(broker.log().contains("shutting down"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_keeps_every_acked_message() {
    let (broker, _, outcomes) = signal_under_load("KILL").await;
    let acked = acked(&outcomes);
    let stored = stored_texts(&broker.database_url, Kind::Sqlite);
    assert!(stored.values().all(|n| *n == 1), "nothing stored twice");
    let missing: Vec<_> = acked.iter().filter(|t| !stored.contains_key(**t)).collect();
    assert!(
        missing.is_empty(),
        "acked but lost after SIGKILL: {missing:?}"
    );
    // Rows committed in the instant before the kill may not have had their ack sent.
    let unacked = stored.len() - acked.len();
    assert!(
        unacked <= 6 * 16,
        "{unacked} stored without an ack: more than were in flight"
    );
}

async fn outage(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let url = db.settings_via(proxy.addr()).database_url;
    // Migrate directly so the cut below hits only the running broker.
    mensajero::storage::Storage::migrate(&db.settings()).unwrap();
    let broker = Broker::start_with(BrokerOptions {
        database_url: Some(url),
        env: vec![
            ("MENSAJERO_STORAGE__SPOOL_MAX".into(), "64".into()),
            ("MENSAJERO_STORAGE__RETRY_MAX_MS".into(), "200".into()),
        ],
        ..Default::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&broker.addr, 4, 32, &stop).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The broker keeps serving during the outage: new sessions, health, and refusals.
    let admin = format!("token={}", token("admin", Role::Admin));
    let mut desk = wire::open(&broker.addr, &[("cookie", &admin)])
        .await
        .expect("connect during outage");
    assert!(desk.connect().await.starts_with("40"));
    let health = reqwest::get(format!("{}/healthz", broker.url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = collect(tasks).await;

    let stored = stored_texts(&db.url, kind);
    let acked: Vec<_> = outcomes.iter().filter(|(_, id)| id.is_some()).collect();
    let refused: Vec<_> = outcomes.iter().filter(|(_, id)| id.is_none()).collect();
    assert!(acked.len() > 100, "load ran: {} acked", acked.len());
    assert!(
        !refused.is_empty(),
        "the spool filled during the outage and refused some"
    );
    for (text, _) in &acked {
        assert_eq!(
            stored.get(*text),
            Some(&1),
            "acked {text} must be stored exactly once"
        );
    }
    for (text, _) in &refused {
        assert!(
            !stored.contains_key(*text),
            "refused {text} must not be stored"
        );
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "nothing stored that was not acked"
    );
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_loses_nothing_acked() {
    outage(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_outage_loses_nothing_acked() {
    outage(Kind::Mysql).await;
}

/// A graceful stop closes every database connection it opened with the protocol's
/// goodbye (MariaDB's COM_QUIT, PostgreSQL's Terminate), instead of exiting on them:
/// MariaDB logs each connection a client exits on as an aborted connection.
async fn stop_says_goodbye_to_the_database(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let mut broker = Broker::start_with(BrokerOptions {
        database_url: Some(db.settings_via(proxy.addr()).database_url),
        ..Default::default()
    });
    // The writers' connections store messages, a reader's answers /readyz.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&broker.addr, 4, 8, &stop).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);
    let stored = collect(tasks).await;
    assert!(stored.values().filter(|id| id.is_some()).count() > 10);
    let ready = reqwest::get(format!("{}/readyz", broker.url()))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let status = tokio::task::block_in_place(|| broker.signal("TERM"));
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let (opened, ended, goodbyes) =
        tokio::task::block_in_place(|| proxy.endings_once_all_ended(Duration::from_secs(5)));
    assert!(opened >= 3, "writers and a reader connected: {opened}");
    assert_eq!(ended, opened, "the process is gone: every connection ended");
    assert_eq!(
        goodbyes, opened,
        "every connection closed with a goodbye, none just dropped at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stop_closes_connections_cleanly() {
    stop_says_goodbye_to_the_database(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_stop_closes_connections_cleanly() {
    stop_says_goodbye_to_the_database(Kind::Mysql).await;
}

/// `mensajero migrate` too: it opens one connection and closes it properly.
#[test]
fn migrate_closes_its_connection_cleanly() {
    let db = TestDb::create(Kind::Mysql);
    let proxy = Proxy::start(db.server_addr());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mensajero"))
        .arg("migrate")
        .env("DATABASE_URL", db.settings_via(proxy.addr()).database_url)
        .env("JWT_SECRET", "migrate-test-secret")
        .env_remove("MENSAJERO_CONFIG")
        .output()
        .expect("run mensajero migrate");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        proxy.endings_once_all_ended(Duration::from_secs(5)),
        (1, 1, 1),
        "(opened, ended, with a goodbye)"
    );
}
