//! Everything one shard owns, and the operations on it that run on that shard.
//!
//! Each shard has one `ShardState` (`Rc`, `!Send`): its copy of the cluster metadata,
//! the partitions the shard table gives it (their logs, opened and recovered here), its
//! group coordinator, its counters and connection limits, and on shard 0 the
//! controller's state. Nothing here calls another shard or starts anything: `routing`
//! brings work from other shards to these methods, and `server::run` starts the
//! listeners and timers, handing the tasks it wants stopped at shut-down to
//! `hold_until_shutdown`.
//!
//! Invariants: a partition is in `partitions` only once its log is open and recovered;
//! a partition of a deleted topic leaves it before its log is closed and its directory
//! removed.

use crate::config::BrokerConfig;
use crate::futures::race;
use crate::groups::{GroupConfig, GroupCoordinator, OFFSETS_TOPIC};
use crate::metadata::controller::Controller;
use crate::metadata::producer_ids::ProducerIdPool;
use crate::metadata::{MetadataDelta, MetadataImage, TopicPartition};
use crate::model::{Offset, ProducerEpoch, ProducerId};
use crate::partition::{Fetched, Partition, PartitionError};
use crate::protocol::ErrorCode;
use crate::protocol::placement::PartitionLoad;
use crate::protocol::records::RecordBatch;
use crate::storage::Sequencer;
use crate::storage::cleaner::{CleanerConfig, CleanerMetrics};
use crate::storage::{
    AppendInfo, LOG_START_OFFSET_CHECKPOINT, Notify, OffsetCheckpoint, RECOVERY_POINT_CHECKPOINT,
    RetentionOutcome, Timestamp,
};
use crate::transactions::{TRANSACTION_STATE_TOPIC, TransactionCoordinator, TxnConfig};
use shards::rt::{self, Semaphore};
use shards::{ShardCounts, ShardId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

/// What a partition's old owner hands its new owner in a placement move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// Everything below it is durable: the new owner's open reads, not scans.
    pub recovery_point: Offset,
    pub log_start: Offset,
}

/// Counters of one shard (plain cells: only this shard touches them).
#[derive(Debug, Default)]
pub struct ShardStats {
    pub connections_total: Cell<u64>,
    /// Connections that moved here from another shard to follow their partitions.
    pub connections_moved_in: Cell<u64>,
    /// Connections another shard accepted and handed here because this one served fewer
    /// (`placement.connections.spread`).
    pub connections_spread_in: Cell<u64>,
    pub requests: Cell<u64>,
    pub bytes_in: Cell<u64>,
    pub bytes_out: Cell<u64>,
    pub produce_batches: Cell<u64>,
    pub produce_bytes: Cell<u64>,
    pub fetch_bytes: Cell<u64>,
    pub send: SendStats,
    /// Times a connection waited for its share of `queued.max.request.bytes`.
    pub request_budget_waits: Cell<u64>,
    /// Bytes recovery cut off partitions' logs (torn or corrupt tails) when it opened them.
    pub recovery_truncated_bytes: Cell<u64>,
    /// Segments retention deleted (by time, by size, below the log start offset).
    pub retention_segments_deleted: Cell<u64>,
    /// The shard's log cleaner.
    pub cleaner: Rc<CleanerMetrics>,
}

/// Bytes and calls of the send path (`server::sendfile`), per way of sending.
#[derive(Debug, Default)]
pub struct SendStats {
    pub sendfile_bytes: Cell<u64>,
    pub sendfile_calls: Cell<u64>,
    pub copied_bytes: Cell<u64>,
    /// Ranges that were not (entirely) in the page cache.
    pub cold_ranges: Cell<u64>,
    /// Times the socket buffer was full during sendfile.
    pub socket_full: Cell<u64>,
}

/// A shard's counters at one moment, as the metrics endpoint gathers them.
#[derive(Debug, Clone, Default)]
pub struct ShardStatsSnapshot {
    pub shard: usize,
    pub cpu: usize,
    pub connections: u64,
    pub connections_total: u64,
    pub connections_moved_in: u64,
    pub connections_spread_in: u64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub produce_batches: u64,
    pub produce_bytes: u64,
    pub fetch_bytes: u64,
    pub sendfile_bytes: u64,
    pub copied_bytes: u64,
    pub cold_ranges: u64,
    pub calls_sent: u64,
    pub calls_received: u64,
    pub partitions: u64,
    pub groups: u64,
    pub recovery_truncated_bytes: u64,
    pub retention_segments_deleted: u64,
    pub fetch_waits: u64,
    pub request_budget_waits: u64,
    pub cleaner_runs: u64,
    pub cleaner_bytes_read: u64,
    pub cleaner_bytes_written: u64,
    pub cleaner_segments_cleaned: u64,
    pub cleaner_time_ms: u64,
    pub cleaner_max_dirty_percent: u64,
    pub cleaner_uncleanable_logs: u64,
    /// Nanoseconds the shard's executor ran (tasks and I/O), not parked: `rt::busy_time`.
    pub busy_ns: u64,
    /// Nanoseconds of CPU the shard's thread used: `rt::thread_cpu_time`.
    pub cpu_ns: u64,
}

pub fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get() + by);
}

/// The coordinator epoch stamped in transaction markers: a single node has one
/// coordinator per `__transaction_state` partition at any moment — a placement move
/// drains the old one's operations before the new one replays the partition — so no
/// stale coordinator's marker can arrive and the epoch stays 0 (the leader epoch of
/// every `__transaction_state` partition).
pub const COORDINATOR_EPOCH: i32 = 0;

/// The controller's state, on shard 0 only.
pub struct ControllerState {
    pub controller: RefCell<Controller>,
    /// One metadata change at a time: validation, persistence and broadcast of a change
    /// complete before the next is validated (`one_change`).
    lock: Semaphore,
    /// The first producer id not yet allocated, once read from its file.
    pub next_producer_id: Cell<Option<i64>>,
}

impl ControllerState {
    /// Waits for the previous metadata change to finish; the change is this caller's
    /// until the permit is dropped.
    pub async fn one_change(&self) -> rt::Permit<'_> {
        self.lock
            .acquire_permit(1)
            .await
            .expect("the lock is never closed")
    }
}

/// Where this shard is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Opening partitions; not serving clients.
    Starting,
    /// Every partition of the broker is open: clients may be served.
    Serving,
    /// Shut down: partitions closed, nothing more served.
    Stopped,
    /// The shard's main loop may return.
    Exiting,
}

pub struct ShardState {
    pub id: ShardId,
    /// Number of shards of the broker.
    pub shards: usize,
    /// The CPU this shard is pinned to.
    pub cpu: usize,
    pub config: Rc<BrokerConfig>,
    /// This shard's share of the connections the broker serves at once (`max.connections`,
    /// and what the open-files limit allows): a connection holds one unit.
    pub connection_slots: Rc<Semaphore>,
    /// How many connections every shard serves (`placement.connections.spread`).
    pub open_connections: Arc<ShardCounts>,
    /// This shard's share of `queued.max.request.bytes` (`None`: unbounded): a frame
    /// larger than the read chunk holds its size in units (at most the whole share) from
    /// its size prefix until its handler is done.
    /// With the share's size in bytes.
    pub request_budget: Option<(Rc<Semaphore>, u64)>,
    pub metadata: RefCell<MetadataImage>,
    /// Wakes whoever waits for the metadata to change (auto-created topics).
    pub metadata_changed: Notify,
    /// Per partition this shard is handing over (`Router::handover`): the queue that the
    /// operations which reached it without the partition open take their turns in, so
    /// they go on in the order they arrived. Empty outside moves.
    handover_turns: RefCell<HashMap<TopicPartition, Rc<Sequencer>>>,
    partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    recovery_points: RefCell<HashMap<TopicPartition, Offset>>,
    /// The log start offsets `log-start-offset-checkpoint` held at start-up, for the
    /// partitions not open yet.
    log_starts: RefCell<HashMap<TopicPartition, Offset>>,
    /// Shard 0: one writer of the log dirs' checkpoint files at a time.
    pub checkpoint_lock: Semaphore,
    controller: Option<ControllerState>,
    /// The group coordinator of the `__consumer_offsets` partitions this shard owns.
    pub groups: Rc<GroupCoordinator>,
    /// The transaction coordinator of the `__transaction_state` partitions this shard
    /// owns.
    pub transactions: Rc<TransactionCoordinator>,
    /// Raised when a `__transaction_state` partition was loaded: the transaction timer
    /// finishes what the replay found half-way.
    pub transactions_loaded: Notify,
    /// The producer ids this shard may hand out (InitProducerId).
    pub producer_ids: ProducerIdPool,
    pub stats: ShardStats,
    /// Tasks started for this shard (its accept loops, the metrics endpoint), dropped —
    /// stopped — at shut-down.
    held: RefCell<Vec<rt::Task<()>>>,
    phase: Cell<Phase>,
    phase_changed: Notify,
    /// Fetch waits other shards asked this one for, by (asking shard, wait id): each
    /// ends early when its `CancelWait` comes.
    fetch_waits: RefCell<HashMap<(ShardId, u64), Notify>>,
    /// The id of this shard's next remote fetch wait.
    next_wait_id: Cell<u64>,
    /// Shard 0: open connections per client address (`max.connections.per.ip`).
    connections_per_ip: RefCell<HashMap<std::net::IpAddr, i32>>,
    /// When this state was made (the shard's start): the clock load rates are read on.
    pub started: Instant,
}

impl ShardState {
    /// The state of shard `id` of `shards` (pinned to `cpu`), before any partition is
    /// open; `connections` is its share of the connections the broker serves at once,
    /// `open_connections` the count of connections every shard serves (sized here).
    pub async fn new(
        id: ShardId,
        shards: usize,
        cpu: usize,
        config: Rc<BrokerConfig>,
        connections: usize,
        open_connections: Arc<ShardCounts>,
    ) -> Rc<ShardState> {
        open_connections.init(shards);
        let mut recovery_points = HashMap::new();
        let mut log_starts = HashMap::new();
        for dir in &config.log_dirs {
            for (name, into) in [
                (RECOVERY_POINT_CHECKPOINT, &mut recovery_points),
                (LOG_START_OFFSET_CHECKPOINT, &mut log_starts),
            ] {
                let path = dir.join(name);
                match OffsetCheckpoint::read(&path).await {
                    Ok(checkpoint) => into.extend(checkpoint.entries),
                    Err(e) => crate::stop::fatal(&format!("cannot read {}: {e}", path.display())),
                }
            }
        }
        let controller = (id == ShardId(0)).then(|| ControllerState {
            controller: RefCell::new(Controller::new(&config, shards)),
            lock: Semaphore::new(1),
            next_producer_id: Cell::new(None),
        });
        let groups = GroupCoordinator::new(GroupConfig::from_broker(&config));
        let transactions = Rc::new(TransactionCoordinator::new(TxnConfig::from_broker(&config)));
        let request_budget = config.queued_max_request_bytes.map(|bytes| {
            let share = (bytes / shards as u64).max(1);
            (Rc::new(Semaphore::new(share)), share)
        });
        Rc::new(ShardState {
            id,
            shards,
            cpu,
            connection_slots: Rc::new(Semaphore::new(connections.max(1) as u64)),
            open_connections,
            request_budget,
            metadata: RefCell::new(MetadataImage::new(
                id,
                String::new(),
                config.node_id,
                config.topic_defaults.clone(),
            )),
            config,
            metadata_changed: Notify::new(),
            handover_turns: RefCell::default(),
            partitions: RefCell::new(HashMap::new()),
            recovery_points: RefCell::new(recovery_points),
            log_starts: RefCell::new(log_starts),
            checkpoint_lock: Semaphore::new(1),
            controller,
            groups,
            producer_ids: ProducerIdPool::default(),
            transactions,
            transactions_loaded: Notify::new(),
            stats: ShardStats::default(),
            held: RefCell::new(Vec::new()),
            phase: Cell::new(Phase::Starting),
            phase_changed: Notify::new(),
            connections_per_ip: RefCell::new(HashMap::new()),
            fetch_waits: RefCell::new(HashMap::new()),
            next_wait_id: Cell::new(0),
            started: Instant::now(),
        })
    }

    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The partition if this shard owns it.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }

    // ---- life cycle ----

    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Moves to `phase` (never back).
    pub fn enter(&self, phase: Phase) {
        assert!(
            phase >= self.phase.get(),
            "{} cannot go from {:?} back to {phase:?}",
            self.id,
            self.phase.get()
        );
        self.phase.set(phase);
        self.phase_changed.notify_all();
    }

    /// Resolves once the shard has reached `phase`.
    pub async fn reached(&self, phase: Phase) {
        loop {
            let changed = self.phase_changed.listen();
            if self.phase.get() >= phase {
                return;
            }
            changed.await;
        }
    }

    /// Keeps `task` running until shut-down, which drops (stops) it.
    pub fn hold_until_shutdown(&self, task: rt::Task<()>) {
        self.held.borrow_mut().push(task);
    }

    /// Stops what was held (accept loops first, so no new client arrives) and closes
    /// every partition cleanly: flushed, indices trimmed, no recovery needed next time.
    pub async fn shut_down(&self) {
        drop(std::mem::take(&mut *self.held.borrow_mut()));
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for partition in partitions {
            if let Err(e) = partition.log().close().await {
                tracing::error!("closing {} failed: {e}", partition.tp);
            }
        }
        self.enter(Phase::Stopped);
    }

    // ---- partitions ----

    /// Appends batches validated on the caller's shard. Everything before the returned
    /// future is done now, in the order calls arrive; the future resolves when the
    /// append is visible (with `durable`, also fsynced).
    pub fn append(
        &self,
        tp: &TopicPartition,
        batches: Vec<RecordBatch>,
        durable: bool,
    ) -> Boxed<Result<AppendInfo, PartitionError>> {
        let Some(partition) = self.partition(tp) else {
            return Box::pin(std::future::ready(Err(not_here(tp))));
        };
        bump(&self.stats.produce_batches, batches.len() as u64);
        bump(
            &self.stats.produce_bytes,
            batches.iter().map(|b| b.size() as u64).sum(),
        );
        Box::pin(async move { partition.append(&batches, durable).await })
    }

    /// Writes a transaction marker on one partition, durably; on a `__consumer_offsets`
    /// partition the group coordinator then makes the producer's pending offsets
    /// committed (COMMIT) or drops them (ABORT).
    pub async fn write_marker(
        &self,
        tp: &TopicPartition,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
    ) -> Result<(), PartitionError> {
        let partition = self.partition(tp).ok_or_else(|| not_here(tp))?;
        partition
            .write_marker(producer_id, producer_epoch, commit, COORDINATOR_EPOCH)
            .await?;
        if tp.topic == OFFSETS_TOPIC {
            self.groups
                .complete_txn(tp.partition, producer_id, commit)
                .await;
        }
        Ok(())
    }

    /// Runs this shard's log cleaner over the compacted partitions it owns (Kafka's
    /// `log.cleaner.*` settings, shared out between the shards) until its task is dropped.
    pub async fn run_cleaner(self: Rc<Self>) {
        let config = CleanerConfig {
            enabled: self.config.log_cleaner_enable,
            io_max_bytes_per_second: self.config.log_cleaner_io_max_bytes_per_second,
            dedupe_buffer_bytes: self.config.log_cleaner_dedupe_buffer_size.max(0) as u64,
            backoff: Duration::from_millis(self.config.log_cleaner_backoff_ms.max(0) as u64),
        }
        .per_shard(self.shards);
        let metrics = self.stats.cleaner.clone();
        let this = self.clone();
        let logs = move || {
            this.partitions
                .borrow()
                .values()
                .filter(|p| p.log().config().cleanup_compact)
                .map(|p| (p.tp.clone(), p.log().clone()))
                .collect::<Vec<_>>()
        };
        crate::storage::cleaner::run(config, logs, metrics).await;
    }

    /// Forgets the idle producer ids of every partition of this shard
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire_producers(&self) -> usize {
        let now = crate::model::Timestamp::now();
        let expiration = i64::from(self.config.producer_id_expiration_ms);
        self.partitions
            .borrow()
            .values()
            .map(|p| p.log().expire_producers(now, expiration))
            .sum()
    }

    /// Reads whole batches from one partition (at least one, at most `max_bytes`
    /// otherwise), as a range any shard can send.
    pub async fn fetch(
        &self,
        tp: &TopicPartition,
        offset: Offset,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Fetched, PartitionError> {
        let partition = self.partition(tp).ok_or_else(|| not_here(tp))?;
        partition
            .fetch(offset, max_bytes, true, read_committed)
            .await
    }

    /// ListOffsets for one partition (see `Partition::list_offset`).
    pub async fn list_offset(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        read_committed: bool,
    ) -> Result<Option<crate::storage::TimestampAndOffset>, PartitionError> {
        match self.partition(tp) {
            Some(p) => p.list_offset(timestamp, read_committed).await,
            None => Err(not_here(tp)),
        }
    }

    /// `wait_for_data` for a fetch of shard `from`, which names it `wait_id`: it ends
    /// early (false) when `cancel_wait` names it.
    pub async fn wait_for_data_cancellable(
        &self,
        from: ShardId,
        wait_id: u64,
        partitions: &[(TopicPartition, Offset)],
        timeout: Duration,
    ) -> bool {
        let cancel = Notify::new();
        let cancelled = cancel.listen();
        let key = (from, wait_id);
        self.fetch_waits.borrow_mut().insert(key, cancel);
        let waits: Vec<Pin<Box<dyn Future<Output = bool> + '_>>> = vec![
            Box::pin(self.wait_for_data(partitions, timeout)),
            Box::pin(async move {
                cancelled.await;
                false
            }),
        ];
        let available = race(waits).await;
        self.fetch_waits.borrow_mut().remove(&key);
        available
    }

    /// Ends the wait shard `from` named `wait_id`, if it still runs.
    pub fn cancel_wait(&self, from: ShardId, wait_id: u64) {
        if let Some(cancel) = self.fetch_waits.borrow().get(&(from, wait_id)) {
            cancel.notify_all();
        }
    }

    /// The recovery point of every partition this shard owns (for the checkpoint file);
    /// with `sync`, each log first makes everything written so far durable.
    pub async fn recovery_points(&self, sync: bool) -> Vec<(TopicPartition, Offset)> {
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        let mut points = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let point = if sync {
                match partition.log().checkpoint().await {
                    Ok(point) => point,
                    Err(e) if e.is_environment() => {
                        crate::stop::fatal(&format!("cannot checkpoint {}: {e}", partition.tp))
                    }
                    // Closed meanwhile, or out of descriptors: the point already made
                    // durable stands; the next checkpoint tries again.
                    Err(e) => {
                        tracing::warn!("cannot checkpoint {} now: {e}", partition.tp);
                        partition.log().recovery_point()
                    }
                }
            } else {
                partition.log().recovery_point()
            };
            points.push((partition.tp.clone(), point));
        }
        points
    }

    /// The log start offset of every partition this shard owns, with the log dir that
    /// holds it (for `log-start-offset-checkpoint`).
    pub fn log_start_offsets(&self) -> Vec<(PathBuf, TopicPartition, Offset)> {
        self.partitions
            .borrow()
            .values()
            .map(|partition| {
                let dir = partition.log().dir();
                let log_dir = dir.parent().map(PathBuf::from).unwrap_or_default();
                (log_dir, partition.tp.clone(), partition.log_start_offset())
            })
            .collect()
    }

    /// Every partition this shard owns with its log dir, size in bytes and offset lag
    /// (high watermark − log end offset, at least 0), for DescribeLogDirs.
    pub fn log_dir_usage(&self) -> Vec<(PathBuf, TopicPartition, u64, i64)> {
        self.partitions
            .borrow()
            .values()
            .map(|partition| {
                let dir = partition.log().dir();
                let log_dir = dir.parent().map(PathBuf::from).unwrap_or_default();
                let lag = (partition.high_watermark().0 - partition.log_end_offset().0).max(0);
                (
                    log_dir,
                    partition.tp.clone(),
                    partition.log().size_bytes(),
                    lag,
                )
            })
            .collect()
    }

    /// DeleteRecords on one partition: moves its log start offset to `offset` (-1: the
    /// high watermark); returns the new log start offset (Kafka's low watermark).
    pub async fn delete_records(
        &self,
        tp: &TopicPartition,
        offset: i64,
    ) -> Result<Offset, PartitionError> {
        let partition = self.partition(tp).ok_or_else(|| not_here(tp))?;
        partition.delete_records(offset).await
    }

    /// One retention pass over this shard's partitions (`log.retention.check.interval.ms`).
    pub async fn enforce_retention(&self) {
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for partition in partitions {
            match partition.log().enforce_retention(Timestamp::now()).await {
                Ok(RetentionOutcome { bytes: 0, .. }) => {}
                Ok(outcome) => {
                    bump(
                        &self.stats.retention_segments_deleted,
                        outcome.segments() as u64,
                    );
                    tracing::info!(
                        "{}: retention deleted {} segments ({} by time, {} by size, {} below \
                         the log start offset, {} bytes); log start offset now {}",
                        partition.tp,
                        outcome.segments(),
                        outcome.by_time,
                        outcome.by_size,
                        outcome.below_log_start,
                        outcome.bytes,
                        partition.log_start_offset()
                    );
                }
                Err(e) if e.is_environment() => {
                    crate::stop::fatal(&format!("retention of {} failed: {e}", partition.tp))
                }
                // Closed meanwhile (a deleted topic, a shut-down): nothing to do.
                Err(e) => tracing::debug!("retention of {} skipped: {e}", partition.tp),
            }
            rt::yield_if_needed().await;
        }
    }

    /// True once any partition's high watermark is past its offset; false on timeout.
    pub async fn wait_for_data(
        &self,
        partitions: &[(TopicPartition, Offset)],
        timeout: Duration,
    ) -> bool {
        let mut waits: Vec<Boxed<bool>> = Vec::new();
        for (tp, offset) in partitions {
            let Some(partition) = self.partition(tp) else {
                // The partition moved or went away: the fetcher must look again.
                return true;
            };
            let watch = partition.log().watch();
            if partition.high_watermark() > *offset {
                return true;
            }
            waits.push(Box::pin(async move {
                watch.await;
                true
            }));
        }
        waits.push(Box::pin(async move {
            rt::sleep(timeout).await;
            false
        }));
        race(waits).await
    }

    /// Gives up a partition this shard owns so that shard 0 can move it to another
    /// shard: it leaves `partitions` (requests for it answer NOT_LEADER_OR_FOLLOWER from
    /// now on), appends already under way finish, the log closes as at a clean shut-down
    /// (producer state snapshotted, everything synced, long polls woken) and, for an
    /// offsets partition, its groups leave the coordinator. Returns what the new owner
    /// needs to open it without a recovery scan.
    pub async fn release_partition(&self, tp: &TopicPartition) -> Result<Handover, String> {
        if tp.topic == TRANSACTION_STATE_TOPIC && self.partition(tp).is_some() {
            // Its transactions' operations under way finish here (their records and
            // markers written) before the next owner replays the partition.
            self.transactions.drain_partition(tp.partition).await;
        }
        let partition = self
            .partitions
            .borrow_mut()
            .remove(tp)
            .ok_or_else(|| format!("{tp} is not open on {}", self.id))?;
        if tp.topic == OFFSETS_TOPIC {
            self.groups.unload_partition(tp.partition);
        } else if tp.topic == TRANSACTION_STATE_TOPIC {
            self.transactions.unload_partition(tp.partition);
        }
        match partition.log().close().await {
            Ok(()) => {}
            Err(e) if e.is_environment() => {
                crate::stop::fatal(&format!("cannot close {tp} to move it: {e}"))
            }
            // Closed meanwhile: only a shut-down closes a log it does not own.
            Err(e) => return Err(format!("{tp} could not be closed: {e}")),
        }
        Ok(Handover {
            recovery_point: partition.log_end_offset(),
            log_start: partition.log_start_offset(),
        })
    }

    /// Runs `work` (an operation on `tp` that reached this shard without the partition
    /// open: see `handover_turns`) in its turn: after every such operation that arrived
    /// before it has finished. Its ticket is taken when this is first polled.
    pub async fn in_handover_turn<T>(
        &self,
        tp: &TopicPartition,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let queue = self
            .handover_turns
            .borrow_mut()
            .entry(tp.clone())
            .or_default()
            .clone();
        let turn = queue.acquire().await;
        let done = work.await;
        drop(turn);
        // Nobody else holds or waits for a turn (the map's reference and this one).
        if Rc::strong_count(&queue) == 2 {
            self.handover_turns.borrow_mut().remove(tp);
        }
        done
    }

    /// Whether an operation on `tp` may go straight to its log here: the partition is
    /// open on this shard and nothing that arrived before it still waits for the
    /// partition's handover (otherwise it takes its turn: `in_handover_turn`).
    pub fn serves(&self, tp: &TopicPartition) -> bool {
        self.partition(tp).is_some() && !self.handing_over(tp)
    }

    /// Whether operations on `tp` wait for a handover here (see `handover_turns`).
    fn handing_over(&self, tp: &TopicPartition) -> bool {
        let mut turns = self.handover_turns.borrow_mut();
        match turns.get(tp) {
            Some(queue) if Rc::strong_count(queue) > 1 => true,
            // Left by an operation dropped while it waited or held its turn.
            Some(_) => {
                turns.remove(tp);
                false
            }
            None => false,
        }
    }

    /// Takes what the old owner of a partition handed over: the open that the next
    /// metadata change asks of this shard starts from it.
    pub fn adopt_partition(&self, tp: &TopicPartition, handover: Handover) {
        self.recovery_points
            .borrow_mut()
            .insert(tp.clone(), handover.recovery_point);
        self.log_starts
            .borrow_mut()
            .insert(tp.clone(), handover.log_start);
    }

    /// Applies a metadata change: gives the partitions of altered topics their new
    /// configuration (live, without reopening), opens the partitions this shard now owns
    /// (recovering them in parallel) and closes and deletes those of deleted topics.
    pub async fn apply_metadata(self: &Rc<Self>, delta: MetadataDelta) {
        let changes = self
            .metadata
            .borrow_mut()
            .apply(&delta)
            .expect("the controller validated every topic's configuration");
        for topic in &changes.reconfigured {
            for partition in 0..topic.partitions {
                let tp = TopicPartition::new(topic.name.clone(), partition);
                if let Some(partition) = self.partition(&tp) {
                    partition.set_topic(topic.clone());
                }
            }
        }
        for tp in &changes.moved_away {
            assert!(
                self.partition(tp).is_none(),
                "{tp} moved away from {} without being released",
                self.id
            );
            self.recovery_points.borrow_mut().remove(tp);
        }
        for tp in changes.deleted {
            let partition = self.partitions.borrow_mut().remove(&tp);
            // A topic of the same name created later starts from nothing.
            self.recovery_points.borrow_mut().remove(&tp);
            self.log_starts.borrow_mut().remove(&tp);
            if let Some(partition) = partition {
                let dir = partition.log().dir();
                match partition.log().close().await {
                    Err(e) if e.is_environment() => {
                        crate::stop::fatal(&format!("cannot close {tp}: {e}"))
                    }
                    // Already closed (a shut-down under way): its files go all the same.
                    Err(e) => tracing::warn!("closing deleted {tp}: {e}"),
                    Ok(()) => {}
                }
                drop(partition);
                delete_partition_dir(dir).await;
            }
        }
        // One task per partition, not one future per partition joined in this task:
        // glommio keeps a clone of the polling task's waker per pending I/O on every poll,
        // and a few hundred opens polled together overflowed one task's reference count
        // (a CreateTopics of 300 partitions panicked the shard).
        let opens: Vec<rt::Task<()>> = changes
            .opened
            .into_iter()
            .map(|(tp, topic)| {
                let this = self.clone();
                rt::spawn(async move {
                    let dir = this.partition_dir(&tp).await;
                    let recovery_point = this
                        .recovery_points
                        .borrow()
                        .get(&tp)
                        .copied()
                        .unwrap_or(Offset::ZERO);
                    let log_start = this
                        .log_starts
                        .borrow_mut()
                        .remove(&tp)
                        .unwrap_or(Offset::ZERO);
                    let partitions = topic.partitions;
                    match Partition::open(&dir, tp.clone(), topic, recovery_point, log_start).await
                    {
                        Ok(partition) => {
                            bump(
                                &this.stats.recovery_truncated_bytes,
                                partition.log().recovery_stats().bytes_truncated,
                            );
                            let partition = Rc::new(partition);
                            this.partitions
                                .borrow_mut()
                                .insert(tp.clone(), partition.clone());
                            if tp.topic == OFFSETS_TOPIC {
                                this.groups
                                    .load_partition(tp.partition, partitions, partition)
                                    .await;
                            } else if tp.topic == TRANSACTION_STATE_TOPIC {
                                this.transactions
                                    .load(tp.partition, partitions, &partition)
                                    .await;
                                this.transactions_loaded.notify_all();
                            }
                        }
                        Err(e) => crate::stop::fatal(&format!(
                            "cannot open partition {tp} in {}: {e}",
                            dir.display()
                        )),
                    }
                })
            })
            .collect();
        for open in opens {
            open.await;
        }
        self.metadata_changed.notify_all();
    }

    /// Where a partition's directory is: the log dir that has it, else one chosen by
    /// hashing its name (stable across restarts). Looking costs a stat per log dir, made
    /// off the shard, and only when there are several.
    async fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        let name = tp.dir_name();
        let dirs = self.config.log_dirs.clone();
        if dirs.len() > 1 {
            let looked = name.clone();
            let candidates = dirs.clone();
            let existing =
                rt::offload(move || candidates.into_iter().find(|d| d.join(&looked).is_dir()))
                    .await;
            if let Some(dir) = existing {
                return dir.join(name);
            }
        }
        let hash = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        dirs[(hash % dirs.len() as u64) as usize].join(name)
    }

    /// A fresh id for a fetch wait this shard asks another shard for.
    pub fn next_wait_id(&self) -> u64 {
        let id = self.next_wait_id.get();
        self.next_wait_id.set(id + 1);
        id
    }

    /// Whether per-address connection limits apply (`max.connections.per.ip` or its
    /// overrides set): then every connection is admitted by shard 0.
    pub fn limits_connections_per_ip(&self) -> bool {
        self.config.max_connections_per_ip < i32::MAX
            || !self.config.max_connections_per_ip_overrides.is_empty()
    }

    /// Shard 0: counts a new connection from `ip` if its limit allows one more.
    pub fn admit_connection(&self, ip: IpAddr) -> bool {
        let limit = self
            .config
            .max_connections_per_ip_overrides
            .iter()
            .find(|(address, _)| *address == ip)
            .map_or(self.config.max_connections_per_ip, |(_, limit)| *limit);
        let mut open = self.connections_per_ip.borrow_mut();
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return false;
        }
        *count += 1;
        true
    }

    /// Shard 0: an admitted connection from `ip` closed.
    pub fn connection_closed(&self, ip: IpAddr) {
        let mut open = self.connections_per_ip.borrow_mut();
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count <= 0 {
                open.remove(&ip);
            }
        }
    }

    /// This shard's counters; the mesh's (`calls_*`) are the caller's to fill in. Called
    /// on this shard: its busy and CPU times are read from the calling thread.
    pub fn stats_snapshot(&self) -> ShardStatsSnapshot {
        let s = &self.stats;
        ShardStatsSnapshot {
            shard: self.id.0,
            cpu: self.cpu,
            connections: self.open_connections.get(self.id),
            connections_total: s.connections_total.get(),
            connections_moved_in: s.connections_moved_in.get(),
            connections_spread_in: s.connections_spread_in.get(),
            requests: s.requests.get(),
            bytes_in: s.bytes_in.get(),
            bytes_out: s.bytes_out.get(),
            produce_batches: s.produce_batches.get(),
            produce_bytes: s.produce_bytes.get(),
            fetch_bytes: s.fetch_bytes.get(),
            sendfile_bytes: s.send.sendfile_bytes.get(),
            copied_bytes: s.send.copied_bytes.get(),
            cold_ranges: s.send.cold_ranges.get(),
            calls_sent: 0,
            calls_received: 0,
            partitions: self.partitions.borrow().len() as u64,
            groups: self.groups.group_count() as u64,
            recovery_truncated_bytes: s.recovery_truncated_bytes.get(),
            retention_segments_deleted: s.retention_segments_deleted.get(),
            fetch_waits: self.fetch_waits.borrow().len() as u64,
            request_budget_waits: s.request_budget_waits.get(),
            cleaner_runs: s.cleaner.runs.get(),
            cleaner_bytes_read: s.cleaner.bytes_read.get(),
            cleaner_bytes_written: s.cleaner.bytes_written.get(),
            cleaner_segments_cleaned: s.cleaner.segments_cleaned.get(),
            cleaner_time_ms: s.cleaner.time_ms.get(),
            cleaner_max_dirty_percent: s.cleaner.max_dirty_percent.get(),
            cleaner_uncleanable_logs: s.cleaner.uncleanable_logs.get(),
            busy_ns: rt::busy_time().as_nanos() as u64,
            cpu_ns: rt::thread_cpu_time().as_nanos() as u64,
        }
    }

    /// The load counters of every partition this shard owns, sorted by partition.
    pub fn partition_loads(&self) -> Vec<PartitionLoad> {
        let mut loads: Vec<PartitionLoad> = self
            .partitions
            .borrow()
            .values()
            .map(|p| p.load().snapshot(&p.tp, self.id.0))
            .collect();
        loads.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        loads
    }

    // ---- the controller (shard 0) ----

    /// The controller's state; only shard 0 has one.
    pub fn controller(&self) -> &ControllerState {
        self.controller
            .as_ref()
            .unwrap_or_else(|| panic!("controller work sent to {}", self.id))
    }

    pub fn set_cluster_id(&self, cluster_id: String) {
        self.metadata.borrow_mut().set_cluster_id(cluster_id);
    }
}

/// The error for a partition that is not (or no longer) on the shard asked.
pub fn not_here(tp: &TopicPartition) -> PartitionError {
    PartitionError::new(
        ErrorCode::NotLeaderOrFollower,
        format!("partition {tp} is not hosted here"),
    )
}

/// Removes a deleted partition's directory: renamed first (as Kafka does, so a crash
/// mid-way never leaves a directory that looks like a live partition), then removed off
/// the shard.
async fn delete_partition_dir(dir: PathBuf) {
    if let Err(e) = crate::storage::discard_dir(&dir).await {
        tracing::warn!("could not remove a deleted partition's directory: {e}");
    }
}
