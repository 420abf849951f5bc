//! Partition operations on the shard that owns each partition: appends, reads,
//! ListOffsets lookups and waits for appends. Each takes every partition of a request
//! at once, through `Router::scatter`, so a request costs one call per owning shard.

use super::{Gather, Handover, Router};
use crate::futures::{join_all, race};
use crate::metadata::TopicPartition;
use crate::model::Offset;
use crate::partition::{Fetched, PartitionError};
use crate::protocol::records::RecordBatch;
use crate::shard::not_here;
use crate::storage::{
    AppendInfo, LOG_START_OFFSET_CHECKPOINT, OffsetCheckpoint, TimestampAndOffset,
};
use shards::ShardId;
use shards::rt;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// The appends of one produce request, queued on their owners; their results (in
/// request order) once awaited.
pub type AppendsQueued<'a> = Gather<'a, Result<AppendInfo, PartitionError>>;

impl Router {
    /// The shard owning `tp`, or the error for a partition no shard owns.
    fn owner_or<T>(&self, tp: &TopicPartition) -> Result<ShardId, Result<T, PartitionError>> {
        self.state()
            .metadata
            .borrow()
            .owner(tp)
            .ok_or_else(|| Err(not_here(tp)))
    }

    /// Queues validated batches on each partition's owner and returns once every owner
    /// has them in order — appends queued by one request all take their places in their
    /// logs before those of a request queued after it. With `durable` (acks=all) each
    /// result waits for an fdatasync covering the append.
    pub async fn produce(
        &self,
        partitions: Vec<(TopicPartition, Vec<RecordBatch>)>,
        durable: bool,
    ) -> AppendsQueued<'_> {
        self.produce_on_owners(partitions, durable, false).await
    }

    /// `produce`; `forwarded`: the appends come from a shard that had them without
    /// their partition (see `append_on_owner`), and are not passed on again.
    async fn produce_on_owners(
        &self,
        partitions: Vec<(TopicPartition, Vec<RecordBatch>)>,
        durable: bool,
        forwarded: bool,
    ) -> AppendsQueued<'_> {
        self.scatter(
            partitions,
            |tp| self.owner_or(tp),
            move |router, owned| {
                // Invoked in arrival order: each append takes its place now.
                let appends: Vec<_> = owned
                    .into_iter()
                    .map(|(tp, batches)| {
                        if router.state().serves(&tp) {
                            router.state().append(&tp, batches, durable)
                        } else {
                            Box::pin(append_on_owner(
                                router.clone(),
                                tp,
                                batches,
                                durable,
                                forwarded,
                            ))
                        }
                    })
                    .collect();
                join_all(appends)
            },
        )
        .await
    }

    /// Reads whole batches from each partition at its offset, at most its byte limit
    /// (but at least one batch); `read_committed` stops at each last stable offset.
    pub async fn fetch(
        &self,
        partitions: Vec<(TopicPartition, (Offset, usize))>,
        read_committed: bool,
    ) -> Vec<Result<Fetched, PartitionError>> {
        self.scatter(
            partitions,
            |tp| self.owner_or(tp),
            move |router, owned| async move {
                let mut fetched = Vec::with_capacity(owned.len());
                for (tp, (offset, max_bytes)) in owned {
                    fetched.push(
                        router
                            .state()
                            .fetch(&tp, offset, max_bytes, read_committed)
                            .await,
                    );
                }
                fetched
            },
        )
        .await
        .answers()
        .await
    }

    /// ListOffsets: the offset for each partition's timestamp target.
    pub async fn list_offsets(
        &self,
        partitions: Vec<(TopicPartition, i64)>,
        read_committed: bool,
    ) -> Vec<Result<Option<TimestampAndOffset>, PartitionError>> {
        self.scatter(
            partitions,
            |tp| self.owner_or(tp),
            move |router, owned| async move {
                let mut listed = Vec::with_capacity(owned.len());
                for (tp, timestamp) in owned {
                    listed.push(
                        router
                            .state()
                            .list_offset(&tp, timestamp, read_committed)
                            .await,
                    );
                }
                listed
            },
        )
        .await
        .answers()
        .await
    }

    /// OffsetForLeaderEpoch: each partition's end offset for a leader epoch, after its
    /// current leader epoch is checked (`Partition::end_offset_for_epoch`).
    pub async fn offsets_for_leader_epoch(
        &self,
        partitions: Vec<(TopicPartition, (i32, i32))>,
    ) -> Vec<Result<(i32, i64), PartitionError>> {
        self.scatter(
            partitions,
            |tp| self.owner_or(tp),
            move |router, owned| async move {
                owned
                    .into_iter()
                    .map(|(tp, (current, epoch))| {
                        router
                            .state()
                            .partition(&tp)
                            .ok_or_else(|| not_here(&tp))
                            .and_then(|p| p.end_offset_for_epoch(current, epoch))
                    })
                    .collect::<Vec<_>>()
            },
        )
        .await
        .answers()
        .await
    }

    /// DescribeLogDirs: every partition of every shard with its log dir, size and
    /// offset lag.
    pub async fn log_dir_usage(&self) -> Vec<(std::path::PathBuf, TopicPartition, u64, i64)> {
        self.broadcast(|router, _| async move { router.state().log_dir_usage() })
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// DeleteRecords: moves each partition's log start offset (on its owner), then has
    /// shard 0 write `log-start-offset-checkpoint`, so the answer (each new log start
    /// offset, Kafka's low watermark) holds across a crash.
    pub async fn delete_records(
        &self,
        partitions: Vec<(TopicPartition, i64)>,
    ) -> Vec<Result<Offset, PartitionError>> {
        let results = self
            .scatter(
                partitions,
                |tp| self.owner_or(tp),
                move |router, owned| async move {
                    let mut moved = Vec::with_capacity(owned.len());
                    for (tp, offset) in owned {
                        moved.push(router.state().delete_records(&tp, offset).await);
                    }
                    moved
                },
            )
            .await
            .answers()
            .await;
        if results.iter().any(Result::is_ok) {
            self.call(ShardId(0), |router, _| async move {
                router.checkpoint_log_starts().await
            })
            .await;
        }
        results
    }

    /// Shard 0: writes `log-start-offset-checkpoint` in every log dir from every shard's
    /// partitions, one writer at a time. A failure to write stops the broker (the log
    /// start offsets it promised could go back).
    pub async fn checkpoint_log_starts(&self) {
        let _writer = self
            .state()
            .checkpoint_lock
            .acquire_permit(1)
            .await
            .expect("the checkpoint lock is never closed");
        let starts: Vec<_> = self
            .broadcast(|router, _| async move { router.state().log_start_offsets() })
            .await
            .into_iter()
            .flatten()
            .collect();
        for dir in self.state().config.log_dirs.clone() {
            let entries = starts
                .iter()
                .filter(|(log_dir, _, _)| *log_dir == dir)
                .map(|(_, tp, offset)| (tp.clone(), *offset))
                .collect();
            let path = dir.join(LOG_START_OFFSET_CHECKPOINT);
            if let Err(e) = (OffsetCheckpoint { entries }).write(&path).await {
                crate::stop::fatal(&format!("cannot write {}: {e}", path.display()));
            }
        }
    }

    /// Waits until an append moves any of the partitions past its offset, for
    /// `timeout` at most, or until `hangup` resolves — woken by the owners' appends,
    /// never by polling. The owners' waits still running afterwards are cancelled.
    pub async fn wait_for_appends(
        &self,
        partitions: Vec<(TopicPartition, Offset)>,
        timeout: Duration,
        hangup: impl Future<Output = ()>,
    ) {
        let mut by_owner: BTreeMap<ShardId, Vec<(TopicPartition, Offset)>> = BTreeMap::new();
        {
            let metadata = self.state().metadata.borrow();
            for (tp, offset) in partitions {
                if let Some(owner) = metadata.owner(&tp) {
                    by_owner.entry(owner).or_default().push((tp, offset));
                }
            }
        }
        let mut waits: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = Vec::new();
        let mut started = Vec::new();
        for (owner, partitions) in by_owner {
            let wait_id = self.state().next_wait_id();
            let answered = Rc::new(Cell::new(false));
            let pending = self
                .submit(owner, move |router, from| async move {
                    router
                        .state()
                        .wait_for_data_cancellable(from, wait_id, &partitions, timeout)
                        .await
                })
                .await;
            started.push((owner, wait_id, answered.clone()));
            waits.push(Box::pin(async move {
                let _ = pending.await;
                answered.set(true);
            }));
        }
        waits.push(Box::pin(rt::sleep(timeout)));
        waits.push(Box::pin(hangup));
        race(waits).await;
        // Whatever ended the wait, the owners' waits still running are not needed.
        for (owner, wait_id, answered) in started {
            if !answered.get() {
                // Queued is enough: the cancel runs whether or not anyone awaits it.
                drop(
                    self.submit(owner, move |router, from| async move {
                        router.state().cancel_wait(from, wait_id)
                    })
                    .await,
                );
            }
        }
    }
}

/// An append that reached a shard not holding its partition (see [`Router::handover`]):
/// passed on to the owner the shard table names, or appended here once the partition is
/// open. The connection it came from keeps its next appends to the partition back until
/// this one is answered (`handlers::InFlight`), so they land after it. Appends waiting
/// for the same partition go on in the order they arrived, one at a time (the shard's
/// handover turns): each waits on a timer of its own and could otherwise be passed on
/// before one that arrived earlier — a non-idempotent producer's batches out of order.
async fn append_on_owner(
    router: Router,
    tp: TopicPartition,
    batches: Vec<RecordBatch>,
    durable: bool,
    forwarded: bool,
) -> Result<AppendInfo, PartitionError> {
    let state = router.state().clone();
    state
        .in_handover_turn(&tp, async {
            match router.handover(&tp, forwarded).await {
                Handover::Here => state.append(&tp, batches, durable).await,
                Handover::PassOn => {
                    let appends = vec![(tp.clone(), batches)];
                    let queued = Box::pin(router.produce_on_owners(appends, durable, true)).await;
                    let mut answers = queued.answers().await;
                    answers.pop().expect("one answer per append")
                }
                Handover::Gone => Err(not_here(&tp)),
            }
        })
        .await
}
