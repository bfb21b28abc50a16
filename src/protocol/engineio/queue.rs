//! The bounded outbound queue of one session, and the frames it carries.
//!
//! Producers are anywhere (handlers, other actors, fan-outs on other threads) and must
//! never block, so pushing is synchronous and fails when the queue is full; the consumer
//! is whichever transport is current (a pending polling GET, or the WebSocket writer
//! task), which is why the queue is shared state rather than a channel with one owner:
//! during an upgrade the consumer changes hands without a frame being lost or reordered.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use bytestring::ByteString;
use tokio::sync::Notify;

use super::EngineMetrics;

/// One unit of outbound traffic, already encoded for the wire. Cloning shares the bytes.
#[derive(Debug, Clone)]
pub enum WireFrame {
    /// A complete text Engine.IO packet, type digit included (`4hello`, `2`).
    Text(ByteString),
    /// A binary MESSAGE.
    Binary(Bytes),
    /// Messages that must reach the client back to back (a Socket.IO packet with its
    /// binary attachments). Counts as one frame against the queue bound.
    Group(Arc<[WireFrame]>),
}

impl WireFrame {
    /// A text MESSAGE: `4` followed by `data`.
    pub fn message(data: &str) -> WireFrame {
        let mut text = String::with_capacity(data.len() + 1);
        text.push('4');
        text.push_str(data);
        WireFrame::Text(text.into())
    }

    /// Engine.IO messages in this frame (what `frames_out_total` counts).
    pub fn message_count(&self) -> u64 {
        match self {
            WireFrame::Group(parts) => parts.iter().map(WireFrame::message_count).sum(),
            _ => 1,
        }
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    /// The client does not read; the session is being closed as a slow consumer.
    #[error("outbound queue is full")]
    Full,
    #[error("session is closed")]
    Closed,
}

/// How a queue ended, as its consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// No more frames will come; deliver what is queued.
    Closed,
    /// Nothing more will be delivered: the session is gone.
    Discarded,
}

/// What a push found, so that exactly one producer reports an overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    /// This push found the queue full first: the caller must close the session.
    Overflowed,
}

pub(crate) struct OutboundQueue {
    state: Mutex<QueueState>,
    /// Wakes a polling consumer (`notify_one` keeps a permit, so no wake-up is lost).
    ready: Notify,
    /// Wakes every task that watches for the end (`closed`/`discarded` flags).
    ended: Notify,
    capacity: usize,
    metrics: Arc<EngineMetrics>,
}

/// Frames in one take after which the queue keeps its deque's storage (see `take_all`).
const KEEP_STORAGE_AFTER: usize = 8;

#[derive(Default)]
struct QueueState {
    frames: VecDeque<WireFrame>,
    closed: bool,
    /// Closed and nobody should try to deliver what is left (the client is gone or stuck).
    discarded: bool,
    overflowed: bool,
    /// Set to release a waiting consumer that has nothing to take (a polling GET that must
    /// end with a NOOP during the upgrade).
    woken: bool,
    /// The WebSocket writer, once it is the consumer: woken directly, under the lock
    /// that guards the frames, which costs less than a `Notify` and makes its wait a
    /// future of no size. The WebSocket is the session's last transport, so once it has
    /// registered, pushes are for it alone.
    writer: Option<Waker>,
}

impl OutboundQueue {
    pub(crate) fn new(capacity: usize, metrics: Arc<EngineMetrics>) -> Arc<Self> {
        Arc::new(OutboundQueue {
            state: Mutex::new(QueueState::default()),
            ready: Notify::new(),
            ended: Notify::new(),
            capacity,
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the deque inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an application frame, refusing it when the bound is reached.
    pub(crate) fn push(&self, frame: WireFrame) -> Result<Pushed, EnqueueError> {
        let mut state = self.lock();
        if state.overflowed {
            return Err(EnqueueError::Full);
        }
        if state.closed {
            return Err(EnqueueError::Closed);
        }
        if state.frames.len() >= self.capacity {
            state.overflowed = true;
            return Ok(Pushed::Overflowed);
        }
        state.frames.push_back(frame);
        let writer = state.writer.take();
        drop(state);
        self.metrics.outbound_queued.fetch_add(1, Ordering::Relaxed);
        self.wake_one(writer);
        Ok(Pushed::Queued)
    }

    /// Queues a packet of the engine itself (PING, NOOP, CLOSE). These are few per
    /// session and must not be lost to a full queue, so the bound does not apply.
    pub(crate) fn push_control(&self, frame: WireFrame) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.frames.push_back(frame);
        let writer = state.writer.take();
        drop(state);
        self.metrics.outbound_queued.fetch_add(1, Ordering::Relaxed);
        self.wake_one(writer);
        true
    }

    /// Refuses further pushes; the consumer still drains what is queued.
    pub(crate) fn close(&self) {
        let writer = {
            let mut state = self.lock();
            state.closed = true;
            state.writer.take()
        };
        self.wake_all(writer);
    }

    /// Releases whichever consumer waits (during an upgrade: the pending polling GET).
    pub(crate) fn wake_consumer(&self) {
        let writer = {
            let mut state = self.lock();
            state.woken = true;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        self.ready.notify_one();
    }

    fn wake_one(&self, writer: Option<Waker>) {
        match writer {
            Some(writer) => writer.wake(),
            None => self.ready.notify_one(),
        }
    }

    fn wake_all(&self, writer: Option<Waker>) {
        if let Some(writer) = writer {
            writer.wake();
        }
        self.ready.notify_one();
        self.ended.notify_waiters();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Drops everything queued (the session is gone and nobody will read it).
    pub(crate) fn discard(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.discarded = true;
        let dropped = state.frames.len() as u64;
        state.frames = VecDeque::new();
        let writer = state.writer.take();
        drop(state);
        self.metrics
            .outbound_queued
            .fetch_sub(dropped, Ordering::Relaxed);
        self.wake_all(writer);
    }

    /// Resolves once the queue is closed, or with `gracefully` false only once it is
    /// discarded (stop delivering, the session is gone). One future for both, so that a
    /// transport watching one or the other holds one.
    pub(crate) async fn ended(&self, gracefully: bool) {
        let done = |state: &QueueState| {
            if gracefully {
                state.closed
            } else {
                state.discarded
            }
        };
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            // Registered before the check, so a close between the check and the await
            // still wakes us (`notify_waiters` stores no permit).
            notified.as_mut().enable();
            if done(&self.lock()) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until there is something to take, the queue closed, or a consumer wake-up.
    pub(crate) async fn ready(&self) {
        loop {
            {
                let mut state = self.lock();
                if !state.frames.is_empty() || state.closed || state.woken {
                    state.woken = false;
                    return;
                }
            }
            self.ready.notified().await;
        }
    }

    /// [`ready`](Self::ready) for the WebSocket writer: registers it as the consumer.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if !state.frames.is_empty() || state.closed || state.woken {
            state.woken = false;
            return Poll::Ready(());
        }
        if !state
            .writer
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.writer = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Hands everything queued now to `each`, in order, and says whether the queue has
    /// ended, under one lock (the WebSocket writer asks this on every wake-up). `each`
    /// only moves the frames on; it runs under the lock so that the deque's storage
    /// stays here for the frames to come. It is kept after a take of
    /// [`KEEP_STORAGE_AFTER`] frames or more (a connection that gets bunches, an admin,
    /// then queues without allocating) and freed after a smaller one (a user's ack, an
    /// idle socket's last frame), so a quiet connection holds none.
    pub(crate) fn take_all(&self, mut each: impl FnMut(WireFrame)) -> Option<Ended> {
        let mut state = self.lock();
        let ended = if state.discarded {
            Some(Ended::Discarded)
        } else if state.closed {
            Some(Ended::Closed)
        } else {
            None
        };
        state.woken = false;
        let taken = state.frames.len();
        for frame in state.frames.drain(..) {
            each(frame);
        }
        if taken < KEEP_STORAGE_AFTER {
            state.frames = VecDeque::new();
        }
        drop(state);
        if taken > 0 {
            self.metrics
                .outbound_queued
                .fetch_sub(taken as u64, Ordering::Relaxed);
        }
        ended
    }

    /// Takes everything queued now.
    pub(crate) fn drain(&self) -> VecDeque<WireFrame> {
        let mut state = self.lock();
        state.woken = false;
        let frames = std::mem::take(&mut state.frames);
        drop(state);
        self.metrics
            .outbound_queued
            .fetch_sub(frames.len() as u64, Ordering::Relaxed);
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> WireFrame {
        WireFrame::Text(ByteString::from_static(s))
    }

    #[test]
    fn overflow_is_reported_once_then_refused() {
        let metrics = Arc::new(EngineMetrics::default());
        let queue = OutboundQueue::new(2, metrics.clone());
        assert_eq!(queue.push(text("4a")), Ok(Pushed::Queued));
        assert_eq!(queue.push(text("4b")), Ok(Pushed::Queued));
        assert_eq!(queue.push(text("4c")), Ok(Pushed::Overflowed));
        assert_eq!(queue.push(text("4d")), Err(EnqueueError::Full));
        // The engine's own packets still get through until the session closes.
        assert!(queue.push_control(text("1")));
        assert_eq!(metrics.outbound_queued(), 3);
        queue.discard();
        assert_eq!(metrics.outbound_queued(), 0);
        assert!(!queue.push_control(text("2")));
    }

    #[test]
    fn the_writer_is_woken_by_pushes_and_by_the_end() {
        use std::sync::atomic::AtomicUsize;
        use std::task::{Context, Poll};

        struct Wakes(AtomicUsize);
        impl futures_util::task::ArcWake for Wakes {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = futures_util::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let queue = OutboundQueue::new(8, Arc::new(EngineMetrics::default()));

        assert_eq!(queue.poll_ready(&mut cx), Poll::Pending);
        queue.push(text("4a")).unwrap();
        queue.push(text("4b")).unwrap();
        // One wake-up per registration, not per frame.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert_eq!(queue.poll_ready(&mut cx), Poll::Ready(()));
        let mut frames = Vec::new();
        let ended = queue.take_all(|frame| frames.push(frame));
        assert_eq!((frames.len(), ended), (2, None));
        frames.clear();
        assert_eq!(queue.poll_ready(&mut cx), Poll::Pending);
        queue.close();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        assert_eq!(queue.poll_ready(&mut cx), Poll::Ready(()));
        assert_eq!(
            queue.take_all(|frame| frames.push(frame)),
            Some(Ended::Closed)
        );
        assert!(frames.is_empty());
    }

    #[test]
    fn storage_is_kept_after_a_bunch_and_freed_after_a_frame() {
        let queue = OutboundQueue::new(64, Arc::new(EngineMetrics::default()));
        let mut taken = Vec::new();
        for _ in 0..KEEP_STORAGE_AFTER {
            queue.push(text("4a")).unwrap();
        }
        assert_eq!(queue.take_all(|frame| taken.push(frame)), None);
        assert_eq!(taken.len(), KEEP_STORAGE_AFTER);
        assert!(queue.lock().frames.capacity() >= KEEP_STORAGE_AFTER);
        queue.push(text("4b")).unwrap();
        queue.take_all(|frame| taken.push(frame));
        assert_eq!(
            queue.lock().frames.capacity(),
            0,
            "a quiet connection holds none"
        );
        assert_eq!(taken.len(), KEEP_STORAGE_AFTER + 1);
    }

    #[test]
    fn closed_queue_drains_then_ends() {
        let metrics = Arc::new(EngineMetrics::default());
        let queue = OutboundQueue::new(8, metrics.clone());
        queue.push(text("4a")).unwrap();
        queue.close();
        assert_eq!(queue.push(text("4b")), Err(EnqueueError::Closed));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            queue.ready().await;
            let frames = queue.drain();
            assert!(matches!(&frames[0], WireFrame::Text(t) if &**t == "4a"));
            assert_eq!(frames.len(), 1);
            queue.ready().await;
            assert!(queue.drain().is_empty() && queue.is_closed());
            queue.ended(true).await;
        });
        assert_eq!(metrics.outbound_queued(), 0);
    }
}
