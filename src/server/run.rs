//! Running the broker: the shards, the start-up sequence, the per-shard timers
//! (transactions, retention), the periodic recovery-point and log-start-offset
//! checkpoints, and a clean shut-down on SIGTERM or SIGINT.
//!
//! The main thread is not a shard: it starts them, then waits for a signal and raises a
//! flag that shard 0 watches. Shard 0 then has every shard stop accepting and close its
//! logs (flushing them and trimming their indices, so the next start needs no
//! recovery), writes the recovery points, and lets every shard exit.

use crate::config::BrokerConfig;
use crate::routing::transactions::ShardTxnEnv;
use crate::routing::{Mesh, Router};
use crate::server::listener;
use crate::server::sockets::Exclusive;
use crate::shard::{Phase, ShardState};
use crate::storage::{OffsetCheckpoint, RECOVERY_POINT_CHECKPOINT};
use shards::{Inbox, Job, RuntimeConfig, ShardCounts, ShardId, rt};
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
    let open_connections = Arc::new(ShardCounts::default());
    let runtime = shards::start(&runtime_config, move |mesh, inbox| {
        shard_main(
            config,
            shard_exclusive,
            open_connections,
            mesh,
            inbox,
            shard_stop,
        )
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

/// One shard's life: its state, serving the mesh, then (shard 0) the start-up of the
/// whole broker, the periodic checkpoint and the shut-down; (others) waiting to exit.
async fn shard_main(
    config: BrokerConfig,
    exclusive: Arc<Exclusive>,
    open_connections: Arc<ShardCounts>,
    mesh: Rc<Mesh>,
    inbox: Inbox<Job<ShardState>, ()>,
    stop: Arc<AtomicBool>,
) {
    let id = mesh.id();
    let shards = mesh.count();
    let connections = (config.max_connections.max(1) as usize)
        .min(exclusive.connections_for_descriptors())
        .div_ceil(shards)
        .max(1);
    if id == ShardId(0) {
        tracing::info!(
            "serving up to {} connections ({connections} per shard; open-files limit {})",
            connections * shards,
            exclusive.open_files
        );
    }
    let state = ShardState::new(
        id,
        shards,
        mesh.cpu(),
        Rc::new(config),
        connections,
        open_connections,
    )
    .await;
    let router = Router::serve(mesh, inbox, state.clone());
    if id != ShardId(0) {
        state.reached(Phase::Exiting).await;
        return;
    }
    start_broker(&router, &exclusive).await;
    let mut last_checkpoint = Instant::now();
    while !stop.load(Ordering::Acquire) {
        rt::sleep(Duration::from_millis(50)).await;
        if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            checkpoint_recovery_points(&router, true).await;
            router.checkpoint_log_starts().await;
            last_checkpoint = Instant::now();
        }
    }
    // Every shard stops accepting and closes its logs (flushed, indices trimmed).
    router
        .broadcast(|router, _| async move { router.state().shut_down().await })
        .await;
    checkpoint_recovery_points(&router, false).await;
    router.checkpoint_log_starts().await;
    for shard in (1..router.count()).map(ShardId) {
        // Queued is enough: the shard leaves once it takes the job.
        drop(
            router
                .submit(shard, |router, _| async move {
                    router.state().enter(Phase::Exiting)
                })
                .await,
        );
    }
}

/// Shard 0's start-up of the broker: cluster identity and every topic open on its
/// shard, then every shard accepts connections, then the metrics endpoint.
async fn start_broker(router: &Router, exclusive: &Arc<Exclusive>) {
    let (cluster_id, topics) = router.load_metadata().await;
    tracing::info!(
        "cluster {cluster_id} node {}: {topics} topics open on {} shards",
        router.state().config.node_id,
        router.count()
    );
    let sockets = exclusive.clone();
    router
        .broadcast(move |router, _| async move {
            let accepting = listener::start(router.clone(), &sockets);
            router.state().hold_until_shutdown(accepting);
            let timers = rt::spawn(transaction_timers(router.clone()));
            router.state().hold_until_shutdown(timers);
            let retention = rt::spawn(log_retention(router.clone()));
            router.state().hold_until_shutdown(retention);
            router
                .state()
                .hold_until_shutdown(rt::spawn(router.state().clone().run_cleaner()));
            router.state().enter(Phase::Serving);
        })
        .await;
    if router.state().config.placement_balancer {
        router
            .state()
            .hold_until_shutdown(crate::placement::balancer::start(router.clone()));
    }
    if let Some(metrics) = crate::server::metrics::start(router.clone(), exclusive) {
        router.state().hold_until_shutdown(metrics);
    }
}

/// One shard's transaction and producer housekeeping: right after a
/// `__transaction_state` partition is loaded, and every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, its coordinator
/// finishes the transactions a replay found half-way (markers of a decided transaction)
/// and aborts those open past their timeout; every
/// `transaction.remove.expired.transaction.cleanup.interval.ms` it expires idle
/// transactional ids; every `producer.id.expiration.check.interval.ms` the shard's
/// partitions forget idle producer ids.
async fn transaction_timers(router: Router) {
    let config = router.state().config.clone();
    let millis = |ms: i32| Duration::from_millis(ms.max(1) as u64);
    let abort_every = millis(config.transaction_abort_timed_out_transaction_cleanup_interval_ms);
    let expire_ids_every =
        millis(config.transaction_remove_expired_transaction_cleanup_interval_ms);
    let expire_producers_every = millis(config.producer_id_expiration_check_interval_ms);
    let (mut ids_expired, mut producers_expired) = (Instant::now(), Instant::now());
    loop {
        let loaded = router.state().transactions_loaded.listen();
        futures_lite::future::or(rt::sleep(abort_every), loaded).await;
        let coordinator = router.state().transactions.clone();
        let env = ShardTxnEnv(&router);
        for (id, result) in coordinator.complete_pending(&env).await {
            if let Err(e) = result {
                tracing::warn!("transaction {id}: its markers are not all written yet: {e:?}");
            }
        }
        for (id, result) in coordinator.abort_timed_out(&env).await {
            match result {
                Ok(()) => tracing::info!("transaction {id}: aborted, open past its timeout"),
                Err(e) => tracing::warn!("transaction {id}: the timeout abort failed: {e:?}"),
            }
        }
        if ids_expired.elapsed() >= expire_ids_every {
            coordinator.expire_transactional_ids(&env).await;
            ids_expired = Instant::now();
        }
        if producers_expired.elapsed() >= expire_producers_every {
            let expired = router.state().expire_producers();
            if expired > 0 {
                tracing::info!("{expired} idle producer ids expired");
            }
            producers_expired = Instant::now();
        }
    }
}

/// One shard's retention: every `log.retention.check.interval.ms`, its partitions lose
/// the segments past `retention.ms`, beyond `retention.bytes` or below their log start
/// offset.
async fn log_retention(router: Router) {
    let every = Duration::from_millis(router.state().config.log_retention_check_interval_ms as u64);
    loop {
        rt::sleep(every).await;
        router.state().enforce_retention().await;
    }
}

/// Writes `recovery-point-offset-checkpoint` in every log dir from every shard's
/// partitions (shard 0, periodically with `sync`, and at shut-down after every log was
/// closed, which synced it).
async fn checkpoint_recovery_points(router: &Router, sync: bool) {
    let points: Vec<_> = router
        .broadcast(move |router, _| async move { router.state().recovery_points(sync).await })
        .await
        .into_iter()
        .flatten()
        .collect();
    let dirs = router.state().config.log_dirs.clone();
    // With several log dirs, which one holds a partition is a stat each, made off the
    // shard.
    let per_dir: Vec<Vec<_>> = if dirs.len() == 1 {
        vec![points]
    } else {
        let candidates = dirs.clone();
        rt::offload(move || {
            candidates
                .iter()
                .map(|dir| {
                    points
                        .iter()
                        .filter(|(tp, _)| dir.join(tp.dir_name()).is_dir())
                        .cloned()
                        .collect()
                })
                .collect()
        })
        .await
    };
    for (dir, entries) in dirs.iter().zip(per_dir) {
        let checkpoint = OffsetCheckpoint { entries };
        match checkpoint.write(&dir.join(RECOVERY_POINT_CHECKPOINT)).await {
            Ok(()) => {}
            // Out of descriptors: the previous checkpoint stands (recovery only scans
            // more); the next interval tries again.
            Err(e) if e.is_transient() => {
                tracing::warn!("cannot write the recovery point checkpoint now: {e}")
            }
            Err(e) => {
                crate::stop::fatal(&format!("cannot write the recovery point checkpoint: {e}"))
            }
        }
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
