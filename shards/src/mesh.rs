//! Calls between shards over glommio's channel mesh: one bounded single-producer
//! single-consumer channel per ordered pair of shards.
//!
//! A shard `call`s another with a request and awaits its reply; the callee runs the
//! handler it registered with `serve`. Calls are between two shards: a shard's work for
//! itself needs no channel, no request and no reply (`Sharded` runs it as a task).
//!
//! Ordering: the handler is *invoked* synchronously, in arrival order, and only the
//! future it returns is spawned. Whatever the handler does before its first `.await`
//! therefore happens in the order the calls were sent from one shard — which is how
//! appends forwarded from one connection keep their order on the owning shard.
//!
//! Invariants: every call gets at most one reply; a caller that gives up (its future is
//! dropped) leaves no pending entry behind; a reply for a forgotten call is discarded.

use crate::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Index of a shard: 0..count, in the order the runtime started them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub usize);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// The shard a call went to has stopped (its executor exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardGone(pub ShardId);

impl fmt::Display for ShardGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} has stopped", self.0)
    }
}

impl std::error::Error for ShardGone {}

/// What travels over the mesh.
pub enum Envelope<Req, Resp> {
    Call { id: u64, req: Req },
    Reply { id: u64, resp: Resp },
}

pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;
type Handler<Req, Resp> = Rc<dyn Fn(ShardId, Req) -> LocalBoxFuture<Resp>>;

/// Counters of cross-shard traffic seen by one shard (plain cells: shard-local).
#[derive(Debug, Default)]
pub struct MeshStats {
    pub calls_sent: Cell<u64>,
    pub calls_received: Cell<u64>,
    pub replies_sent: Cell<u64>,
    pub local_calls: Cell<u64>,
}

/// This shard's end of the mesh: its identity and its way to reach every other shard.
/// Lives on (and only on) its own shard.
pub struct Shard<Req: Send + 'static, Resp: Send + 'static> {
    id: ShardId,
    count: usize,
    cpu: usize,
    senders: Senders<Envelope<Req, Resp>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Resp>>>,
    next_call: Cell<u64>,
    stats: MeshStats,
}

/// The receiving half of this shard's mesh, consumed by `Shard::serve`.
pub struct Inbox<Req: Send + 'static, Resp: Send + 'static> {
    receivers: Receivers<Envelope<Req, Resp>>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Shard<Req, Resp> {
    pub(crate) fn new(
        cpu: usize,
        senders: Senders<Envelope<Req, Resp>>,
        receivers: Receivers<Envelope<Req, Resp>>,
    ) -> (Rc<Self>, Inbox<Req, Resp>) {
        assert_eq!(
            senders.peer_id(),
            receivers.peer_id(),
            "mesh halves disagree on this shard's id"
        );
        let shard = Rc::new(Shard {
            id: ShardId(senders.peer_id()),
            count: senders.nr_consumers(),
            cpu,
            senders,
            pending: RefCell::new(HashMap::new()),
            next_call: Cell::new(0),
            stats: MeshStats::default(),
        });
        (shard, Inbox { receivers })
    }

    pub fn id(&self) -> ShardId {
        self.id
    }

    /// Number of shards in the runtime.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The CPU this shard is pinned to.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    pub fn stats(&self) -> &MeshStats {
        &self.stats
    }

    pub fn all(&self) -> impl Iterator<Item = ShardId> + use<Req, Resp> {
        (0..self.count).map(ShardId)
    }

    /// Registers the handler for calls to this shard and starts receiving from every
    /// peer. Calls that arrived earlier wait in their channels until now.
    pub fn serve<F>(self: &Rc<Self>, inbox: Inbox<Req, Resp>, handler: F)
    where
        F: Fn(ShardId, Req) -> LocalBoxFuture<Resp> + 'static,
    {
        // Served once: `serve` takes the one inbox.
        let handler: Handler<Req, Resp> = Rc::new(handler);
        let mut receivers = inbox.receivers;
        for (peer, stream) in receivers.streams() {
            let shard = self.clone();
            let handler = handler.clone();
            glommio::spawn_local(async move {
                let from = ShardId(peer);
                while let Some(envelope) = stream.recv().await {
                    match envelope {
                        Envelope::Call { id, req } => {
                            shard
                                .stats
                                .calls_received
                                .set(shard.stats.calls_received.get() + 1);
                            let reply = handler(from, req);
                            let shard = shard.clone();
                            glommio::spawn_local(async move {
                                let resp = reply.await;
                                // The caller's shard may have stopped: nobody is waiting.
                                let sent = shard
                                    .senders
                                    .send_to(from.0, Envelope::Reply { id, resp })
                                    .await;
                                if sent.is_ok() {
                                    let replies = &shard.stats.replies_sent;
                                    replies.set(replies.get() + 1);
                                }
                            })
                            .detach();
                        }
                        Envelope::Reply { id, resp } => {
                            let waiter = shard.pending.borrow_mut().remove(&id);
                            if let Some(waiter) = waiter {
                                waiter.send(resp);
                            }
                        }
                    }
                }
            })
            .detach();
        }
    }

    /// Runs `req` on shard `to` and returns its reply.
    pub async fn call(&self, to: ShardId, req: Req) -> Result<Resp, ShardGone> {
        self.start_call(to, req).await?.await
    }

    /// Hands `req` to shard `to`, another shard, and returns once it is queued there:
    /// calls started one after another from one shard reach the handler in that order.
    /// The reply is awaited separately.
    pub async fn start_call(&self, to: ShardId, req: Req) -> Result<Reply<'_, Resp>, ShardGone> {
        assert!(
            to.0 < self.count,
            "{to} does not exist ({} shards)",
            self.count
        );
        assert_ne!(to, self.id, "a shard's calls go to other shards");
        let id = self.next_call.get();
        self.next_call.set(id + 1);
        let (sender, receiver) = oneshot::channel();
        self.pending.borrow_mut().insert(id, sender);
        let guard = PendingGuard {
            pending: &self.pending,
            id,
        };
        self.stats.calls_sent.set(self.stats.calls_sent.get() + 1);
        if self
            .senders
            .send_to(to.0, Envelope::Call { id, req })
            .await
            .is_err()
        {
            return Err(ShardGone(to));
        }
        Ok(Reply {
            receiver,
            to,
            _guard: guard,
        })
    }
}

/// The reply to a started call. Dropping it forgets the call; its reply is discarded.
pub struct Reply<'a, Resp> {
    receiver: oneshot::Receiver<Resp>,
    to: ShardId,
    _guard: PendingGuard<'a, Resp>,
}

impl<Resp> Future for Reply<'_, Resp> {
    type Output = Result<Resp, ShardGone>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let to = this.to;
        Pin::new(&mut this.receiver)
            .poll(cx)
            .map(|r| r.map_err(|_| ShardGone(to)))
    }
}

struct PendingGuard<'a, Resp> {
    pending: &'a RefCell<HashMap<u64, oneshot::Sender<Resp>>>,
    id: u64,
}

impl<Resp> Drop for PendingGuard<'_, Resp> {
    fn drop(&mut self) {
        self.pending.borrow_mut().remove(&self.id);
    }
}
