//! The runtime calls a shard's code makes — spawning tasks, timers, yielding, the
//! blocking pool, shard-local synchronisation — named once here, so the broker above
//! sees one small vocabulary and glommio stays behind this crate (the storage and
//! network adapters use glommio's files and sockets directly).
//!
//! Everything here runs on, and only on, the calling shard's executor; `busy_time` and
//! `thread_cpu_time` measure the shard that calls them (its load, for the metrics).

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

thread_local! {
    /// The executor's busy time gathered so far: glommio hands its counters out as a
    /// delta (reading them resets them), so this shard adds each delta up here.
    static BUSY: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
}

/// Wall-clock time this shard's executor has spent running tasks and reaping I/O since it
/// started — not parked, not spinning before a park — up to the start of the current
/// turn of its loop. The one reader of glommio's executor stats, which reset on read:
/// nothing else may call `executor_stats()`.
pub fn busy_time() -> Duration {
    let delta = glommio::executor().executor_stats().total_runtime();
    BUSY.with(|busy| {
        let total = busy.get() + delta;
        busy.set(total);
        total
    })
}

/// CPU time (user and system) the calling thread has used since it started
/// (`CLOCK_THREAD_CPUTIME_ID`); zero if the clock cannot be read.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
