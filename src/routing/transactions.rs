//! Calls to transaction coordinators, and transaction markers to the partitions' owners.
//!
//! A transactional id's coordinator is the shard owning its `__transaction_state`
//! partition; until that topic exists (the first FindCoordinator for a transaction
//! creates it) every id answers COORDINATOR_NOT_AVAILABLE. The coordinator's effects go
//! through [`ShardTxnEnv`]: its records to its own `__transaction_state` partition (on
//! its shard by construction), its markers to every partition of the transaction through
//! `write_markers` (one call per owning shard, all at once), its producer ids from the
//! shard's block.

use super::{Handover, Router};
use crate::metadata::TopicPartition;
use crate::model::{ProducerEpoch, ProducerId, Timestamp};
use crate::partition::PartitionError;
use crate::protocol::ErrorCode;
use crate::protocol::records::{BatchBuilder, Compression, RecordBatch};
use crate::shard::not_here;
use crate::transactions::{TRANSACTION_STATE_TOPIC, TxnEnv, TxnError, transaction_partition};
use bytes::Bytes;
use shards::ShardId;
use std::future::Future;

impl Router {
    /// The shard coordinating `transactional_id`.
    pub fn txn_coordinator(&self, transactional_id: &str) -> Result<ShardId, ErrorCode> {
        let metadata = self.state().metadata.borrow();
        let topic = metadata
            .topic(TRANSACTION_STATE_TOPIC)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let tp = TopicPartition::new(
            TRANSACTION_STATE_TOPIC,
            transaction_partition(transactional_id, topic.partitions),
        );
        metadata
            .owner(&tp)
            .ok_or(ErrorCode::CoordinatorNotAvailable)
    }

    /// Runs `work` on the coordinator of `transactional_id` (the router it gets is that
    /// shard's: `router.state().transactions` is the coordinator, `ShardTxnEnv` its
    /// effects), or says why there is none.
    pub async fn on_txn_coordinator<T, F, Fut>(
        &self,
        transactional_id: &str,
        work: F,
    ) -> Result<T, ErrorCode>
    where
        T: Send + 'static,
        F: FnOnce(Router) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let shard = self.txn_coordinator(transactional_id)?;
        Ok(self.call(shard, move |router, _| work(router)).await)
    }

    /// Writes a COMMIT or ABORT marker of (`producer_id`, `producer_epoch`) on each
    /// partition, durably, on their owners all at once; one result per partition, in
    /// order.
    pub async fn write_markers(
        &self,
        markers: Vec<(TopicPartition, (ProducerId, ProducerEpoch, bool))>,
    ) -> Vec<Result<(), PartitionError>> {
        self.write_markers_on_owners(markers, false).await
    }

    /// `write_markers`; `forwarded`: the markers come from a shard that had them without
    /// their partition (a move: see [`Router::handover`]), and are not passed on again.
    async fn write_markers_on_owners(
        &self,
        markers: Vec<(TopicPartition, (ProducerId, ProducerEpoch, bool))>,
        forwarded: bool,
    ) -> Vec<Result<(), PartitionError>> {
        self.scatter(
            markers,
            |tp| {
                self.state()
                    .metadata
                    .borrow()
                    .owner(tp)
                    .ok_or_else(|| Err(not_here(tp)))
            },
            move |router, owned| async move {
                let mut written = Vec::with_capacity(owned.len());
                for (tp, (producer_id, epoch, commit)) in owned {
                    let state = router.state();
                    if state.serves(&tp) {
                        written.push(state.write_marker(&tp, producer_id, epoch, commit).await);
                        continue;
                    }
                    // In turn with the appends waiting for the partition here, as
                    // `append_on_owner` takes them: a marker lands where it was sent.
                    let marker = state.in_handover_turn(&tp, async {
                        match router.handover(&tp, forwarded).await {
                            Handover::Here => {
                                state.write_marker(&tp, producer_id, epoch, commit).await
                            }
                            Handover::PassOn => {
                                let marker = vec![(tp.clone(), (producer_id, epoch, commit))];
                                Box::pin(router.write_markers_on_owners(marker, true))
                                    .await
                                    .pop()
                                    .expect("one answer per marker")
                            }
                            Handover::Gone => Err(not_here(&tp)),
                        }
                    });
                    written.push(marker.await);
                }
                written
            },
        )
        .await
        .answers()
        .await
    }
}

/// A transaction coordinator's effects on a shard (see the module documentation).
pub struct ShardTxnEnv<'a>(pub &'a Router);

impl TxnEnv for ShardTxnEnv<'_> {
    async fn persist(
        &self,
        partition: i32,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<(), TxnError> {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        let Some(log) = self.0.state().partition(&tp) else {
            return Err(TxnError::NotCoordinator);
        };
        let mut builder = BatchBuilder::new(Compression::None);
        builder.push(self.now().0, Some(&key), value.as_deref(), &[]);
        let batch = RecordBatch::parse(builder.build(0)).expect("a built batch parses");
        log.append(&[batch], true).await.map(|_| ()).map_err(|e| {
            tracing::warn!("writing to {tp}: {}", e.message);
            match e.code {
                ErrorCode::NotLeaderOrFollower => TxnError::NotCoordinator,
                _ => TxnError::CoordinatorNotAvailable,
            }
        })
    }

    async fn write_markers(
        &self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        commit: bool,
        partitions: Vec<TopicPartition>,
    ) -> Result<(), TxnError> {
        let markers: Vec<_> = partitions
            .iter()
            .map(|tp| (tp.clone(), (producer_id, producer_epoch, commit)))
            .collect();
        let results = self.0.write_markers(markers).await;
        for (tp, result) in partitions.into_iter().zip(results) {
            match result {
                Ok(()) => {}
                // A partition deleted since it joined the transaction has nothing to mark.
                Err(e)
                    if e.code == ErrorCode::NotLeaderOrFollower
                        && self.0.state().metadata.borrow().owner(&tp).is_none() =>
                {
                    tracing::info!("no marker for producer {}: {}", producer_id.0, e.message)
                }
                // Still owned (a move that outlasted the router's wait, or a failed
                // write): the transaction stays decided and the coordinator's timer
                // writes the rest.
                Err(e) => {
                    tracing::warn!(
                        "a marker for producer {} on {tp} failed: {}",
                        producer_id.0,
                        e.message
                    );
                    return Err(TxnError::CoordinatorNotAvailable);
                }
            }
        }
        Ok(())
    }

    async fn allocate_producer_id(&self) -> Result<ProducerId, TxnError> {
        Ok(self.0.new_producer_id().await)
    }

    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
