//! Storage throughput: stored **and acked** messages per second on one backend, three ways:
//!
//! - `group commit`: mensajero's writer as configured (`storage.batch_max`,
//!   `storage.write_executors`: its lanes);
//! - `batch size 1`: the same writer with `batch_max = 1`, one transaction per message;
//! - `seed`: what the Node seed did, one autocommit INSERT per message on a pool of 10
//!   connections, 10 at a time.
//!
//! Each runs on a fresh database for at most `--seconds` or `--messages`.
//!
//! ```sh
//! cargo run --release --example storage_bench -- --backend sqlite|postgres|mysql
//!     [--messages 200000] [--seconds 10] [--senders 2000] [--batch-max 512]
//!     [--write-executors 2] [--modes group,single,seed]
//! ```
//! PostgreSQL and MariaDB are reached at 127.0.0.1 as in the tests (`--server-url` to
//! change); a database `mensajero_bench_<random>` is created and dropped per run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use mensajero::config::{Settings, StorageSettings};
use mensajero::storage::{NewMessage, Persist, Storage};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

struct Args {
    kind: Kind,
    messages: u64,
    seconds: u64,
    senders: usize,
    server_url: Option<String>,
    modes: Vec<String>,
    batch_max: usize,
    write_executors: usize,
}

const USAGE: &str = "usage: storage_bench --backend sqlite|postgres|mysql [--messages 200000] \
[--seconds 10] [--senders 2000] [--batch-max 512] [--write-executors 2] \
[--modes group,single,seed] [--server-url URL]";

fn usage_error(what: String) -> ! {
    eprintln!("{what}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        kind: Kind::Sqlite,
        messages: 200_000,
        seconds: 10,
        senders: 2000,
        server_url: None,
        modes: vec!["group".into(), "single".into(), "seed".into()],
        batch_max: Settings::defaults().storage.batch_max,
        write_executors: Settings::defaults().storage.write_executors,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage_error(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--backend" => {
                args.kind = match value().as_str() {
                    "sqlite" => Kind::Sqlite,
                    "postgres" => Kind::Postgres,
                    "mysql" => Kind::Mysql,
                    other => usage_error(format!("unknown backend {other}")),
                }
            }
            "--messages" => args.messages = value().parse().unwrap(),
            "--seconds" => args.seconds = value().parse().unwrap(),
            "--senders" => args.senders = value().parse().unwrap(),
            "--server-url" => args.server_url = Some(value()),
            "--batch-max" => args.batch_max = value().parse().unwrap(),
            "--write-executors" => args.write_executors = value().parse().unwrap(),
            "--modes" => args.modes = value().split(',').map(str::to_string).collect(),
            other => usage_error(format!("unknown argument {other}")),
        }
    }
    args
}

/// A database that lives for one measurement.
struct BenchDb {
    kind: Kind,
    url: String,
    admin_url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    fn create(args: &Args) -> BenchDb {
        let name = format!("mensajero_bench_{:08x}", rand::random::<u32>());
        let (admin_url, dir) = match args.kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir_in(".").expect("temp dir");
                let url = dir.path().join("bench.db").to_string_lossy().into_owned();
                (url, Some(dir))
            }
            Kind::Postgres => (
                args.server_url
                    .clone()
                    .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into()),
                None,
            ),
            Kind::Mysql => (
                args.server_url
                    .clone()
                    .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into()),
                None,
            ),
        };
        let url = match args.kind {
            Kind::Sqlite => admin_url.clone(),
            _ => {
                let create = format!("CREATE DATABASE {name}");
                match args.kind {
                    Kind::Postgres => PgConnection::establish(&admin_url)
                        .unwrap()
                        .batch_execute(&create),
                    _ => MysqlConnection::establish(&admin_url)
                        .unwrap()
                        .batch_execute(&create),
                }
                .expect("create bench database");
                let base = &admin_url[..admin_url.rfind('/').unwrap()];
                format!("{base}/{name}")
            }
        };
        BenchDb {
            kind: args.kind,
            url,
            admin_url,
            name,
            _dir: dir,
        }
    }

    fn settings(&self, batch_max: usize, write_executors: usize) -> StorageSettings {
        let mut settings = Settings::defaults().storage;
        settings.database_url = self.url.clone();
        settings.batch_max = batch_max;
        settings.write_executors = write_executors;
        settings.pool_size = settings
            .pool_size
            .max((write_executors + settings.read_executors) as u32);
        settings.spool_max = 1_000_000;
        settings
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let drop = match self.kind {
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            _ => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let _ = match self.kind {
            Kind::Sqlite => return,
            Kind::Postgres => {
                PgConnection::establish(&self.admin_url).map(|mut c| c.batch_execute(&drop))
            }
            Kind::Mysql => {
                MysqlConnection::establish(&self.admin_url).map(|mut c| c.batch_execute(&drop))
            }
        };
    }
}

fn message(i: u64) -> NewMessage {
    NewMessage {
        de_usuario: format!("user{}", i % 1000),
        para_usuario: "admin".into(),
        mensaje: format!("mensaje de prueba número {i}, con algo de texto para que pese"),
        fecha: Utc::now(),
    }
}

/// `senders` tasks, each sending one message and awaiting its ack, again and again.
async fn through_writer(db: &BenchDb, args: &Args, batch_max: usize) -> (u64, Duration, u64, f64) {
    let storage = Storage::start(&db.settings(batch_max, args.write_executors)).expect("storage");
    let writer = storage.writer();
    let issued = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.senders)
        .map(|_| {
            let (writer, issued, acked, limit) =
                (writer.clone(), issued.clone(), acked.clone(), args.messages);
            actix_rt::spawn(async move {
                loop {
                    let i = issued.fetch_add(1, Ordering::Relaxed);
                    if i >= limit || Instant::now() >= deadline {
                        break;
                    }
                    writer
                        .send(Persist(message(i)))
                        .await
                        .expect("writer")
                        .expect("stored");
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stats = storage.writer_stats();
    storage.flush_and_stop().await;
    let mean_ack_ms = stats.store_latency_us_sum as f64 / stats.stored_total.max(1) as f64 / 1000.0;
    (
        acked.load(Ordering::Relaxed),
        elapsed,
        stats.batches_total,
        mean_ack_ms,
    )
}

/// The seed: a pool of 10 connections, one autocommit INSERT per message.
fn seed_inserts(db: &BenchDb, args: &Args) -> (u64, Duration) {
    Storage::migrate(&db.settings(1, 1)).expect("migrate");
    let insert = match db.kind {
        Kind::Postgres => {
            "INSERT INTO mensajes (de_usuario, para_usuario, mensaje, fecha) VALUES ($1, $2, $3, $4)"
        }
        _ => "INSERT INTO mensajes (de_usuario, para_usuario, mensaje, fecha) VALUES (?, ?, ?, ?)",
    };
    let issued = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (url, kind, issued, limit) =
                (db.url.clone(), db.kind, issued.clone(), args.messages);
            std::thread::spawn(move || {
                // One body per backend: the connection types share no usable trait bound.
                macro_rules! run {
                    ($conn:expr) => {{
                        let conn = &mut $conn;
                        let mut done = 0u64;
                        loop {
                            let i = issued.fetch_add(1, Ordering::Relaxed);
                            if i >= limit || Instant::now() >= deadline {
                                break done;
                            }
                            let m = message(i);
                            let stored = diesel::sql_query(insert)
                                .bind::<Text, _>(m.de_usuario)
                                .bind::<Text, _>(m.para_usuario)
                                .bind::<Text, _>(m.mensaje)
                                .bind::<Timestamp, _>(m.fecha.naive_utc())
                                .execute(conn);
                            if stored.is_ok() {
                                done += 1;
                            }
                        }
                    }};
                }
                match kind {
                    Kind::Sqlite => {
                        let mut c = SqliteConnection::establish(&url).unwrap();
                        // As mensajero's own connections are tuned, so that the
                        // comparison is of the write pattern alone.
                        for p in [
                            "PRAGMA busy_timeout = 5000",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                        ] {
                            c.batch_execute(p).unwrap();
                        }
                        run!(c)
                    }
                    Kind::Postgres => run!(PgConnection::establish(&url).unwrap()),
                    Kind::Mysql => run!(MysqlConnection::establish(&url).unwrap()),
                }
            })
        })
        .collect();
    let stored: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    (stored, start.elapsed())
}

fn report(label: &str, count: u64, elapsed: Duration, extra: &str) {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{label:<14} {count:>8} msgs in {:>6.2} s = {rate:>9.0} msgs/s {extra}",
        elapsed.as_secs_f64()
    );
}

fn main() {
    env_logger::init();
    let args = parse_args();
    let backend = match args.kind {
        Kind::Sqlite => "sqlite (synchronous=FULL, WAL)",
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql/mariadb",
    };
    println!(
        "storage_bench: {backend}; up to {} messages or {} s per mode; {} concurrent senders",
        args.messages, args.seconds, args.senders
    );
    let wants = |mode: &str| args.modes.iter().any(|m| m == mode);
    actix_rt::System::new().block_on(async {
        if wants("group") {
            let db = BenchDb::create(&args);
            let (n, t, batches, ack_ms) = through_writer(&db, &args, args.batch_max).await;
            let each = n as f64 / batches.max(1) as f64;
            report(
                "group commit",
                n,
                t,
                &format!("({batches} transactions, {each:.0} msgs each, mean ack {ack_ms:.1} ms)"),
            );
        }
        if wants("single") {
            let db = BenchDb::create(&args);
            let (n, t, batches, ack_ms) = through_writer(&db, &args, 1).await;
            report(
                "batch size 1",
                n,
                t,
                &format!("({batches} transactions, mean ack {ack_ms:.1} ms)"),
            );
        }
    });
    if wants("seed") {
        let db = BenchDb::create(&args);
        let (n, t) = seed_inserts(&db, &args);
        report("seed", n, t, "(pool of 10, one autocommit INSERT each)");
    }
}
