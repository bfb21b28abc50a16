//! The message writer: the one actor every `Persist` goes through.
//!
//! It owns group commit, the spool and retries:
//! - **Group commit.** Messages accepted while the database is busy queue up and leave
//!   together, up to `batch_max`, as one multi-row INSERT (one statement, one commit). With
//!   nothing in flight a message leaves once the thread has run what is ready now, so that
//!   a burst already on its way leaves with it (or after `batch_wait_us`, when that is set).
//! - **Lanes, one per write executor.** Each sender's messages fall in one lane (by a hash
//!   of the name), and a lane has at most one batch in flight, so one sender's messages are
//!   stored and acked in the order they were accepted. Lanes only split the work when there
//!   is enough of it: while a batch is in flight, another leaves only for a lane holding
//!   [`PARALLEL_MIN_ROWS`] messages (and takes the lanes with fewer along). Below that
//!   every lane shares one batch, so a moderate rate pays one commit per round, as with a
//!   single writer; under heavy load the database works on two batches at once.
//! - **Acks after commit.** A `Persist` is answered only once its row is committed.
//!   Messages of different senders have no order to keep: fan-out follows the commit, so a
//!   reply is always accepted (and numbered) after the message it answers.
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
use std::collections::hash_map::DefaultHasher;
use std::fmt::Write;
use std::hash::{Hash, Hasher};
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

/// Messages a lane must hold to leave in a batch of its own while another batch is in
/// flight. A second concurrent commit costs the database about what one commit costs;
/// below this many rows it is cheaper to wait for the batch in flight and share the next.
pub const PARALLEL_MIN_ROWS: usize = 64;

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
    parallel_batches_total: AtomicU64,
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
            parallel_batches_total: self.parallel_batches_total.load(Ordering::Relaxed),
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
    lane: usize,
    /// An attempt that included this row failed; it may have committed anyway.
    recheck: bool,
    /// Attempts the database answered and refused.
    refusals: u32,
    /// It was in a batch refused too often: it goes alone, to find the one refused.
    alone: bool,
}

type Queued = (MessageRow, Ticket);

/// The messages of the senders that hash to it, oldest first.
#[derive(Default)]
struct Lane {
    pending: VecDeque<Queued>,
    /// A batch holding some of this lane's messages is in flight.
    busy: bool,
}

struct InFlight {
    rows: Arc<Vec<MessageRow>>,
    tickets: Vec<Ticket>,
    sent_at: Instant,
}

pub struct MessageWriter {
    executors: Vec<Addr<BatchExecutor>>,
    /// The batch each executor works on, by index into `executors`: one at most.
    in_flight: Vec<Option<InFlight>>,
    config: WriterConfig,
    gauges: Arc<WriterGauges>,
    /// Random per writer start: keys of different runs (and brokers) never meet.
    incarnation: u64,
    next_seq: u64,
    lanes: Vec<Lane>,
    /// Next retry delay; doubles per failed attempt, reset by a success.
    backoff: Duration,
    retry_scheduled: bool,
    wait_timer_armed: bool,
    /// A dispatch is due once this thread has run everything that is ready now.
    yield_armed: bool,
    stopping: bool,
    /// Shutdown ran out of time: whatever fails from now on is answered, not retried.
    abandoned: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl MessageWriter {
    /// A writer with one lane per executor.
    pub fn new(
        executors: Vec<Addr<BatchExecutor>>,
        config: WriterConfig,
        gauges: Arc<WriterGauges>,
    ) -> MessageWriter {
        assert!(!executors.is_empty(), "the writer needs an executor");
        MessageWriter {
            in_flight: (0..executors.len()).map(|_| None).collect(),
            lanes: (0..executors.len()).map(|_| Lane::default()).collect(),
            executors,
            backoff: config.retry_initial,
            config,
            gauges,
            incarnation: rand::random(),
            next_seq: 0,
            retry_scheduled: false,
            wait_timer_armed: false,
            yield_armed: false,
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

    fn lane_of(&self, sender: &str) -> usize {
        if self.lanes.len() == 1 {
            return 0;
        }
        let mut hasher = DefaultHasher::new();
        sender.hash(&mut hasher);
        (hasher.finish() % self.lanes.len() as u64) as usize
    }

    fn queued(&self) -> usize {
        self.lanes.iter().map(|l| l.pending.len()).sum()
    }

    fn spooled(&self) -> usize {
        self.queued()
            + self
                .in_flight
                .iter()
                .flatten()
                .map(|f| f.tickets.len())
                .sum::<usize>()
    }

    fn any_in_flight(&self) -> bool {
        self.in_flight.iter().any(Option::is_some)
    }

    fn idle_executor(&self) -> Option<usize> {
        self.in_flight.iter().position(Option::is_none)
    }

    fn update_spooled(&self) {
        self.gauges
            .spooled
            .store(self.spooled() as u64, Ordering::Relaxed);
    }

    /// A message was accepted into `lane`. With the database idle, the first message of a
    /// burst would leave alone and the rest of the burst (already read, on its way through
    /// this thread) would wait for it: the batch leaves once the thread has run everything
    /// that is ready now, which takes the whole burst for no more wait than that. With a
    /// batch in flight, only a lane that has grown enough to go on its own is worth a look.
    fn on_accepted(&mut self, lane: usize, ctx: &mut Context<Self>) {
        if self.yield_armed {
            return;
        }
        let lane = &self.lanes[lane];
        let worth_a_batch = !self.any_in_flight()
            || (self.idle_executor().is_some()
                && !lane.busy
                && lane.pending.len() >= PARALLEL_MIN_ROWS);
        if !worth_a_batch {
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

    /// Send what may leave now: as many batches as there are idle executors and lanes
    /// ready for them.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        while !self.retry_scheduled {
            let Some(executor) = self.idle_executor() else {
                return;
            };
            let Some(lanes) = self.lanes_for_next_batch(ctx) else {
                return;
            };
            self.send_batch(executor, &lanes, ctx);
        }
    }

    /// Which lanes the next batch takes messages from, if one should leave now:
    /// - a message set apart by a refusal goes alone;
    /// - a lane with [`PARALLEL_MIN_ROWS`] waiting goes, taking the smaller free lanes along;
    /// - with nothing in flight, every free lane goes together, unless the oldest message
    ///   may still wait for company (`batch_wait`).
    fn lanes_for_next_batch(&mut self, ctx: &mut Context<Self>) -> Option<Vec<usize>> {
        let free = || {
            self.lanes
                .iter()
                .enumerate()
                .filter(|(_, lane)| !lane.busy && !lane.pending.is_empty())
        };
        if let Some((i, _)) = free().find(|(_, lane)| lane.pending[0].1.alone) {
            return Some(vec![i]);
        }
        let small = || free().filter(|(_, lane)| lane.pending.len() < PARALLEL_MIN_ROWS);
        if let Some((big, _)) = free().find(|(_, lane)| lane.pending.len() >= PARALLEL_MIN_ROWS) {
            return Some(
                std::iter::once(big)
                    .chain(small().map(|(i, _)| i))
                    .collect(),
            );
        }
        if self.any_in_flight() {
            return None;
        }
        let lanes: Vec<usize> = small().map(|(i, _)| i).collect();
        if lanes.is_empty() {
            return None;
        }
        let queued: usize = lanes.iter().map(|&i| self.lanes[i].pending.len()).sum();
        if !self.stopping && queued < self.config.batch_max && !self.config.batch_wait.is_zero() {
            let oldest = lanes
                .iter()
                .map(|&i| self.lanes[i].pending[0].1.accepted_at)
                .min()?;
            let waited = oldest.elapsed();
            if waited < self.config.batch_wait {
                if !self.wait_timer_armed {
                    self.wait_timer_armed = true;
                    ctx.run_later(self.config.batch_wait - waited, |writer, ctx| {
                        writer.wait_timer_armed = false;
                        writer.dispatch(ctx);
                    });
                }
                return None;
            }
        }
        Some(lanes)
    }

    /// Take up to `batch_max` messages from `lanes` (in that order, each lane's oldest
    /// first) and send them to `executor`, which is idle.
    fn send_batch(&mut self, executor: usize, lanes: &[usize], ctx: &mut Context<Self>) {
        let mut room = if self.lanes[lanes[0]].pending[0].1.alone {
            1
        } else {
            self.config.batch_max
        };
        let mut rows = Vec::with_capacity(room.min(self.queued()));
        let mut tickets = Vec::with_capacity(rows.capacity());
        for &i in lanes {
            if room == 0 {
                break;
            }
            let lane = &mut self.lanes[i];
            let take = room.min(lane.pending.len());
            lane.busy = true;
            room -= take;
            for (row, ticket) in lane.pending.drain(..take) {
                rows.push(row);
                tickets.push(ticket);
            }
        }
        if self.any_in_flight() {
            self.gauges
                .parallel_batches_total
                .fetch_add(1, Ordering::Relaxed);
        }
        let recheck = tickets.iter().any(|t| t.recheck);
        let rows = Arc::new(rows);
        self.in_flight[executor] = Some(InFlight {
            rows: Arc::clone(&rows),
            tickets,
            sent_at: Instant::now(),
        });
        let request = self.executors[executor].send(StoreBatch { rows, recheck });
        ctx.spawn(request.into_actor(self).map(move |outcome, writer, ctx| {
            let outcome = outcome.unwrap_or_else(|e| Err(DbError::Unreachable(e.to_string())));
            writer.on_batch_done(executor, outcome, ctx);
        }));
    }

    fn on_batch_done(
        &mut self,
        executor: usize,
        outcome: Result<Vec<i64>, DbError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(InFlight {
            rows,
            tickets,
            sent_at,
        }) = self.in_flight[executor].take()
        else {
            return;
        };
        for ticket in &tickets {
            self.lanes[ticket.lane].busy = false;
        }
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
                self.requeue(rows, tickets, |_| {});
                self.schedule_retry(ctx);
            }
            Err(DbError::Failed(error)) => {
                log::warn!("storage: batch of {} refused: {error}", rows.len());
                let refusals = tickets.iter().map(|t| t.refusals).max().unwrap_or(0) + 1;
                if refusals < REFUSED_ATTEMPTS {
                    self.requeue(rows, tickets, |t| t.refusals += 1);
                } else if rows.len() > 1 {
                    self.requeue(rows, tickets, |t| {
                        t.refusals = 0;
                        t.alone = true;
                    });
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

    /// Put a failed batch back at the heads of its lanes, in its order.
    fn requeue(&mut self, rows: Vec<MessageRow>, tickets: Vec<Ticket>, mark: impl Fn(&mut Ticket)) {
        for (row, mut ticket) in rows.into_iter().zip(tickets).rev() {
            ticket.recheck = true;
            mark(&mut ticket);
            self.lanes[ticket.lane].pending.push_front((row, ticket));
        }
    }

    fn refuse(&mut self, tickets: impl IntoIterator<Item = Ticket>, error: StoreError) {
        for ticket in tickets {
            self.gauges.refused_total.fetch_add(1, Ordering::Relaxed);
            let _ = ticket.reply.send(Err(error.clone()));
        }
    }

    /// Hold every lane back for the current backoff. Several batches in flight may fail
    /// for one outage: the first schedules the retry, the others wait for it.
    fn schedule_retry(&mut self, ctx: &mut Context<Self>) {
        if self.retry_scheduled {
            return;
        }
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
        let lane = self.lane_of(&message.de_usuario);
        let row = MessageRow::new(message, self.next_key());
        self.lanes[lane].pending.push_back((
            row,
            Ticket {
                reply,
                accepted_at: Instant::now(),
                lane,
                recheck: false,
                refusals: 0,
                alone: false,
            },
        ));
        self.on_accepted(lane, ctx);
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
        let abandoned: Vec<Ticket> = self
            .lanes
            .iter_mut()
            .flat_map(|lane| lane.pending.drain(..).map(|(_, t)| t))
            .collect();
        let count = abandoned.len();
        self.refuse(abandoned, StoreError::Unavailable);
        self.update_spooled();
        self.notify_if_drained();
        count
    }
}
