//! Calls to transaction coordinators, and transaction markers to the partitions' owners.
//!
//! A transactional id's coordinator is the shard owning its `__transaction_state`
//! partition; until that topic exists (the first FindCoordinator for a transaction
//! creates it) every id answers COORDINATOR_NOT_AVAILABLE. The coordinator's effects go
//! through [`ShardTxnEnv`]: its records to its own `__transaction_state` partition (on
//! its shard by construction), its markers to every partition of the transaction through
//! `write_markers` (one call per owning shard, all at once), its producer ids from the
//! shard's block.

use super::Router;
use crate::metadata::TopicPartition;
use crate::model::{ProducerEpoch, ProducerId, Timestamp};
use crate::partition::PartitionError;
use crate::protocol::ErrorCode;
use crate::protocol::records::{BatchBuilder, Compression, RecordBatch};
use crate::shard::not_here;
use crate::transactions::{TRANSACTION_STATE_TOPIC, TxnEnv, TxnError, transaction_partition};
use bytes::Bytes;
use shards::{ShardId, rt};
use std::future::Future;
use std::time::{Duration, Instant};

/// How long markers wait for partitions that are moving between shards before the
/// coordinator leaves them to its timer.
const MARKER_RETRY: Duration = Duration::from_secs(10);
/// The longest pause between two tries of a moving partition's marker.
const MARKER_RETRY_PAUSE: Duration = Duration::from_millis(10);

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
        self.scatter(
            markers,
            |tp| {
                self.state()
                    .metadata
                    .borrow()
                    .owner(tp)
                    .ok_or_else(|| Err(not_here(tp)))
            },
            |router, owned| async move {
                let mut written = Vec::with_capacity(owned.len());
                for (tp, (producer_id, epoch, commit)) in owned {
                    written.push(
                        router
                            .state()
                            .write_marker(&tp, producer_id, epoch, commit)
                            .await,
                    );
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
        let mut unwritten = partitions;
        let deadline = Instant::now() + MARKER_RETRY;
        loop {
            let markers: Vec<_> = unwritten
                .iter()
                .map(|tp| (tp.clone(), (producer_id, producer_epoch, commit)))
                .collect();
            let results = self.0.write_markers(markers).await;
            let mut moving = Vec::new();
            for (tp, result) in unwritten.into_iter().zip(results) {
                match result {
                    Ok(()) => {}
                    // Between two shards (a placement move): its marker is written on
                    // its new shard, once it is open there.
                    Err(e)
                        if e.code == ErrorCode::NotLeaderOrFollower
                            && self.0.state().metadata.borrow().owner(&tp).is_some() =>
                    {
                        moving.push(tp)
                    }
                    // A partition deleted since it joined the transaction has nothing to
                    // mark.
                    Err(e) if e.code == ErrorCode::NotLeaderOrFollower => {
                        tracing::info!("no marker for producer {}: {}", producer_id.0, e.message)
                    }
                    Err(e) => {
                        tracing::warn!(
                            "a marker for producer {} failed: {}",
                            producer_id.0,
                            e.message
                        );
                        return Err(TxnError::CoordinatorNotAvailable);
                    }
                }
            }
            if moving.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                // The transaction stays decided; the coordinator's timer writes the rest.
                tracing::warn!(
                    "markers for producer {} wait for {} partitions still moving",
                    producer_id.0,
                    moving.len()
                );
                return Err(TxnError::CoordinatorNotAvailable);
            }
            // A move ends with a metadata change on every shard; the new owner may open
            // the partition a moment after this shard applied it.
            let changed = self.0.state().metadata_changed.listen();
            futures_lite::future::or(changed, rt::sleep(MARKER_RETRY_PAUSE)).await;
            unwritten = moving;
        }
    }

    async fn allocate_producer_id(&self) -> Result<ProducerId, TxnError> {
        Ok(self.0.new_producer_id().await)
    }

    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
