//! The WebSocket transport: one task per connection that owns the `TcpStream`, feeds the
//! session actor what the client sends and drains the session's outbound queue into the
//! socket.
//!
//! It is built to cost nothing while idle. It waits for readiness without a buffer, reads
//! into a per-thread scratch buffer, and keeps only what cannot be handed on yet: an
//! unfinished frame (in the [`Decoder`]) or frames the socket did not take (the `out`
//! list). Writes take everything queued at once and hand it to the kernel with `writev`,
//! many frames per system call. Every buffer is bounded: reads by `maxPayload`, writes by
//! the session's queue (nothing is taken from it while a previous batch is unsent).
//!
//! Packets go to the session without waiting for each answer, but every
//! [`UNCONFIRMED_MAX`] of them reading waits until the session has handled them (a
//! `Confirm`), so a client that floods us waits for its actor instead of filling a
//! mailbox; while it waits, what the session queued meanwhile is written.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use actix::Recipient;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::ReadHalf;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::app::CloseReason;
use super::packet::{Inbound, Message, control};
use super::queue::{Ended, OutboundQueue, WireFrame};
use super::server::EngineShared;
use super::session::TransportMsg;
use super::ws_frame::{self, Decoder, Event, FrameError};

/// How long a probing WebSocket may take to send `5` (Node's `upgradeTimeout`).
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing connection waits for the client to acknowledge our close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Packets handed to the session before the reader waits for it to handle them.
const UNCONFIRMED_MAX: u8 = 16;

/// Frames handed to one `writev` (two slices each, well under `IOV_MAX`).
const WRITE_BATCH: usize = 64;

const SCRATCH_SIZE: usize = 64 * 1024;

thread_local! {
    /// Every connection of a worker reads through this one buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A frame to send, header not yet encoded.
struct OutFrame {
    opcode: u8,
    payload: Bytes,
    /// Engine.IO messages it carries, for `frames_out_total` (0 for WebSocket control).
    messages: u8,
}

/// Queues a frame to send on `out`.
fn push(out: &mut VecDeque<OutFrame>, opcode: u8, payload: Bytes, messages: u8) {
    out.push_back(OutFrame {
        opcode,
        payload,
        messages,
    });
}

/// Queues what the session queued on `out`, a WebSocket frame per Engine.IO packet.
fn push_wire(out: &mut VecDeque<OutFrame>, frame: WireFrame) {
    match frame {
        WireFrame::Text(text) => push(out, ws_frame::OP_TEXT, text.into_bytes(), 1),
        WireFrame::Binary(data) => push(out, ws_frame::OP_BINARY, data, 1),
        WireFrame::Group(parts) => {
            for part in parts.iter() {
                push_wire(out, part.clone());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A WebSocket opened for a polling session, not yet its transport (`2probe`..`5`).
    Probing,
    /// The session's transport: the queue is ours to drain.
    Active,
}

/// What woke the connection.
enum Wake {
    /// The socket was read: bytes decoded into events, its end, or an error.
    Read(Result<usize, ReadError>),
    /// A stuck write may go on (or the socket failed).
    Writable(io::Result<()>),
    Queue,
    /// The session was closed while we were probing, or discarded while we were stuck.
    SessionEnded,
    WriteStalled,
    UpgradeTimedOut,
}

/// How the connection ends.
enum End {
    /// Deliver what is queued, then the close handshake.
    Graceful,
    /// Send a close frame with this code (best effort) and drop the connection.
    Close(u16),
    /// Drop the connection now.
    Drop,
}

pub(crate) struct WsConnection {
    stream: TcpStream,
    session: Recipient<TransportMsg>,
    queue: Arc<OutboundQueue>,
    shared: Arc<EngineShared>,
    decoder: Decoder,
    out: VecDeque<OutFrame>,
    /// Bytes of `out.front()` (header, then payload) already written.
    sent: usize,
    /// When a stuck write makes the client a slow consumer.
    write_deadline: Option<Instant>,
    reading: bool,
    /// Packets handed to the session since it last confirmed handling them all.
    unconfirmed: u8,
    start: Mode,
}

impl WsConnection {
    /// The transport of a session opened with `transport=websocket`.
    pub(crate) fn direct(
        stream: TcpStream,
        session: Recipient<TransportMsg>,
        queue: Arc<OutboundQueue>,
        shared: Arc<EngineShared>,
    ) -> Self {
        Self::new(stream, session, queue, shared, Mode::Active)
    }

    /// A WebSocket for an existing polling session: probe, then take over.
    pub(crate) fn upgrade(
        stream: TcpStream,
        session: Recipient<TransportMsg>,
        queue: Arc<OutboundQueue>,
        shared: Arc<EngineShared>,
    ) -> Self {
        Self::new(stream, session, queue, shared, Mode::Probing)
    }

    fn new(
        stream: TcpStream,
        session: Recipient<TransportMsg>,
        queue: Arc<OutboundQueue>,
        shared: Arc<EngineShared>,
        start: Mode,
    ) -> Self {
        let decoder = Decoder::new(shared.config.max_payload);
        WsConnection {
            stream,
            session,
            queue,
            shared,
            decoder,
            out: VecDeque::new(),
            sent: 0,
            write_deadline: None,
            reading: true,
            unconfirmed: 0,
            start,
        }
    }

    /// A second WebSocket for a session that has one: like Node, accepted and closed.
    pub(crate) async fn refuse(stream: TcpStream) {
        let mut header = [0u8; ws_frame::MAX_HEADER];
        let code = ws_frame::CLOSE_NORMAL.to_be_bytes();
        let len = ws_frame::encode_header(ws_frame::OP_CLOSE, code.len(), &mut header);
        let mut frame = header[..len].to_vec();
        frame.extend_from_slice(&code);
        let mut stream = stream;
        let _ = tokio::time::timeout(CLOSE_LINGER, stream.write_all(&frame)).await;
        linger(stream).await;
    }

    /// Serves the connection until it or its session ends.
    pub(crate) async fn run(mut self) {
        let mut mode = self.start;
        let probe_deadline = Instant::now() + UPGRADE_TIMEOUT;
        let end = loop {
            if let Some(end) = self.write_queued(mode) {
                break end;
            }
            let mut events = Vec::new();
            let wake = {
                let stuck = !self.out.is_empty();
                let reading = self.reading;
                let deadline = self.write_deadline.unwrap_or(probe_deadline);
                // As few and as small futures as will do: the one this loop waits in is
                // most of what an idle connection costs. The socket is watched through
                // its two readiness slots (no waiter nodes), the queue through one
                // future, and a timer exists only on the loops that need one.
                let (mut reader, writer) = self.stream.split();
                let decoder = &mut self.decoder;
                let events = &mut events;
                let socket = poll_fn(move |cx| {
                    if reading
                        && let Poll::Ready(read) = read_events(&mut reader, decoder, events, cx)
                    {
                        return Poll::Ready(Wake::Read(read));
                    }
                    if stuck && let Poll::Ready(ready) = writer.as_ref().poll_write_ready(cx) {
                        return Poll::Ready(Wake::Writable(ready));
                    }
                    Poll::Pending
                });
                // A probing socket ends with its session; an active one notices the end
                // by reading, unless it is stuck writing. Otherwise it waits for frames.
                let queue = &self.queue;
                let queue_signal = async move {
                    if mode == Mode::Probing || stuck {
                        // Rare, and boxed: its waiter node would otherwise be part of
                        // every idle connection.
                        Box::pin(queue.ended(mode == Mode::Probing)).await;
                        Wake::SessionEnded
                    } else {
                        poll_fn(|cx| queue.poll_ready(cx)).await;
                        Wake::Queue
                    }
                };
                tokio::select! {
                    biased;
                    wake = socket, if reading || stuck => wake,
                    wake = queue_signal => wake,
                    // Boxed, and in a block so that it is made only when polled.
                    _ = async { Box::pin(tokio::time::sleep_until(deadline)).await },
                        if stuck || mode == Mode::Probing => {
                        if stuck && self.write_deadline.is_some_and(|d| d <= Instant::now()) {
                            Wake::WriteStalled
                        } else {
                            Wake::UpgradeTimedOut
                        }
                    }
                }
            };
            match wake {
                Wake::Queue | Wake::Writable(Ok(())) => {}
                Wake::Writable(Err(_)) => {
                    break self.transport_gone(mode, CloseReason::TransportError);
                }
                Wake::SessionEnded => {
                    if mode == Mode::Probing {
                        self.session.do_send(TransportMsg::UpgradeAborted);
                        break End::Close(ws_frame::CLOSE_NORMAL);
                    }
                    break End::Drop;
                }
                Wake::WriteStalled => {
                    self.session
                        .do_send(TransportMsg::TransportGone(CloseReason::SlowConsumer));
                    self.queue.discard();
                    break End::Drop;
                }
                Wake::UpgradeTimedOut => {
                    if mode == Mode::Probing {
                        self.session.do_send(TransportMsg::UpgradeAborted);
                        break End::Close(ws_frame::CLOSE_NORMAL);
                    }
                }
                Wake::Read(read) => {
                    if let Some(end) = self.on_read(read, events, &mut mode).await {
                        break end;
                    }
                }
            }
        };
        // Boxed: it holds timers of its own, and runs once per connection.
        Box::pin(self.finish(end)).await;
    }

    /// Takes what the session queued (once `out` is sent) and writes what the socket
    /// takes now, or says how the connection ends.
    fn write_queued(&mut self, mode: Mode) -> Option<End> {
        if mode == Mode::Active && self.out.is_empty() {
            let out = &mut self.out;
            match self.queue.take_all(|frame| push_wire(out, frame)) {
                Some(Ended::Discarded) => return Some(End::Drop),
                Some(Ended::Closed) if self.out.is_empty() => return Some(End::Graceful),
                _ => {}
            }
        }
        if let Err(error) = self.flush() {
            log::debug!("websocket write failed: {error}");
            return Some(self.transport_gone(mode, CloseReason::TransportClose));
        }
        None
    }

    /// Hands on every complete message of a read, or ends the connection with it.
    async fn on_read(
        &mut self,
        read: Result<usize, ReadError>,
        events: Vec<Event>,
        mode: &mut Mode,
    ) -> Option<End> {
        match read {
            Ok(0) => return Some(self.transport_gone(*mode, CloseReason::TransportClose)),
            Ok(_) => {}
            Err(ReadError::Io(error)) => {
                log::debug!("websocket read failed: {error}");
                return Some(self.transport_gone(*mode, CloseReason::TransportError));
            }
            Err(ReadError::Frame(error)) => {
                // Messages before the bad frame are still delivered.
                if let Some(end) = Box::pin(self.deliver(events, mode)).await {
                    return Some(end);
                }
                log::debug!("websocket protocol error: {error}");
                let _ = self.transport_gone(*mode, CloseReason::TransportError);
                return Some(End::Close(error.close_code()));
            }
        }
        if events.is_empty() {
            return None;
        }
        // Boxed: handing packets on takes actor requests, which would otherwise be part of
        // the connection's future for its whole life; this way they exist while used.
        Box::pin(self.deliver(events, mode)).await
    }

    async fn deliver(&mut self, events: Vec<Event>, mode: &mut Mode) -> Option<End> {
        for event in events {
            if !self.reading {
                break;
            }
            let packet = match event {
                Event::Text(text) => match Inbound::decode_text(text) {
                    Ok(packet) => packet,
                    Err(error) => {
                        if *mode == Mode::Probing {
                            self.session.do_send(TransportMsg::UpgradeAborted);
                            return Some(End::Close(ws_frame::CLOSE_NORMAL));
                        }
                        // The session closes (ParseError) and its queue ends this task.
                        self.session.do_send(TransportMsg::Malformed(error));
                        self.reading = false;
                        continue;
                    }
                },
                Event::Binary(data) => Inbound::Message(Message::Binary(data)),
                Event::Ping(data) => {
                    self.push(ws_frame::OP_PONG, data, 0);
                    continue;
                }
                Event::Pong => continue,
                Event::Close(code) => {
                    let _ = self.transport_gone(*mode, CloseReason::TransportClose);
                    return Some(End::Close(code.unwrap_or(ws_frame::CLOSE_NORMAL)));
                }
            };
            if *mode == Mode::Probing {
                if let Some(end) = self.probe(packet, mode).await {
                    return Some(end);
                }
                continue;
            }
            // Handed on without waiting for its answer: a request per packet would cost a
            // channel and a second wake-up of this task. Every `UNCONFIRMED_MAX` packets
            // the reader waits until the session has handled them, so a flood stays
            // bounded. (Not actix's bounded `try_send`/`send`: a sender that fills the
            // mailbox is parked without a waker, and its next `send` can wait forever.)
            self.session.do_send(TransportMsg::Packet(packet));
            self.unconfirmed += 1;
            if self.unconfirmed >= UNCONFIRMED_MAX {
                self.unconfirmed = 0;
                let (confirm, confirmed) = oneshot::channel();
                self.session.do_send(TransportMsg::Confirm(confirm));
                if confirmed.await.is_err() {
                    // The session is closing; its queue tells us when to stop writing.
                    self.reading = false;
                }
                // Write what the session queued meanwhile: a long read would otherwise fill
                // its queue unsent and end a client that reads as it writes as a slow
                // consumer.
                if let Some(end) = self.write_queued(*mode) {
                    return Some(end);
                }
            }
        }
        None
    }

    /// One packet of the upgrade handshake.
    async fn probe(&mut self, packet: Inbound, mode: &mut Mode) -> Option<End> {
        let accepted = match packet {
            Inbound::Ping(data) if &*data == "probe" => {
                self.push(
                    ws_frame::OP_TEXT,
                    Bytes::from_static(control::PONG_PROBE.as_bytes()),
                    0,
                );
                matches!(
                    self.session.send(TransportMsg::UpgradeProbed).await,
                    Ok(Ok(()))
                )
            }
            Inbound::Upgrade => {
                let done = matches!(
                    self.session.send(TransportMsg::UpgradeCompleted).await,
                    Ok(Ok(()))
                );
                if done {
                    *mode = Mode::Active;
                }
                done
            }
            _ => false,
        };
        if accepted {
            None
        } else {
            self.session.do_send(TransportMsg::UpgradeAborted);
            Some(End::Close(ws_frame::CLOSE_NORMAL))
        }
    }

    /// The client went away: tell the session (unless it is already closing).
    fn transport_gone(&self, mode: Mode, reason: CloseReason) -> End {
        match mode {
            Mode::Probing => self.session.do_send(TransportMsg::UpgradeAborted),
            Mode::Active if !self.queue.is_closed() => {
                self.session.do_send(TransportMsg::TransportGone(reason));
            }
            Mode::Active => {}
        }
        End::Drop
    }

    fn push(&mut self, opcode: u8, payload: Bytes, messages: u8) {
        push(&mut self.out, opcode, payload, messages);
    }

    /// Writes as much of `out` as the socket takes now, many frames per call.
    fn flush(&mut self) -> io::Result<()> {
        let mut progressed = false;
        while !self.out.is_empty() {
            let mut headers = [[0u8; ws_frame::MAX_HEADER]; WRITE_BATCH];
            let mut header_lens = [0usize; WRITE_BATCH];
            let frames = self.out.len().min(WRITE_BATCH);
            for (i, frame) in self.out.iter().take(frames).enumerate() {
                header_lens[i] =
                    ws_frame::encode_header(frame.opcode, frame.payload.len(), &mut headers[i]);
            }
            let mut slices = [IoSlice::new(&[]); 2 * WRITE_BATCH];
            let mut count = 0;
            for (i, frame) in self.out.iter().take(frames).enumerate() {
                let header = &headers[i][..header_lens[i]];
                let skip = if i == 0 { self.sent } else { 0 };
                if skip < header.len() {
                    slices[count] = IoSlice::new(&header[skip..]);
                    count += 1;
                    slices[count] = IoSlice::new(&frame.payload);
                } else {
                    slices[count] = IoSlice::new(&frame.payload[skip - header.len()..]);
                }
                count += 1;
            }
            let written = match self.stream.try_write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            };
            progressed = true;
            self.advance(written, &header_lens[..frames]);
        }
        if self.out.is_empty() {
            // A burst should not pin its list for the life of the connection.
            self.out = VecDeque::new();
            self.write_deadline = None;
        } else if progressed || self.write_deadline.is_none() {
            let timeout = self.shared.config.ping_interval + self.shared.config.ping_timeout;
            self.write_deadline = Some(Instant::now() + timeout);
        }
        Ok(())
    }

    fn advance(&mut self, mut written: usize, header_lens: &[usize]) {
        let mut messages = 0u64;
        for &header_len in header_lens {
            let Some(front) = self.out.front() else { break };
            let left = header_len + front.payload.len() - self.sent;
            if written < left {
                self.sent += written;
                break;
            }
            written -= left;
            self.sent = 0;
            messages += u64::from(front.messages);
            self.out.pop_front();
        }
        if messages > 0 {
            self.shared
                .metrics
                .frames_out_total
                .fetch_add(messages, Ordering::Relaxed);
        }
    }

    async fn finish(mut self, end: End) {
        let code = match end {
            End::Drop => return,
            End::Graceful => ws_frame::CLOSE_NORMAL,
            End::Close(code) => code,
        };
        self.push(
            ws_frame::OP_CLOSE,
            Bytes::copy_from_slice(&code.to_be_bytes()),
            0,
        );
        let delivered = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                self.flush()?;
                if self.out.is_empty() {
                    return Ok::<_, io::Error>(());
                }
                self.stream.writable().await?;
            }
        })
        .await;
        if matches!(delivered, Ok(Ok(()))) {
            linger(self.stream).await;
        }
    }
}

enum ReadError {
    Io(io::Error),
    Frame(FrameError),
}

/// Reads what the socket has into the worker's scratch buffer and decodes it.
///
/// Through `poll_read` rather than readiness plus `try_read`: tokio takes a read that did
/// not fill the buffer as proof the socket is drained, which saves the `recv` that would
/// only answer `EAGAIN` (one per message otherwise).
fn read_events(
    reader: &mut ReadHalf<'_>,
    decoder: &mut Decoder,
    events: &mut Vec<Event>,
    cx: &mut Context<'_>,
) -> Poll<Result<usize, ReadError>> {
    SCRATCH.with_borrow_mut(|scratch| {
        let mut buf = ReadBuf::new(scratch);
        match Pin::new(reader).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(error)) => Poll::Ready(Err(ReadError::Io(error))),
            Poll::Ready(Ok(())) => {
                let bytes = buf.filled();
                Poll::Ready(
                    decoder
                        .feed(bytes, events)
                        .map(|()| bytes.len())
                        .map_err(ReadError::Frame),
                )
            }
        }
    })
}

/// After our close frame: stop sending, and read until the client closes too, so that
/// unread bytes do not make the kernel reset the connection before it has our frames.
pub(crate) async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            let done = SCRATCH.with_borrow_mut(|scratch| match stream.try_read(scratch) {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => error.kind() != io::ErrorKind::WouldBlock,
            });
            if done {
                return;
            }
        }
    })
    .await;
}
