//! Every SQL statement storage runs, as functions over a checked-out [`DbConnection`].
//! Written once with Diesel's query builder; [`on_inner!`] compiles each per backend.
//! Only the batch insert differs by backend, in how it learns the new ids.

use std::collections::{BTreeSet, HashMap};

use diesel::dsl::sql;
use diesel::mysql::Mysql;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::connection::{DbConnection, on_inner};
use super::models::{MessageRow, MessageSelect, UserRow};
use super::schema::{mensajes, usuarios};
use super::{Page, StoredMessage, UserRecord};

/// How a MySQL/MariaDB server numbers the rows of one multi-row INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MysqlIds {
    /// `innodb_autoinc_lock_mode` 0 or 1: one statement gets consecutive values (spaced
    /// by `auto_increment_increment`), and `LAST_INSERT_ID()` is the first of them.
    Consecutive { increment: i64 },
    /// Lock mode 2 ("interleaved") may interleave concurrent statements' values: look the
    /// ids up by their keys instead.
    LookupByKey,
}

/// Ask the server how it numbers rows (see [`MysqlIds`]).
pub fn detect_mysql_ids(conn: &mut DbConnection) -> QueryResult<MysqlIds> {
    let DbConnection::Mysql(c) = conn else {
        return Ok(MysqlIds::LookupByKey);
    };
    let (mode, increment): (i64, i64) = diesel::select((
        sql::<BigInt>("CAST(@@innodb_autoinc_lock_mode AS SIGNED)"),
        sql::<BigInt>("CAST(@@auto_increment_increment AS SIGNED)"),
    ))
    .get_result(c)?;
    Ok(if mode <= 1 && increment >= 1 {
        MysqlIds::Consecutive { increment }
    } else {
        MysqlIds::LookupByKey
    })
}

/// Keys per lookup statement: well inside every backend's bind-parameter limit.
const KEYS_PER_LOOKUP: usize = 500;

macro_rules! stored_keys {
    ($c:expr, $rows:expr) => {{
        let mut found: HashMap<String, i64> = HashMap::new();
        for chunk in $rows.chunks(KEYS_PER_LOOKUP) {
            let keys: Vec<&str> = chunk.iter().map(|r| r.clave.as_str()).collect();
            let pairs: Vec<(Option<String>, i64)> = mensajes::table
                .filter(mensajes::clave.eq_any(keys))
                .select((mensajes::clave, mensajes::id))
                .load($c)?;
            found.extend(pairs.into_iter().filter_map(|(k, id)| k.map(|k| (k, id))));
        }
        found
    }};
}

/// Insert `rows` with one multi-row INSERT; returns their ids, in order.
///
/// The INSERT is one statement, so it commits all its rows or none without a
/// transaction around it (autocommit): BEGIN and COMMIT would be two round trips more
/// per batch. With `recheck` (a previous attempt of some of these rows failed in a way
/// that may have hidden a commit), rows whose key is already stored are not inserted
/// again, their stored id is returned instead; the lookup and the insert then share a
/// transaction.
pub fn insert_batch(
    conn: &mut DbConnection,
    rows: &[MessageRow],
    recheck: bool,
    mysql_ids: MysqlIds,
) -> QueryResult<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if !recheck {
        return on_inner!(conn, c => insert_rows(c, rows, mysql_ids));
    }
    on_inner!(conn, c => c.transaction(|c| {
        let already: HashMap<String, i64> = if recheck {
            stored_keys!(c, rows)
        } else {
            HashMap::new()
        };
        if already.len() == rows.len() {
            return Ok(rows.iter().map(|r| already[&r.clave]).collect());
        }
        let missing: Vec<MessageRow>;
        let to_insert: &[MessageRow] = if already.is_empty() {
            rows
        } else {
            missing = rows
                .iter()
                .filter(|r| !already.contains_key(&r.clave))
                .cloned()
                .collect();
            &missing
        };
        let new_ids = insert_rows(c, to_insert, mysql_ids)?;
        let mut new_ids = new_ids.into_iter();
        rows.iter()
            .map(|r| match already.get(&r.clave) {
                Some(id) => Ok(*id),
                None => new_ids.next().ok_or(diesel::result::Error::NotFound),
            })
            .collect()
    }))
}

/// The backend-specific part: one INSERT, and the ids it produced, in row order.
trait InsertRows: Connection {
    fn insert_rows_ids(
        &mut self,
        rows: &[MessageRow],
        mysql_ids: MysqlIds,
    ) -> QueryResult<Vec<i64>>;
}

fn insert_rows<C: InsertRows>(
    c: &mut C,
    rows: &[MessageRow],
    mysql_ids: MysqlIds,
) -> QueryResult<Vec<i64>> {
    c.insert_rows_ids(rows, mysql_ids)
}

fn check_count(inserted: usize, expected: usize) -> QueryResult<()> {
    if inserted == expected {
        Ok(())
    } else {
        Err(diesel::result::Error::QueryBuilderError(
            format!("inserted {inserted} rows, expected {expected}").into(),
        ))
    }
}

impl InsertRows for diesel::SqliteConnection {
    fn insert_rows_ids(&mut self, rows: &[MessageRow], _: MysqlIds) -> QueryResult<Vec<i64>> {
        let inserted = diesel::insert_into(mensajes::table)
            .values(rows)
            .execute(self)?;
        check_count(inserted, rows.len())?;
        // One statement under SQLite's single write lock numbers its rows consecutively;
        // last_insert_rowid() is the last of them.
        let last: i64 = diesel::select(sql::<BigInt>("last_insert_rowid()")).get_result(self)?;
        let first = last - rows.len() as i64 + 1;
        Ok((first..=last).collect())
    }
}

impl InsertRows for diesel::PgConnection {
    fn insert_rows_ids(&mut self, rows: &[MessageRow], _: MysqlIds) -> QueryResult<Vec<i64>> {
        // RETURNING's row order is not promised; match the ids back by key.
        let pairs: Vec<(Option<String>, i64)> = diesel::insert_into(mensajes::table)
            .values(rows)
            .returning((mensajes::clave, mensajes::id))
            .get_results(self)?;
        ids_by_key(rows, pairs)
    }
}

/// Rows up to which a batch goes as a [`PreparedInsert`], prepared once per size and
/// connection and kept; bigger batches are rare (the writer is behind).
const PREPARED_ROWS_MAX: usize = 64;

diesel::define_sql_function! {
    /// The first id the connection's last INSERT generated.
    #[sql_name = "LAST_INSERT_ID"]
    fn last_insert_id() -> diesel::sql_types::Unsigned<BigInt>;
}

/// `INSERT INTO mensajes (...) VALUES (?, ?, ?, ?, ?), ...` for MySQL/MariaDB. Its
/// text depends only on the number of rows, so Diesel keeps it prepared per size: a
/// batch then costs one execute, where Diesel's own batch insert (whose text it does not
/// cache) is a prepare, an execute and a close.
struct PreparedInsert<'a> {
    rows: &'a [MessageRow],
}

impl QueryId for PreparedInsert<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Mysql> for PreparedInsert<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO mensajes (de_usuario, para_usuario, mensaje, fecha, clave) VALUES ",
        );
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<Text, _>(&row.de_usuario)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.para_usuario)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.mensaje)?;
            out.push_sql(", ");
            out.push_bind_param::<Timestamp, _>(&row.fecha)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.clave)?;
            out.push_sql(")");
        }
        Ok(())
    }
}

impl RunQueryDsl<diesel::MysqlConnection> for PreparedInsert<'_> {}

/// The ids of `rows` from what a RETURNING answered, matched by key.
fn ids_by_key(rows: &[MessageRow], pairs: Vec<(Option<String>, i64)>) -> QueryResult<Vec<i64>> {
    check_count(pairs.len(), rows.len())?;
    let by_key: HashMap<String, i64> = pairs
        .into_iter()
        .filter_map(|(k, id)| k.map(|k| (k, id)))
        .collect();
    ids_in_row_order(rows, &by_key)
}

/// `rows`' ids, in their order, from a map by key; a row missing from it is an error.
fn ids_in_row_order(rows: &[MessageRow], by_key: &HashMap<String, i64>) -> QueryResult<Vec<i64>> {
    rows.iter()
        .map(|r| {
            by_key
                .get(&r.clave)
                .copied()
                .ok_or(diesel::result::Error::NotFound)
        })
        .collect()
}

impl InsertRows for diesel::MysqlConnection {
    fn insert_rows_ids(
        &mut self,
        rows: &[MessageRow],
        mysql_ids: MysqlIds,
    ) -> QueryResult<Vec<i64>> {
        let inserted = if rows.len() <= PREPARED_ROWS_MAX {
            PreparedInsert { rows }.execute(self)?
        } else {
            // A big batch (the writer is behind): one statement made for it, whose
            // prepare is paid for by its many rows.
            diesel::insert_into(mensajes::table)
                .values(rows)
                .execute(self)?
        };
        check_count(inserted, rows.len())?;
        match mysql_ids {
            MysqlIds::Consecutive { increment } => {
                let first = diesel::select(last_insert_id()).get_result::<u64>(self)? as i64;
                Ok((0..rows.len() as i64)
                    .map(|i| first + i * increment)
                    .collect())
            }
            MysqlIds::LookupByKey => ids_of_last_insert(self, rows),
        }
    }
}

/// The ids of rows just inserted, looked up by key: right whatever the server's
/// auto-increment lock mode.
fn ids_of_last_insert(
    c: &mut diesel::MysqlConnection,
    rows: &[MessageRow],
) -> QueryResult<Vec<i64>> {
    let found = stored_keys!(c, rows);
    ids_in_row_order(rows, &found)
}

/// Messages from or to `user`: the newest `page.limit` (older than `before_id` if given),
/// returned oldest first.
///
/// Two queries, one per side, each walking its `(user, id)` index backwards for at most
/// `limit` rows, then merged: a single `de = ? OR para = ?` would make the database
/// collect and sort the user's whole history for every page.
pub fn conversation(
    conn: &mut DbConnection,
    user: &str,
    page: Page,
) -> QueryResult<Vec<StoredMessage>> {
    let (sent, received): (Vec<MessageSelect>, Vec<MessageSelect>) = on_inner!(conn, c => {
        let mut sent = mensajes::table
            .filter(mensajes::de_usuario.eq(user))
            .into_boxed();
        let mut received = mensajes::table
            .filter(mensajes::para_usuario.eq(user))
            .into_boxed();
        if let Some(before) = page.before_id {
            sent = sent.filter(mensajes::id.lt(before));
            received = received.filter(mensajes::id.lt(before));
        }
        let sent = sent
            .order(mensajes::id.desc())
            .limit(page.limit)
            .select(MessageSelect::as_select())
            .load(c)?;
        let received = received
            .order(mensajes::id.desc())
            .limit(page.limit)
            .select(MessageSelect::as_select())
            .load(c)?;
        (sent, received)
    });
    let mut rows: Vec<MessageSelect> = sent.into_iter().chain(received).collect();
    rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
    // A message to oneself is on both sides.
    rows.dedup_by_key(|r| r.id);
    rows.truncate(usize::try_from(page.limit).unwrap_or(0));
    rows.reverse();
    Ok(rows.into_iter().map(StoredMessage::from).collect())
}

/// Everyone who sent or received a message, minus admins and the desk's own name.
pub fn conversation_users(conn: &mut DbConnection, desk_name: &str) -> QueryResult<Vec<String>> {
    let admins: BTreeSet<String> = admin_names(conn)?.into_iter().collect();
    let (senders, receivers): (Vec<String>, Vec<String>) = on_inner!(conn, c => {
        let senders = mensajes::table.select(mensajes::de_usuario).distinct().load(c)?;
        let receivers = mensajes::table.select(mensajes::para_usuario).distinct().load(c)?;
        (senders, receivers)
    });
    let users: BTreeSet<String> = senders
        .into_iter()
        .chain(receivers)
        .filter(|u| u != desk_name && !admins.contains(u))
        .collect();
    Ok(users.into_iter().collect())
}

pub fn admin_names(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    on_inner!(conn, c => usuarios::table
        .filter(usuarios::rol.eq("admin"))
        .select(usuarios::usuario)
        .order(usuarios::usuario)
        .load(c))
}

pub fn find_user(conn: &mut DbConnection, usuario: &str) -> QueryResult<Option<UserRecord>> {
    let row: Option<UserRow> = on_inner!(conn, c => usuarios::table
        .find(usuario)
        .select(UserRow::as_select())
        .first(c)
        .optional())?;
    Ok(row.map(UserRecord::from))
}

pub fn list_users(conn: &mut DbConnection) -> QueryResult<Vec<UserRecord>> {
    let rows: Vec<UserRow> = on_inner!(conn, c => usuarios::table
        .order(usuarios::usuario)
        .select(UserRow::as_select())
        .load(c))?;
    Ok(rows.into_iter().map(UserRecord::from).collect())
}

/// Replace the user's row, whatever it was: delete and insert in one transaction is the
/// one upsert all three backends spell the same way.
pub fn upsert_user(conn: &mut DbConnection, user: UserRecord) -> QueryResult<()> {
    let row = UserRow::from(user);
    on_inner!(conn, c => c.transaction(|c| {
        diesel::delete(usuarios::table.find(&row.usuario)).execute(c)?;
        diesel::insert_into(usuarios::table).values(&row).execute(c)?;
        Ok(())
    }))
}
