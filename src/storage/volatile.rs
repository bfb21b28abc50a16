//! A writer that stores nothing: it numbers messages and answers at once.
//!
//! Only for measuring fan-out without a database (`storage.persist = false`), the way the
//! Node baseline runs with `PERSIST=0`. Acks then promise nothing about durability, which
//! is why the server logs a warning whenever this writer is in use.

use actix::prelude::*;

use super::{Persist, StoreError, StoredMessage};

#[derive(Default)]
pub struct VolatileWriter {
    next_id: i64,
}

impl Actor for VolatileWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Persist> for VolatileWriter {
    type Result = Result<StoredMessage, StoreError>;

    fn handle(&mut self, Persist(message): Persist, _: &mut Context<Self>) -> Self::Result {
        self.next_id += 1;
        Ok(StoredMessage {
            id: self.next_id,
            de_usuario: message.de_usuario,
            para_usuario: message.para_usuario,
            mensaje: message.mensaje,
            fecha: message.fecha,
        })
    }
}
