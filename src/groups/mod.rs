//! Group coordinators: consumer groups, their rebalances and their committed offsets.
//!
//! Group G is coordinated by the shard that owns partition `p = abs(hash(G)) % N` of
//! `__consumer_offsets` (Kafka's partitioning, Java's `String.hashCode`), so groups
//! spread over cores with the partitions. Every shard has one `GroupCoordinator`; it
//! knows the groups of the offsets partitions its shard owns and nothing else. Other
//! shards reach it only through `routing` (`Router::on_coordinator`), which runs one of
//! its methods — one per Kafka group API — on its shard.
//!
//! State is kept as Kafka keeps it: every change that must survive is written to the
//! group's offsets partition as a record in Kafka's format (`records`), durably
//! (fdatasync, as `offsets.commit.required.acks=-1` asks), before the client is
//! answered. When a shard opens an offsets partition it replays it to rebuild its
//! groups (`load_partition`).
//!
//! - `classic`: the JoinGroup/SyncGroup/Heartbeat/LeaveGroup state machine.
//! - `consumer`: KIP-848 groups (ConsumerGroupHeartbeat) and their reconciliation.
//! - `assignor`: the server-side `uniform` and `range` assignors.
//! - `records`: the `__consumer_offsets` record formats.
//!
//! Each group has one timer task that sleeps until the group's next deadline (a
//! member's session, the end of a join or sync phase) and is woken when the group
//! changes. Invariants: a group lives in exactly one coordinator; its in-memory state
//! is changed synchronously, records are appended in the order of those changes, and
//! a client is answered only after the records its request caused are durable.
//!
//! The coordinator's methods live beside the concepts they serve, each in its own
//! `impl GroupCoordinator` block, all run on the coordinator's shard:
//!
//! - `classic_api`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//! - `consumer_api`: ConsumerGroupHeartbeat, ConsumerGroupDescribe.
//! - `offsets`: OffsetCommit, OffsetFetch, OffsetDelete and offset expiry.
//! - `txn_offsets`: TxnOffsetCommit and the end of its transactions (`complete_txn`):
//!   offsets pending under a producer id until its COMMIT or ABORT marker.
//! - `admin`: DescribeGroups, ListGroups, DeleteGroups.
//! - `load`: the replay of an offsets partition when its shard opens it.
//! - `error`: what a coordinator refuses or fails at (`GroupError`), and its Kafka codes.
//!
//! This module keeps what they share: the coordinator and its groups, one slot per
//! group with the group's timer, and `persist`, the one road from a group's change to
//! its offsets partition.

mod admin;
pub mod assignor;
pub mod classic;
mod classic_api;
pub mod consumer;
mod consumer_api;
pub mod error;
mod load;
mod offsets;
pub mod records;
mod txn_offsets;

pub use error::{GroupError, response_code};
pub use offsets::{CommittedOffset, offset_commit_response};
pub use txn_offsets::txn_offset_commit_response;

use crate::config::BrokerConfig;
use crate::futures::race;
use crate::metadata::controller::NewTopic;
use crate::model::{GroupEpoch, Offset, ProducerEpoch, ProducerId, Timestamp, TopicPartition};
use crate::partition::Partition;
use crate::protocol::ErrorCode;
use crate::protocol::records::{BatchBuilder, Compression, NO_SEQUENCE, RecordBatch};
use classic::{ClassicGroup, ClassicLimits, ClassicState};
use consumer::{ConsumerGroup, ConsumerLimits};
use records::CoordinatorRecord;
use shards::rt;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Kafka's internal topic of group records and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `__consumer_offsets` as Kafka creates it: `offsets.topic.num.partitions` partitions,
/// compacted, segments of `offsets.topic.segment.bytes`, the coordinators' codec kept.
pub fn offsets_topic(config: &BrokerConfig) -> NewTopic {
    NewTopic::internal(
        OFFSETS_TOPIC,
        config.offsets_topic_num_partitions,
        config.offsets_topic_segment_bytes,
    )
}

/// The partition of `__consumer_offsets` that holds a group: Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions` (`model::partition_for_key`).
pub fn offsets_partition(group_id: &str, partitions: i32) -> i32 {
    crate::model::partition_for_key(group_id, partitions)
}

/// The broker settings the coordinators apply.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub classic: ClassicLimits,
    pub consumer: ConsumerLimits,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.retention.minutes`.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval: Duration,
}

impl GroupConfig {
    pub fn from_broker(config: &BrokerConfig) -> GroupConfig {
        GroupConfig {
            classic: ClassicLimits {
                min_session_timeout_ms: config.group_min_session_timeout_ms,
                max_session_timeout_ms: config.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
                max_size: config.group_max_size.max(0) as usize,
            },
            consumer: ConsumerLimits {
                session_timeout_ms: config.group_consumer_session_timeout_ms,
                heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
                max_size: config.group_consumer_max_size.max(0) as usize,
                assignors: config.group_consumer_assignors.clone(),
            },
            offset_metadata_max_bytes: config.offset_metadata_max_bytes.max(0) as usize,
            offsets_retention: Duration::from_secs(
                60 * config.offsets_retention_minutes.max(0) as u64,
            ),
            offsets_retention_check_interval: Duration::from_millis(
                config.offsets_retention_check_interval_ms.max(1) as u64,
            ),
        }
    }
}

/// The protocol a group's members speak.
pub enum GroupKind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

pub struct Group {
    pub id: String,
    /// The `__consumer_offsets` partition its records go to.
    pub partition: i32,
    pub kind: GroupKind,
    pub offsets: BTreeMap<TopicPartition, CommittedOffset>,
    /// Offsets written by TxnOffsetCommit whose transaction has not ended, by producer
    /// id: invisible to OffsetFetch until `complete_txn` commits them.
    pub pending: BTreeMap<ProducerId, BTreeMap<TopicPartition, CommittedOffset>>,
}

impl Group {
    /// Kafka's state name, as DescribeGroups and ListGroups show it.
    pub fn state_name(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.state.to_string(),
            GroupKind::Consumer(g) => g.state_name().to_string(),
        }
    }

    fn type_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            GroupKind::Consumer(_) => "consumer".to_string(),
        }
    }

    fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.is_empty(),
            GroupKind::Consumer(g) => g.members.is_empty(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match &self.kind {
            GroupKind::Classic(g) => g.next_deadline(),
            GroupKind::Consumer(g) => g.next_deadline(),
        }
    }
    /// The records that delete the whole group: tombstones for its metadata and offsets,
    /// pending ones included (a replayed tombstone drops them too).
    fn tombstones(&self) -> Vec<CoordinatorRecord> {
        let offsets: std::collections::BTreeSet<&TopicPartition> = self
            .offsets
            .keys()
            .chain(self.pending.values().flat_map(|p| p.keys()))
            .collect();
        let mut out: Vec<CoordinatorRecord> = offsets
            .into_iter()
            .map(|tp| CoordinatorRecord::Offset {
                group: self.id.clone(),
                tp: tp.clone(),
                value: None,
            })
            .collect();
        match &self.kind {
            GroupKind::Classic(_) => out.push(CoordinatorRecord::ClassicGroup {
                group: self.id.clone(),
                value: None,
            }),
            GroupKind::Consumer(g) => out.extend(g.tombstones(&self.id)),
        }
        out
    }
}

/// A group, the signal that wakes its timer, and the timer.
struct GroupSlot {
    group: RefCell<Group>,
    changed: crate::storage::Notify,
    removed: Cell<bool>,
    timer: RefCell<Option<rt::Task<()>>>,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

pub struct GroupCoordinator {
    config: GroupConfig,
    /// The `__consumer_offsets` partitions this shard owns, loaded, by index.
    partitions: RefCell<HashMap<i32, Rc<Partition>>>,
    /// How many partitions `__consumer_offsets` has (0 until it exists).
    partition_count: Cell<i32>,
    groups: RefCell<HashMap<String, Rc<GroupSlot>>>,
    expiry: RefCell<Option<rt::Task<()>>>,
}

fn now_ms() -> i64 {
    Timestamp::now().0
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Rc<GroupCoordinator> {
        Rc::new(GroupCoordinator {
            config,
            partitions: RefCell::new(HashMap::new()),
            partition_count: Cell::new(0),
            groups: RefCell::new(HashMap::new()),
            expiry: RefCell::new(None),
        })
    }

    /// How many groups this coordinator holds (metrics).
    pub fn group_count(&self) -> usize {
        self.groups.borrow().len()
    }

    /// The offsets partition of a group, if this coordinator owns it.
    fn coordinates(&self, group_id: &str) -> Result<i32, GroupError> {
        // Every record of a group carries its id in an `i16`-length string.
        if group_id.len() > i16::MAX as usize {
            return Err(GroupError::InvalidGroupId);
        }
        let count = self.partition_count.get();
        if count == 0 {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let partition = offsets_partition(group_id, count);
        if self.partitions.borrow().contains_key(&partition) {
            Ok(partition)
        } else {
            Err(GroupError::NotCoordinator)
        }
    }

    fn slot(&self, group_id: &str) -> Option<Rc<GroupSlot>> {
        self.groups.borrow().get(group_id).cloned()
    }

    /// Adds a group and starts its timer.
    fn insert(self: &Rc<Self>, group: Group) -> Rc<GroupSlot> {
        let id = group.id.clone();
        let slot = Rc::new(GroupSlot {
            group: RefCell::new(group),
            changed: crate::storage::Notify::new(),
            removed: Cell::new(false),
            timer: RefCell::new(None),
        });
        let timer = rt::spawn(run_timer(self.clone(), slot.clone()));
        *slot.timer.borrow_mut() = Some(timer);
        let previous = self.groups.borrow_mut().insert(id.clone(), slot.clone());
        assert!(previous.is_none(), "group {id} inserted twice");
        slot
    }

    fn remove(&self, group_id: &str) {
        if let Some(slot) = self.groups.borrow_mut().remove(group_id) {
            slot.removed.set(true);
            // Dropping the task cancels the timer (unless it is the one running this).
            if let Some(timer) = slot.timer.borrow_mut().take() {
                timer.detach();
            }
            slot.changed.notify_all();
        }
    }

    fn new_classic(&self, group_id: &str, partition: i32) -> Group {
        Group {
            id: group_id.to_string(),
            partition,
            kind: GroupKind::Classic(ClassicGroup::new(
                group_id,
                self.config.classic.initial_rebalance_delay_ms,
            )),
            offsets: BTreeMap::new(),
            pending: BTreeMap::new(),
        }
    }

    /// Appends records to an offsets partition and waits until they are durable.
    async fn persist(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
    ) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        self.append(partition, records, None).await.map(drop)
    }

    /// Appends records (at least one) to an offsets partition as one batch, transactional
    /// for `producer` (Kafka writes TxnOffsetCommit's records so: producer id and epoch,
    /// no sequence), and waits until they are durable. Returns the offset of the first:
    /// record `i` lies at that plus `i`.
    async fn append(
        &self,
        partition: i32,
        records: &[CoordinatorRecord],
        producer: Option<(ProducerId, ProducerEpoch)>,
    ) -> Result<Offset, GroupError> {
        assert!(!records.is_empty(), "an append of no records");
        let log = self.partitions.borrow().get(&partition).cloned();
        let Some(log) = log else {
            return Err(GroupError::NotCoordinator);
        };
        let mut builder = BatchBuilder::new(Compression::None);
        if let Some((id, epoch)) = producer {
            builder = builder
                .producer(id.0, epoch.0, NO_SEQUENCE)
                .transactional(true);
        }
        let now = now_ms();
        for record in records {
            let (key, value) = record.encode().map_err(|e| {
                tracing::warn!("a coordinator record does not encode: {e}");
                GroupError::UnknownServerError
            })?;
            builder.push(now, Some(&key), value.as_deref(), &[]);
        }
        let batch = RecordBatch::parse(builder.build(0)).expect("a built batch parses");
        match log.append(&[batch], true).await {
            Ok(info) => Ok(info.first_offset),
            Err(e) => {
                tracing::warn!("writing to {}: {}", log.tp, e.message);
                // The partition's own failure, a raw Kafka code from the log below: what
                // it means for the group.
                Err(match e.code {
                    ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
                        GroupError::InvalidCommitOffsetSize
                    }
                    ErrorCode::NotLeaderOrFollower => GroupError::NotCoordinator,
                    // A newer incarnation of the transactional producer wrote here.
                    ErrorCode::InvalidProducerEpoch => GroupError::InvalidProducerEpoch,
                    _ => GroupError::CoordinatorNotAvailable,
                })
            }
        }
    }

    /// Writes the group's record if its state machine asked for it.
    async fn persist_if_emptied(&self, slot: &GroupSlot) {
        let record = {
            let mut group = slot.group.borrow_mut();
            let id = group.id.clone();
            match &mut group.kind {
                GroupKind::Classic(g) => {
                    g.take_persist().then(|| CoordinatorRecord::ClassicGroup {
                        group: id,
                        value: Some(g.to_record()),
                    })
                }
                GroupKind::Consumer(_) => None,
            }
        };
        if let Some(record) = record {
            let partition = slot.group.borrow().partition;
            if let Err(error) = self.persist(partition, &[record]).await {
                tracing::warn!("could not persist an emptied group: {error:?}");
            }
        }
    }

    /// Forgets a group that has nothing left: no members, no offsets (committed or
    /// pending), no rebalance.
    fn forget_if_dead(&self, slot: &GroupSlot) {
        let forget = {
            let group = slot.group.borrow();
            group.offsets.is_empty()
                && group.pending.is_empty()
                && match &group.kind {
                    GroupKind::Classic(g) => {
                        g.is_empty() && g.state == ClassicState::Empty && g.generation == 0
                    }
                    GroupKind::Consumer(g) => {
                        g.members.is_empty() && g.group_epoch == GroupEpoch::ZERO
                    }
                }
        };
        if forget {
            let id = slot.group.borrow().id.clone();
            self.remove(&id);
        }
    }

    // ---- timers ----

    async fn on_timer(self: &Rc<Self>, slot: &Rc<GroupSlot>) {
        let now = Instant::now();
        let records = {
            let mut group = slot.group.borrow_mut();
            let group_id = group.id.clone();
            match &mut group.kind {
                GroupKind::Classic(classic) => {
                    let expired = classic.expire(now);
                    for member in &expired {
                        tracing::info!("group {group_id}: member {member} timed out");
                    }
                    Vec::new()
                }
                GroupKind::Consumer(consumer) => consumer.expire(&group_id, now),
            }
        };
        slot.changed.notify_all();
        if !records.is_empty() {
            let partition = slot.group.borrow().partition;
            if let Err(error) = self.persist(partition, &records).await {
                tracing::warn!("could not persist a timed-out member: {error:?}");
            }
        }
        self.persist_if_emptied(slot).await;
        // A member that never came back with its id leaves a group with nothing in it.
        self.forget_if_dead(slot);
    }
}

/// One group's timer: sleeps until the group's next deadline or its next change.
async fn run_timer(coordinator: Rc<GroupCoordinator>, slot: Rc<GroupSlot>) {
    loop {
        let changed = slot.changed.listen();
        if slot.removed.get() {
            return;
        }
        // Never a deadline in the past: whatever was due has just been applied.
        let deadline = slot
            .group
            .borrow()
            .next_deadline()
            .map(|d| d.max(Instant::now() + Duration::from_millis(1)));
        let mut waits: Vec<Boxed<'_, bool>> = vec![Box::pin(async move {
            changed.await;
            false
        })];
        if let Some(deadline) = deadline {
            waits.push(Box::pin(async move {
                rt::sleep(deadline.saturating_duration_since(Instant::now())).await;
                true
            }));
        }
        let due = race(waits).await;
        if slot.removed.get() {
            return;
        }
        if due {
            coordinator.on_timer(&slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_on_the_partition_kafka_picks() {
        assert_eq!(offsets_partition("my-group", 50), 12);
        assert_eq!(offsets_partition("test-consumer-group", 50), 31);
    }
}
