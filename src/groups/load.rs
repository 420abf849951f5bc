//! Loading an offsets partition: when a shard comes to own a partition of
//! `__consumer_offsets` (at start-up, or when the topic is created), it replays the
//! partition from its log start to its high watermark and rebuilds the groups it
//! holds — their committed offsets, classic group records and KIP-848 member, target
//! and current-assignment records — so members carry on through a restart.
//!
//! Offset commits in a transactional batch (TxnOffsetCommit) are held pending under
//! their producer id until that producer's transaction marker: COMMIT applies them (unless
//! a later plain commit of the same partition is already there), ABORT drops them; those
//! still open at the end stay pending in the groups, for `complete_txn` to end.
//!
//! Runs on the shard that owns the partition; its groups are answered NOT_COORDINATOR
//! until the replay is done. Invariants: records are applied in log order, the last one
//! of a key winning and a tombstone removing it (pending offsets included), as
//! compaction would leave them; a record that does not decode is skipped with a
//! warning, while a log that cannot be read stops the process (`stop::fatal`): groups
//! rebuilt from part of it would be wrong.

use super::classic::ClassicGroup;
use super::records::{self, CoordinatorRecord};
use super::txn_offsets::{Pending, end_txn};
use super::{CommittedOffset, Group, GroupConfig, GroupCoordinator, GroupKind, consumer};
use crate::model::{Offset, ProducerId, TopicPartition};
use crate::partition::Partition;
use crate::protocol::records::batches;
use crate::storage::Marker;
use shards::rt;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

impl GroupCoordinator {
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
                let header = batch.header();
                let producer = ProducerId(header.producer_id);
                if header.is_control() {
                    if let Some(marker) = Marker::of_batch(&batch) {
                        state.end_txn(producer, marker.commit);
                    }
                    continue;
                }
                let txn = header.is_transactional().then_some(producer);
                let Ok(iter) = batch.records() else { continue };
                for record in iter.flatten() {
                    let at = Offset(batch.offset_of(&record));
                    let Some(key) = record.key else { continue };
                    records += 1;
                    match CoordinatorRecord::decode(key, record.value) {
                        Ok(record) => state.apply(record, at, txn),
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
}

impl GroupCoordinator {
    /// Gives up an offsets partition another shard takes over (a placement move): its
    /// groups leave this coordinator, whoever waits on them wakes, and requests for them
    /// answer NOT_COORDINATOR until the client finds the new coordinator. What they
    /// committed is in the partition's log, which the new owner replays.
    pub fn unload_partition(&self, index: i32) {
        self.partitions.borrow_mut().remove(&index);
        let ids: Vec<String> = self
            .groups
            .borrow()
            .iter()
            .filter(|(_, slot)| slot.group.borrow().partition == index)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.remove(id);
        }
        if !ids.is_empty() {
            tracing::info!(
                "{}-{index}: {} groups handed over",
                super::OFFSETS_TOPIC,
                ids.len()
            );
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
    pending: Pending,
    classic: Option<records::group_metadata_value::GroupMetadataValue>,
    consumer: consumer::Replayed,
}

impl Replay {
    /// Applies the record at offset `at`, written in a transaction of `txn` if any.
    fn apply(&mut self, record: CoordinatorRecord, at: Offset, txn: Option<ProducerId>) {
        let Some(group_id) = record.group() else {
            return;
        };
        let group = self.groups.entry(group_id.to_string()).or_default();
        match record {
            CoordinatorRecord::Offset { tp, value, .. } => match (value, txn) {
                (Some(value), Some(producer)) => {
                    group
                        .pending
                        .entry(producer)
                        .or_default()
                        .insert(tp, CommittedOffset::from_value(&value, at));
                }
                (Some(value), None) => {
                    group
                        .offsets
                        .insert(tp, CommittedOffset::from_value(&value, at));
                }
                (None, _) => {
                    group.offsets.remove(&tp);
                    for pending in group.pending.values_mut() {
                        pending.remove(&tp);
                    }
                    group.pending.retain(|_, p| !p.is_empty());
                }
            },
            CoordinatorRecord::ClassicGroup { value, .. } => group.classic = value,
            CoordinatorRecord::Ignored { .. } => {}
            other => group.consumer.apply(other),
        }
    }

    /// A transaction marker of `producer`: its pending offsets, in every group of the
    /// partition, are committed or dropped.
    fn end_txn(&mut self, producer: ProducerId, commit: bool) {
        for group in self.groups.values_mut() {
            end_txn(&mut group.offsets, &mut group.pending, producer, commit);
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
                } else if !replayed.offsets.is_empty() || !replayed.pending.is_empty() {
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
                    pending: replayed.pending,
                })
            })
            .collect()
    }
}
