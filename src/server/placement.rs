//! Where the broker's actors run.
//!
//! The actor design makes placement a deployment choice rather than a code change. The
//! `ChatServer` and the storage writer it feeds (or the volatile writer when persistence
//! is off) run together, either on a thread of their own, so routing never queues behind
//! HTTP work on a many-core machine, or on the first HTTP worker, so that with
//! `server.workers = 1` a message is read, routed, fanned out and acked without waking
//! another thread (only the database executors run elsewhere). Their addresses exist
//! before they run, so the sockets and handlers that talk to them are built first.

use std::sync::{Arc, Mutex};

use actix::dev::channel::{self, AddressReceiver};
use actix::{Actor, Addr, Arbiter, Context, Recipient};

use crate::broker::ChatServer;
use crate::broker::chat_server::{ChatMetrics, MAILBOX_CAPACITY};
use crate::broker::policy::Policy;
use crate::desk::DeskChatServer;
use crate::storage::volatile::VolatileWriter;
use crate::storage::{Store, WriterLaunch};

/// The writer the broker persists through.
pub enum Writer {
    /// Storage's writer, to be run beside the broker.
    Storage(Recipient<Store>, Box<WriterLaunch>),
    /// Persistence off: a volatile writer starts beside the broker.
    Volatile,
}

/// Everything the broker needs to start, wherever that happens.
pub struct BrokerStart {
    mailbox: AddressReceiver<DeskChatServer>,
    policy: Policy,
    writer: Writer,
    metrics: Arc<ChatMetrics>,
}

impl BrokerStart {
    /// The broker's address, usable at once, and what starts it.
    pub fn new(
        policy: Policy,
        writer: Writer,
        metrics: Arc<ChatMetrics>,
    ) -> (Addr<DeskChatServer>, BrokerStart) {
        let (sender, mailbox) = channel::channel(MAILBOX_CAPACITY);
        let start = BrokerStart {
            mailbox,
            policy,
            writer,
            metrics,
        };
        (Addr::new(sender), start)
    }

    /// Run the broker and its writer on the current thread's arbiter.
    pub fn run(self) {
        let writer = match self.writer {
            Writer::Storage(writer, launch) => {
                launch.run();
                writer
            }
            Writer::Volatile => VolatileWriter::default().start().recipient(),
        };
        Context::with_receiver(self.mailbox).run(ChatServer::new(
            self.policy,
            writer,
            self.metrics,
        ));
    }

    pub fn run_on(self, arbiter: &Arbiter) {
        arbiter.spawn_fn(move || self.run());
    }
}

/// A broker waiting for the first HTTP worker to start it.
#[derive(Clone)]
pub struct OnFirstWorker(Arc<Mutex<Option<BrokerStart>>>);

impl OnFirstWorker {
    pub fn new(start: BrokerStart) -> Self {
        OnFirstWorker(Arc::new(Mutex::new(Some(start))))
    }

    /// Called by every worker as it builds its app; the first one runs the broker.
    pub fn start_here(&self) {
        let start = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(start) = start {
            start.run();
        }
    }
}
