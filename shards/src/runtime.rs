//! Starting the shards: one thread per shard, each running one glommio `LocalExecutor`
//! pinned to its own CPU with its own io_uring rings, all joined into one channel mesh.
//!
//! Start-up either brings every shard up or reports, for the first shard that failed,
//! why (io_uring unavailable, pinning refused, locked memory too small), so the binary
//! can exit with a clear message.

use crate::cpus::CpuList;
use crate::memlock;
use crate::mesh::{Inbox, Shard};
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How many shards to run and where.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Number of shards; `None` runs one per CPU of `cpuset`.
    pub shards: Option<usize>,
    /// CPUs to pin shards to, in order; `None` uses the process's affinity mask.
    pub cpuset: Option<CpuList>,
    /// io_memory per executor; `None` sizes it to fit RLIMIT_MEMLOCK.
    pub io_memory_bytes: Option<usize>,
    /// Capacity of each cross-shard channel, in messages.
    pub channel_capacity: usize,
    /// Thread name prefix; shard i runs on thread `<name>-<i>`.
    pub name: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            shards: None,
            cpuset: None,
            io_memory_bytes: None,
            channel_capacity: 1024,
            name: "shard".to_string(),
        }
    }
}

/// Why the shards could not start.
#[derive(Debug)]
pub enum StartError {
    /// The CPU set or shard count cannot work.
    Placement(String),
    /// RLIMIT_MEMLOCK is too small and cannot be raised.
    LockedMemory(String),
    /// Shard `shard` could not create its executor on `cpu`.
    Executor {
        shard: usize,
        cpu: usize,
        reason: String,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Placement(why) => write!(f, "cannot place shards: {why}"),
            StartError::LockedMemory(why) => write!(f, "cannot lock memory for io_uring: {why}"),
            StartError::Executor { shard, cpu, reason } => write!(
                f,
                "cannot start shard {shard} on CPU {cpu}: {reason} \
                 (corelog needs Linux io_uring, permission to pin threads to CPUs, \
                 and locked memory for its rings)"
            ),
        }
    }
}

impl std::error::Error for StartError {}

/// The running shards. `join` waits for every shard's main future to finish.
pub struct Runtime<T> {
    threads: Vec<JoinHandle<T>>,
    cpus: Vec<usize>,
    io_memory_bytes: usize,
}

impl<T> Runtime<T> {
    /// CPU of each shard, by shard index.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    pub fn io_memory_bytes(&self) -> usize {
        self.io_memory_bytes
    }

    /// Waits for every shard; a shard that panicked is reported by index.
    pub fn join(self) -> Result<Vec<T>, usize> {
        let mut results = Vec::with_capacity(self.threads.len());
        for (shard, thread) in self.threads.into_iter().enumerate() {
            results.push(thread.join().map_err(|_| shard)?);
        }
        Ok(results)
    }
}

/// How long start-up waits for a shard before saying it is slow. A loaded machine slows
/// start-up down; it never fails it: only a shard thread that ended fails it.
const SLOW_START_WARNING: Duration = Duration::from_secs(10);

/// The next start-up report from the shards. Waits as long as every shard thread is
/// alive, warning every `SLOW_START_WARNING`; `None` once a thread ended or every
/// reporter is gone without a word.
fn next_progress<T>(
    progress: &mpsc::Receiver<Progress>,
    threads: &[JoinHandle<T>],
    waiting_for: &str,
) -> Option<Progress> {
    let started = std::time::Instant::now();
    loop {
        match progress.recv_timeout(SLOW_START_WARNING) {
            Ok(report) => return Some(report),
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if threads.iter().any(|t| t.is_finished()) {
                    // A report sent just before the thread ended still counts.
                    return progress.try_recv().ok();
                }
                tracing::warn!(
                    "start-up is slow: still waiting for {waiting_for} after {:.0?} \
                     (a busy machine?)",
                    started.elapsed()
                );
            }
        }
    }
}

#[derive(Debug)]
enum Progress {
    Created,
    Failed(String),
    Joined,
}

/// Starts the shards. Each runs `shard_main(shard, inbox)` on its executor once the
/// mesh is connected; `shard_main` builds the shard's state and calls `shard.serve`.
pub fn start<Req, Resp, T, F, Fut>(
    config: &RuntimeConfig,
    shard_main: F,
) -> Result<Runtime<T>, StartError>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    T: Send + 'static,
    F: FnOnce(Rc<Shard<Req, Resp>>, Inbox<Req, Resp>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let cpuset = match &config.cpuset {
        Some(cpus) => cpus.clone(),
        None => CpuList::from_affinity()
            .map_err(|e| StartError::Placement(format!("cannot read CPU affinity: {e}")))?,
    };
    let shards = config.shards.unwrap_or(cpuset.len());
    if shards == 0 {
        return Err(StartError::Placement(
            "the number of shards must be at least 1".into(),
        ));
    }
    if shards > cpuset.len() {
        return Err(StartError::Placement(format!(
            "{shards} shards need {shards} CPUs, but the CPU set {cpuset} has {}",
            cpuset.len()
        )));
    }
    let cpus: Vec<usize> = cpuset.as_slice()[..shards].to_vec();

    let limit = memlock::raise_memlock_limit()
        .map_err(|e| StartError::LockedMemory(format!("cannot read RLIMIT_MEMLOCK: {e}")))?;
    let io_memory_bytes = match config.io_memory_bytes {
        Some(bytes) => bytes,
        None => memlock::io_memory_for(shards, limit).map_err(StartError::LockedMemory)?,
    };

    let mesh = MeshBuilder::full(shards, config.channel_capacity);
    let (progress_tx, progress) = mpsc::channel::<Progress>();
    let mut threads = Vec::with_capacity(shards);
    for (index, &cpu) in cpus.iter().enumerate() {
        let mesh = mesh.clone();
        let report = progress_tx.clone();
        let shard_main = shard_main.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-{index}", config.name))
            .spawn(move || {
                let executor = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                    .name(&format!("shard-{index}"))
                    .io_memory(io_memory_bytes)
                    .preempt_timer(Duration::from_millis(10))
                    .make();
                let executor = match executor {
                    Ok(executor) => executor,
                    Err(e) => {
                        let _ = report.send(Progress::Failed(e.to_string()));
                        panic!("shard {index} could not start: {e}");
                    }
                };
                let _ = report.send(Progress::Created);
                executor.run(async move {
                    // While the mesh connects, wake this executor every few milliseconds:
                    // a start-up was seen (rarely, on a loaded machine) to wait forever
                    // for the shards' channels, as if a wake-up from another executor
                    // was missed; the ticks make the reactor look again.
                    let ticks = glommio::spawn_local(async {
                        loop {
                            glommio::timer::sleep(Duration::from_millis(5)).await;
                        }
                    });
                    let (senders, receivers) = mesh.join().await.expect("the mesh has a place");
                    drop(ticks);
                    assert_eq!(
                        senders.peer_id(),
                        index,
                        "mesh ids follow executor creation order"
                    );
                    let (shard, inbox) = Shard::new(cpu, senders, receivers);
                    let _ = report.send(Progress::Joined);
                    drop(report);
                    shard_main(shard, inbox).await
                })
            })
            .map_err(|e| StartError::Executor {
                shard: index,
                cpu,
                reason: format!("cannot create its thread: {e}"),
            })?;
        threads.push(thread);
        // Executors are created one at a time: their ids, which order the mesh, then
        // follow the shard index.
        match next_progress(&progress, &threads, &format!("shard {index}'s executor")) {
            Some(Progress::Created) => {}
            Some(Progress::Failed(reason)) => {
                return Err(StartError::Executor {
                    shard: index,
                    cpu,
                    reason,
                });
            }
            Some(Progress::Joined) => unreachable!("a shard joined before every shard existed"),
            None => {
                return Err(StartError::Executor {
                    shard: index,
                    cpu,
                    reason: "its thread ended before its executor started".into(),
                });
            }
        }
    }
    drop(progress_tx);
    for _ in 0..shards {
        match next_progress(&progress, &threads, "the shards to connect their channels") {
            Some(Progress::Joined) => {}
            other => {
                return Err(StartError::Placement(format!(
                    "shards did not connect their channels: {other:?}"
                )));
            }
        }
    }
    Ok(Runtime {
        threads,
        cpus,
        io_memory_bytes,
    })
}
