//! Transactional offset commits: TxnOffsetCommit on the coordinator, and the end of
//! the transactions that hold them (`complete_txn`).
//!
//! A transactional producer commits its consumer's offsets inside its transaction. The
//! coordinator checks the request as Kafka does (the group id; for a classic group with
//! members, or a KIP-848 group, the member and its generation or epoch, Kafka's rules for a
//! transactional commit; each partition as OffsetCommit checks it), writes one offset
//! record per accepted partition in one transactional batch (the producer's id and
//! epoch, no sequence) to the group's offsets partition, durably, and then holds them in
//! the group's `pending`, under the producer id. A group it does not know is created
//! empty for a simple consumer (generation −1), as OffsetCommit does.
//!
//! Pending offsets are not committed: OffsetFetch does not show them, and with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT for their partitions. Once the
//! transaction coordinator has written the producer's marker on the offsets partition,
//! it calls `complete_txn`: COMMIT makes them the committed offsets, ABORT drops them.
//! A plain commit of the same partition whose record lies after the transactional one
//! stays committed, as Kafka orders commits by their place in the log (`end_txn`, which
//! the replay of a partition applies at each marker too).
//!
//! Runs on the coordinator shard of the group. Invariants: memory follows the log (an
//! offset is pending only once its record is durable); a producer's pending offsets end
//! only with its marker; `complete_txn` writes nothing (the marker is the record).

use super::offsets::OffsetToCommit;
use super::records::CoordinatorRecord;
use super::{CommittedOffset, GroupCoordinator, GroupError, GroupKind, GroupSlot};
use super::{now_ms, response_code};
use crate::metadata::MetadataImage;
use crate::model::{GroupEpoch, Offset, ProducerEpoch, ProducerId, TopicPartition};
use crate::protocol::generated::txn_offset_commit_request::TxnOffsetCommitRequest;
use crate::protocol::generated::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A group's offsets of transactions still open, by producer id.
pub(super) type Pending = BTreeMap<ProducerId, BTreeMap<TopicPartition, CommittedOffset>>;

/// Ends `producer`'s transaction for one group: on commit its pending offsets become
/// committed, each unless the committed one's record lies after it; on abort they go.
pub(super) fn end_txn(
    offsets: &mut BTreeMap<TopicPartition, CommittedOffset>,
    pending: &mut Pending,
    producer: ProducerId,
    commit: bool,
) {
    let Some(ended) = pending.remove(&producer) else {
        return;
    };
    if !commit {
        return;
    }
    for (tp, offset) in ended {
        let later = offsets
            .get(&tp)
            .is_some_and(|c| c.record_offset > offset.record_offset);
        if !later {
            offsets.insert(tp, offset);
        }
    }
}

/// The TxnOffsetCommit answer: every partition of the request with the error code
/// `codes` gives it (0: written, pending in the transaction).
pub fn txn_offset_commit_response(
    request: &TxnOffsetCommitRequest,
    codes: &dyn Fn(&str, i32) -> i16,
) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: request
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: codes(&t.name, p.partition_index),
                        ..TxnOffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..TxnOffsetCommitResponseTopic::default()
            })
            .collect(),
        ..TxnOffsetCommitResponse::default()
    }
}

impl GroupCoordinator {
    /// TxnOffsetCommit: the offsets written in one transactional batch, durably, then
    /// pending under the request's producer id until `complete_txn`.
    pub async fn txn_offset_commit(
        self: &Rc<Self>,
        metadata: &RefCell<MetadataImage>,
        request: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        let respond =
            |codes: &dyn Fn(&str, i32) -> i16| txn_offset_commit_response(&request, codes);
        let slot = match self.check_txn_offset_commit(&request) {
            Ok(slot) => slot,
            Err(e) => return respond(&|_, _| response_code(Err(e))),
        };
        let now = now_ms();
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
            None,
        );
        let (group_id, partition) = {
            let group = slot.group.borrow();
            (group.id.clone(), group.partition)
        };
        let records: Vec<CoordinatorRecord> = accepted
            .iter()
            .map(|(tp, offset)| offset.record(&group_id, tp))
            .collect();
        let producer = ProducerId(request.producer_id);
        let epoch = ProducerEpoch(request.producer_epoch);
        let written = if records.is_empty() {
            Ok(())
        } else {
            self.append(partition, &records, Some((producer, epoch)))
                .await
                .map(|first| {
                    let mut group = slot.group.borrow_mut();
                    let pending = group.pending.entry(producer).or_default();
                    for (i, (tp, mut offset)) in accepted.into_iter().enumerate() {
                        offset.record_offset = Offset(first.0 + i as i64);
                        pending.insert(tp, offset);
                    }
                })
        };
        respond(&|topic, index| {
            let check = checks[&(topic.to_string(), index)];
            response_code(check.and(written))
        })
    }

    /// Kafka's checks of a TxnOffsetCommit against its group; creates the group for a
    /// simple consumer's commit (generation −1).
    fn check_txn_offset_commit(
        self: &Rc<Self>,
        request: &TxnOffsetCommitRequest,
    ) -> Result<Rc<GroupSlot>, GroupError> {
        if request.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let partition = self.coordinates(&request.group_id)?;
        let generation = request.generation_id;
        let slot = match self.slot(&request.group_id) {
            Some(slot) => slot,
            None if generation < 0 => self.insert(self.new_classic(&request.group_id, partition)),
            None => return Err(GroupError::IllegalGeneration),
        };
        {
            let group = slot.group.borrow();
            let member = request.member_id.as_str();
            let instance = request.group_instance_id.as_deref();
            match &group.kind {
                GroupKind::Classic(classic) => {
                    classic.check_txn_offset_commit(member, instance, generation)?
                }
                GroupKind::Consumer(consumer) => {
                    consumer.check_txn_offset_commit(member, instance, GroupEpoch(generation))?
                }
            }
        }
        Ok(slot)
    }

    /// Ends `producer_id`'s transaction in the groups of offsets partition `partition`,
    /// once its marker is durable there: commit makes its pending offsets the committed
    /// ones (but a plain commit written after them stays), abort drops them. Writes
    /// nothing: the marker is the record.
    pub async fn complete_txn(
        self: &Rc<Self>,
        partition: i32,
        producer_id: ProducerId,
        commit: bool,
    ) {
        let slots: Vec<Rc<GroupSlot>> = self
            .groups
            .borrow()
            .values()
            .filter(|slot| {
                let group = slot.group.borrow();
                group.partition == partition && group.pending.contains_key(&producer_id)
            })
            .cloned()
            .collect();
        for slot in slots {
            {
                let mut group = slot.group.borrow_mut();
                let group = &mut *group;
                end_txn(&mut group.offsets, &mut group.pending, producer_id, commit);
            }
            // A simple group whose only offsets were aborted has nothing left.
            self.forget_if_dead(&slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::groups::{GroupConfig, OFFSETS_TOPIC, offsets_topic};
    use crate::metadata::Topic;
    use crate::metadata::controller::{Controller, NewTopic};
    use crate::partition::Partition;
    use crate::protocol::generated::offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use crate::protocol::generated::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    use crate::protocol::generated::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use crate::protocol::records::{BatchBuilder, Compression, NO_SEQUENCE, RecordBatch};
    use crate::storage::Marker;
    use crate::storage::testing::block_on;
    use std::path::Path;

    const TOPIC: &str = "t";

    /// A metadata image with a one-partition `__consumer_offsets` and topic `t` (two
    /// partitions), and the offsets topic to open its partition with.
    fn metadata() -> (RefCell<MetadataImage>, Rc<Topic>) {
        let config = BrokerConfig::defaults();
        let mut controller = Controller::new(&config, 1);
        let mut offsets = offsets_topic(&config);
        offsets.num_partitions = 1;
        let topic = NewTopic {
            name: TOPIC.into(),
            num_partitions: 2,
            replication_factor: -1,
            ..NewTopic::default()
        };
        let created = controller
            .validate_create(&[offsets, topic])
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let delta = controller.commit(created, Vec::new());
        let mut image = MetadataImage::new(
            shards::ShardId(0),
            "cluster".into(),
            1,
            config.topic_defaults.clone(),
        );
        image.apply(&delta).unwrap();
        let offsets = image.topic(OFFSETS_TOPIC).unwrap().clone();
        (RefCell::new(image), offsets)
    }

    async fn open(dir: &Path, topic: &Rc<Topic>) -> Rc<Partition> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
        let dir = dir.join("__consumer_offsets-0");
        let partition = Partition::open(&dir, tp, topic.clone(), Offset::ZERO, Offset::ZERO).await;
        Rc::new(partition.unwrap())
    }

    /// A coordinator that has loaded (replayed) partition 0 of `__consumer_offsets`.
    async fn coordinator(partition: &Rc<Partition>) -> Rc<GroupCoordinator> {
        let coordinator =
            GroupCoordinator::new(GroupConfig::from_broker(&BrokerConfig::defaults()));
        coordinator.load_partition(0, 1, partition.clone()).await;
        coordinator
    }

    fn txn_commit(producer: i64, partition: i32, offset: i64) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest {
            transactional_id: format!("tx-{producer}"),
            group_id: "g".into(),
            producer_id: producer,
            producer_epoch: 0,
            topics: vec![TxnOffsetCommitRequestTopic {
                name: TOPIC.into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: partition,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    committed_metadata: Some("m".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..TxnOffsetCommitRequest::default()
        }
    }

    /// The error codes of a TxnOffsetCommit's partitions.
    async fn commit_txn(
        c: &Rc<GroupCoordinator>,
        metadata: &RefCell<MetadataImage>,
        request: TxnOffsetCommitRequest,
    ) -> Vec<i16> {
        let response = c.txn_offset_commit(metadata, request).await;
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    async fn commit_plain(
        c: &Rc<GroupCoordinator>,
        metadata: &RefCell<MetadataImage>,
        offset: i64,
    ) {
        let request = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: TOPIC.into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..OffsetCommitRequest::default()
        };
        let response = c.offset_commit(metadata, 8, request).await;
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
    }

    /// OffsetFetch of `t-<partition>`: (committed offset, error code).
    fn fetch(c: &GroupCoordinator, partition: i32, require_stable: bool) -> (i64, i16) {
        let request = OffsetFetchRequestGroup {
            group_id: "g".into(),
            topics: Some(vec![OffsetFetchRequestTopics {
                name: TOPIC.into(),
                partition_indexes: vec![partition],
                ..Default::default()
            }]),
            ..OffsetFetchRequestGroup::default()
        };
        let group = c.offset_fetch(request, require_stable);
        assert_eq!(group.error_code, 0);
        let p = &group.topics[0].partitions[0];
        (p.committed_offset, p.error_code)
    }

    /// What the transaction coordinator does at the end of a transaction: the marker,
    /// durable on the offsets partition, then `complete_txn`.
    async fn end(c: &Rc<GroupCoordinator>, partition: &Partition, producer: i64, commit: bool) {
        let (key, value) = Marker {
            commit,
            coordinator_epoch: 0,
        }
        .key_and_value();
        let mut batch = BatchBuilder::new(Compression::None)
            .producer(producer, 0, NO_SEQUENCE)
            .transactional(true)
            .control(true);
        batch.push(now_ms(), Some(&key), Some(&value), &[]);
        let batch = RecordBatch::parse(batch.build(0)).unwrap();
        partition.append(&[batch], true).await.unwrap();
        c.complete_txn(0, ProducerId(producer), commit).await;
    }

    const UNSTABLE: i16 = 88;

    #[test]
    fn transactional_offsets_are_pending_until_the_commit_marker() {
        let dir = tempfile::tempdir().unwrap();
        let (metadata, offsets) = metadata();
        block_on(async {
            let log = open(dir.path(), &offsets).await;
            let c = coordinator(&log).await;
            commit_plain(&c, &metadata, 5).await;
            assert_eq!(commit_txn(&c, &metadata, txn_commit(7, 0, 10)).await, [0]);
            assert_eq!(fetch(&c, 0, false), (5, 0), "the last committed offset");
            assert_eq!(fetch(&c, 0, true), (-1, UNSTABLE));
            assert_eq!(fetch(&c, 1, true), (-1, 0), "another partition is stable");
            // Another producer's marker leaves it pending.
            end(&c, &log, 8, true).await;
            assert_eq!(fetch(&c, 0, true), (-1, UNSTABLE));
            end(&c, &log, 7, true).await;
            assert_eq!(fetch(&c, 0, true), (10, 0));
            assert!(c.slot("g").unwrap().group.borrow().pending.is_empty());
        });
    }

    #[test]
    fn an_abort_drops_transactional_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (metadata, offsets) = metadata();
        block_on(async {
            let log = open(dir.path(), &offsets).await;
            let c = coordinator(&log).await;
            commit_plain(&c, &metadata, 5).await;
            assert_eq!(commit_txn(&c, &metadata, txn_commit(7, 0, 10)).await, [0]);
            end(&c, &log, 7, false).await;
            assert_eq!(fetch(&c, 0, true), (5, 0));
            // A simple group whose only offsets were aborted is forgotten.
            assert_eq!(commit_txn(&c, &metadata, txn_commit(9, 1, 3)).await, [0]);
            c.remove("g");
            assert_eq!(commit_txn(&c, &metadata, txn_commit(9, 1, 4)).await, [0]);
            end(&c, &log, 9, false).await;
            assert!(c.slot("g").is_none());
        });
    }

    #[test]
    fn a_plain_commit_written_after_the_transactional_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (metadata, offsets) = metadata();
        block_on(async {
            let log = open(dir.path(), &offsets).await;
            let c = coordinator(&log).await;
            assert_eq!(commit_txn(&c, &metadata, txn_commit(7, 0, 10)).await, [0]);
            commit_plain(&c, &metadata, 20).await;
            end(&c, &log, 7, true).await;
            assert_eq!(fetch(&c, 0, true), (20, 0));
            // And a replay orders them the same way.
            let replayed = coordinator(&log).await;
            assert_eq!(fetch(&replayed, 0, true), (20, 0));
        });
    }

    #[test]
    fn txn_offset_commit_checks_as_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let (metadata, offsets) = metadata();
        block_on(async {
            let log = open(dir.path(), &offsets).await;
            let c = coordinator(&log).await;
            let code = |e: GroupError| e.code().code();
            let mut request = txn_commit(7, 0, 10);
            request.group_id = String::new();
            assert_eq!(
                commit_txn(&c, &metadata, request).await,
                [code(GroupError::InvalidGroupId)]
            );
            // An unknown group with a generation: a stale member, as Kafka answers.
            let mut request = txn_commit(7, 0, 10);
            request.generation_id = 3;
            request.member_id = "m".into();
            assert_eq!(
                commit_txn(&c, &metadata, request).await,
                [code(GroupError::IllegalGeneration)]
            );
            assert!(c.slot("g").is_none());
            let unknown = commit_txn(&c, &metadata, txn_commit(7, 2, 10)).await;
            assert_eq!(unknown, [code(GroupError::UnknownTopicOrPartition)]);
            let mut request = txn_commit(7, 0, 10);
            request.topics[0].partitions[0].committed_metadata = Some("x".repeat(5000));
            assert_eq!(
                commit_txn(&c, &metadata, request).await,
                [code(GroupError::OffsetMetadataTooLarge)]
            );
            // A newer epoch of the producer fences the older one.
            let mut request = txn_commit(7, 0, 10);
            request.producer_epoch = 1;
            assert_eq!(commit_txn(&c, &metadata, request).await, [0]);
            let fenced = commit_txn(&c, &metadata, txn_commit(7, 1, 10)).await;
            assert_eq!(fenced, [code(GroupError::InvalidProducerEpoch)]);
            let group = c.slot("g").unwrap();
            let pending = &group.group.borrow().pending;
            assert_eq!(pending[&ProducerId(7)].len(), 1, "only the accepted commit");
        });
    }

    #[test]
    fn a_replay_commits_drops_and_keeps_open_transactions_as_their_markers_say() {
        let dir = tempfile::tempdir().unwrap();
        let (metadata, offsets) = metadata();
        block_on(async {
            let log = open(dir.path(), &offsets).await;
            let c = coordinator(&log).await;
            assert_eq!(commit_txn(&c, &metadata, txn_commit(1, 0, 11)).await, [0]);
            assert_eq!(commit_txn(&c, &metadata, txn_commit(2, 1, 22)).await, [0]);
            assert_eq!(commit_txn(&c, &metadata, txn_commit(3, 0, 33)).await, [0]);
            end(&c, &log, 1, true).await;
            end(&c, &log, 2, false).await;

            let replayed = coordinator(&log).await;
            assert_eq!(fetch(&replayed, 0, false), (11, 0), "the committed one");
            assert_eq!(
                fetch(&replayed, 1, false),
                (-1, 0),
                "the aborted one is gone"
            );
            assert_eq!(fetch(&replayed, 0, true), (-1, UNSTABLE), "the open one");
            {
                let live = c.slot("g").unwrap();
                let live = live.group.borrow();
                let slot = replayed.slot("g").unwrap();
                let group = slot.group.borrow();
                assert_eq!(
                    group.offsets, live.offsets,
                    "what memory held, record offsets too"
                );
                assert_eq!(group.pending, live.pending);
                assert_eq!(group.pending.keys().collect::<Vec<_>>(), [&ProducerId(3)]);
            }
            // The open transaction ends after the replay.
            end(&replayed, &log, 3, true).await;
            assert_eq!(fetch(&replayed, 0, true), (33, 0));
        });
    }
}
