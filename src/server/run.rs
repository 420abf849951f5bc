//! Running the broker: the shards, the start-up sequence, the periodic recovery-point
//! checkpoint, and a clean shut-down on SIGTERM or SIGINT.
//!
//! The main thread is not a shard: it starts them, then waits for a signal and raises a
//! flag that shard 0 watches. Shard 0 then has every shard stop accepting and close its
//! logs (flushing them and trimming their indices, so the next start needs no
//! recovery), writes the recovery points, and lets every shard exit.

use crate::config::BrokerConfig;
use crate::routing::{ShardReply, ShardRequest};
use crate::server::sockets::Exclusive;
use crate::shard::ShardState;
use shards::{Inbox, RuntimeConfig, ShardId};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often shard 0 writes `recovery-point-offset-checkpoint` (Kafka's default for
/// `log.flush.offset.checkpoint.interval.ms`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the broker until SIGTERM or SIGINT. Errors are start-up failures, explained.
pub fn run(config: BrokerConfig) -> Result<(), String> {
    let signals = block_stop_signals();
    run_until(config, move || {
        let signal = wait_for_signal(&signals);
        tracing::info!("received signal {signal}: shutting down");
    })
}

/// Runs the broker until `stop_when` returns (it blocks the calling thread meanwhile),
/// then shuts down cleanly.
pub fn run_until(config: BrokerConfig, stop_when: impl FnOnce()) -> Result<(), String> {
    let exclusive = Arc::new(Exclusive::take(&config)?);
    let stop = Arc::new(AtomicBool::new(false));
    let runtime_config = RuntimeConfig {
        shards: config.shards,
        cpuset: config.cpuset.clone(),
        name: "corelog-shard".to_string(),
        ..RuntimeConfig::default()
    };
    let shard_stop = stop.clone();
    let shard_exclusive = exclusive.clone();
    let runtime = shards::start(&runtime_config, move |mesh, inbox| {
        shard_main(config, shard_exclusive, mesh, inbox, shard_stop)
    })
    .map_err(|e| e.to_string())?;
    tracing::info!(
        "started {} shards on CPUs {:?} (io_memory {} KiB each)",
        runtime.cpus().len(),
        runtime.cpus(),
        runtime.io_memory_bytes() / 1024
    );
    stop_when();
    stop.store(true, Ordering::Release);
    runtime
        .join()
        .map_err(|shard| format!("shard {shard} failed"))?;
    drop(exclusive);
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shard_main(
    config: BrokerConfig,
    exclusive: Arc<Exclusive>,
    mesh: Rc<crate::routing::Mesh>,
    inbox: Inbox<ShardRequest, ShardReply>,
    stop: Arc<AtomicBool>,
) {
    let state = ShardState::new(mesh.clone(), Rc::new(config), exclusive).await;
    let handler = state.clone();
    mesh.serve(inbox, move |from, request| handler.handle(from, request));
    if mesh.id() != ShardId(0) {
        state.exited().await;
        return;
    }
    state.start_cluster().await;
    let mut last_checkpoint = Instant::now();
    while !stop.load(Ordering::Acquire) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
        if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            state.checkpoint_recovery_points(true).await;
            last_checkpoint = Instant::now();
        }
    }
    state.broadcast(|| ShardRequest::Shutdown).await;
    state.checkpoint_recovery_points(false).await;
    for shard in mesh.all().filter(|s| *s != ShardId(0)) {
        // Queued is enough: the shard leaves once it takes the message.
        let _ = mesh.start_call(shard, ShardRequest::Exit).await;
    }
}

/// Blocks SIGTERM and SIGINT in this thread and, by inheritance, in every shard thread,
/// so that only `wait_for_signal` receives them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set manipulation on a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: `set` holds blocked signals; sigwait stores the one received.
    unsafe { libc::sigwait(set, &mut signal) };
    signal
}
