//! The message writer: the one actor every `Persist` goes through.
//!
//! It owns group commit, the spool and retries:
//! - **Group commit.** At most one batch is in flight. Messages accepted meanwhile queue
//!   up and leave together, up to `batch_max`, as one multi-row INSERT (one statement,
//!   one commit), as soon as the previous batch is answered. With nothing in flight a
//!   message leaves once the thread has run what is ready now, so that a burst already
//!   on its way leaves with it (or after `batch_wait_us`, when that is set).
//! - **Acks after commit, in acceptance order.** A `Persist` is answered only once its row
//!   is committed; batches are serial and answered front to back.
//! - **The spool.** Accepted messages wait in memory (bounded by `spool_max`, in flight
//!   included) while the database is away and are retried with exponential backoff;
//!   beyond the bound new messages are refused at once with `SpoolFull`.
//! - **Exactly once.** Every row carries a key (`clave`): writer incarnation + sequence.
//!   A batch whose attempt failed may have committed without our seeing the reply, so its
//!   retry first looks its keys up and inserts only the rows that are not there.
//! - **Poison.** A batch the database answers but refuses (not an outage) is retried a
//!   few times, then split into single messages; a single message still refused is
//!   answered with an error so that the rest can go on.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::executor::{BatchExecutor, DbError, StoreBatch};
use super::models::MessageRow;
use super::{NewMessage, Persist, Store, StoreError, StoreReply, StoredMessage, WriterStats};
use crate::config::StorageSettings;

/// Attempts a batch gets while the database answers but refuses it.
const REFUSED_ATTEMPTS: u32 = 3;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub spool_max: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl WriterConfig {
    pub fn from_settings(settings: &StorageSettings) -> WriterConfig {
        WriterConfig {
            batch_max: settings.batch_max.max(1),
            batch_wait: Duration::from_micros(settings.batch_wait_us),
            spool_max: settings.spool_max.max(1),
            retry_initial: Duration::from_millis(settings.retry_initial_ms.max(1)),
            retry_max: Duration::from_millis(
                settings.retry_max_ms.max(settings.retry_initial_ms).max(1),
            ),
        }
    }
}

/// Counters the writer updates and `/metrics` reads without a message round trip.
#[derive(Debug, Default)]
pub struct WriterGauges {
    spooled: AtomicU64,
    stored_total: AtomicU64,
    refused_total: AtomicU64,
    batches_total: AtomicU64,
    store_latency_us_sum: AtomicU64,
    outage: AtomicBool,
}

impl WriterGauges {
    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            spooled: self.spooled.load(Ordering::Relaxed),
            stored_total: self.stored_total.load(Ordering::Relaxed),
            refused_total: self.refused_total.load(Ordering::Relaxed),
            batches_total: self.batches_total.load(Ordering::Relaxed),
            store_latency_us_sum: self.store_latency_us_sum.load(Ordering::Relaxed),
            outage: self.outage.load(Ordering::Relaxed),
        }
    }

    pub fn outage(&self) -> bool {
        self.outage.load(Ordering::Relaxed)
    }
}

/// What the writer remembers of an accepted message besides its row.
struct Ticket {
    reply: StoreReply,
    accepted_at: Instant,
    /// An attempt that included this row failed; it may have committed anyway.
    recheck: bool,
    /// Attempts the database answered and refused.
    refusals: u32,
}

struct InFlight {
    rows: Arc<Vec<MessageRow>>,
    tickets: Vec<Ticket>,
    sent_at: Instant,
}

pub struct MessageWriter {
    executor: Addr<BatchExecutor>,
    config: WriterConfig,
    gauges: Arc<WriterGauges>,
    /// Random per writer start: keys of different runs (and brokers) never meet.
    incarnation: u64,
    next_seq: u64,
    pending: VecDeque<(MessageRow, Ticket)>,
    in_flight: Option<InFlight>,
    /// Next retry delay; doubles per failed attempt, reset by a success.
    backoff: Duration,
    retry_scheduled: bool,
    wait_timer_armed: bool,
    /// A dispatch is due once this thread has run everything that is ready now.
    yield_armed: bool,
    /// The next this-many messages go one per batch, to find the one being refused.
    isolate: usize,
    stopping: bool,
    /// Shutdown ran out of time: whatever fails from now on is answered, not retried.
    abandoned: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl MessageWriter {
    pub fn new(
        executor: Addr<BatchExecutor>,
        config: WriterConfig,
        gauges: Arc<WriterGauges>,
    ) -> MessageWriter {
        MessageWriter {
            executor,
            backoff: config.retry_initial,
            config,
            gauges,
            incarnation: rand::random(),
            next_seq: 0,
            pending: VecDeque::new(),
            in_flight: None,
            retry_scheduled: false,
            wait_timer_armed: false,
            yield_armed: false,
            isolate: 0,
            stopping: false,
            abandoned: false,
            drain_waiters: Vec::new(),
        }
    }

    fn next_key(&mut self) -> String {
        self.next_seq += 1;
        // Sized up front: `format!` would grow the string twice on the way to 32 bytes.
        let mut key = String::with_capacity(32);
        let _ = write!(key, "{:016x}{:016x}", self.incarnation, self.next_seq);
        key
    }

    fn spooled(&self) -> usize {
        self.pending.len() + self.in_flight.as_ref().map_or(0, |f| f.tickets.len())
    }

    fn update_spooled(&self) {
        self.gauges
            .spooled
            .store(self.spooled() as u64, Ordering::Relaxed);
    }

    /// A message was accepted. With the database idle, the first message of a burst would
    /// leave alone and the rest of the burst (already read, on its way through this
    /// thread) would wait for it: the batch leaves once the thread has run everything
    /// that is ready now, which takes the whole burst for no more wait than that.
    fn on_accepted(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.is_some() || self.yield_armed {
            return;
        }
        self.yield_armed = true;
        ctx.spawn(
            tokio::task::yield_now()
                .into_actor(self)
                .map(|(), writer, ctx| {
                    writer.yield_armed = false;
                    writer.dispatch(ctx);
                }),
        );
    }

    /// Send the next batch, unless one is in flight, a retry is pending, or the oldest
    /// message may still wait for company.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight.is_some() || self.retry_scheduled || self.pending.is_empty() {
            return;
        }
        let take = if self.isolate > 0 {
            1
        } else {
            self.pending.len().min(self.config.batch_max)
        };
        if self.isolate == 0
            && !self.stopping
            && take < self.config.batch_max
            && !self.config.batch_wait.is_zero()
        {
            let waited = self.pending[0].1.accepted_at.elapsed();
            if waited < self.config.batch_wait {
                if !self.wait_timer_armed {
                    self.wait_timer_armed = true;
                    ctx.run_later(self.config.batch_wait - waited, |writer, ctx| {
                        writer.wait_timer_armed = false;
                        writer.dispatch(ctx);
                    });
                }
                return;
            }
        }
        self.isolate = self.isolate.saturating_sub(1);

        let (rows, tickets): (Vec<MessageRow>, Vec<Ticket>) = self.pending.drain(..take).unzip();
        let recheck = tickets.iter().any(|t| t.recheck);
        let rows = Arc::new(rows);
        self.in_flight = Some(InFlight {
            rows: Arc::clone(&rows),
            tickets,
            sent_at: Instant::now(),
        });
        let request = self.executor.send(StoreBatch { rows, recheck });
        ctx.spawn(request.into_actor(self).map(|outcome, writer, ctx| {
            let outcome = outcome.unwrap_or_else(|e| Err(DbError::Unreachable(e.to_string())));
            writer.on_batch_done(outcome, ctx);
        }));
    }

    fn on_batch_done(&mut self, outcome: Result<Vec<i64>, DbError>, ctx: &mut Context<Self>) {
        let Some(InFlight {
            rows,
            tickets,
            sent_at,
        }) = self.in_flight.take()
        else {
            return;
        };
        log::trace!(
            "storage: batch of {} answered after {:?}",
            rows.len(),
            sent_at.elapsed()
        );
        let rows = Arc::try_unwrap(rows).unwrap_or_else(|shared| (*shared).clone());
        if self.abandoned && outcome.is_err() {
            self.refuse(tickets, StoreError::Unavailable);
            self.update_spooled();
            self.notify_if_drained();
            return;
        }
        match outcome {
            Ok(ids) => {
                if self.gauges.outage.swap(false, Ordering::Relaxed) {
                    log::info!("storage: database back; spool draining");
                }
                self.backoff = self.config.retry_initial;
                self.gauges.batches_total.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                let mut latency_us = 0u64;
                for ((row, ticket), id) in rows.iter().zip(tickets).zip(ids) {
                    latency_us += now.duration_since(ticket.accepted_at).as_micros() as u64;
                    // The caller may have given up waiting; the row is stored regardless.
                    let _ = ticket.reply.send(Ok(row.stored(id)));
                }
                self.gauges
                    .stored_total
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                self.gauges
                    .store_latency_us_sum
                    .fetch_add(latency_us, Ordering::Relaxed);
            }
            Err(DbError::Unreachable(error)) => {
                if !self.gauges.outage.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "storage: database unreachable, spooling {} messages: {error}",
                        self.spooled() + rows.len()
                    );
                }
                self.requeue(rows, tickets, false);
                self.schedule_retry(ctx);
            }
            Err(DbError::Failed(error)) => {
                log::warn!("storage: batch of {} refused: {error}", rows.len());
                let refusals = tickets.iter().map(|t| t.refusals).max().unwrap_or(0) + 1;
                if refusals < REFUSED_ATTEMPTS {
                    self.requeue(rows, tickets, true);
                } else if rows.len() > 1 {
                    self.isolate = rows.len();
                    self.requeue(rows, tickets, false);
                    for (_, ticket) in self.pending.iter_mut().take(self.isolate) {
                        ticket.refusals = 0;
                    }
                } else {
                    log::error!(
                        "storage: message from {:?} refused {refusals} times; answering with an error",
                        rows[0].de_usuario
                    );
                    self.refuse(tickets, StoreError::Unavailable);
                }
                self.schedule_retry(ctx);
            }
        }
        self.update_spooled();
        self.dispatch(ctx);
        self.notify_if_drained();
    }

    /// Put a failed batch back at the head of the queue, in its order.
    fn requeue(&mut self, rows: Vec<MessageRow>, tickets: Vec<Ticket>, refused: bool) {
        for (row, mut ticket) in rows.into_iter().zip(tickets).rev() {
            ticket.recheck = true;
            if refused {
                ticket.refusals += 1;
            }
            self.pending.push_front((row, ticket));
        }
    }

    fn refuse(&mut self, tickets: impl IntoIterator<Item = Ticket>, error: StoreError) {
        for ticket in tickets {
            self.gauges.refused_total.fetch_add(1, Ordering::Relaxed);
            let _ = ticket.reply.send(Err(error.clone()));
        }
    }

    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        self.retry_scheduled = true;
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.retry_max);
        ctx.run_later(delay, |writer, ctx| {
            writer.retry_scheduled = false;
            writer.dispatch(ctx);
        });
    }

    fn notify_if_drained(&mut self) {
        if self.stopping && self.spooled() == 0 {
            for waiter in self.drain_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl MessageWriter {
    /// Mailbox fit for every socket's `Persist` (the default 16 would make senders queue
    /// outside it and wake one by one), set before the first message can arrive.
    /// The writer's address now, the writer itself wherever [`WriterLaunch::run`] is
    /// called later: so it can share a thread with the actor that feeds it.
    pub fn deferred(self) -> (Addr<MessageWriter>, WriterLaunch) {
        let (sender, mailbox) = actix::dev::channel::channel(MAILBOX);
        (
            Addr::new(sender),
            WriterLaunch {
                mailbox,
                writer: self,
            },
        )
    }
}

/// A writer that has an address but does not run yet.
pub struct WriterLaunch {
    mailbox: actix::dev::channel::AddressReceiver<MessageWriter>,
    writer: MessageWriter,
}

impl WriterLaunch {
    /// Run the writer on the current thread's arbiter.
    pub fn run(self) {
        let mut ctx = Context::with_receiver(self.mailbox);
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run(self.writer);
    }
}

const MAILBOX: usize = 4096;

impl Actor for MessageWriter {
    type Context = Context<Self>;
}

impl MessageWriter {
    /// Take a message into the spool, or refuse it at once.
    fn accept(&mut self, message: NewMessage, reply: StoreReply, ctx: &mut Context<Self>) {
        if self.stopping {
            let _ = reply.send(Err(StoreError::ShuttingDown));
            return;
        }
        if self.spooled() >= self.config.spool_max {
            self.gauges.refused_total.fetch_add(1, Ordering::Relaxed);
            let _ = reply.send(Err(StoreError::SpoolFull));
            return;
        }
        let row = MessageRow::new(message, self.next_key());
        self.pending.push_back((
            row,
            Ticket {
                reply,
                accepted_at: Instant::now(),
                recheck: false,
                refusals: 0,
            },
        ));
        self.on_accepted(ctx);
        self.update_spooled();
    }
}

impl Handler<Store> for MessageWriter {
    type Result = ();

    fn handle(&mut self, Store { message, reply }: Store, ctx: &mut Context<Self>) {
        self.accept(message, reply, ctx);
    }
}

impl Handler<Persist> for MessageWriter {
    type Result = ResponseFuture<Result<StoredMessage, StoreError>>;

    fn handle(&mut self, Persist(message): Persist, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.accept(message, reply, ctx);
        // A dropped reply means the writer itself went away with the message.
        Box::pin(async move { answer.await.unwrap_or(Err(StoreError::Unavailable)) })
    }
}

/// Stop accepting; answered once everything accepted is stored and acked.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for MessageWriter {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        let (done, wait) = oneshot::channel();
        self.drain_waiters.push(done);
        // A message waiting for company would wait for nobody now.
        self.dispatch(ctx);
        self.notify_if_drained();
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

/// Shutdown ran out of time: answer what is still queued with an error. A batch in
/// flight is answered by its own outcome, and is not retried if it fails (its rows may
/// then be stored although answered with an error: never the other way round).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Abandon;

impl Handler<Abandon> for MessageWriter {
    type Result = usize;

    fn handle(&mut self, _: Abandon, _: &mut Context<Self>) -> usize {
        self.stopping = true;
        self.abandoned = true;
        let abandoned: Vec<Ticket> = self.pending.drain(..).map(|(_, t)| t).collect();
        let count = abandoned.len();
        self.refuse(abandoned, StoreError::Unavailable);
        self.update_spooled();
        self.notify_if_drained();
        count
    }
}
