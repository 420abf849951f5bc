//! Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete on the coordinator,
//! and their expiry after `offsets.retention.minutes` (KIP-211).
//!
//! A group's offsets live in its `Group` beside its members; each commit and each
//! deletion is an offset record (or tombstone) in the group's offsets partition.
//! Runs on the coordinator shard of the group; expiry runs there too, one task per
//! coordinator started by the first `load_partition`. Invariant: memory follows the
//! log — an offset is visible to OffsetFetch only once its record is durable, and a
//! failed write leaves the previous commit in place. Each offset remembers where its
//! record lies, so a transaction's offsets and plain commits are ordered as the log
//! orders them (`txn_offsets`).

use super::classic::ClassicState;
use super::records::CoordinatorRecord;
use super::{Group, GroupCoordinator, GroupError, GroupKind, GroupSlot, now_ms, response_code};
use crate::metadata::MetadataImage;
use crate::model::{GroupEpoch, LeaderEpoch, Offset, TopicPartition};
use crate::protocol::generated::data::consumer_protocol_subscription::ConsumerProtocolSubscription;
use crate::protocol::generated::group_coordinator::offset_commit_value::OffsetCommitValue;
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
use crate::protocol::wire::Reader;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

/// A committed offset as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: Offset,
    pub leader_epoch: LeaderEpoch,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set by OffsetCommit v2–v4's retention time.
    pub expire_timestamp_ms: Option<i64>,
    /// Where its record lies in the offsets partition.
    pub record_offset: Offset,
}

impl CommittedOffset {
    fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset.0,
            leader_epoch: self.leader_epoch.0,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms.unwrap_or(-1),
            ..OffsetCommitValue::default()
        }
    }

    pub(super) fn from_value(value: &OffsetCommitValue, record_offset: Offset) -> CommittedOffset {
        CommittedOffset {
            offset: Offset(value.offset),
            leader_epoch: LeaderEpoch(value.leader_epoch),
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp,
            expire_timestamp_ms: (value.expire_timestamp >= 0).then_some(value.expire_timestamp),
            record_offset,
        }
    }

    /// The record that commits it for `group` and `tp`.
    pub(super) fn record(&self, group: &str, tp: &TopicPartition) -> CoordinatorRecord {
        CoordinatorRecord::Offset {
            group: group.to_string(),
            tp: tp.clone(),
            value: Some(self.to_value()),
        }
    }
}

impl Group {
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
        let pending: BTreeSet<&TopicPartition> =
            self.pending.values().flat_map(|p| p.keys()).collect();
        let expired: Vec<TopicPartition> = self
            .offsets
            .iter()
            // An open transaction's offset may still replace it: Kafka keeps it.
            .filter(|(tp, _)| !pending.contains(tp))
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
        let delete_group = empty_since.is_some()
            && self.offsets.is_empty()
            && self.pending.is_empty()
            && self.is_empty();
        if delete_group {
            records.extend(self.tombstones());
        }
        (records, delete_group)
    }
}

/// The OffsetCommit answer: every partition of the request with the error code `codes`
/// gives it (0: committed).
pub fn offset_commit_response(
    request: &OffsetCommitRequest,
    codes: &dyn Fn(&str, i32) -> i16,
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
                        error_code: codes(&t.name, p.partition_index),
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

/// One partition's offset in an OffsetCommit or TxnOffsetCommit request.
pub(super) struct OffsetToCommit<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<&'a str>,
}

/// Each partition's verdict in a commit, by (topic, partition).
pub(super) type CommitChecks = HashMap<(String, i32), Result<(), GroupError>>;

impl GroupCoordinator {
    pub async fn offset_commit(
        self: &Rc<Self>,
        metadata: &RefCell<MetadataImage>,
        version: i16,
        request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        let respond = |codes: &dyn Fn(&str, i32) -> i16| offset_commit_response(&request, codes);
        let checked = self.check_offset_commit(version, &request);
        let slot = match checked {
            Ok(slot) => slot,
            Err(e) => return respond(&|_, _| response_code(Err(e))),
        };
        // Per-partition checks, then one record per accepted partition.
        let now = now_ms();
        let expire =
            (request.retention_time_ms >= 0).then(|| now.saturating_add(request.retention_time_ms));
        let (checks, accepted) = self.accept_offsets(
            &metadata.borrow(),
            request.topics.iter().flat_map(|t| {
                t.partitions.iter().map(|p| OffsetToCommit {
                    topic: &t.name,
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_deref(),
                })
            }),
            now,
            expire,
        );
        let (group_id, partition) = {
            let group = slot.group.borrow();
            (group.id.clone(), group.partition)
        };
        let records: Vec<CoordinatorRecord> = accepted
            .iter()
            .map(|(tp, committed)| committed.record(&group_id, tp))
            .collect();
        // Memory follows the log: a commit is visible only once its record is durable,
        // and a failed write leaves the previous commit in place.
        let written = if records.is_empty() {
            Ok(())
        } else {
            self.append(partition, &records, None).await.map(|first| {
                let mut group = slot.group.borrow_mut();
                for (i, (tp, mut committed)) in accepted.into_iter().enumerate() {
                    committed.record_offset = Offset(first.0 + i as i64);
                    group.offsets.insert(tp, committed);
                }
            })
        };
        respond(&|topic, index| {
            let check = checks[&(topic.to_string(), index)];
            // An accepted partition shares the fate of the write.
            response_code(check.and(written))
        })
    }

    /// Kafka's checks of one partition of an OffsetCommit or TxnOffsetCommit: the topic
    /// and partition exist, the metadata fits `offset.metadata.max.bytes`.
    /// Kafka's per-partition checks of a commit (the partition exists, the metadata fits
    /// `offset.metadata.max.bytes`): each partition's verdict, and the offsets accepted,
    /// not yet written (`record_offset` −1).
    pub(super) fn accept_offsets<'a>(
        &self,
        metadata: &MetadataImage,
        offsets: impl Iterator<Item = OffsetToCommit<'a>>,
        now: i64,
        expire: Option<i64>,
    ) -> (CommitChecks, Vec<(TopicPartition, CommittedOffset)>) {
        let mut checks = HashMap::new();
        let mut accepted = Vec::new();
        for o in offsets {
            let known = metadata.topic(o.topic);
            let check = if known.is_none_or(|t| o.partition < 0 || o.partition >= t.partitions) {
                Err(GroupError::UnknownTopicOrPartition)
            } else if o.metadata.map_or(0, str::len) > self.config.offset_metadata_max_bytes {
                Err(GroupError::OffsetMetadataTooLarge)
            } else {
                accepted.push((
                    TopicPartition::new(o.topic, o.partition),
                    CommittedOffset {
                        offset: Offset(o.offset),
                        leader_epoch: LeaderEpoch(o.leader_epoch),
                        metadata: o.metadata.unwrap_or_default().to_string(),
                        commit_timestamp_ms: now,
                        expire_timestamp_ms: expire,
                        record_offset: Offset(-1),
                    },
                ));
                Ok(())
            };
            checks.insert((o.topic.to_string(), o.partition), check);
        }
        (checks, accepted)
    }

    /// Kafka's checks of an OffsetCommit against its group; creates the group for a
    /// simple consumer's commit (generation −1).
    fn check_offset_commit(
        self: &Rc<Self>,
        version: i16,
        request: &OffsetCommitRequest,
    ) -> Result<Rc<GroupSlot>, GroupError> {
        let partition = self.coordinates(&request.group_id)?;
        let generation = request.generation_id_or_member_epoch;
        let slot = match self.slot(&request.group_id) {
            Some(slot) => slot,
            None if generation < 0 => self.insert(self.new_classic(&request.group_id, partition)),
            // Kafka answers a commit for a group it does not know as a stale generation.
            None => return Err(GroupError::IllegalGeneration),
        };
        {
            let group = slot.group.borrow();
            match &group.kind {
                GroupKind::Classic(classic) => classic.check_offset_commit(
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                    generation,
                )?,
                GroupKind::Consumer(consumer) => consumer.check_offset_commit(
                    version,
                    &request.member_id,
                    GroupEpoch(generation),
                )?,
            }
        }
        Ok(slot)
    }

    /// The group's committed offsets. With `require_stable` (v7+), a partition holding an
    /// offset of a transaction still open answers UNSTABLE_OFFSET_COMMIT, as in Kafka;
    /// without, the last committed offset.
    pub fn offset_fetch(
        &self,
        request: OffsetFetchRequestGroup,
        require_stable: bool,
    ) -> OffsetFetchResponseGroup {
        let group_error = |error: GroupError| OffsetFetchResponseGroup {
            group_id: request.group_id.clone(),
            error_code: error.code().code(),
            ..OffsetFetchResponseGroup::default()
        };
        if let Err(e) = self.coordinates(&request.group_id) {
            return group_error(e);
        }
        let slot = self.slot(&request.group_id);
        let group = slot.as_ref().map(|s| s.group.borrow());
        if let (Some(group), Some(member_id)) = (&group, &request.member_id)
            && let GroupKind::Consumer(consumer) = &group.kind
            && let Err(e) = consumer.check_offset_fetch(member_id, GroupEpoch(request.member_epoch))
        {
            return group_error(e);
        }
        let unstable = |tp: &TopicPartition| {
            require_stable
                && group
                    .as_ref()
                    .is_some_and(|g| g.pending.values().any(|p| p.contains_key(tp)))
        };
        let partition = |tp: &TopicPartition, committed: Option<&CommittedOffset>| {
            let (committed, error) = if unstable(tp) {
                (None, Err(GroupError::UnstableOffsetCommit))
            } else {
                (committed, Ok(()))
            };
            OffsetFetchResponsePartitions {
                partition_index: tp.partition,
                committed_offset: committed.map_or(-1, |c| c.offset.0),
                committed_leader_epoch: committed.map_or(-1, |c| c.leader_epoch.0),
                metadata: Some(committed.map(|c| c.metadata.clone()).unwrap_or_default()),
                error_code: response_code(error),
                ..OffsetFetchResponsePartitions::default()
            }
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
                            partition(&tp, group.as_ref().and_then(|g| g.offsets.get(&tp)))
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
                            .push(partition(tp, Some(committed)));
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
        let top_level = |error: GroupError| OffsetDeleteResponse {
            error_code: error.code().code(),
            ..OffsetDeleteResponse::default()
        };
        if let Err(e) = self.coordinates(&request.group_id) {
            return top_level(e);
        }
        let Some(slot) = self.slot(&request.group_id) else {
            return top_level(GroupError::GroupIdNotFound);
        };
        let mut records = Vec::new();
        let topics: Vec<OffsetDeleteResponseTopic> = {
            let mut group = slot.group.borrow_mut();
            let subscribed = group.subscribed_topics();
            let non_consumer_active = matches!(&group.kind,
                GroupKind::Classic(g) if g.state != ClassicState::Empty
                    && g.protocol_type.as_deref() != Some("consumer"));
            if non_consumer_active {
                return top_level(GroupError::NonEmptyGroup);
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
                            let deleted = if !known {
                                Err(GroupError::UnknownTopicOrPartition)
                            } else if subscribed.contains(&topic.name) {
                                Err(GroupError::GroupSubscribedToTopic)
                            } else {
                                let tp = TopicPartition::new(topic.name.clone(), p.partition_index);
                                // Pending offsets go too, as the tombstone replayed drops them.
                                let mut had = group.offsets.remove(&tp).is_some();
                                for pending in group.pending.values_mut() {
                                    had |= pending.remove(&tp).is_some();
                                }
                                group.pending.retain(|_, p| !p.is_empty());
                                if had {
                                    records.push(CoordinatorRecord::Offset {
                                        group: group_id.clone(),
                                        tp,
                                        value: None,
                                    });
                                }
                                Ok(())
                            };
                            OffsetDeleteResponsePartition {
                                partition_index: p.partition_index,
                                error_code: response_code(deleted),
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
        if let Err(e) = self.persist(partition, &records).await {
            return top_level(e);
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
    pub(super) async fn expire_offsets(self: &Rc<Self>) {
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
            if let Err(e) = self.persist(partition, &records).await {
                tracing::warn!("group {id}: could not write expired offsets: {e:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::classic::ClassicGroup;

    #[test]
    fn offsets_of_a_group_empty_longer_than_the_retention_expire_and_then_the_group() {
        let committed = |at: i64, expire: Option<i64>| CommittedOffset {
            offset: Offset(1),
            leader_epoch: LeaderEpoch(-1),
            metadata: String::new(),
            commit_timestamp_ms: at,
            expire_timestamp_ms: expire,
            record_offset: Offset(0),
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
            pending: BTreeMap::new(),
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
