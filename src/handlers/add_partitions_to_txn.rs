//! AddPartitionsToTxn (key 24): partitions join a producer's transaction on its
//! transaction coordinator's shard, persisted before the answer. v0–3 carry one
//! transaction (clients); v4+ batch several and may only verify (KIP-890: a partition
//! leader asking whether the partitions are already in the transaction).
//!
//! Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and the others of the
//! same transaction OPERATION_NOT_ATTEMPTED, as Kafka answers.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::model::{ProducerEpoch, ProducerId};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use crate::protocol::generated::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use crate::routing::transactions::ShardTxnEnv;
use crate::security::AclOperation;
use crate::transactions::TxnError;

pub struct AddPartitionsToTxn;

/// One transaction of the request.
struct Txn {
    transactional_id: String,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    verify_only: bool,
    topics: Vec<AddPartitionsToTxnTopic>,
}

impl Handler for AddPartitionsToTxn {
    type Request = AddPartitionsToTxnRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::AddPartitionsToTxn),
    };

    async fn handle(
        ctx: &RequestContext,
        request: AddPartitionsToTxnRequest,
    ) -> Option<AddPartitionsToTxnResponse> {
        let txns: Vec<Txn> = if ctx.version >= 4 {
            request
                .transactions
                .into_iter()
                .map(|t| Txn {
                    transactional_id: t.transactional_id,
                    producer_id: ProducerId(t.producer_id),
                    producer_epoch: ProducerEpoch(t.producer_epoch),
                    verify_only: t.verify_only,
                    topics: t.topics,
                })
                .collect()
        } else {
            vec![Txn {
                transactional_id: request.v3_and_below_transactional_id,
                producer_id: ProducerId(request.v3_and_below_producer_id),
                producer_epoch: ProducerEpoch(request.v3_and_below_producer_epoch),
                verify_only: false,
                topics: request.v3_and_below_topics,
            }]
        };
        let mut results = Vec::with_capacity(txns.len());
        for txn in txns {
            results.push(AddPartitionsToTxnResult {
                transactional_id: txn.transactional_id.clone(),
                topic_results: add(ctx, txn).await,
                ..AddPartitionsToTxnResult::default()
            });
        }
        if ctx.version >= 4 {
            return Some(AddPartitionsToTxnResponse {
                results_by_transaction: results,
                ..AddPartitionsToTxnResponse::default()
            });
        }
        Some(AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: results
                .pop()
                .map(|r| r.topic_results)
                .unwrap_or_default(),
            ..AddPartitionsToTxnResponse::default()
        })
    }
}

/// Adds (or verifies) one transaction's partitions; one result per partition.
async fn add(ctx: &RequestContext, txn: Txn) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut partitions = Vec::new();
    let mut unknown = false;
    // Kafka's checks: WRITE on the transactional id (every partition fails without it),
    // then WRITE on each topic (the others are not attempted).
    let id_denied = !ctx.authorize_transactional_id(AclOperation::Write, &txn.transactional_id);
    let mut denied_topics = Vec::new();
    {
        for topic in &txn.topics {
            if !ctx.authorize_topic(AclOperation::Write, &topic.name) {
                denied_topics.push(topic.name.clone());
            }
            let metadata = ctx.shard.metadata.borrow();
            let known = metadata.topic(&topic.name);
            for &p in &topic.partitions {
                let exists = known.is_some_and(|t| p >= 0 && p < t.partitions && !t.internal);
                unknown |= !exists;
                partitions.push((TopicPartition::new(topic.name.clone(), p), exists));
            }
        }
    }
    let version = ctx.version;
    let verdicts: Vec<(TopicPartition, ErrorCode)> = if id_denied || !denied_topics.is_empty() {
        partitions
            .into_iter()
            .map(|(tp, _)| {
                let code = if id_denied {
                    ErrorCode::TransactionalIdAuthorizationFailed
                } else if denied_topics.contains(&tp.topic) {
                    ErrorCode::TopicAuthorizationFailed
                } else {
                    ErrorCode::OperationNotAttempted
                };
                (tp, code)
            })
            .collect()
    } else if unknown {
        partitions
            .into_iter()
            .map(|(tp, exists)| {
                let code = if exists {
                    ErrorCode::OperationNotAttempted
                } else {
                    ErrorCode::UnknownTopicOrPartition
                };
                (tp, code)
            })
            .collect()
    } else {
        let tps: Vec<TopicPartition> = partitions.into_iter().map(|(tp, _)| tp).collect();
        let id = txn.transactional_id.clone();
        let (pid, epoch, verify_only) = (txn.producer_id, txn.producer_epoch, txn.verify_only);
        let asked = tps.clone();
        let answered = ctx
            .router
            .on_txn_coordinator(&id.clone(), move |router| async move {
                let coordinator = router.state().transactions.clone();
                if verify_only {
                    return coordinator.verify_partitions(&id, pid, epoch, &asked).map(
                        |verdicts| {
                            verdicts
                                .into_iter()
                                .map(|(tp, r)| (tp, r.err()))
                                .collect::<Vec<_>>()
                        },
                    );
                }
                coordinator
                    .add_partitions(&ShardTxnEnv(&router), &id, pid, epoch, &asked)
                    .await
                    .map(|()| asked.into_iter().map(|tp| (tp, None)).collect())
            })
            .await;
        match answered {
            Ok(Ok(verdicts)) => verdicts
                .into_iter()
                .map(|(tp, e): (TopicPartition, Option<TxnError>)| {
                    (
                        tp,
                        e.map_or(ErrorCode::None, |e| {
                            e.code_for(ApiKey::AddPartitionsToTxn, version)
                        }),
                    )
                })
                .collect(),
            Ok(Err(e)) => {
                let code = e.code_for(ApiKey::AddPartitionsToTxn, version);
                tps.into_iter().map(|tp| (tp, code)).collect()
            }
            Err(code) => tps.into_iter().map(|tp| (tp, code)).collect(),
        }
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (tp, code) in verdicts {
        let result = AddPartitionsToTxnPartitionResult {
            partition_index: tp.partition,
            partition_error_code: code.code(),
            ..AddPartitionsToTxnPartitionResult::default()
        };
        match topics.iter_mut().find(|t| t.name == tp.topic) {
            Some(topic) => topic.results_by_partition.push(result),
            None => topics.push(AddPartitionsToTxnTopicResult {
                name: tp.topic.clone(),
                results_by_partition: vec![result],
                ..AddPartitionsToTxnTopicResult::default()
            }),
        }
    }
    topics
}
