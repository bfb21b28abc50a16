//! Storage against the real backends of this machine: SQLite (a temporary file),
//! PostgreSQL at 127.0.0.1:5432 and MariaDB at 127.0.0.1:3306, each test on a database
//! of its own that is dropped afterwards. The fault tests put a TCP proxy between the
//! writer and the server and cut it while messages are in flight.

mod storage_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures_util::future::join_all;
use mensajero::config::StorageSettings;
use mensajero::storage::{Page, Persist, Storage, StoreError, StoredMessage, UserRecord};
use storage_support::{Kind, Proxy, TestDb, message};

fn page(limit: i64) -> Page {
    Page {
        before_id: None,
        limit,
    }
}

async fn migrations_and_seed_insert(kind: Kind) {
    let db = TestDb::create(kind);
    // Migrations run once, and `migrate` afterwards finds nothing to do.
    let first = Storage::migrate(&db.settings()).expect("migrate");
    assert_eq!(first.len(), 2, "both migrations applied: {first:?}");
    assert!(
        Storage::migrate(&db.settings())
            .expect("migrate again")
            .is_empty()
    );
    let storage = Storage::start(&db.settings()).expect("start");

    // The seed's own statement, fecha left to the column default.
    db.execute("INSERT INTO mensajes (de_usuario, para_usuario, mensaje) VALUES ('ana', 'admin', 'hola desde el seed')");
    db.execute("INSERT INTO mensajes (de_usuario, para_usuario, mensaje) VALUES ('admin', 'ana', 'hola ana')");
    let rows = storage.conversation("ana", page(0)).await.expect("history");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].mensaje, "hola desde el seed");
    assert_eq!(rows[1].de_usuario, "admin");
    assert!(rows[0].id < rows[1].id);
    let age = Utc::now() - rows[0].fecha;
    assert!(
        age.num_hours().abs() < 24,
        "default fecha is now-ish: {}",
        rows[0].fecha
    );
    assert!(storage.ready().await);
    storage.flush_and_stop().await;
}

async fn fecha_round_trip(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let writer = storage.writer();
    let fechas = [
        Utc::now(),
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789),
        Utc.with_ymd_and_hms(1999, 1, 31, 23, 59, 59).unwrap()
            + chrono::Duration::milliseconds(999),
    ];
    let mut acked = Vec::new();
    for (i, fecha) in fechas.iter().enumerate() {
        let mut m = message("eva", "admin", &format!("fecha {i} ñandú 😀"));
        m.fecha = *fecha;
        let stored = writer.send(Persist(m)).await.unwrap().expect("stored");
        assert_eq!(stored.fecha.timestamp_millis(), fecha.timestamp_millis());
        assert_eq!(
            stored.fecha.timestamp_subsec_nanos() % 1_000_000,
            0,
            "ms precision"
        );
        acked.push(stored);
    }
    let rows = storage.conversation("eva", page(0)).await.unwrap();
    assert_eq!(rows, acked, "read back exactly what was acked");
    let json = serde_json::to_value(&rows[2]).unwrap();
    assert_eq!(json["fecha"], "2026-12-01T08:00:00.123Z");
    storage.flush_and_stop().await;
}

/// The ids `sender`'s acks carry, in the order they were sent, checked to increase: one
/// sender's messages are stored in order, whichever lane and batch they went in.
fn ids_in_sending_order(acks: &[StoredMessage], sender: &str) -> Vec<i64> {
    let ids: Vec<i64> = acks
        .iter()
        .filter(|a| a.de_usuario == sender)
        .map(|a| a.id)
        .collect();
    assert!(
        ids.windows(2).all(|p| p[1] > p[0]),
        "{sender}'s ids follow its sending order: {ids:?}"
    );
    ids
}

async fn group_commit(kind: Kind) {
    group_commit_with(kind, |_| {}).await;
}

/// MySQL/MariaDB: the ids of a batch looked up by key, as on servers whose
/// `innodb_autoinc_lock_mode` is 2.
async fn group_commit_ids_by_key(kind: Kind) {
    group_commit_with(kind, |s| s.mysql_ids = "lookup".into()).await;
}

async fn group_commit_with(kind: Kind, tweak: fn(&mut StorageSettings)) {
    let db = TestDb::create(kind);
    let mut settings = db.settings();
    tweak(&mut settings);
    let storage = Storage::start(&settings).expect("start");
    let writer = storage.writer();
    let n = 3000;
    let sends: Vec<_> = (0..n)
        .map(|i| {
            writer.send(Persist(message(
                &format!("u{}", i % 7),
                "admin",
                &format!("m{i}"),
            )))
        })
        .collect();
    let acks: Vec<_> = join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("mailbox").expect("stored"))
        .collect();
    let stats = storage.writer_stats();
    assert_eq!(stats.stored_total, n as u64);
    assert!(
        stats.batches_total < n as u64 / 4,
        "group commit: {} transactions for {n} messages",
        stats.batches_total
    );
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack.mensaje, format!("m{i}"));
    }
    // One sender's messages are stored in the order they were accepted, whichever lane
    // and batch they went in.
    for sender in 0..7 {
        ids_in_sending_order(&acks, &format!("u{sender}"));
    }
    let mut ids: Vec<i64> = acks.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "every message has an id of its own");
    // 3,000 messages at once are enough work for the server databases' two writer lanes
    // to store batches at the same time; SQLite has one lane.
    if kind == Kind::Sqlite {
        assert_eq!(stats.parallel_batches_total, 0);
    } else {
        assert!(
            stats.parallel_batches_total > 0,
            "lanes worked together: {stats:?}"
        );
    }
    // Each stored once, under the acked id.
    let rows = storage.conversation("admin", page(100_000)).await.unwrap();
    assert_eq!(rows.len(), n);
    let by_id: HashMap<i64, _> = rows.iter().map(|r| (r.id, r)).collect();
    for ack in &acks {
        assert_eq!(by_id[&ack.id], ack);
    }
    assert_eq!(db.count_rows(), n as i64);
    storage.flush_and_stop().await;
}

async fn history_paging(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let writer = storage.writer();
    let mut ids = Vec::new();
    for i in 0..10 {
        // Both directions, and once a note to oneself (on both sides of the query).
        let (de, para) = match i {
            8 => ("luis", "luis"),
            i if i % 2 == 0 => ("luis", "admin"),
            _ => ("admin", "luis"),
        };
        ids.push(
            writer
                .send(Persist(message(de, para, &format!("p{i}"))))
                .await
                .unwrap()
                .unwrap()
                .id,
        );
        writer
            .send(Persist(message("otra", "admin", "ruido")))
            .await
            .unwrap()
            .unwrap();
    }
    let newest = storage.conversation("luis", page(3)).await.unwrap();
    assert_eq!(newest.iter().map(|m| m.id).collect::<Vec<_>>(), ids[7..10]);
    let older = storage
        .conversation(
            "luis",
            Page {
                before_id: Some(newest[0].id),
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), ids[4..7]);
    let all = storage.conversation("luis", page(0)).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    let first = storage
        .conversation(
            "luis",
            Page {
                before_id: Some(ids[1]),
                limit: 3,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), ids[..1]);
    assert!(
        storage
            .conversation("nadie", page(0))
            .await
            .unwrap()
            .is_empty()
    );
    storage.flush_and_stop().await;
}

async fn users(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let hash = bcrypt::hash("secreto", 4).unwrap();
    let user = |usuario: &str, rol: &str| UserRecord {
        usuario: usuario.into(),
        nombre: format!("Nombre de {usuario}"),
        rol: rol.into(),
        pass: hash.clone(),
        imagen: None,
    };
    storage.upsert_user(user("ana", "user")).await.unwrap();
    storage
        .upsert_user(user("soporte1", "admin"))
        .await
        .unwrap();
    storage.upsert_user(user("bea", "admin")).await.unwrap();
    // Replacing: bea is demoted and gets a picture.
    let mut bea = user("bea", "user");
    bea.imagen = Some("bea.png".into());
    storage.upsert_user(bea.clone()).await.unwrap();

    assert_eq!(storage.find_user("bea").await.unwrap(), Some(bea));
    assert_eq!(storage.find_user("nadie").await.unwrap(), None);
    let found = storage.find_user("ana").await.unwrap().unwrap();
    assert!(bcrypt::verify("secreto", &found.pass).unwrap());
    let names: Vec<_> = storage
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.usuario)
        .collect();
    assert_eq!(names, ["ana", "bea", "soporte1"]);
    assert_eq!(storage.admin_names().await.unwrap(), ["soporte1"]);

    let writer = storage.writer();
    for (de, para) in [
        ("ana", "admin"),
        ("carlos", "soporte1"),
        ("soporte1", "dora"),
        ("admin", "ana"),
        ("ana", "admin"),
    ] {
        writer
            .send(Persist(message(de, para, "x")))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        storage.conversation_users().await.unwrap(),
        ["ana", "carlos", "dora"]
    );
    assert_eq!(
        storage.conversation_users_excluding("mesa").await.unwrap(),
        ["admin", "ana", "carlos", "dora"]
    );
    storage.flush_and_stop().await;
}

async fn flush_on_shutdown(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let writer = storage.writer();
    let sends: Vec<_> = (0..1000)
        .map(|i| writer.send(Persist(message("fin", "admin", &format!("f{i}")))))
        .collect();
    let pending = actix_rt::spawn(join_all(sends));
    tokio::task::yield_now().await;
    storage.flush_and_stop().await;
    let late = writer
        .send(Persist(message("fin", "admin", "tarde")))
        .await
        .unwrap();
    assert_eq!(late, Err(StoreError::ShuttingDown));
    let acks = pending.await.unwrap();
    let ok = acks.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
    assert_eq!(
        ok, 1000,
        "everything accepted before the shutdown is stored and acked"
    );
    assert_eq!(db.count_rows(), 1000);
}

/// Cut the connection to the server while messages stream in; restore it.
async fn outage(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let mut settings = db.settings_via(proxy.addr());
    settings.spool_max = 1500;
    settings.retry_initial_ms = 20;
    settings.retry_max_ms = 200;
    settings.connect_timeout_ms = 300;
    let storage = Storage::start(&settings).expect("start");
    let writer = storage.writer();
    // Both read executors keep a connection from here on; the cut kills them unseen.
    let (a, b) = futures_util::join!(storage.ready(), storage.ready());
    assert!(a && b);

    let producer = {
        let writer = writer.clone();
        actix_rt::spawn(async move {
            let mut sends = Vec::new();
            let mut i = 0;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(2600) {
                for _ in 0..20 {
                    let text = format!("o{i}");
                    let w = writer.clone();
                    sends.push(actix_rt::spawn(async move {
                        let r = w
                            .send(Persist(message("corte", "admin", &text)))
                            .await
                            .unwrap();
                        (text, r)
                    }));
                    i += 1;
                }
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            join_all(sends)
                .await
                .into_iter()
                .map(|r| r.unwrap())
                .collect::<Vec<_>>()
        })
    };
    actix_rt::time::sleep(Duration::from_millis(600)).await;
    proxy.cut();
    actix_rt::time::sleep(Duration::from_millis(1000)).await;
    assert!(!storage.ready().await, "not ready during the outage");
    assert!(storage.writer_stats().outage);
    actix_rt::time::sleep(Duration::from_millis(400)).await;
    proxy.restore();
    let results = producer.await.unwrap();
    // Every read after the outage works, whichever executor's dead connection it meets.
    for _ in 0..4 {
        assert!(storage.ready().await, "ready again after the outage");
        storage
            .conversation("corte", page(10))
            .await
            .expect("history after the outage");
    }

    let mut acked = HashMap::new();
    let mut refused = HashSet::new();
    for (text, result) in results {
        match result {
            Ok(stored) => {
                assert_eq!(stored.mensaje, text);
                acked.insert(text, stored);
            }
            Err(StoreError::SpoolFull) => {
                refused.insert(text);
            }
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert!(!refused.is_empty(), "the spool filled during the cut");
    assert!(
        acked.len() > 1500,
        "messages before, during and after the cut were stored"
    );
    let mut settings = db.settings();
    settings.history_page_max = 1_000_000;
    let direct = Storage::start(&settings).expect("start direct");
    let rows = direct.conversation("corte", page(1_000_000)).await.unwrap();
    let mut seen = HashSet::new();
    for row in &rows {
        assert!(
            seen.insert(row.mensaje.clone()),
            "stored twice: {}",
            row.mensaje
        );
        assert!(
            !refused.contains(&row.mensaje),
            "refused but stored: {}",
            row.mensaje
        );
        let ack = acked
            .get(&row.mensaje)
            .unwrap_or_else(|| panic!("stored but not acked: {}", row.mensaje));
        assert_eq!(ack, row);
    }
    assert_eq!(rows.len(), acked.len(), "every acked message is stored");
    direct.flush_and_stop().await;
    storage.flush_and_stop().await;
}

/// Shutdown while the database is away: bounded by `flush_timeout_ms`; what could not
/// be stored is answered with an error, never acked.
async fn shutdown_during_outage(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let mut settings = db.settings_via(proxy.addr());
    settings.flush_timeout_ms = 500;
    settings.connect_timeout_ms = 200;
    let storage = Storage::start(&settings).expect("start");
    let writer = storage.writer();
    proxy.cut();
    let sends: Vec<_> = (0..50)
        .map(|i| writer.send(Persist(message("tarde", "admin", &format!("t{i}")))))
        .collect();
    let pending = actix_rt::spawn(join_all(sends));
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    storage.flush_and_stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown is bounded"
    );
    let acks = pending.await.unwrap();
    assert!(
        acks.iter()
            .all(|a| matches!(a, Ok(Err(StoreError::Unavailable))))
    );
    assert_eq!(db.count_rows(), 0);
}

/// Start-up waits for a database that is not there yet (one starting beside the broker)
/// past the run-time checkout timeout, up to `startup_wait_ms`; past that it refuses to
/// start with the cause.
async fn startup_waits_for_the_database(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let mut settings = db.settings_via(proxy.addr());
    settings.connect_timeout_ms = 200;
    settings.startup_wait_ms = 300;
    proxy.cut();
    let started = std::time::Instant::now();
    let refused = Storage::start(&settings)
        .err()
        .expect("no database, no start");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // r2d2's timeout carries the last connection error: the cause, not just "timed out".
    let refused = refused.to_string();
    let cause = refused
        .split_once("timed out waiting for connection: ")
        .map(|(_, cause)| cause);
    assert!(cause.is_some_and(|c| !c.is_empty()), "{refused}");

    settings.startup_wait_ms = 10_000;
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1200));
        proxy.restore();
        proxy
    });
    let started = std::time::Instant::now();
    let storage = Storage::start(&settings).expect("starts once the database is up");
    assert!(started.elapsed() >= Duration::from_millis(1200));
    let _proxy = late.join().unwrap();
    let ack = storage
        .writer()
        .send(Persist(message("tardio", "admin", "hola")))
        .await
        .unwrap();
    assert!(ack.is_ok(), "{ack:?}");
    storage.flush_and_stop().await;
}

/// A message the database refuses (here: a recipient longer than the column) while the
/// database is fine: it alone is answered with an error; its batch-mates are stored.
async fn poison_message(kind: Kind) {
    let db = TestDb::create(kind);
    let mut settings = db.settings();
    settings.retry_initial_ms = 10;
    let storage = Storage::start(&settings).expect("start");
    let writer = storage.writer();
    let too_long = "x".repeat(65);
    let sends: Vec<_> = (0..41)
        .map(|i| {
            let para = if i == 20 { too_long.as_str() } else { "admin" };
            writer.send(Persist(message("veneno", para, &format!("v{i}"))))
        })
        .collect();
    let acks: Vec<_> = join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    for (i, ack) in acks.iter().enumerate() {
        if i == 20 {
            assert_eq!(ack, &Err(StoreError::Unavailable));
        } else {
            assert_eq!(ack.as_ref().expect("stored").mensaje, format!("v{i}"));
        }
    }
    assert_eq!(db.count_rows(), 40);
    assert!(
        !storage.writer_stats().outage,
        "a refused message is not an outage"
    );
    assert!(storage.ready().await);
    storage.flush_and_stop().await;
}

/// The table as the seed's `schema.sql` creates it.
const SEED_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS mensajes (
  id           BIGINT AUTO_INCREMENT PRIMARY KEY,
  de_usuario   VARCHAR(64) NOT NULL,
  para_usuario VARCHAR(64) NOT NULL,
  mensaje      TEXT NOT NULL,
  fecha        DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// A database the seed already uses: its `mensajes` (from the seed's schema.sql) is
/// adopted in place, old rows readable, the seed's INSERT still working beside ours.
async fn adopts_seed_database(kind: Kind) {
    let db = TestDb::create(kind);
    db.execute(SEED_SCHEMA);
    db.execute("INSERT INTO mensajes (de_usuario, para_usuario, mensaje) VALUES ('vieja', 'admin', 'de antes')");
    let storage = Storage::start(&db.settings()).expect("start on the seed's database");
    let writer = storage.writer();
    let ours = writer
        .send(Persist(message("vieja", "admin", "de ahora")))
        .await
        .unwrap()
        .unwrap();
    db.execute("INSERT INTO mensajes (de_usuario, para_usuario, mensaje) VALUES ('admin', 'vieja', 'del seed')");
    let rows = storage.conversation("vieja", page(0)).await.unwrap();
    let texts: Vec<_> = rows.iter().map(|r| r.mensaje.as_str()).collect();
    assert_eq!(texts, ["de antes", "de ahora", "del seed"]);
    assert_eq!(rows[1], ours);
    storage.flush_and_stop().await;
}

/// A committing statement (the batch's autocommitted INSERT) that reached the server but
/// whose reply was lost: the retry must find the rows already there and ack them under
/// their ids, not insert them again.
async fn lost_commit_reply(kind: Kind) {
    let db = TestDb::create(kind);
    let proxy = Proxy::start(db.server_addr());
    let mut settings = db.settings_via(proxy.addr());
    settings.retry_initial_ms = 20;
    let storage = Storage::start(&settings).expect("start");
    let writer = storage.writer();
    // The first INSERT of these rows commits them; its reply never arrives.
    proxy.lose_reply_to_next("ambigua");
    let sends: Vec<_> = (0..500)
        .map(|i| writer.send(Persist(message("ambigua", "admin", &format!("a{i}")))))
        .collect();
    let acks: Vec<_> = join_all(sends)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("stored"))
        .collect();
    assert_eq!(proxy.replies_lost(), 1, "one committing reply was lost");
    assert_eq!(db.count_rows(), 500, "nothing stored twice");
    let direct = Storage::start(&db.settings()).expect("start direct");
    let rows = direct.conversation("ambigua", page(1000)).await.unwrap();
    assert_eq!(rows, acks, "acked under the ids they were stored with");
    direct.flush_and_stop().await;
    storage.flush_and_stop().await;
}

/// Bursts of every size around the one up to which MySQL/MariaDB batches go as a kept
/// prepared statement (64), and a lone message between them: each ack names the row
/// stored for it, in order, with nothing lost or doubled.
async fn bursts_of_every_size(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let writer = storage.writer();
    let mut acks = Vec::new();
    let mut sent = 0usize;
    for burst in [1usize, 2, 7, 63, 64, 65, 130, 1] {
        let sends: Vec<_> = (sent..sent + burst)
            .map(|i| writer.send(Persist(message("ana", "admin", &format!("b{i}")))))
            .collect();
        sent += burst;
        acks.extend(
            join_all(sends)
                .await
                .into_iter()
                .map(|r| r.expect("mailbox").expect("stored")),
        );
    }
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack.mensaje, format!("b{i}"));
    }
    for pair in acks.windows(2) {
        assert!(pair[1].id > pair[0].id, "ids follow acceptance order");
    }
    let rows = storage.conversation("ana", page(100_000)).await.unwrap();
    assert_eq!(rows.len(), sent);
    let by_id: HashMap<i64, _> = rows.iter().map(|r| (r.id, r)).collect();
    for ack in &acks {
        assert_eq!(by_id[&ack.id], ack, "the acked id names the stored row");
    }
    assert_eq!(db.count_rows(), sent as i64);
    storage.flush_and_stop().await;
}

/// The writer's lanes split the work only when there is enough of it. With one batch
/// held in flight (another connection locks the table), ten messages of other senders
/// wait for it rather than cost a commit of their own; 200 more make the other lane hold
/// over 64, and that lane's batch goes beside the held one. Once the lock goes, all are
/// stored, each sender's in its order.
async fn lanes_split_only_under_load(kind: Kind) {
    let db = TestDb::create(kind);
    let storage = Storage::start(&db.settings()).expect("start");
    let writer = storage.writer();
    let parallel = || storage.writer_stats().parallel_batches_total;
    let lock = db.lock_messages();
    let mut sends = vec![actix_rt::spawn(
        writer.send(Persist(message("first", "admin", "held"))),
    )];
    let settle = || tokio::time::sleep(Duration::from_millis(200));
    settle().await;
    for i in 0..10 {
        let m = message(&format!("s{i}"), "admin", &format!("small{i}"));
        sends.push(actix_rt::spawn(writer.send(Persist(m))));
    }
    settle().await;
    assert_eq!(parallel(), 0, "ten messages wait for the batch in flight");
    assert_eq!(
        storage.writer_stats().stored_total,
        0,
        "the table is locked"
    );
    for i in 0..200 {
        let m = message(&format!("b{}", i % 20), "admin", &format!("big{i}"));
        sends.push(actix_rt::spawn(writer.send(Persist(m))));
    }
    settle().await;
    assert_eq!(parallel(), 1, "the other lane went beside the held batch");
    lock.release();
    let acks: Vec<_> = join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("mailbox").expect("stored"))
        .collect();
    assert_eq!(acks.len(), 211);
    for sender in (0..20).map(|i| format!("b{i}")) {
        assert_eq!(ids_in_sending_order(&acks, &sender).len(), 10);
    }
    assert_eq!(db.count_rows(), 211);
    storage.flush_and_stop().await;
}

macro_rules! suite {
    ($module:ident, $kind:expr, [$($test:ident),*]) => {
        mod $module {
            use super::*;
            $(
                #[actix_rt::test]
                async fn $test() {
                    super::$test($kind).await;
                }
            )*
        }
    };
}

suite!(
    sqlite,
    Kind::Sqlite,
    [
        migrations_and_seed_insert,
        fecha_round_trip,
        group_commit,
        bursts_of_every_size,
        history_paging,
        users,
        flush_on_shutdown
    ]
);
suite!(
    postgres,
    Kind::Postgres,
    [
        migrations_and_seed_insert,
        fecha_round_trip,
        group_commit,
        bursts_of_every_size,
        history_paging,
        users,
        flush_on_shutdown,
        outage,
        lost_commit_reply,
        shutdown_during_outage,
        startup_waits_for_the_database,
        poison_message,
        lanes_split_only_under_load
    ]
);
suite!(
    mysql,
    Kind::Mysql,
    [
        migrations_and_seed_insert,
        fecha_round_trip,
        group_commit,
        bursts_of_every_size,
        group_commit_ids_by_key,
        adopts_seed_database,
        poison_message,
        history_paging,
        users,
        flush_on_shutdown,
        outage,
        lost_commit_reply,
        startup_waits_for_the_database,
        lanes_split_only_under_load
    ]
);
