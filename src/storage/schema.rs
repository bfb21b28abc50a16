//! The two tables, declared once for the three backends.
//!
//! Written by hand (not by `diesel print-schema`) because one declaration must fit all
//! three: `fecha` is `Timestamp` (SQLite text, PostgreSQL `timestamp(3)`, MySQL
//! `DATETIME(3)` all load into a `NaiveDateTime` holding UTC) and `id` is `BigInt` (SQLite
//! reports its rowid as INTEGER, which is 64-bit anyway).

diesel::table! {
    mensajes (id) {
        id -> BigInt,
        de_usuario -> Text,
        para_usuario -> Text,
        mensaje -> Text,
        fecha -> Timestamp,
        /// The writer's idempotency key; NULL for rows written by anything else.
        clave -> Nullable<Text>,
    }
}

diesel::table! {
    usuarios (usuario) {
        usuario -> Text,
        nombre -> Text,
        rol -> Text,
        pass -> Text,
        imagen -> Nullable<Text>,
    }
}
