//! Test fixtures for the storage tests: a throw-away database per test on each backend,
//! and a TCP proxy that can cut the line to the server.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use mensajero::config::{Settings, StorageSettings};
use mensajero::storage::NewMessage;

/// Without TLS: a test's storage executors close their connections on their own threads
/// after the test has returned, and at the end of the run the process's exit tears
/// OpenSSL down under libpq while the last ones may still be closing (a SIGSEGV at exit,
/// about one run in twelve, gone with `sslmode=disable`). TLS to 127.0.0.1 tests nothing.
pub const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable";
pub const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

pub fn message(de: &str, para: &str, mensaje: &str) -> NewMessage {
    NewMessage {
        de_usuario: de.into(),
        para_usuario: para.into(),
        mensaje: mensaje.into(),
        fecha: Utc::now(),
    }
}

/// A database that exists for one test.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn create(kind: Kind) -> TestDb {
        let name = format!("mensajero_test_{:016x}", rand::random::<u64>());
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = dir.path().join("test.db").to_string_lossy().into_owned();
                TestDb {
                    kind,
                    url,
                    name,
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => {
                let mut admin =
                    PgConnection::establish(POSTGRES_ADMIN).expect("PostgreSQL at 127.0.0.1:5432");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .unwrap();
                let url = format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable");
                TestDb {
                    kind,
                    url,
                    name,
                    _dir: None,
                }
            }
            Kind::Mysql => {
                let mut admin =
                    MysqlConnection::establish(MYSQL_ADMIN).expect("MariaDB at 127.0.0.1:3306");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
                    .unwrap();
                let url = format!("mysql://root@127.0.0.1:3306/{name}");
                TestDb {
                    kind,
                    url,
                    name,
                    _dir: None,
                }
            }
        }
    }

    pub fn settings(&self) -> StorageSettings {
        self.settings_for(self.url.clone())
    }

    fn settings_for(&self, url: String) -> StorageSettings {
        let mut settings = Settings::defaults().storage;
        settings.database_url = url;
        settings.history_page_max = 1_000_000;
        settings.pool_size = 4;
        settings
    }

    pub fn server_addr(&self) -> SocketAddr {
        match self.kind {
            Kind::Postgres => "127.0.0.1:5432".parse().unwrap(),
            Kind::Mysql => "127.0.0.1:3306".parse().unwrap(),
            Kind::Sqlite => panic!("SQLite has no server"),
        }
    }

    /// Settings that reach the server through `proxy`.
    pub fn settings_via(&self, proxy: SocketAddr) -> StorageSettings {
        let url = self
            .url
            .replace(&self.server_addr().to_string(), &proxy.to_string());
        // The proxy reads the protocol to lose a COMMIT's reply: no TLS through it (the
        // URL already asks for none).
        self.settings_for(url)
    }

    /// Run raw SQL on a connection of the test's own.
    pub fn execute(&self, statement: &str) {
        match self.kind {
            Kind::Sqlite => SqliteConnection::establish(&self.url)
                .unwrap()
                .batch_execute(statement),
            Kind::Postgres => PgConnection::establish(&self.url)
                .unwrap()
                .batch_execute(statement),
            Kind::Mysql => MysqlConnection::establish(&self.url)
                .unwrap()
                .batch_execute(statement),
        }
        .unwrap();
    }

    pub fn count_rows(&self) -> i64 {
        let count = sql::<BigInt>("CAST(COUNT(*) AS BIGINT) FROM mensajes");
        let mysql_count = sql::<BigInt>("CAST(COUNT(*) AS SIGNED) FROM mensajes");
        match self.kind {
            Kind::Sqlite => diesel::select(count)
                .get_result(&mut SqliteConnection::establish(&self.url).unwrap()),
            Kind::Postgres => {
                diesel::select(count).get_result(&mut PgConnection::establish(&self.url).unwrap())
            }
            Kind::Mysql => diesel::select(mysql_count)
                .get_result(&mut MysqlConnection::establish(&self.url).unwrap()),
        }
        .unwrap()
    }
}

/// `mensajes` locked against writes by a connection of the test's own, until
/// [`TableLock::release`]: a batch sent meanwhile stays in flight.
pub enum TableLock {
    Postgres(PgConnection),
    Mysql(MysqlConnection),
}

impl TestDb {
    pub fn lock_messages(&self) -> TableLock {
        match self.kind {
            Kind::Postgres => {
                let mut c = PgConnection::establish(&self.url).unwrap();
                c.batch_execute("BEGIN; LOCK TABLE mensajes IN SHARE MODE")
                    .unwrap();
                TableLock::Postgres(c)
            }
            Kind::Mysql => {
                let mut c = MysqlConnection::establish(&self.url).unwrap();
                c.batch_execute("LOCK TABLES mensajes WRITE").unwrap();
                TableLock::Mysql(c)
            }
            Kind::Sqlite => panic!("the SQLite tests do not lock the table"),
        }
    }
}

impl TableLock {
    pub fn release(self) {
        match self {
            TableLock::Postgres(mut c) => c.batch_execute("COMMIT"),
            TableLock::Mysql(mut c) => c.batch_execute("UNLOCK TABLES"),
        }
        .unwrap();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = &self.name;
        match self.kind {
            Kind::Sqlite => {}
            Kind::Postgres => {
                if let Ok(mut c) = PgConnection::establish(POSTGRES_ADMIN) {
                    let _ =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
            Kind::Mysql => {
                if let Ok(mut c) = MysqlConnection::establish(MYSQL_ADMIN) {
                    let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
                }
            }
        }
    }
}

/// A TCP proxy on a thread and runtime of its own (the actix test thread blocks in
/// Storage::start while migrations run through it). `cut` closes every open connection
/// and refuses new ones until `restore`. It counts the connections that ended and those
/// whose client's last words were the protocol's goodbye.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    lose_reply: Arc<Mutex<Option<Vec<u8>>>>,
    replies_lost: Arc<AtomicUsize>,
    endings: Arc<Endings>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let lose_reply: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let replies_lost = Arc::new(AtomicUsize::new(0));
        let endings = Arc::new(Endings::default());
        let endings2 = Arc::clone(&endings);
        let (cut2, open2) = (Arc::clone(&cut), Arc::clone(&open));
        let (lose2, lost2) = (Arc::clone(&lose_reply), Arc::clone(&replies_lost));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        if cut2.load(Ordering::SeqCst) {
                            drop(client);
                            continue;
                        }
                        let (lose, lost) = (Arc::clone(&lose2), Arc::clone(&lost2));
                        let endings = Arc::clone(&endings2);
                        let task = tokio::spawn(async move {
                            if let Ok(server) = tokio::net::TcpStream::connect(upstream).await {
                                endings.opened.fetch_add(1, Ordering::SeqCst);
                                let goodbye = relay(client, server, lose, lost).await;
                                if goodbye {
                                    endings.goodbyes.fetch_add(1, Ordering::SeqCst);
                                }
                                endings.ended.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                        open2.lock().unwrap().push(task.abort_handle());
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        Proxy {
            addr,
            cut,
            lose_reply,
            replies_lost,
            endings,
            open,
            stop: Some(stop),
        }
    }

    /// Connections relayed so far: (opened, ended, ended with the client's goodbye).
    pub fn endings(&self) -> (usize, usize, usize) {
        let e = &self.endings;
        (
            e.opened.load(Ordering::SeqCst),
            e.ended.load(Ordering::SeqCst),
            e.goodbyes.load(Ordering::SeqCst),
        )
    }

    /// [`Proxy::endings`] once every connection opened has ended, or after `within`.
    pub fn endings_once_all_ended(&self, within: Duration) -> (usize, usize, usize) {
        let deadline = Instant::now() + within;
        loop {
            let endings = self.endings();
            if endings.1 >= endings.0 || Instant::now() > deadline {
                return endings;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The next request the client sends that carries `marker` (a bound value of the
    /// statement that commits: batches are autocommitted INSERTs) reaches the server, but
    /// its reply is thrown away and that connection closed: the client cannot know
    /// whether it committed.
    pub fn lose_reply_to_next(&self, marker: &str) {
        *self.lose_reply.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }

    pub fn replies_lost(&self) -> usize {
        self.replies_lost.load(Ordering::SeqCst)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.open.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Default)]
struct Endings {
    opened: AtomicUsize,
    ended: AtomicUsize,
    goodbyes: AtomicUsize,
}

/// A client's last packet when it closes a connection properly: MariaDB's COM_QUIT
/// (length 1, sequence 0, command 0x01) and PostgreSQL's Terminate ('X', length 4).
const GOODBYES: [&[u8]; 2] = [&[1, 0, 0, 0, 1], b"X\0\0\0\x04"];

/// Copy both ways; see [`Proxy::lose_reply_to_next`]. The protocols are strictly
/// request/reply here, so once the marked request has gone up, the next bytes down
/// answer it. Answers whether the last bytes the client sent were a goodbye.
async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    lose_reply: Arc<Mutex<Option<Vec<u8>>>>,
    replies_lost: Arc<AtomicUsize>,
) -> bool {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
    let swallow = Arc::new(AtomicBool::new(false));
    let swallow_up = Arc::clone(&swallow);
    let said_goodbye = Arc::new(AtomicBool::new(false));
    let goodbye_up = Arc::clone(&said_goodbye);
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            goodbye_up.store(
                GOODBYES.iter().any(|bye| chunk.ends_with(bye)),
                Ordering::SeqCst,
            );
            {
                let mut marker = lose_reply.lock().unwrap();
                if marker
                    .as_ref()
                    .is_some_and(|m| chunk.windows(m.len()).any(|w| w == m.as_slice()))
                {
                    *marker = None;
                    swallow_up.store(true, Ordering::SeqCst);
                }
            }
            if server_tx.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_rx.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if swallow.load(Ordering::SeqCst) {
                replies_lost.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if client_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // Either direction ending drops both halves of both sockets: the line is down.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    said_goodbye.load(Ordering::SeqCst)
}
