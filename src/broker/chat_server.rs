//! The `ChatServer` actor: the one owner of room membership, and the router.
//!
//! Rooms are kept as the seed named them: `user:{user}` holds every socket (tab) of a user,
//! `admins` every admin socket. A message is first stored, then fanned out, then acked, so
//! nothing is delivered that a reload would not show, and an ack means the row exists.
//! Fan-outs happen in acceptance order. The writer answers one sender's messages in that
//! order but not across senders (its lanes commit side by side), and the answers are
//! collected as they are woken, in no particular order, so the server numbers each
//! accepted `Post` and releases stored messages strictly by that number. Acks do not
//! wait for that turn: an ack means the row exists, which it does.
//!
//! Sockets end when their token expires: the server keeps them ordered by expiry and arms
//! one timer for the earliest (a timer per socket would cost every idle connection one).
//!
//! The store's answers wait in one `FuturesUnordered`, polled by one future in the
//! actor's context: an answer costs a poll of itself only. (A future per post in the
//! context would be polled again at every wake-up of the actor, as actix polls all of
//! them: thousands per wake-up under load.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{self, Poll};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, SubsecRound, Utc};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::oneshot;

use super::auth::unix_now;
use super::identity::Identity;
use super::messages::{
    Connect, DeliveryKind, Disconnect, Peer, Post, PostError, PostReply, Posted, SocketKey,
};
use super::policy::Policy;
use crate::storage::{NewMessage, Store, StoreError, StoredMessage};

/// Mailbox size of the server: a `Post` beyond it is refused as busy (the broker is behind)
/// instead of piling up here.
pub const MAILBOX_CAPACITY: usize = 4096;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ChatMetrics {
    pub sockets: AtomicU64,
    pub messages_accepted: AtomicU64,
    pub messages_refused: AtomicU64,
    pub deliveries: AtomicU64,
    pub delivery_failures: AtomicU64,
}

/// A stored message waiting for its turn to be fanned out.
struct Release {
    from: SocketKey,
    sender: Identity,
    message: StoredMessage,
}

/// An accepted post whose store answer has not come back yet.
struct Accepted {
    number: u64,
    from: SocketKey,
    sender: Identity,
    reply: PostReply,
}

/// The store's answer to one accepted post.
struct StoreAnswer {
    post: Option<Accepted>,
    answer: oneshot::Receiver<Result<StoredMessage, StoreError>>,
}

impl Future for StoreAnswer {
    type Output = (Accepted, Result<StoredMessage, StoreError>);

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = match Pin::new(&mut this.answer).poll(cx) {
            Poll::Pending => return Poll::Pending,
            // The writer went away with the message.
            Poll::Ready(answer) => answer.unwrap_or(Err(StoreError::Unavailable)),
        };
        let post = this
            .post
            .take()
            .expect("a store answer is polled once it is ready");
        Poll::Ready((post, outcome))
    }
}

struct Member<P> {
    identity: Identity,
    peer: P,
}

pub struct ChatServer<P: Peer> {
    members: HashMap<SocketKey, Member<P>>,
    /// `user:{user}` rooms, keyed by user name.
    user_rooms: HashMap<Arc<str>, Vec<SocketKey>>,
    /// The `admins` room.
    admins: Vec<SocketKey>,
    policy: Policy,
    store: Recipient<Store>,
    metrics: Arc<ChatMetrics>,
    /// Accepted posts waiting for the store; bounded by the messages in flight.
    awaiting_store: FuturesUnordered<StoreAnswer>,
    /// Number of the next accepted `Post`, and of the next one to fan out.
    next_accepted: u64,
    next_release: u64,
    /// Store outcomes that came back before an earlier one (`None`: not stored). Bounded by
    /// the messages in flight, which the per-socket limit and the mailbox bound.
    awaiting_release: BTreeMap<u64, Option<Release>>,
    /// Connected sockets by the second their token expires (`exp`), earliest first.
    expiries: BTreeSet<(u64, SocketKey)>,
    /// The one expiry timer: when it fires (an `exp`) and its handle.
    expiry_timer: Option<(u64, SpawnHandle)>,
    /// Recipient lists reused by every fan-out, so routing allocates nothing per message.
    scratch: (Vec<SocketKey>, Vec<SocketKey>),
}

impl<P: Peer> ChatServer<P> {
    pub fn new(policy: Policy, store: Recipient<Store>, metrics: Arc<ChatMetrics>) -> Self {
        ChatServer {
            members: HashMap::new(),
            user_rooms: HashMap::new(),
            admins: Vec::new(),
            policy,
            store,
            metrics,
            awaiting_store: FuturesUnordered::new(),
            next_accepted: 0,
            next_release: 0,
            awaiting_release: BTreeMap::new(),
            expiries: BTreeSet::new(),
            expiry_timer: None,
            scratch: (Vec::new(), Vec::new()),
        }
    }

    /// The store answered an accepted post: ack or refuse it, and fan out what is due.
    fn on_store_answer(&mut self, post: Accepted, outcome: Result<StoredMessage, StoreError>) {
        let Accepted {
            number,
            from,
            sender,
            reply,
        } = post;
        match outcome {
            Ok(message) => {
                self.metrics
                    .messages_accepted
                    .fetch_add(1, Ordering::Relaxed);
                let posted = Posted {
                    id: message.id,
                    fecha: message.fecha,
                };
                let release = Release {
                    from,
                    sender,
                    message,
                };
                self.settle(number, Some(release));
                reply.send(Ok(posted));
            }
            Err(store_error) => {
                self.metrics
                    .messages_refused
                    .fetch_add(1, Ordering::Relaxed);
                self.settle(number, None);
                reply.send(Err(PostError::from(store_error)));
            }
        }
    }

    /// Record the outcome of accepted post `number` and fan out every message whose
    /// predecessors are all settled.
    fn settle(&mut self, number: u64, outcome: Option<Release>) {
        if number != self.next_release {
            // An earlier post is still with the store: this one waits for it. (Answers
            // mostly come in order, so the map is usually empty and allocates nothing.)
            self.awaiting_release.insert(number, outcome);
            return;
        }
        self.release(outcome);
        while let Some(outcome) = self.awaiting_release.remove(&self.next_release) {
            self.release(outcome);
        }
    }

    /// Fan out the outcome of post `next_release`, whose predecessors are all settled.
    fn release(&mut self, outcome: Option<Release>) {
        self.next_release += 1;
        if let Some(Release {
            from,
            sender,
            message,
        }) = outcome
        {
            self.fan_out(from, &sender, &message);
        }
    }

    /// Deliver a stored message: `Received` to `user:{para}` (and `admins` when a user
    /// wrote), `Sent` to the sender's other sockets (and the other admins when an admin
    /// wrote). Each socket gets one copy, the sending socket none (it gets the ack).
    fn fan_out(&mut self, from: SocketKey, sender: &Identity, message: &StoredMessage) {
        let (mut received, mut sent) = std::mem::take(&mut self.scratch);
        received.clear();
        sent.clear();
        if let Some(room) = self.user_rooms.get(message.para_usuario.as_str()) {
            received.extend_from_slice(room);
        }
        if !sender.is_admin() {
            received.extend_from_slice(&self.admins);
        }
        received.sort_unstable();
        received.dedup();
        received.retain(|k| *k != from);

        if let Some(room) = self.user_rooms.get(&sender.user) {
            sent.extend_from_slice(room);
        }
        if sender.is_admin() {
            sent.extend_from_slice(&self.admins);
        }
        sent.sort_unstable();
        sent.dedup();
        sent.retain(|k| *k != from && received.binary_search(k).is_err());

        self.deliver_to(DeliveryKind::Received, message, &received);
        self.deliver_to(DeliveryKind::Sent, message, &sent);
        self.scratch = (received, sent);
    }

    fn deliver_to(&mut self, kind: DeliveryKind, message: &StoredMessage, keys: &[SocketKey]) {
        if keys.is_empty() {
            return;
        }
        let frame = P::encode(kind, message);
        let mut gone = Vec::new();
        for key in keys {
            let Some(member) = self.members.get(key) else {
                continue;
            };
            if member.peer.deliver(&frame).is_ok() {
                self.metrics.deliveries.fetch_add(1, Ordering::Relaxed);
            } else {
                self.metrics
                    .delivery_failures
                    .fetch_add(1, Ordering::Relaxed);
                gone.push(*key);
            }
        }
        // The protocol closes a socket that stops reading; it leaves its rooms now so no
        // further fan-out queues anything for it.
        for key in gone {
            self.leave(key);
        }
    }

    fn leave(&mut self, key: SocketKey) -> Option<Identity> {
        let member = self.members.remove(&key)?;
        let user = &member.identity.user;
        if let Some(room) = self.user_rooms.get_mut(user) {
            room.retain(|k| *k != key);
            if room.is_empty() {
                self.user_rooms.remove(user);
            }
        }
        if member.identity.is_admin() {
            self.admins.retain(|k| *k != key);
        }
        self.expiries.remove(&(member.identity.expires_at, key));
        self.metrics.sockets.fetch_sub(1, Ordering::Relaxed);
        Some(member.identity)
    }

    /// Keep the expiry timer on the earliest `exp` among the connected sockets.
    fn arm_expiry(&mut self, ctx: &mut Context<Self>) {
        let Some(&(earliest, _)) = self.expiries.first() else {
            return;
        };
        if let Some((armed, handle)) = self.expiry_timer {
            if armed <= earliest {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = Duration::from_secs(earliest.saturating_sub(unix_now()));
        let handle = ctx.run_later(delay, |server, ctx| {
            server.expiry_timer = None;
            server.expire_due(ctx);
        });
        self.expiry_timer = Some((earliest, handle));
    }

    /// End every socket whose token has expired (`exp` is the first second it is invalid).
    fn expire_due(&mut self, ctx: &mut Context<Self>) {
        let now = unix_now();
        while let Some(&(expires_at, key)) = self.expiries.first() {
            if expires_at > now {
                break;
            }
            match self.members.get(&key) {
                Some(member) => {
                    log::info!(
                        "token of {} expired: ending its socket",
                        member.identity.user
                    );
                    member.peer.expire();
                    // Leaving its rooms also drops its entry here.
                    self.leave(key);
                }
                None => {
                    self.expiries.pop_first();
                }
            }
        }
        self.arm_expiry(ctx);
    }
}

/// The server's clock at the precision every backend stores.
fn now_millis() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

impl<P: Peer> Actor for ChatServer<P> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        ctx.spawn(CollectStoreAnswers);
    }
}

/// The one future in the server's context that takes the store's answers as they come.
/// It never finishes. It is polled after every batch of mailbox messages, so an answer
/// added by a handler is polled (and registers its waker) right after it was added.
struct CollectStoreAnswers;

impl<P: Peer> ActorFuture<ChatServer<P>> for CollectStoreAnswers {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        server: &mut ChatServer<P>,
        _: &mut Context<ChatServer<P>>,
        cx: &mut task::Context<'_>,
    ) -> Poll<()> {
        while let Poll::Ready(Some((post, outcome))) = server.awaiting_store.poll_next_unpin(cx) {
            server.on_store_answer(post, outcome);
        }
        Poll::Pending
    }
}

impl<P: Peer> Handler<Connect<P>> for ChatServer<P> {
    type Result = ();

    fn handle(&mut self, msg: Connect<P>, ctx: &mut Self::Context) {
        let Connect {
            key,
            identity,
            peer,
        } = msg;
        self.expiries.insert((identity.expires_at, key));
        self.arm_expiry(ctx);
        if identity.is_admin() {
            self.policy.learn_admin(&identity.user);
            self.admins.push(key);
        }
        self.user_rooms
            .entry(identity.user.clone())
            .or_default()
            .push(key);
        self.members.insert(key, Member { identity, peer });
        self.metrics.sockets.fetch_add(1, Ordering::Relaxed);
    }
}

impl<P: Peer> Handler<Disconnect> for ChatServer<P> {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        self.leave(msg.key);
    }
}

impl<P: Peer> Handler<Post> for ChatServer<P> {
    type Result = ();

    fn handle(&mut self, msg: Post, _: &mut Self::Context) {
        let Post {
            from,
            identity,
            request,
            reply,
        } = msg;
        if let Err(refusal) = self.policy.may_address(&identity, &request.para) {
            self.metrics
                .messages_refused
                .fetch_add(1, Ordering::Relaxed);
            reply.send(Err(refusal.into()));
            return;
        }
        let (stored, answer) = oneshot::channel();
        let message = NewMessage {
            de_usuario: identity.user.to_string(),
            para_usuario: request.para,
            mensaje: request.mensaje,
            fecha: now_millis(),
        };
        // The writer's mailbox is as large as ours and the writer runs beside us: it is
        // full only if the writer itself is stuck, and then the sender hears we are busy.
        if let Err(full) = self.store.try_send(Store {
            message,
            reply: stored,
        }) {
            log::warn!("broker: the writer's mailbox is full ({full}); message refused");
            self.metrics
                .messages_refused
                .fetch_add(1, Ordering::Relaxed);
            reply.send(Err(PostError::Busy));
            return;
        }
        let number = self.next_accepted;
        self.next_accepted += 1;
        self.awaiting_store.push(StoreAnswer {
            post: Some(Accepted {
                number,
                from,
                sender: identity,
                reply,
            }),
            answer,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::broker::messages::PostOutcome;
    use crate::broker::validation::PostRequest;
    use crate::broker::{Peer, PeerGone, Role};

    type Log = Arc<Mutex<Vec<(&'static str, DeliveryKind, i64)>>>;

    /// A peer that writes down what it was given, under the socket's name.
    struct Recorder {
        name: &'static str,
        log: Log,
        expired: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Peer for Recorder {
        type Frame = (DeliveryKind, i64);
        fn encode(kind: DeliveryKind, message: &StoredMessage) -> Self::Frame {
            (kind, message.id)
        }
        fn deliver(&self, frame: &Self::Frame) -> Result<(), PeerGone> {
            self.log.lock().unwrap().push((self.name, frame.0, frame.1));
            Ok(())
        }
        fn expire(&self) {
            self.expired.lock().unwrap().push(self.name);
        }
    }

    /// A store that numbers messages and answers at once.
    #[derive(Default)]
    struct Numbering(i64);

    impl Actor for Numbering {
        type Context = Context<Self>;
    }

    impl Handler<Store> for Numbering {
        type Result = ();
        fn handle(&mut self, Store { message: m, reply }: Store, _: &mut Context<Self>) {
            self.0 += 1;
            let _ = reply.send(Ok(m.stored(self.0)));
        }
    }

    fn who(user: &str, role: Role) -> Identity {
        Identity {
            user: user.into(),
            name: user.into(),
            role,
            expires_at: u64::MAX,
        }
    }

    /// `from` (as `identity`) writes "hola" to `para`; resolves with the post's outcome.
    fn post(
        server: &Addr<ChatServer<Recorder>>,
        from: SocketKey,
        identity: Identity,
        para: &str,
    ) -> oneshot::Receiver<PostOutcome> {
        let (answer_to, answer) = oneshot::channel();
        server.do_send(Post {
            from,
            identity,
            request: PostRequest {
                para: para.into(),
                mensaje: "hola".into(),
            },
            reply: PostReply::new(move |outcome| {
                let _ = answer_to.send(outcome);
            }),
        });
        answer
    }

    #[actix_rt::test]
    async fn each_socket_gets_one_copy_and_the_sender_the_ack() {
        let log = Log::default();
        let store = Numbering::default().start().recipient();
        let server =
            ChatServer::new(Policy::new("admin", Vec::new()), store, Arc::default()).start();
        let sockets = [
            ("ana-1", "ana", Role::User),
            ("ana-2", "ana", Role::User),
            ("luis", "luis", Role::User),
            ("admin", "admin", Role::Admin),
            ("sonia-1", "sonia", Role::Admin),
            ("sonia-2", "sonia", Role::Admin),
        ];
        let mut keys = HashMap::new();
        for (name, user, role) in sockets {
            let key = SocketKey::next();
            keys.insert(name, (key, who(user, role)));
            let peer = Recorder {
                name,
                log: log.clone(),
                expired: Arc::default(),
            };
            server.do_send(Connect {
                key,
                identity: who(user, role),
                peer,
            });
        }
        let post = |from: &str, para: &str| {
            let (key, identity) = keys[from].clone();
            post(&server, key, identity, para)
        };

        // ana writes to the desk: every admin socket once (the one named admin too), her
        // other tab a copy, luis nothing, her sending tab only the ack.
        let posted = post("ana-1", "admin").await.unwrap().unwrap();
        let mut got = std::mem::take(&mut *log.lock().unwrap());
        got.sort();
        use DeliveryKind::{Received, Sent};
        let id = posted.id;
        assert_eq!(
            got,
            [
                ("admin", Received, id),
                ("ana-2", Sent, id),
                ("sonia-1", Received, id),
                ("sonia-2", Received, id)
            ]
        );

        // sonia answers ana: both of ana's tabs; the other admins, and sonia's other tab,
        // get copies.
        let posted = post("sonia-1", "ana").await.unwrap().unwrap();
        let mut got = std::mem::take(&mut *log.lock().unwrap());
        got.sort();
        let id = posted.id;
        assert_eq!(
            got,
            [
                ("admin", Sent, id),
                ("ana-1", Received, id),
                ("ana-2", Received, id),
                ("sonia-2", Sent, id)
            ]
        );

        // A user cannot address another user; nothing is stored or delivered.
        let refused = post("luis", "ana").await.unwrap();
        assert!(matches!(refused, Err(PostError::Forbidden(_))));
        assert!(log.lock().unwrap().is_empty());

        // Once a socket leaves, it gets nothing more.
        server.do_send(Disconnect {
            key: keys["sonia-2"].0,
        });
        let posted = post("luis", "sonia").await.unwrap().unwrap();
        let mut got = std::mem::take(&mut *log.lock().unwrap());
        got.sort();
        let id = posted.id;
        assert_eq!(got, [("admin", Received, id), ("sonia-1", Received, id)]);
    }

    #[actix_rt::test]
    async fn a_socket_whose_token_expired_is_ended_and_gets_nothing_more() {
        let log = Log::default();
        let expired = Arc::<Mutex<Vec<&'static str>>>::default();
        let store = Numbering::default().start().recipient();
        let server =
            ChatServer::new(Policy::new("admin", Vec::new()), store, Arc::default()).start();
        let now = unix_now();
        let ana = SocketKey::next();
        let sockets = [
            ("admin", SocketKey::next(), Role::Admin, now + 3600),
            ("sonia", SocketKey::next(), Role::Admin, now),
            ("luis", SocketKey::next(), Role::User, now + 2),
            ("ana", ana, Role::User, now + 3600),
        ];
        for (name, key, role, expires_at) in sockets {
            let identity = Identity {
                expires_at,
                ..who(name, role)
            };
            let peer = Recorder {
                name,
                log: log.clone(),
                expired: expired.clone(),
            };
            server.do_send(Connect {
                key,
                identity,
                peer,
            });
        }
        // sonia's token is due at once, luis's within two seconds; the others live on.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*expired.lock().unwrap(), ["sonia"]);
        tokio::time::sleep(Duration::from_millis(2900)).await;
        assert_eq!(*expired.lock().unwrap(), ["sonia", "luis"]);

        let answer = post(&server, ana, who("ana", Role::User), "admin");
        let id = answer.await.unwrap().unwrap().id;
        assert_eq!(
            *log.lock().unwrap(),
            [("admin", DeliveryKind::Received, id)]
        );
    }
}
