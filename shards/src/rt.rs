//! The runtime calls a shard's code makes — spawning tasks, timers, yielding, the
//! blocking pool, shard-local synchronisation — named once here, so the broker above
//! sees one small vocabulary and glommio stays behind this crate (the storage and
//! network adapters use glommio's files and sockets directly).
//!
//! Everything here runs on, and only on, the calling shard's executor.

use std::future::Future;
use std::time::Duration;

pub use glommio::Task;
pub use glommio::channels::local_channel::{LocalReceiver, LocalSender, new_bounded};
pub use glommio::sync::{Permit, Semaphore, StaticPermit};

/// Runs `future` as a task of this shard; dropping the returned handle cancels it
/// (`.detach()` lets it run to the end).
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(future)
}

/// Resolves after `duration`.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Lets the shard's other tasks run if this one has had its share of the CPU.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await;
}

/// Lets every other ready task of this shard run before this one goes on.
pub async fn yield_now() {
    glommio::executor().yield_now().await;
}

/// Runs CPU-heavy or blocking `work` on the shard's blocking pool (another thread), so
/// this shard's executor goes on serving meanwhile.
pub async fn offload<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(work).await
}
