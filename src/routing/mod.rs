//! The road between a handler and the shards that own its work: typed calls, one
//! fan-out, and the broker-wide operations built on them.
//!
//! A `Router` is one shard's `shards::Sharded<ShardState>`: its own state, and the way to
//! run a closure on any shard against that shard's state and get the closure's result
//! back with its own type. Every cross-shard interaction of the broker is such a call,
//! and a call to the shard itself is invoked the same way, its future run as a task of
//! this shard (no channel, no slot). Requests and replies are tied at compile time; there
//! is no message enum to match.
//!
//! - `scatter` is the one fan-out-and-gather: items keyed by partition (or group id) go
//!   to their owners, all owners at once, and come back in request order.
//! - `partitions`: produce, fetch, ListOffsets and fetch waits, per partition owner.
//! - `groups`: calls to the group coordinator of a group (the owner of its
//!   `__consumer_offsets` partition).
//! - `controller`: metadata changes, validated on shard 0 and applied by every shard.
//!
//! What crosses shards is `Send` and owned by the call: record data as `Bytes` slices of
//! the request frame (moved, not copied), fetched data as `SegmentRange`s (duplicated
//! descriptors). Runs on every shard; a `Router` never leaves the shard it was made on.

pub mod controller;
pub mod groups;
pub mod partitions;
pub mod transactions;

use crate::metadata::TopicPartition;
use crate::protocol::placement::PartitionLoad;
use crate::shard::{ShardState, ShardStatsSnapshot};
use shards::{Inbox, Job, JobMesh, Pending, ShardGone, ShardId, Sharded, rt};
use std::future::Future;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use partitions::AppendsQueued;

/// How long an operation waits for its partition to be open on the shard it reached, or
/// on the shard it is passed to: a move's whole unavailability, with room to spare.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again when no metadata change wakes it (the new owner may open the
/// partition a moment after this shard applied the move).
const HANDOVER_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Where an operation on a partition that reached a shard without it goes
/// ([`Router::handover`]).
pub(crate) enum Handover {
    /// The partition is open here now.
    Here,
    /// The shard table names another owner: pass the operation on, once.
    PassOn,
    /// Answer NOT_LEADER_OR_FOLLOWER.
    Gone,
}

/// The mesh of the broker: jobs for `ShardState`s.
pub type Mesh = JobMesh<ShardState>;

/// This shard's state and the road to every shard's.
#[derive(Clone)]
pub struct Router(Rc<Sharded<ShardState>>);

impl Router {
    /// Serves the calls of other shards (and this one) against `state` from now on.
    pub fn serve(
        mesh: Rc<Mesh>,
        inbox: Inbox<Job<ShardState>, ()>,
        state: Rc<ShardState>,
    ) -> Router {
        let sharded = Sharded::new(mesh, state);
        sharded.serve(inbox);
        Router(sharded)
    }

    /// This shard's state.
    pub fn state(&self) -> &Rc<ShardState> {
        self.0.local()
    }

    pub fn id(&self) -> ShardId {
        self.0.id()
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.0.count()
    }

    /// Hands `work` to shard `to` and returns once it is queued there, in the order
    /// calls are started; the result is awaited separately. `work` runs with that
    /// shard's `Router` and the calling shard's id.
    pub async fn submit<T, F, Fut>(&self, to: ShardId, work: F) -> Pending<'_, T>
    where
        T: Send + 'static,
        F: FnOnce(Router, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.try_submit(to, work).await.unwrap_or_else(|e| gone(e))
    }

    /// Like `submit`, for a shard that may have stopped (during shut-down).
    async fn try_submit<T, F, Fut>(&self, to: ShardId, work: F) -> Result<Pending<'_, T>, ShardGone>
    where
        T: Send + 'static,
        F: FnOnce(Router, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.0
            .submit_to(to, move |sharded, from| work(Router(sharded), from))
            .await
    }

    /// Runs `work` on shard `to` and returns its result.
    pub async fn call<T, F, Fut>(&self, to: ShardId, work: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(Router, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.submit(to, work)
            .await
            .await
            .unwrap_or_else(|e| gone(e))
    }

    /// Like `call`, for a shard that may have stopped (during shut-down).
    pub async fn try_call<T, F, Fut>(&self, to: ShardId, work: F) -> Result<T, ShardGone>
    where
        T: Send + 'static,
        F: FnOnce(Router, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.try_submit(to, work).await?.await
    }

    /// Runs `work` on every shard (this one included), all at once; results in shard
    /// order.
    pub async fn broadcast<T, F, Fut>(&self, work: F) -> Vec<T>
    where
        T: Send + 'static,
        F: FnOnce(Router, ShardId) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let mut pending = Vec::with_capacity(self.count());
        for shard in self.0.all() {
            pending.push(self.submit(shard, work.clone()).await);
        }
        let mut results = Vec::with_capacity(pending.len());
        for reply in pending {
            results.push(reply.await.unwrap_or_else(|e| gone(e)));
        }
        results
    }

    /// For an operation on `tp` (an append, a marker) that reached this shard without the
    /// partition open here: routed before the sender applied a move, or sent while the
    /// partition moves away (released, the shard table not yet switched), or to its new
    /// shard before it opened there. Rather than refusing it (a producer that is not
    /// idempotent and pipelines would retry it after later batches had landed on the new
    /// shard), it waits until the partition is open here (`Here`) or, unless it was
    /// already passed on once (`forwarded`), until the shard table names another owner
    /// (`PassOn`). `Gone`: no shard owns it any more, the shard stopped, or
    /// `HANDOVER_WAIT` passed; the operation answers NOT_LEADER_OR_FOLLOWER.
    pub(crate) async fn handover(&self, tp: &TopicPartition, forwarded: bool) -> Handover {
        let deadline = Instant::now() + HANDOVER_WAIT;
        loop {
            let changed = self.state().metadata_changed.listen();
            match self.state().metadata.borrow().owner(tp) {
                None => return Handover::Gone,
                Some(owner) if owner != self.id() && !forwarded => return Handover::PassOn,
                Some(_) if self.state().partition(tp).is_some() => return Handover::Here,
                Some(_) => {}
            }
            if self.state().phase() >= crate::shard::Phase::Stopped || Instant::now() >= deadline {
                return Handover::Gone;
            }
            futures_lite::future::or(changed, rt::sleep(HANDOVER_RETRY_PAUSE)).await;
        }
    }

    /// The one fan-out: sends each item to the shard `owner` names for its key — all
    /// shards at once, each getting its items in request order through one call of
    /// `work` (which answers each in order) — and returns once every call is queued.
    /// An item whose key has no owner is answered by `owner`'s error at once. Await
    /// the returned `Gather` for the answers, in request order.
    pub async fn scatter<K, I, T, W, Fut>(
        &self,
        items: Vec<(K, I)>,
        owner: impl Fn(&K) -> Result<ShardId, T>,
        work: W,
    ) -> Gather<'_, T>
    where
        K: Send + 'static,
        I: Send + 'static,
        T: Send + 'static,
        W: FnOnce(Router, Vec<(K, I)>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<T>> + 'static,
    {
        if let Some(shard) = one_owner(&items, &owner) {
            // The common case (a client of one shard's partitions): the items go whole.
            let items_len = items.len();
            let pending = self
                .submit(shard, move |router, _| work(router, items))
                .await;
            return Gather::Whole {
                items: items_len,
                pending,
            };
        }
        let mut answers: Vec<Option<T>> = Vec::with_capacity(items.len());
        let mut shares: Vec<Share<K, I>> = Vec::new();
        for (key, item) in items {
            let index = answers.len();
            match owner(&key) {
                Err(answer) => answers.push(Some(answer)),
                Ok(shard) => {
                    answers.push(None);
                    let share = match shares.iter_mut().position(|s| s.shard == shard) {
                        Some(at) => &mut shares[at],
                        None => {
                            shares.push(Share {
                                shard,
                                indexes: Vec::new(),
                                items: Vec::new(),
                            });
                            shares.last_mut().expect("just pushed")
                        }
                    };
                    share.indexes.push(index);
                    share.items.push((key, item));
                }
            }
        }
        shares.sort_by_key(|s| s.shard);
        let mut calls = Vec::with_capacity(shares.len());
        for Share {
            shard,
            indexes,
            items,
        } in shares
        {
            let work = work.clone();
            let pending = self
                .submit(shard, move |router, _| work(router, items))
                .await;
            calls.push((indexes, pending));
        }
        Gather::Parts { answers, calls }
    }

    // ---- connections and counters ----

    /// Whether shard 0, which counts connections per address
    /// (`max.connections.per.ip`), admits one more from `ip`.
    pub async fn admit_connection(&self, ip: IpAddr) -> bool {
        self.try_call(ShardId(0), move |router, _| async move {
            router.state().admit_connection(ip)
        })
        .await
        .unwrap_or(false)
    }

    /// Tells shard 0 an admitted connection from `ip` closed.
    pub async fn connection_closed(&self, ip: IpAddr) {
        let _ = self
            .try_call(ShardId(0), move |router, _| async move {
                router.state().connection_closed(ip)
            })
            .await;
    }

    /// Every shard's counters, with its mesh traffic.
    pub async fn stats(&self) -> Vec<ShardStatsSnapshot> {
        self.broadcast(|router, _| async move { router.local_stats() })
            .await
    }

    /// Every shard's counters and the load of each partition it owns, each shard's read
    /// on that shard in the same call; in shard order.
    pub async fn load(&self) -> Vec<(ShardStatsSnapshot, Vec<PartitionLoad>)> {
        self.broadcast(|router, _| async move {
            (router.local_stats(), router.state().partition_loads())
        })
        .await
    }

    /// This shard's counters with its mesh traffic (read here, on this shard).
    fn local_stats(&self) -> ShardStatsSnapshot {
        let mesh = self.0.mesh_stats();
        ShardStatsSnapshot {
            calls_sent: mesh.calls_sent.get(),
            calls_received: mesh.calls_received.get(),
            ..self.state().stats_snapshot()
        }
    }
}

/// A shard stopped under a call that needs it: shards run for the life of the broker,
/// so this is a bug (or a shut-down racing a request, which ends the process anyway).
fn gone(e: ShardGone) -> ! {
    panic!("{e}: shards run for the life of the broker")
}

/// One shard's items of a `scatter`, and where their answers go.
struct Share<K, I> {
    shard: ShardId,
    indexes: Vec<usize>,
    items: Vec<(K, I)>,
}

/// The answers of a `scatter`, in request order once awaited.
pub enum Gather<'a, T> {
    /// Every item went to one shard, in one call answering them in order.
    Whole {
        items: usize,
        pending: Pending<'a, Vec<T>>,
    },
    /// Items answered at once (`Some`) or by one of `calls`, which answers the items at
    /// its indexes.
    Parts {
        answers: Vec<Option<T>>,
        calls: Vec<(Vec<usize>, Pending<'a, Vec<T>>)>,
    },
}

impl<T> Gather<'_, T> {
    pub async fn answers(self) -> Vec<T> {
        let (mut answers, calls) = match self {
            Gather::Whole { items, pending } => {
                let answered = pending.await.unwrap_or_else(|e| gone(e));
                assert_eq!(answered.len(), items, "a call answers each of its items");
                return answered;
            }
            Gather::Parts { answers, calls } => (answers, calls),
        };
        for (indexes, pending) in calls {
            let answered = pending.await.unwrap_or_else(|e| gone(e));
            assert_eq!(
                answered.len(),
                indexes.len(),
                "a scattered call answers each of its items"
            );
            for (index, answer) in indexes.into_iter().zip(answered) {
                answers[index] = Some(answer);
            }
        }
        answers
            .into_iter()
            .map(|a| a.expect("every item is answered"))
            .collect()
    }
}

/// The shard that owns every key of `items`, if one does (and there is an item).
fn one_owner<K, I, T>(
    items: &[(K, I)],
    owner: &impl Fn(&K) -> Result<ShardId, T>,
) -> Option<ShardId> {
    let (first, rest) = items.split_first()?;
    let shard = owner(&first.0).ok()?;
    rest.iter()
        .all(|(key, _)| matches!(owner(key), Ok(s) if s == shard))
        .then_some(shard)
}
