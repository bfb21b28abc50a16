//! A writer that stores nothing: it numbers messages and answers at once.
//!
//! Only for measuring fan-out without a database (`storage.persist = false`), the way the
//! Node baseline runs with `PERSIST=0`. Acks then promise nothing about durability, which
//! is why the server logs a warning whenever this writer is in use.

use actix::prelude::*;

use super::Store;

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

impl Handler<Store> for VolatileWriter {
    type Result = ();

    fn handle(&mut self, Store { message, reply }: Store, _: &mut Context<Self>) {
        self.next_id += 1;
        let _ = reply.send(Ok(message.stored(self.next_id)));
    }
}
