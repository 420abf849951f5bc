//! Everything one shard owns, and how it answers the other shards.
//!
//! Each shard has one `ShardState` (`Rc`, `!Send`): its copy of the cluster metadata,
//! the partitions the shard table gives it (their logs, opened and recovered here), its
//! listener and counters, and on shard 0 the controller. Other shards reach it only
//! through `ShardRequest`s on the mesh; `handle` is the one entry point, invoked in the
//! order requests arrive, with the work it returns spawned as a task.
//!
//! Start-up (driven by shard 0): `Init` (cluster id) → `ApplyMetadata` (every topic,
//! so every shard opens and recovers its partitions, in parallel across shards) →
//! `StartListening`. Shut-down: `Shutdown` (stop accepting, close every log cleanly)
//! → `Exit`.

use crate::config::BrokerConfig;
use crate::futures::{join_all, race};
use crate::groups::{GroupConfig, GroupCoordinator, OFFSETS_TOPIC};
use crate::metadata::controller::{Controller, NewTopic, TopicError};
use crate::metadata::{MetadataDelta, MetadataImage, TopicPartition, TopicRecord, store};
use crate::partition::{Partition, PartitionError};
use crate::protocol::ErrorCode;
use crate::routing::{
    FetchPartition, FetchedShared, Mesh, ShardReply, ShardRequest, ShardStatsSnapshot, SharedRange,
};
use crate::server::sendfile::SendStats;
use crate::server::sockets::Exclusive;
use crate::storage::{Notify, Offset, OffsetCheckpoint, RECOVERY_POINT_CHECKPOINT};
use bytes::Bytes;
use glommio::sync::Semaphore;
use shards::{LocalBoxFuture, ShardId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

/// Counters of one shard (plain cells: only this shard touches them).
#[derive(Debug, Default)]
pub struct ShardStats {
    pub connections: Cell<u64>,
    pub connections_total: Cell<u64>,
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
}

pub fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get() + by);
}

/// The controller's state, on shard 0 only.
struct ControllerState {
    controller: RefCell<Controller>,
    /// One metadata change at a time: validation, persistence and broadcast of a change
    /// complete before the next is validated.
    lock: Semaphore,
}

pub struct ShardState {
    pub mesh: Rc<Mesh>,
    pub config: Rc<BrokerConfig>,
    /// The listening sockets (and log directory locks) the main thread took.
    pub exclusive: Arc<Exclusive>,
    /// This shard's share of the connections the broker serves at once (`max.connections`,
    /// and what the open-files limit allows): a connection holds one unit.
    pub connection_slots: Rc<Semaphore>,
    /// This shard's share of `queued.max.request.bytes` (`None`: unbounded): a frame
    /// larger than the read chunk holds its size in units (at most the whole share) from
    /// its size prefix until its handler is done.
    /// With the share's size in bytes.
    pub request_budget: Option<(Rc<Semaphore>, u64)>,
    pub metadata: RefCell<MetadataImage>,
    /// Wakes whoever waits for the metadata to change (auto-created topics).
    pub metadata_changed: Notify,
    partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    recovery_points: RefCell<HashMap<TopicPartition, Offset>>,
    controller: Option<ControllerState>,
    /// The group coordinator of the `__consumer_offsets` partitions this shard owns.
    pub groups: Rc<GroupCoordinator>,
    pub stats: ShardStats,
    listener: RefCell<Option<glommio::Task<()>>>,
    metrics: RefCell<Option<glommio::Task<()>>>,
    exit: Notify,
    exiting: Cell<bool>,
    /// Fetch waits other shards asked this one for, by (asking shard, wait id): each
    /// ends early when its `CancelWait` comes.
    fetch_waits: RefCell<HashMap<(ShardId, u64), Notify>>,
    /// The id of this shard's next remote fetch wait.
    next_wait_id: Cell<u64>,
    /// Shard 0: open connections per client address (`max.connections.per.ip`).
    connections_per_ip: RefCell<HashMap<std::net::IpAddr, i32>>,
}

impl ShardState {
    pub async fn new(
        mesh: Rc<Mesh>,
        config: Rc<BrokerConfig>,
        exclusive: Arc<Exclusive>,
    ) -> Rc<ShardState> {
        let id = mesh.id();
        let mut recovery_points = HashMap::new();
        for dir in &config.log_dirs {
            let path = dir.join(RECOVERY_POINT_CHECKPOINT);
            match OffsetCheckpoint::read(&path).await {
                Ok(checkpoint) => recovery_points.extend(checkpoint.entries),
                Err(e) => crate::stop::fatal(&format!("cannot read {}: {e}", path.display())),
            }
        }
        let controller = (id == ShardId(0)).then(|| ControllerState {
            controller: RefCell::new(Controller::new(&config, mesh.count())),
            lock: Semaphore::new(1),
        });
        let groups = GroupCoordinator::new(GroupConfig::from_broker(&config));
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
        let request_budget = config.queued_max_request_bytes.map(|bytes| {
            let share = (bytes / shards as u64).max(1);
            (Rc::new(Semaphore::new(share)), share)
        });
        Rc::new(ShardState {
            connection_slots: Rc::new(Semaphore::new(connections as u64)),
            request_budget,
            metadata: RefCell::new(MetadataImage::new(
                id,
                String::new(),
                config.node_id,
                config.topic_defaults.clone(),
            )),
            mesh,
            config,
            exclusive,
            metadata_changed: Notify::new(),
            partitions: RefCell::new(HashMap::new()),
            recovery_points: RefCell::new(recovery_points),
            controller,
            groups,
            stats: ShardStats::default(),
            listener: RefCell::new(None),
            metrics: RefCell::new(None),
            exit: Notify::new(),
            connections_per_ip: RefCell::new(HashMap::new()),
            fetch_waits: RefCell::new(HashMap::new()),
            next_wait_id: Cell::new(0),
            exiting: Cell::new(false),
        })
    }

    pub fn id(&self) -> ShardId {
        self.mesh.id()
    }

    /// The partition if this shard owns it.
    pub fn partition(&self, tp: &TopicPartition) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(tp).cloned()
    }

    /// Resolves when `Exit` arrives.
    pub async fn exited(&self) {
        while !self.exiting.get() {
            self.exit.listen().await;
        }
    }

    /// Answers one request from a shard (this one included). Called in arrival order;
    /// whatever must happen in that order happens before the returned future is spawned.
    pub fn handle(
        self: &Rc<Self>,
        from: ShardId,
        request: ShardRequest,
    ) -> LocalBoxFuture<ShardReply> {
        let this = self.clone();
        match request {
            ShardRequest::Init { cluster_id } => {
                this.metadata.borrow_mut().set_cluster_id(cluster_id);
                Box::pin(async { ShardReply::Done })
            }
            ShardRequest::ApplyMetadata(delta) => Box::pin(async move {
                this.apply_metadata(delta).await;
                ShardReply::Done
            }),
            ShardRequest::CreateTopics {
                topics,
                validate_only,
            } => Box::pin(async move {
                ShardReply::Created(this.controller_create_topics(topics, validate_only).await)
            }),
            ShardRequest::DeleteTopics { names } => {
                Box::pin(
                    async move { ShardReply::Deleted(this.controller_delete_topics(names).await) },
                )
            }
            ShardRequest::Produce {
                partitions,
                durable,
            } => {
                // Validate and start every append now, in order; await them together.
                let appends: Vec<Boxed<_>> = partitions
                    .into_iter()
                    .map(|(tp, records)| this.produce_one(tp, records, durable))
                    .collect();
                Box::pin(async move { ShardReply::Produced(join_all(appends).await) })
            }
            ShardRequest::Fetch { partitions } => Box::pin(async move {
                let mut results = Vec::with_capacity(partitions.len());
                for p in partitions {
                    results.push(this.fetch_shared(p).await);
                }
                ShardReply::Fetched(results)
            }),
            ShardRequest::ListOffsets { partitions } => Box::pin(async move {
                let mut results = Vec::with_capacity(partitions.len());
                for (tp, timestamp) in partitions {
                    results.push(match this.partition(&tp) {
                        Some(p) => p.list_offset(timestamp).await,
                        None => Err(not_here(&tp)),
                    });
                }
                ShardReply::Listed(results)
            }),
            ShardRequest::WaitForData {
                partitions,
                timeout,
                wait_id,
            } => Box::pin(async move {
                let cancel = Notify::new();
                let cancelled = cancel.listen();
                let key = (from, wait_id);
                this.fetch_waits.borrow_mut().insert(key, cancel);
                let waits: Vec<Pin<Box<dyn Future<Output = bool> + '_>>> = vec![
                    Box::pin(this.wait_for_data(&partitions, timeout)),
                    Box::pin(async move {
                        cancelled.await;
                        false
                    }),
                ];
                let available = race(waits).await;
                this.fetch_waits.borrow_mut().remove(&key);
                ShardReply::DataAvailable(available)
            }),
            ShardRequest::CancelWait { wait_id } => {
                if let Some(cancel) = this.fetch_waits.borrow().get(&(from, wait_id)) {
                    cancel.notify_all();
                }
                Box::pin(async { ShardReply::Done })
            }
            ShardRequest::StartListening => {
                this.start_listening();
                Box::pin(async { ShardReply::Done })
            }
            ShardRequest::Group(call) => Box::pin(async move {
                ShardReply::Group(this.groups.handle(&this.metadata, call).await)
            }),
            ShardRequest::Stats => {
                Box::pin(async move { ShardReply::Stats(this.stats_snapshot()) })
            }
            ShardRequest::AdmitConnection { ip } => {
                let admitted = this.admit_connection(ip);
                Box::pin(async move { ShardReply::Admitted(admitted) })
            }
            ShardRequest::ConnectionClosed { ip } => {
                let mut open = this.connections_per_ip.borrow_mut();
                if let Some(count) = open.get_mut(&ip) {
                    *count -= 1;
                    if *count <= 0 {
                        open.remove(&ip);
                    }
                }
                Box::pin(async { ShardReply::Done })
            }
            ShardRequest::RecoveryPoints { sync } => Box::pin(async move {
                let partitions: Vec<Rc<Partition>> =
                    this.partitions.borrow().values().cloned().collect();
                let mut points = Vec::with_capacity(partitions.len());
                for partition in partitions {
                    let point = if sync {
                        match partition.log().checkpoint().await {
                            Ok(point) => point,
                            Err(e) if e.is_environment() => crate::stop::fatal(&format!(
                                "cannot checkpoint {}: {e}",
                                partition.tp
                            )),
                            // Closed meanwhile, or out of descriptors: the point already
                            // made durable stands; the next checkpoint tries again.
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
                ShardReply::RecoveryPoints(points)
            }),
            ShardRequest::Shutdown => Box::pin(async move {
                this.shutdown().await;
                ShardReply::Done
            }),
            ShardRequest::Exit => {
                this.exiting.set(true);
                this.exit.notify_all();
                Box::pin(async { ShardReply::Done })
            }
        }
    }

    fn produce_one(
        self: &Rc<Self>,
        tp: TopicPartition,
        records: Bytes,
        durable: bool,
    ) -> Boxed<Result<crate::storage::AppendInfo, PartitionError>> {
        let Some(partition) = self.partition(&tp) else {
            return Box::pin(std::future::ready(Err(not_here(&tp))));
        };
        let size = records.len() as u64;
        let batches = match partition.validate_produce(records) {
            Ok(batches) => batches,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        bump(&self.stats.produce_batches, batches.len() as u64);
        bump(&self.stats.produce_bytes, size);
        Box::pin(async move { partition.append(&batches, durable).await })
    }

    /// A fetch for another shard: the range travels as a duplicated descriptor.
    async fn fetch_shared(&self, p: FetchPartition) -> Result<FetchedShared, PartitionError> {
        let partition = self.partition(&p.tp).ok_or_else(|| not_here(&p.tp))?;
        let fetched = partition.fetch(p.offset, p.max_bytes, true).await?;
        let range = match fetched.range {
            None => None,
            Some(range) => {
                // SAFETY: the descriptor belongs to a file `range` keeps open.
                let borrowed = unsafe { BorrowedFd::borrow_raw(range.raw_fd()) };
                let fd = borrowed.try_clone_to_owned().map_err(|e| {
                    PartitionError::new(
                        ErrorCode::KafkaStorageError,
                        format!("cannot share a segment file: {e}"),
                    )
                })?;
                Some(SharedRange {
                    fd,
                    position: range.position,
                    length: range.length,
                })
            }
        };
        Ok(FetchedShared {
            high_watermark: fetched.high_watermark,
            log_start_offset: fetched.log_start_offset,
            range,
        })
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
            glommio::timer::sleep(timeout).await;
            false
        }));
        race(waits).await
    }

    /// Applies a metadata change: opens the partitions this shard now owns (recovering
    /// them in parallel) and closes and deletes those of deleted topics.
    async fn apply_metadata(self: &Rc<Self>, delta: MetadataDelta) {
        let changes = self
            .metadata
            .borrow_mut()
            .apply(&delta)
            .expect("the controller validated every topic's configuration");
        for tp in changes.deleted {
            let partition = self.partitions.borrow_mut().remove(&tp);
            // A topic of the same name created later starts from nothing.
            self.recovery_points.borrow_mut().remove(&tp);
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
        let opens: Vec<glommio::Task<()>> = changes
            .opened
            .into_iter()
            .map(|(tp, topic)| {
                let this = self.clone();
                glommio::spawn_local(async move {
                    let dir = this.partition_dir(&tp);
                    let recovery_point = this
                        .recovery_points
                        .borrow()
                        .get(&tp)
                        .copied()
                        .unwrap_or(Offset::ZERO);
                    let partitions = topic.partitions;
                    match Partition::open(&dir, tp.clone(), topic, recovery_point).await {
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
    /// hashing its name (stable across restarts).
    fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        let name = tp.dir_name();
        let dirs = &self.config.log_dirs;
        if let Some(dir) = dirs.iter().find(|d| d.join(&name).is_dir()) {
            return dir.join(name);
        }
        let hash = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        dirs[(hash % dirs.len() as u64) as usize].join(name)
    }

    fn start_listening(self: &Rc<Self>) {
        let task = crate::server::listener::start(self.clone());
        *self.listener.borrow_mut() = Some(task);
    }

    async fn shutdown(&self) {
        // Dropping the accept loop stops accepting; open connections end with the process.
        self.listener.borrow_mut().take();
        self.metrics.borrow_mut().take();
        let partitions: Vec<Rc<Partition>> = self.partitions.borrow().values().cloned().collect();
        for partition in partitions {
            if let Err(e) = partition.log().close().await {
                tracing::error!("closing {} failed: {e}", partition.tp);
            }
        }
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
    fn admit_connection(&self, ip: std::net::IpAddr) -> bool {
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

    pub fn stats_snapshot(&self) -> ShardStatsSnapshot {
        let s = &self.stats;
        let mesh = self.mesh.stats();
        ShardStatsSnapshot {
            shard: self.id().0,
            cpu: self.mesh.cpu(),
            connections: s.connections.get(),
            connections_total: s.connections_total.get(),
            requests: s.requests.get(),
            bytes_in: s.bytes_in.get(),
            bytes_out: s.bytes_out.get(),
            produce_batches: s.produce_batches.get(),
            produce_bytes: s.produce_bytes.get(),
            fetch_bytes: s.fetch_bytes.get(),
            sendfile_bytes: s.send.sendfile_bytes.get(),
            copied_bytes: s.send.copied_bytes.get(),
            cold_ranges: s.send.cold_ranges.get(),
            calls_sent: mesh.calls_sent.get(),
            calls_received: mesh.calls_received.get(),
            partitions: self.partitions.borrow().len() as u64,
            groups: self.groups.group_count() as u64,
            recovery_truncated_bytes: s.recovery_truncated_bytes.get(),
            fetch_waits: self.fetch_waits.borrow().len() as u64,
            request_budget_waits: s.request_budget_waits.get(),
        }
    }

    // ---- the controller (shard 0) ----

    fn controller(&self) -> &ControllerState {
        self.controller
            .as_ref()
            .unwrap_or_else(|| panic!("controller request sent to {}", self.id()))
    }

    /// Start-up on shard 0: cluster identity, every persisted topic opened on its
    /// shard, then every shard starts listening.
    pub async fn start_cluster(self: &Rc<Self>) {
        let dir = self.config.log_dirs[0].clone();
        let meta = store::load_or_init_meta(&dir, self.config.node_id)
            .await
            .unwrap_or_else(|e| crate::stop::fatal(&format!("cannot load meta.properties: {e}")));
        self.broadcast(|| ShardRequest::Init {
            cluster_id: meta.cluster_id.clone(),
        })
        .await;
        let topics = store::load_topics(&dir)
            .await
            .unwrap_or_else(|e| crate::stop::fatal(&format!("cannot load the topic list: {e}")));
        let count = topics.len();
        let delta = self
            .controller()
            .controller
            .borrow_mut()
            .commit(topics, Vec::new());
        self.broadcast(|| ShardRequest::ApplyMetadata(delta.clone()))
            .await;
        tracing::info!(
            "cluster {} node {}: {count} topics open on {} shards",
            meta.cluster_id,
            self.config.node_id,
            self.mesh.count()
        );
        self.broadcast(|| ShardRequest::StartListening).await;
        *self.metrics.borrow_mut() = crate::metrics::start(self.clone());
    }

    /// Sends a request to every shard (this one included) and waits for every reply.
    pub async fn broadcast(&self, request: impl Fn() -> ShardRequest) -> Vec<ShardReply> {
        let mut replies = Vec::new();
        for shard in self.mesh.all() {
            let reply = self
                .mesh
                .start_call(shard, request())
                .await
                .unwrap_or_else(|e| panic!("broadcast: {e}"));
            replies.push(reply);
        }
        let mut out = Vec::with_capacity(replies.len());
        for reply in replies {
            out.push(reply.await.unwrap_or_else(|e| panic!("broadcast: {e}")));
        }
        out
    }

    async fn controller_create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<TopicRecord, TopicError>> {
        let state = self.controller();
        let _one_change = state
            .lock
            .acquire_permit(1)
            .await
            .expect("the lock is never closed");
        let results = state.controller.borrow().validate_create(&topics);
        let created: Vec<TopicRecord> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        if validate_only || created.is_empty() {
            return results;
        }
        let delta = state.controller.borrow_mut().commit(created, Vec::new());
        self.persist_and_broadcast(delta).await;
        results
    }

    async fn controller_delete_topics(
        &self,
        names: Vec<String>,
    ) -> Vec<Result<TopicRecord, TopicError>> {
        let state = self.controller();
        let _one_change = state
            .lock
            .acquire_permit(1)
            .await
            .expect("the lock is never closed");
        let results = state.controller.borrow().validate_delete(&names);
        let mut deleted: Vec<TopicRecord> = Vec::new();
        for record in results.iter().filter_map(|r| r.as_ref().ok()) {
            if !deleted.iter().any(|d| d.name == record.name) {
                deleted.push(record.clone());
            }
        }
        if deleted.is_empty() {
            return results;
        }
        let delta = state.controller.borrow_mut().commit(Vec::new(), deleted);
        self.persist_and_broadcast(delta).await;
        results
    }

    async fn persist_and_broadcast(&self, delta: MetadataDelta) {
        let topics: Vec<TopicRecord> = self
            .controller()
            .controller
            .borrow()
            .topics()
            .cloned()
            .collect();
        if let Err(e) = store::save_topics(&self.config.log_dirs[0], &topics).await {
            crate::stop::fatal(&format!("cannot persist the topic list: {e}"));
        }
        self.broadcast(|| ShardRequest::ApplyMetadata(delta.clone()))
            .await;
    }

    /// Writes `recovery-point-offset-checkpoint` in every log dir from every shard's
    /// partitions (shard 0, periodically with `sync`, and at shut-down after every log
    /// was closed, which synced it).
    pub async fn checkpoint_recovery_points(&self, sync: bool) {
        let mut points = Vec::new();
        for reply in self
            .broadcast(|| ShardRequest::RecoveryPoints { sync })
            .await
        {
            points.extend(crate::expect_reply!(reply, RecoveryPoints));
        }
        for dir in &self.config.log_dirs {
            let entries = points
                .iter()
                .filter(|(tp, _)| dir.join(tp.dir_name()).is_dir())
                .cloned()
                .collect();
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
