//! Typed calls between shards: one state of type `S` per shard, and "run this closure
//! on shard N against its state" — the result comes back with its own type (Seastar's
//! `sharded<S>::invoke_on`).
//!
//! A call is a boxed `Send` closure carried by the mesh; the shard it goes to invokes it
//! with its own `Sharded<S>` (its state, and its way to call further shards) and runs
//! the future it returns. The result travels back in a slot
//! made for that one call, so the caller's `T` and the callee's `T` are the same type by
//! construction: there is no reply enum to match, and no mismatch to discover at run
//! time. A call to the shard itself is invoked at once and its future spawned as a task
//! whose output is the result: no job box, no slot, no channel.
//!
//! Ordering is the mesh's: closures are *invoked* in the order they arrive (for calls
//! from one shard, the order they were started), so whatever a closure does before
//! returning its future happens in that order, and the futures are first polled in it.
//!
//! Invariant: every started call resolves — with the closure's value, or `ShardGone`
//! when the shard stopped before running it to the end.

use crate::mesh::{Inbox, LocalBoxFuture, MeshStats, Reply, Shard, ShardGone, ShardId};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Work for one shard: invoked there with that shard's `Sharded` and the calling shard.
pub type Job<S> = Box<dyn FnOnce(Rc<Sharded<S>>, ShardId) -> LocalBoxFuture<()> + Send>;

/// The mesh that carries jobs for states of type `S`.
pub type JobMesh<S> = Shard<Job<S>, ()>;

/// This shard's state and its way to run work on every shard's.
pub struct Sharded<S: 'static> {
    mesh: Rc<JobMesh<S>>,
    local: Rc<S>,
}

impl<S: 'static> Sharded<S> {
    /// This shard's end: `local` is its state.
    pub fn new(mesh: Rc<JobMesh<S>>, local: Rc<S>) -> Rc<Self> {
        Rc::new(Sharded { mesh, local })
    }

    /// Runs the jobs sent to this shard (by others and by itself) from now on; jobs that
    /// arrived earlier waited in their channels.
    pub fn serve(self: &Rc<Self>, inbox: Inbox<Job<S>, ()>) {
        // Weak: the mesh's receiving tasks keep the handler, and this keeps the mesh.
        let me = Rc::downgrade(self);
        self.mesh
            .serve(inbox, move |from, job: Job<S>| match me.upgrade() {
                Some(me) => job(me, from),
                // The shard is stopping (its Sharded is gone) while its mesh still takes
                // calls: the job is dropped unrun, and its caller gets ShardGone.
                None => Box::pin(async {}),
            });
    }

    /// This shard's state.
    pub fn local(&self) -> &Rc<S> {
        &self.local
    }

    pub fn id(&self) -> ShardId {
        self.mesh.id()
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.mesh.count()
    }

    pub fn all(&self) -> impl Iterator<Item = ShardId> + use<S> {
        (0..self.mesh.count()).map(ShardId)
    }

    pub fn mesh_stats(&self) -> &MeshStats {
        self.mesh.stats()
    }

    /// Hands `work` to shard `to` and returns once it is queued there (for this shard:
    /// once it has been invoked); its result is awaited separately. Calls started one
    /// after another from one shard are invoked in that order.
    pub async fn submit_to<T, F, Fut>(
        self: &Rc<Self>,
        to: ShardId,
        work: F,
    ) -> Result<Pending<'_, T>, ShardGone>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Sharded<S>>, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        if to == self.id() {
            // Like a remote call: invoked now, run as its own task (first polled in the
            // order calls were started), finished even if the caller goes away.
            let stats = self.mesh.stats();
            stats.local_calls.set(stats.local_calls.get() + 1);
            let task = glommio::spawn_local(work(self.clone(), to)).detach();
            return Ok(Pending(PendingState::Local { task, to }));
        }
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        let job: Job<S> = Box::new(move |sharded, from| {
            let result = work(sharded, from);
            Box::pin(async move {
                let value = result.await;
                *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            })
        });
        let reply = self.mesh.start_call(to, job).await?;
        Ok(Pending(PendingState::Remote { reply, slot, to }))
    }

    /// Runs `work` on shard `to` and returns its result.
    pub async fn invoke_on<T, F, Fut>(self: &Rc<Self>, to: ShardId, work: F) -> Result<T, ShardGone>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Sharded<S>>, ShardId) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.submit_to(to, work).await?.await
    }
}

/// The result of a submitted call. Dropping it forgets the call (the work still runs).
pub struct Pending<'a, T>(PendingState<'a, T>);

enum PendingState<'a, T> {
    /// Work on this shard: its task's output is the result (`None` if the task was
    /// dropped unfinished, at shut-down).
    Local {
        task: glommio::task::JoinHandle<T>,
        to: ShardId,
    },
    /// Work on another shard: its result is in `slot` once `reply` comes.
    Remote {
        reply: Reply<'a, ()>,
        slot: Arc<Mutex<Option<T>>>,
        to: ShardId,
    },
}

impl<T> Future for Pending<'_, T> {
    type Output = Result<T, ShardGone>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            PendingState::Local { task, to } => {
                let to = *to;
                Pin::new(task)
                    .poll(cx)
                    .map(|done| done.ok_or(ShardGone(to)))
            }
            PendingState::Remote { reply, slot, to } => match Pin::new(reply).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(gone)) => Poll::Ready(Err(gone)),
                // The reply is sent after the slot was filled, unless the work was
                // dropped unfinished (its shard stopped).
                Poll::Ready(Ok(())) => Poll::Ready(
                    slot.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take()
                        .ok_or(ShardGone(*to)),
                ),
            },
        }
    }
}
