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

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod records;

use crate::config::BrokerConfig;
use crate::futures::race;
use crate::metadata::MetadataImage;
use crate::metadata::controller::NewTopic;
use crate::model::{Timestamp, TopicPartition};
use crate::partition::Partition;
use crate::protocol::ErrorCode;
use crate::protocol::generated::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use crate::protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use crate::protocol::generated::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use crate::protocol::generated::data::consumer_protocol_subscription::ConsumerProtocolSubscription;
use crate::protocol::generated::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use crate::protocol::generated::group_coordinator::offset_commit_value::OffsetCommitValue;
use crate::protocol::generated::heartbeat_request::HeartbeatRequest;
use crate::protocol::generated::join_group_request::JoinGroupRequest;
use crate::protocol::generated::join_group_response::JoinGroupResponse;
use crate::protocol::generated::leave_group_request::LeaveGroupRequest;
use crate::protocol::generated::leave_group_response::{LeaveGroupResponse, MemberResponse};
use crate::protocol::generated::list_groups_response::ListedGroup;
use crate::protocol::generated::offset_commit_request::OffsetCommitRequest;
use crate::protocol::generated::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::generated::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::generated::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use crate::protocol::generated::offset_fetch_request::OffsetFetchRequestGroup;
use crate::protocol::generated::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use crate::protocol::generated::sync_group_request::SyncGroupRequest;
use crate::protocol::generated::sync_group_response::SyncGroupResponse;
use crate::protocol::records::{BatchBuilder, Compression, RecordBatch, batches};
use crate::protocol::wire::Reader;
use classic::{ClassicGroup, ClassicLimits, ClassicState, ClientInfo, JoinOutcome, SyncOutcome};
use consumer::{ConsumerGroup, ConsumerLimits};
use records::CoordinatorRecord;
use shards::rt;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Kafka's internal topic of group records and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `__consumer_offsets` as Kafka creates it: `offsets.topic.num.partitions` partitions,
/// compacted, segments of `offsets.topic.segment.bytes`, the coordinators' codec kept.
pub fn offsets_topic(config: &BrokerConfig) -> NewTopic {
    NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: config.offsets_topic_num_partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("producer".into())),
            (
                "segment.bytes".into(),
                Some(config.offsets_topic_segment_bytes.to_string()),
            ),
        ],
    }
}

/// The partition of `__consumer_offsets` that holds a group: Kafka's
/// `Utils.abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode` over
/// UTF-16 code units, so a group lands where Kafka would put it.
pub fn offsets_partition(group_id: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "__consumer_offsets has partitions");
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
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

/// Whether every string a JoinGroup puts into the group's record fits the record's
/// `i16`-length strings (the member id is the client id, a dash and 22 characters).
fn join_fits_group_record(client: &ClientInfo, request: &JoinGroupRequest) -> bool {
    let fits = |s: &str| s.len() <= i16::MAX as usize;
    fits(&request.member_id)
        && client.client_id.len() + 1 + 22 <= i16::MAX as usize
        && fits(&client.client_host)
        && request.group_instance_id.as_deref().is_none_or(fits)
        && fits(&request.protocol_type)
        && request.protocols.iter().all(|p| fits(&p.name))
}

/// A committed offset as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set by OffsetCommit v2–v4's retention time.
    pub expire_timestamp_ms: Option<i64>,
}

impl CommittedOffset {
    fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms.unwrap_or(-1),
            ..OffsetCommitValue::default()
        }
    }

    fn from_value(value: &OffsetCommitValue) -> CommittedOffset {
        CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp,
            expire_timestamp_ms: (value.expire_timestamp >= 0).then_some(value.expire_timestamp),
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

    /// Topics the members subscribe to, which OffsetDelete may not touch.
    fn subscribed_topics(&self) -> BTreeSet<String> {
        match &self.kind {
            GroupKind::Classic(g) if g.protocol_type.as_deref() == Some("consumer") => {
                let protocol = g.protocol_name.clone().unwrap_or_default();
                g.members
                    .values()
                    .flat_map(|m| subscription_topics(m.metadata_for(&protocol)))
                    .collect()
            }
            GroupKind::Classic(_) => BTreeSet::new(),
            GroupKind::Consumer(g) => g.subscribed_topic_names(),
        }
    }

    /// Removes the offsets past retention at `now_ms`: every offset of a group empty for
    /// `retention_ms` (since it became empty or since the commit, whichever is later;
    /// KIP-211), and any whose explicit expire time passed. Returns their tombstones,
    /// and whether the group is left with nothing and goes too (its tombstones added).
    fn expire_offsets(&mut self, now_ms: i64, retention_ms: i64) -> (Vec<CoordinatorRecord>, bool) {
        let empty_since = match &self.kind {
            GroupKind::Classic(g) if g.state == ClassicState::Empty => Some(g.state_timestamp_ms),
            GroupKind::Consumer(g) if g.members.is_empty() => Some(g.empty_since_ms),
            _ => None,
        };
        let expired: Vec<TopicPartition> = self
            .offsets
            .iter()
            .filter(|(_, c)| match c.expire_timestamp_ms {
                Some(at) => at <= now_ms,
                None => empty_since.is_some_and(|since| {
                    since
                        .max(c.commit_timestamp_ms)
                        .saturating_add(retention_ms)
                        <= now_ms
                }),
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        let mut records: Vec<CoordinatorRecord> = expired
            .into_iter()
            .map(|tp| {
                self.offsets.remove(&tp);
                CoordinatorRecord::Offset {
                    group: self.id.clone(),
                    tp,
                    value: None,
                }
            })
            .collect();
        let delete_group = empty_since.is_some() && self.offsets.is_empty() && self.is_empty();
        if delete_group {
            records.extend(self.tombstones());
        }
        (records, delete_group)
    }

    /// The records that delete the whole group: tombstones for its metadata and offsets.
    fn tombstones(&self) -> Vec<CoordinatorRecord> {
        let mut out: Vec<CoordinatorRecord> = self
            .offsets
            .keys()
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

/// The OffsetCommit answer: every partition of the request with the code `codes` gives it.
pub fn offset_commit_response(
    request: &OffsetCommitRequest,
    codes: &dyn Fn(&str, i32) -> ErrorCode,
) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: request
            .topics
            .iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: codes(&t.name, p.partition_index).code(),
                        ..OffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..OffsetCommitResponseTopic::default()
            })
            .collect(),
        ..OffsetCommitResponse::default()
    }
}

/// The topics of a consumer-protocol subscription (any version: newer ones are read as
/// the newest this codec knows, as Kafka's consumer protocol does).
fn subscription_topics(metadata: bytes::Bytes) -> Vec<String> {
    use crate::protocol::codec::{Decodable, Message};
    let mut r = Reader::new(metadata);
    let Ok(version) = r.i16() else {
        return Vec::new();
    };
    let version = version.clamp(0, ConsumerProtocolSubscription::VERSIONS.max);
    ConsumerProtocolSubscription::decode(&mut r, version)
        .map(|s| s.topics)
        .unwrap_or_default()
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

/// A client mistake or a coordinator condition, as a Kafka error code.
type GroupResult<T> = Result<T, ErrorCode>;

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
    fn coordinates(&self, group_id: &str) -> GroupResult<i32> {
        // Every record of a group carries its id in an `i16`-length string.
        if group_id.len() > i16::MAX as usize {
            return Err(ErrorCode::InvalidGroupId);
        }
        let count = self.partition_count.get();
        if count == 0 {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let partition = offsets_partition(group_id, count);
        if self.partitions.borrow().contains_key(&partition) {
            Ok(partition)
        } else {
            Err(ErrorCode::NotCoordinator)
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
        }
    }

    /// Appends records to an offsets partition and waits until they are durable.
    async fn persist(&self, partition: i32, records: &[CoordinatorRecord]) -> GroupResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let log = self.partitions.borrow().get(&partition).cloned();
        let Some(log) = log else {
            return Err(ErrorCode::NotCoordinator);
        };
        let mut builder = BatchBuilder::new(Compression::None);
        let now = now_ms();
        for record in records {
            let (key, value) = record.encode().map_err(|e| {
                tracing::warn!("a coordinator record does not encode: {e}");
                ErrorCode::UnknownServerError
            })?;
            builder.push(now, Some(&key), value.as_deref(), &[]);
        }
        let batch = RecordBatch::parse(builder.build(0)).expect("a built batch parses");
        match log.append(&[batch], true).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!("writing to {}: {}", log.tp, e.message);
                Err(match e.code {
                    ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
                        ErrorCode::InvalidCommitOffsetSize
                    }
                    ErrorCode::NotLeaderOrFollower => ErrorCode::NotCoordinator,
                    _ => ErrorCode::CoordinatorNotAvailable,
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
            if let Err(code) = self.persist(partition, &[record]).await {
                tracing::warn!("could not persist an emptied group: {code:?}");
            }
        }
    }

    // ---- loading and unloading offsets partitions ----

    /// Replays an offsets partition this shard now owns and takes over its groups.
    pub async fn load_partition(
        self: &Rc<Self>,
        index: i32,
        partition_count: i32,
        partition: Rc<Partition>,
    ) {
        self.partition_count.set(partition_count);
        let started = Instant::now();
        let mut state = Replay::default();
        let log = partition.log();
        let end = partition.high_watermark();
        let mut offset = partition.log_start_offset();
        let mut records = 0u64;
        while offset < end {
            let read = log.read_bytes(offset, 1 << 20, end, true).await;
            let Some((bytes, next)) = read.unwrap_or_else(|e| {
                crate::stop::fatal(&format!("cannot replay {}: {e}", partition.tp))
            }) else {
                break;
            };
            for batch in batches(bytes) {
                let Ok(batch) = batch else { break };
                if batch.header().is_control() {
                    continue;
                }
                let Ok(iter) = batch.records() else { continue };
                for record in iter.flatten() {
                    let Some(key) = record.key else { continue };
                    records += 1;
                    match CoordinatorRecord::decode(key, record.value) {
                        Ok(record) => state.apply(record),
                        Err(e) => tracing::warn!("{}: skipping a record: {e}", partition.tp),
                    }
                }
            }
            offset = next;
            rt::yield_if_needed().await;
        }
        self.partitions
            .borrow_mut()
            .insert(index, partition.clone());
        let now = Instant::now();
        let groups = state.into_groups(index, &self.config, now);
        let count = groups.len();
        for group in groups {
            self.remove(&group.id);
            self.insert(group);
        }
        if self.expiry.borrow().is_none() {
            let this = self.clone();
            *self.expiry.borrow_mut() = Some(rt::spawn(async move {
                loop {
                    rt::sleep(this.config.offsets_retention_check_interval).await;
                    this.expire_offsets().await;
                }
            }));
        }
        if records > 0 {
            tracing::info!(
                "{}: loaded {count} groups from {records} records in {:?}",
                partition.tp,
                started.elapsed()
            );
        }
    }

    // ---- the classic protocol ----

    pub async fn join(
        self: &Rc<Self>,
        version: i16,
        client: ClientInfo,
        request: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let error = |code: ErrorCode| JoinGroupResponse {
            error_code: code.code(),
            generation_id: -1,
            member_id: request.member_id.clone(),
            ..JoinGroupResponse::default()
        };
        if request.group_id.is_empty() {
            return error(ErrorCode::InvalidGroupId);
        }
        if !join_fits_group_record(&client, &request) {
            return error(ErrorCode::InvalidRequest);
        }
        let limits = &self.config.classic;
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return error(ErrorCode::InvalidSessionTimeout);
        }
        let partition = match self.coordinates(&request.group_id) {
            Ok(partition) => partition,
            Err(code) => return error(code),
        };
        let slot = match self.slot(&request.group_id) {
            Some(slot) => slot,
            None if request.member_id.is_empty() => {
                self.insert(self.new_classic(&request.group_id, partition))
            }
            None => return error(ErrorCode::UnknownMemberId),
        };
        let outcome = {
            let mut group = slot.group.borrow_mut();
            let group = &mut *group;
            if let GroupKind::Consumer(consumer) = &group.kind {
                if !consumer.members.is_empty() {
                    return error(ErrorCode::InconsistentGroupProtocol);
                }
                // An empty KIP-848 group turns into a classic one (its offsets stay).
                group.kind = GroupKind::Classic(ClassicGroup::new(
                    &group.id,
                    limits.initial_rebalance_delay_ms,
                ));
            }
            let GroupKind::Classic(classic) = &mut group.kind else {
                unreachable!("converted above")
            };
            // Join rebalance timeouts default to the session timeout (v0).
            let rebalance_timeout_ms = if version == 0 || request.rebalance_timeout_ms < 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            };
            classic.join(
                classic::JoinRequest {
                    version,
                    member_id: request.member_id.clone(),
                    group_instance_id: request.group_instance_id.clone(),
                    session_timeout_ms: request.session_timeout_ms,
                    rebalance_timeout_ms,
                    protocol_type: request.protocol_type.clone(),
                    protocols: request
                        .protocols
                        .iter()
                        .map(|p| (p.name.clone(), p.metadata.clone()))
                        .collect(),
                    client,
                },
                limits,
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        let response = match outcome {
            JoinOutcome::Now(response) => response,
            JoinOutcome::PersistThenAnswer(response) => {
                let record = self.classic_record(&slot);
                if let Err(code) = self.persist(partition, &[record]).await {
                    return error(code);
                }
                response
            }
            JoinOutcome::Wait(answer) => answer
                .await
                .unwrap_or_else(|_| error(ErrorCode::CoordinatorNotAvailable)),
        };
        self.persist_if_emptied(&slot).await;
        self.forget_if_dead(&slot);
        response
    }

    fn classic_record(&self, slot: &GroupSlot) -> CoordinatorRecord {
        let group = slot.group.borrow();
        let GroupKind::Classic(classic) = &group.kind else {
            panic!("classic_record of a consumer group {}", group.id)
        };
        CoordinatorRecord::ClassicGroup {
            group: group.id.clone(),
            value: Some(classic.to_record()),
        }
    }

    /// Forgets a group that has nothing left: no members, no offsets, no rebalance.
    fn forget_if_dead(&self, slot: &GroupSlot) {
        let forget = {
            let group = slot.group.borrow();
            group.offsets.is_empty()
                && match &group.kind {
                    GroupKind::Classic(g) => {
                        g.is_empty() && g.state == ClassicState::Empty && g.generation == 0
                    }
                    GroupKind::Consumer(g) => g.members.is_empty() && g.group_epoch == 0,
                }
        };
        if forget {
            let id = slot.group.borrow().id.clone();
            self.remove(&id);
        }
    }

    /// The classic group of a request that needs one to exist.
    fn classic_slot(&self, group_id: &str) -> GroupResult<Rc<GroupSlot>> {
        if group_id.is_empty() {
            return Err(ErrorCode::InvalidGroupId);
        }
        self.coordinates(group_id)?;
        let slot = self.slot(group_id).ok_or(ErrorCode::UnknownMemberId)?;
        if !matches!(slot.group.borrow().kind, GroupKind::Classic(_)) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(slot)
    }

    pub async fn sync(self: &Rc<Self>, request: SyncGroupRequest) -> SyncGroupResponse {
        let error = |code: ErrorCode| SyncGroupResponse {
            error_code: code.code(),
            ..SyncGroupResponse::default()
        };
        let slot = match self.classic_slot(&request.group_id) {
            Ok(slot) => slot,
            Err(code) => return error(code),
        };
        let outcome = {
            let mut group = slot.group.borrow_mut();
            let GroupKind::Classic(classic) = &mut group.kind else {
                return error(ErrorCode::UnknownMemberId);
            };
            classic.sync(
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
                request.protocol_type.as_deref(),
                request.protocol_name.as_deref(),
                request
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.clone(), a.assignment.clone()))
                    .collect(),
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        match outcome {
            SyncOutcome::Now(response) => response,
            SyncOutcome::Wait(answer) => answer
                .await
                .unwrap_or_else(|_| error(ErrorCode::CoordinatorNotAvailable)),
            SyncOutcome::Persist { generation, answer } => {
                let record = self.classic_record(&slot);
                let partition = slot.group.borrow().partition;
                if let Err(code) = self.persist(partition, &[record]).await {
                    return error(code);
                }
                if let GroupKind::Classic(classic) = &mut slot.group.borrow_mut().kind {
                    classic.complete_sync(generation);
                }
                slot.changed.notify_all();
                answer
                    .await
                    .unwrap_or_else(|_| error(ErrorCode::CoordinatorNotAvailable))
            }
        }
    }

    pub fn heartbeat(&self, request: HeartbeatRequest) -> ErrorCode {
        let slot = match self.classic_slot(&request.group_id) {
            Ok(slot) => slot,
            Err(code) => return code,
        };
        let mut group = slot.group.borrow_mut();
        let GroupKind::Classic(classic) = &mut group.kind else {
            return ErrorCode::UnknownMemberId;
        };
        classic.heartbeat(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            Instant::now(),
        )
    }

    pub async fn leave(&self, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let identities: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
                .collect()
        } else {
            vec![(request.member_id.clone(), None)]
        };
        let top_level = |code: ErrorCode| LeaveGroupResponse {
            error_code: code.code(),
            ..LeaveGroupResponse::default()
        };
        let slot = match self.classic_slot(&request.group_id) {
            Ok(slot) => slot,
            Err(code) => return top_level(code),
        };
        let members: Vec<MemberResponse> = {
            let mut group = slot.group.borrow_mut();
            let GroupKind::Classic(classic) = &mut group.kind else {
                return top_level(ErrorCode::UnknownMemberId);
            };
            let results: Vec<MemberResponse> = identities
                .into_iter()
                .map(|(member_id, instance)| MemberResponse {
                    error_code: classic.leave(&member_id, instance.as_deref()).code(),
                    member_id,
                    group_instance_id: instance,
                    ..MemberResponse::default()
                })
                .collect();
            if results.iter().any(|r| r.error_code == 0) {
                classic.members_left(Instant::now());
            }
            results
        };
        slot.changed.notify_all();
        self.persist_if_emptied(&slot).await;
        if version < 3 {
            return top_level(ErrorCode::from_code(members[0].error_code));
        }
        LeaveGroupResponse {
            error_code: 0,
            members,
            ..LeaveGroupResponse::default()
        }
    }

    // ---- offsets ----

    pub async fn offset_commit(
        self: &Rc<Self>,
        metadata: &RefCell<MetadataImage>,
        version: i16,
        request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let respond =
            |codes: &dyn Fn(&str, i32) -> ErrorCode| offset_commit_response(&request, codes);
        let checked = self.check_offset_commit(version, &request);
        let slot = match checked {
            Ok(slot) => slot,
            Err(code) => return respond(&|_, _| code),
        };
        // Per-partition checks, then one record per accepted partition.
        let now = now_ms();
        let expire =
            (request.retention_time_ms >= 0).then(|| now.saturating_add(request.retention_time_ms));
        let mut errors: HashMap<(String, i32), ErrorCode> = HashMap::new();
        let mut accepted: Vec<(TopicPartition, CommittedOffset)> = Vec::new();
        {
            let metadata = metadata.borrow();
            for topic in &request.topics {
                let known = metadata.topic(&topic.name);
                for p in &topic.partitions {
                    let metadata_len = p.committed_metadata.as_ref().map_or(0, String::len);
                    let code = if known
                        .is_none_or(|t| p.partition_index < 0 || p.partition_index >= t.partitions)
                    {
                        ErrorCode::UnknownTopicOrPartition
                    } else if metadata_len > self.config.offset_metadata_max_bytes {
                        ErrorCode::OffsetMetadataTooLarge
                    } else {
                        accepted.push((
                            TopicPartition::new(topic.name.clone(), p.partition_index),
                            CommittedOffset {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata: p.committed_metadata.clone().unwrap_or_default(),
                                commit_timestamp_ms: now,
                                expire_timestamp_ms: expire,
                            },
                        ));
                        ErrorCode::None
                    };
                    errors.insert((topic.name.clone(), p.partition_index), code);
                }
            }
        }
        let (group_id, partition) = {
            let group = slot.group.borrow();
            (group.id.clone(), group.partition)
        };
        let records: Vec<CoordinatorRecord> = accepted
            .iter()
            .map(|(tp, committed)| CoordinatorRecord::Offset {
                group: group_id.clone(),
                tp: tp.clone(),
                value: Some(committed.to_value()),
            })
            .collect();
        // Memory follows the log: a commit is visible only once its record is durable,
        // and a failed write leaves the previous commit in place.
        let written = self.persist(partition, &records).await;
        if written.is_ok() {
            let mut group = slot.group.borrow_mut();
            for (tp, committed) in accepted {
                group.offsets.insert(tp, committed);
            }
        }
        respond(&|topic, index| {
            let code = errors[&(topic.to_string(), index)];
            match written {
                Err(failed) if code == ErrorCode::None => failed,
                _ => code,
            }
        })
    }

    /// Kafka's checks of an OffsetCommit against its group; creates the group for a
    /// simple consumer's commit (generation −1).
    fn check_offset_commit(
        self: &Rc<Self>,
        version: i16,
        request: &OffsetCommitRequest,
    ) -> GroupResult<Rc<GroupSlot>> {
        let partition = self.coordinates(&request.group_id)?;
        let generation = request.generation_id_or_member_epoch;
        let slot = match self.slot(&request.group_id) {
            Some(slot) => slot,
            None if generation < 0 => self.insert(self.new_classic(&request.group_id, partition)),
            // Kafka answers a commit for a group it does not know as a stale generation.
            None => return Err(ErrorCode::IllegalGeneration),
        };
        {
            let group = slot.group.borrow();
            match &group.kind {
                GroupKind::Classic(classic) => classic.check_offset_commit(
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                    generation,
                )?,
                GroupKind::Consumer(consumer) => {
                    consumer.check_offset_commit(version, &request.member_id, generation)?
                }
            }
        }
        Ok(slot)
    }

    pub fn offset_fetch(&self, request: OffsetFetchRequestGroup) -> OffsetFetchResponseGroup {
        let group_error = |code: ErrorCode| OffsetFetchResponseGroup {
            group_id: request.group_id.clone(),
            error_code: code.code(),
            ..OffsetFetchResponseGroup::default()
        };
        if let Err(code) = self.coordinates(&request.group_id) {
            return group_error(code);
        }
        let slot = self.slot(&request.group_id);
        let group = slot.as_ref().map(|s| s.group.borrow());
        if let (Some(group), Some(member_id)) = (&group, &request.member_id)
            && let GroupKind::Consumer(consumer) = &group.kind
            && let Err(code) = consumer.check_offset_fetch(member_id, request.member_epoch)
        {
            return group_error(code);
        }
        let partition =
            |index: i32, committed: Option<&CommittedOffset>| OffsetFetchResponsePartitions {
                partition_index: index,
                committed_offset: committed.map_or(-1, |c| c.offset),
                committed_leader_epoch: committed.map_or(-1, |c| c.leader_epoch),
                metadata: Some(committed.map(|c| c.metadata.clone()).unwrap_or_default()),
                error_code: 0,
                ..OffsetFetchResponsePartitions::default()
            };
        let topics = match &request.topics {
            Some(topics) => topics
                .iter()
                .map(|t| OffsetFetchResponseTopics {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&index| {
                            let tp = TopicPartition::new(t.name.clone(), index);
                            partition(index, group.as_ref().and_then(|g| g.offsets.get(&tp)))
                        })
                        .collect(),
                    ..OffsetFetchResponseTopics::default()
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<&str, Vec<OffsetFetchResponsePartitions>> =
                    BTreeMap::new();
                if let Some(group) = &group {
                    for (tp, committed) in &group.offsets {
                        by_topic
                            .entry(tp.topic.as_str())
                            .or_default()
                            .push(partition(tp.partition, Some(committed)));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchResponseTopics {
                        name: name.to_string(),
                        partitions,
                        ..OffsetFetchResponseTopics::default()
                    })
                    .collect()
            }
        };
        OffsetFetchResponseGroup {
            group_id: request.group_id.clone(),
            topics,
            error_code: 0,
            ..OffsetFetchResponseGroup::default()
        }
    }

    pub async fn offset_delete(
        &self,
        metadata: &RefCell<MetadataImage>,
        request: OffsetDeleteRequest,
    ) -> OffsetDeleteResponse {
        let top_level = |code: ErrorCode| OffsetDeleteResponse {
            error_code: code.code(),
            ..OffsetDeleteResponse::default()
        };
        if let Err(code) = self.coordinates(&request.group_id) {
            return top_level(code);
        }
        let Some(slot) = self.slot(&request.group_id) else {
            return top_level(ErrorCode::GroupIdNotFound);
        };
        let mut records = Vec::new();
        let topics: Vec<OffsetDeleteResponseTopic> = {
            let mut group = slot.group.borrow_mut();
            let subscribed = group.subscribed_topics();
            let non_consumer_active = matches!(&group.kind,
                GroupKind::Classic(g) if g.state != ClassicState::Empty
                    && g.protocol_type.as_deref() != Some("consumer"));
            if non_consumer_active {
                return top_level(ErrorCode::NonEmptyGroup);
            }
            let metadata = metadata.borrow();
            let group_id = group.id.clone();
            request
                .topics
                .iter()
                .map(|topic| {
                    let known = metadata.topic(&topic.name).is_some();
                    let partitions = topic
                        .partitions
                        .iter()
                        .map(|p| {
                            let code = if !known {
                                ErrorCode::UnknownTopicOrPartition
                            } else if subscribed.contains(&topic.name) {
                                ErrorCode::GroupSubscribedToTopic
                            } else {
                                let tp = TopicPartition::new(topic.name.clone(), p.partition_index);
                                if group.offsets.remove(&tp).is_some() {
                                    records.push(CoordinatorRecord::Offset {
                                        group: group_id.clone(),
                                        tp,
                                        value: None,
                                    });
                                }
                                ErrorCode::None
                            };
                            OffsetDeleteResponsePartition {
                                partition_index: p.partition_index,
                                error_code: code.code(),
                                ..OffsetDeleteResponsePartition::default()
                            }
                        })
                        .collect();
                    OffsetDeleteResponseTopic {
                        name: topic.name.clone(),
                        partitions,
                        ..OffsetDeleteResponseTopic::default()
                    }
                })
                .collect()
        };
        let partition = slot.group.borrow().partition;
        if let Err(code) = self.persist(partition, &records).await {
            return top_level(code);
        }
        OffsetDeleteResponse {
            error_code: 0,
            topics,
            ..OffsetDeleteResponse::default()
        }
    }

    /// Deletes committed offsets past `offsets.retention.minutes`: every offset of a
    /// group that has been empty that long (KIP-211), and any offset whose explicit
    /// expire time passed. Groups left with nothing are deleted.
    async fn expire_offsets(self: &Rc<Self>) {
        let now = now_ms();
        let retention_ms = self.config.offsets_retention.as_millis() as i64;
        let slots: Vec<Rc<GroupSlot>> = self.groups.borrow().values().cloned().collect();
        for slot in slots {
            let (partition, records, delete_group) = {
                let mut group = slot.group.borrow_mut();
                let (records, delete_group) = group.expire_offsets(now, retention_ms);
                (group.partition, records, delete_group)
            };
            if records.is_empty() {
                continue;
            }
            let id = slot.group.borrow().id.clone();
            tracing::info!(
                "group {id}: expiring {} offsets (offsets.retention.minutes)",
                records.len()
            );
            if delete_group {
                self.remove(&id);
            }
            if let Err(code) = self.persist(partition, &records).await {
                tracing::warn!("group {id}: could not write expired offsets: {code:?}");
            }
        }
    }

    // ---- admin ----

    pub fn describe(&self, group_id: &str) -> DescribedGroup {
        let dead = |code: ErrorCode| DescribedGroup {
            error_code: code.code(),
            group_id: group_id.to_string(),
            group_state: ClassicState::Dead.to_string(),
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        };
        if let Err(code) = self.coordinates(group_id) {
            return dead(code);
        }
        let Some(slot) = self.slot(group_id) else {
            return dead(ErrorCode::None);
        };
        let group = slot.group.borrow();
        let GroupKind::Classic(classic) = &group.kind else {
            return dead(ErrorCode::None);
        };
        let stable = classic.state == ClassicState::Stable;
        let protocol = classic.protocol_name.clone().unwrap_or_default();
        DescribedGroup {
            error_code: 0,
            group_id: group_id.to_string(),
            group_state: classic.state.to_string(),
            protocol_type: classic.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: classic
                .members
                .values()
                .map(|m| DescribedGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    member_metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Default::default()
                    },
                    member_assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Default::default()
                    },
                    ..DescribedGroupMember::default()
                })
                .collect(),
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        }
    }

    pub async fn delete(&self, group_id: &str) -> ErrorCode {
        if let Err(code) = self.coordinates(group_id) {
            return code;
        }
        let Some(slot) = self.slot(group_id) else {
            return ErrorCode::GroupIdNotFound;
        };
        let (partition, records) = {
            let group = slot.group.borrow();
            let empty = match &group.kind {
                GroupKind::Classic(g) => g.state == ClassicState::Empty && g.is_empty(),
                GroupKind::Consumer(g) => g.members.is_empty(),
            };
            if !empty {
                return ErrorCode::NonEmptyGroup;
            }
            (group.partition, group.tombstones())
        };
        self.remove(group_id);
        match self.persist(partition, &records).await {
            Ok(()) => ErrorCode::None,
            Err(code) => code,
        }
    }

    pub fn list(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let wanted = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        let mut listed: Vec<ListedGroup> = self
            .groups
            .borrow()
            .values()
            .filter_map(|slot| {
                let group = slot.group.borrow();
                let state = group.state_name();
                (wanted(states, &state) && wanted(types, group.type_name())).then(|| ListedGroup {
                    group_id: group.id.clone(),
                    protocol_type: group.protocol_type(),
                    group_state: state,
                    group_type: group.type_name().to_string(),
                    ..ListedGroup::default()
                })
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }

    // ---- KIP-848 consumer groups ----

    pub async fn consumer_heartbeat(
        self: &Rc<Self>,
        metadata: &RefCell<MetadataImage>,
        version: i16,
        client: ClientInfo,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let error = |code: ErrorCode, message: String| ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            error_message: Some(message),
            ..ConsumerGroupHeartbeatResponse::default()
        };
        let limits = &self.config.consumer;
        if let Err(e) = ConsumerGroup::validate(&request, version, limits) {
            return error(e.code, e.message);
        }
        let group_id = request.group_id.clone();
        let partition = match self.coordinates(&group_id) {
            Ok(partition) => partition,
            Err(code) => return error(code, format!("not the coordinator of {group_id}")),
        };
        let mut records = Vec::new();
        let slot = match self.slot(&group_id) {
            Some(slot) => slot,
            None if request.member_epoch == 0 => self.insert(Group {
                id: group_id.clone(),
                partition,
                kind: GroupKind::Consumer(ConsumerGroup::new(limits.clone())),
                offsets: BTreeMap::new(),
            }),
            None => {
                return error(
                    ErrorCode::UnknownMemberId,
                    format!("consumer group {group_id} does not exist"),
                );
            }
        };
        let result = {
            let mut group = slot.group.borrow_mut();
            if let GroupKind::Classic(classic) = &group.kind {
                if !classic.is_empty() {
                    return error(
                        ErrorCode::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group."),
                    );
                }
                // An empty classic group becomes a consumer group; its offsets stay.
                if classic.generation > 0 {
                    records.push(CoordinatorRecord::ClassicGroup {
                        group: group_id.clone(),
                        value: None,
                    });
                }
                group.kind = GroupKind::Consumer(ConsumerGroup::new(limits.clone()));
            }
            let GroupKind::Consumer(consumer) = &mut group.kind else {
                unreachable!("converted above")
            };
            consumer.heartbeat(
                &group_id,
                &request,
                &client,
                &metadata.borrow(),
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        match result {
            Err(e) => {
                self.persist(partition, &records).await.ok();
                error(e.code, e.message)
            }
            Ok((response, more)) => {
                records.extend(more);
                match self.persist(partition, &records).await {
                    Ok(()) => response,
                    Err(code) => error(code, format!("could not persist group {group_id}")),
                }
            }
        }
    }

    pub fn consumer_describe(
        &self,
        metadata: &RefCell<MetadataImage>,
        group_id: &str,
    ) -> ConsumerDescribedGroup {
        let error = |code: ErrorCode, message: String| ConsumerDescribedGroup {
            error_code: code.code(),
            error_message: Some(message),
            group_id: group_id.to_string(),
            authorized_operations: i32::MIN,
            ..ConsumerDescribedGroup::default()
        };
        if let Err(code) = self.coordinates(group_id) {
            return error(code, format!("not the coordinator of {group_id}"));
        }
        let Some(slot) = self.slot(group_id) else {
            return error(
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} not found."),
            );
        };
        let group = slot.group.borrow();
        match &group.kind {
            GroupKind::Consumer(consumer) => consumer.describe(group_id, &metadata.borrow()),
            GroupKind::Classic(_) => error(
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ),
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
            if let Err(code) = self.persist(partition, &records).await {
                tracing::warn!("could not persist a timed-out member: {code:?}");
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

/// What replaying an offsets partition found, group by group.
#[derive(Default)]
struct Replay {
    groups: BTreeMap<String, ReplayedGroup>,
}

#[derive(Default)]
struct ReplayedGroup {
    offsets: BTreeMap<TopicPartition, CommittedOffset>,
    classic: Option<records::group_metadata_value::GroupMetadataValue>,
    consumer: consumer::Replayed,
}

impl Replay {
    fn apply(&mut self, record: CoordinatorRecord) {
        let Some(group_id) = record.group() else {
            return;
        };
        let group = self.groups.entry(group_id.to_string()).or_default();
        match record {
            CoordinatorRecord::Offset { tp, value, .. } => match value {
                Some(value) => {
                    group
                        .offsets
                        .insert(tp, CommittedOffset::from_value(&value));
                }
                None => {
                    group.offsets.remove(&tp);
                }
            },
            CoordinatorRecord::ClassicGroup { value, .. } => group.classic = value,
            CoordinatorRecord::Ignored { .. } => {}
            other => group.consumer.apply(other),
        }
    }

    fn into_groups(self, partition: i32, config: &GroupConfig, now: Instant) -> Vec<Group> {
        self.groups
            .into_iter()
            .filter_map(|(id, replayed)| {
                let kind = if let Some(consumer) = replayed.consumer.build(&config.consumer, now) {
                    GroupKind::Consumer(consumer)
                } else if let Some(value) = &replayed.classic {
                    GroupKind::Classic(ClassicGroup::from_record(
                        &id,
                        value,
                        config.classic.initial_rebalance_delay_ms,
                        now,
                    ))
                } else if !replayed.offsets.is_empty() {
                    GroupKind::Classic(ClassicGroup::new(
                        &id,
                        config.classic.initial_rebalance_delay_ms,
                    ))
                } else {
                    return None;
                };
                Some(Group {
                    id,
                    partition,
                    kind,
                    offsets: replayed.offsets,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_on_the_partition_kafka_picks() {
        // Java: Math.abs("my-group".hashCode()) % 50 and friends.
        assert_eq!(offsets_partition("", 50), 0);
        assert_eq!(offsets_partition("my-group", 50), 12);
        assert_eq!(offsets_partition("test-consumer-group", 50), 31);
        for id in ["a", "group-1", "ünïcode", "𝄞"] {
            assert!((0..50).contains(&offsets_partition(id, 50)));
        }
    }

    #[test]
    fn offsets_of_a_group_empty_longer_than_the_retention_expire_and_then_the_group() {
        let committed = |at: i64, expire: Option<i64>| CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: at,
            expire_timestamp_ms: expire,
        };
        let mut classic = ClassicGroup::new("g", 0);
        classic.state_timestamp_ms = 1_000;
        let mut group = Group {
            id: "g".into(),
            partition: 0,
            kind: GroupKind::Classic(classic),
            offsets: BTreeMap::from([
                (TopicPartition::new("t", 0), committed(500, None)),
                (TopicPartition::new("t", 1), committed(5_000, None)),
                (TopicPartition::new("t", 2), committed(500, Some(2_000))),
            ]),
        };
        // Explicit expiry first; the group has been empty since 1000, retention 10 s.
        let (records, gone) = group.expire_offsets(2_000, 10_000);
        assert_eq!((records.len(), gone), (1, false));
        let (records, gone) = group.expire_offsets(11_000, 10_000);
        assert_eq!(
            (records.len(), gone),
            (1, false),
            "t-0: empty since 1000 + 10 s"
        );
        // The last offset (committed at 5000) expires at 15000, and the group with it.
        let (records, gone) = group.expire_offsets(15_000, 10_000);
        assert!(gone);
        assert_eq!(records.len(), 2, "the offset's and the group's tombstones");
        assert!(records.iter().all(|r| match r {
            CoordinatorRecord::Offset { value, .. } => value.is_none(),
            CoordinatorRecord::ClassicGroup { value, .. } => value.is_none(),
            _ => false,
        }));
    }

    #[test]
    fn subscription_topics_reads_any_consumer_protocol_version() {
        use crate::protocol::codec::{Encodable, Encoder};
        let subscription = ConsumerProtocolSubscription {
            topics: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        for version in [0i16, 3] {
            let mut w = Encoder::new();
            w.put_i16(version);
            subscription.encode(&mut w, version).unwrap();
            assert_eq!(subscription_topics(w.into_bytes()), vec!["a", "b"]);
        }
        assert!(subscription_topics(bytes::Bytes::from_static(b"\x00")).is_empty());
    }
}
