//! Produce (key 0): record batches to partitions, each appended on the shard that owns
//! the partition; acks 0 (no response), 1 (in the page cache) and all (fdatasynced).
//!
//! Each partition's records are checked here, on the connection's shard
//! (`partition::validate_produce`: CRC, records, timestamps, recompression; large
//! compressed data off the shard), so the owners only append. The appends of one
//! request are queued to their owners in request order before the connection may
//! dispatch its next request (`RequestContext::issued`), so pipelined produce requests
//! land in the order they were sent while waiting for their acks concurrently; after a
//! move of a partition, the connection's appends still on its old shard go first
//! (`InFlight`). acks=0
//! has no response: a failure closes the connection, as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::metadata::{Topic, TopicPartition};
use crate::model::{ProducerEpoch, ProducerId};
use crate::partition::{PartitionError, validate_produce};
use crate::protocol::ErrorCode;
use crate::protocol::codec::{Records, VersionRange};
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::produce_request::ProduceRequest;
use crate::protocol::generated::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use crate::protocol::records::RecordBatch;
use crate::security::{AclOperation, ResourceType};
use crate::storage::AppendInfo;
use bytes::Bytes;
use std::rc::Rc;

pub struct Produce;

/// One partition of the request, in request order, and what became of it.
struct Slot {
    topic_index: usize,
    partition: i32,
    result: Option<Result<AppendInfo, PartitionError>>,
}

impl Handler for Produce {
    type Request = ProduceRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 3,
        max: newest(ApiKey::Produce),
    };

    async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
        let acks = request.acks;
        // One slot per partition of the request, in request order.
        let mut slots: Vec<Slot> = Vec::new();
        let mut work: Vec<(usize, Rc<Topic>, TopicPartition, Bytes)> = Vec::new();
        // Kafka's checks: WRITE on the transactional id (every partition fails without
        // it), then WRITE on each topic.
        let transactional_id_denied = request.transactional_id.as_deref().is_some_and(|id| {
            !ctx.authorize(AclOperation::Write, ResourceType::TransactionalId, id)
        });
        {
            for (topic_index, topic) in request.topic_data.iter().enumerate() {
                let write_denied = !ctx.authorize_topic(AclOperation::Write, &topic.name);
                let metadata = ctx.shard.metadata.borrow();
                let known = metadata.topic(&topic.name).cloned();
                for data in &topic.partition_data {
                    let slot = slots.len();
                    let immediate = if !matches!(acks, -1..=1) {
                        Some(PartitionError::new(
                            ErrorCode::InvalidRequiredAcks,
                            format!("acks must be -1, 0 or 1, not {acks}"),
                        ))
                    } else if transactional_id_denied {
                        Some(PartitionError::new(
                            ErrorCode::TransactionalIdAuthorizationFailed,
                            "Transactional id authorization failed.",
                        ))
                    } else if write_denied {
                        Some(PartitionError::new(
                            ErrorCode::TopicAuthorizationFailed,
                            format!("Topic authorization failed for {}.", topic.name),
                        ))
                    } else if known
                        .as_ref()
                        .is_none_or(|t| data.index < 0 || data.index >= t.partitions)
                    {
                        Some(PartitionError::new(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("{}-{} does not exist", topic.name, data.index),
                        ))
                    } else if known.as_ref().is_some_and(|t| t.internal) {
                        Some(PartitionError::new(
                            ErrorCode::InvalidTopicException,
                            format!(
                                "clients may not produce to the internal topic {}",
                                topic.name
                            ),
                        ))
                    } else {
                        match (&data.records, &known) {
                            (Some(Records::Bytes(bytes)), Some(known)) => {
                                work.push((
                                    slot,
                                    known.clone(),
                                    TopicPartition::new(topic.name.clone(), data.index),
                                    bytes.clone(),
                                ));
                                None
                            }
                            _ => Some(PartitionError::new(
                                ErrorCode::InvalidRecord,
                                "the record set is null",
                            )),
                        }
                    };
                    slots.push(Slot {
                        topic_index,
                        partition: data.index,
                        result: immediate.map(Err),
                    });
                }
            }
        }

        // Check every partition's records here, then queue every owner's appends, in
        // order, before the next request may start.
        let mut order = Vec::with_capacity(work.len());
        let mut appends: Vec<(TopicPartition, Vec<RecordBatch>)> = Vec::with_capacity(work.len());
        for (slot, topic, tp, bytes) in work {
            match validate_produce(&topic, &tp, bytes).await {
                Ok(batches) => {
                    order.push(slot);
                    appends.push((tp, batches));
                }
                Err(e) => slots[slot].result = Some(Err(e)),
            }
        }
        if let Err(refused) =
            verify_transactions(ctx, request.transactional_id.as_deref(), &appends).await
        {
            // Partitions outside the producer's transaction append nothing.
            let mut kept_order = Vec::with_capacity(order.len());
            let mut kept = Vec::with_capacity(appends.len());
            for (slot, append) in order.into_iter().zip(appends) {
                match refused.iter().find(|(tp, _)| *tp == append.0) {
                    Some((_, error)) => slots[slot].result = Some(Err(error.clone())),
                    None => {
                        kept_order.push(slot);
                        kept.push(append);
                    }
                }
            }
            order = kept_order;
            appends = kept;
        }
        ctx.note_partitions(appends.iter().map(|(tp, _)| tp));
        // After a move, this connection's appends still on the old shard go first.
        let partitions: Vec<TopicPartition> = appends.iter().map(|(tp, _)| tp.clone()).collect();
        let admitted = ctx
            .in_flight
            .admit(partitions, |tp| ctx.shard.metadata.borrow().owner(tp))
            .await;
        let queued = ctx.router.produce(appends, acks == -1).await;
        ctx.issued();
        for (slot, result) in order.into_iter().zip(queued.answers().await) {
            slots[slot].result = Some(result);
        }
        drop(admitted);

        if acks == 0 {
            if let Some(error) = slots
                .iter()
                .find_map(|s| s.result.as_ref().and_then(|r| r.as_ref().err()))
            {
                tracing::info!(
                    "closing the connection of {}: acks=0 produce failed: {}",
                    ctx.peer,
                    error.message
                );
                ctx.close_connection();
            }
            return None;
        }

        let mut responses: Vec<TopicProduceResponse> = request
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                ..TopicProduceResponse::default()
            })
            .collect();
        for Slot {
            topic_index,
            partition,
            result,
        } in slots
        {
            let result = result.expect("every partition has a result");
            let response = match result {
                Ok(info) => PartitionProduceResponse {
                    index: partition,
                    error_code: 0,
                    base_offset: info.first_offset.0,
                    log_append_time_ms: info.log_append_time.map_or(-1, |t| t.0),
                    log_start_offset: info.log_start_offset.value(),
                    ..PartitionProduceResponse::default()
                },
                Err(e) => PartitionProduceResponse {
                    index: partition,
                    error_code: e.code.code(),
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                    record_errors: e
                        .record_errors
                        .into_iter()
                        .map(|(batch_index, message)| BatchIndexAndErrorMessage {
                            batch_index,
                            batch_index_error_message: Some(message),
                            ..BatchIndexAndErrorMessage::default()
                        })
                        .collect(),
                    error_message: Some(e.message),
                    ..PartitionProduceResponse::default()
                },
            };
            responses[topic_index].partition_responses.push(response);
        }
        Some(ProduceResponse {
            responses,
            throttle_time_ms: 0,
            ..ProduceResponse::default()
        })
    }
}

/// KIP-890: before a producer's transactional data is appended, its transaction
/// coordinator confirms that each partition joined the transaction (AddPartitionsToTxn)
/// under this producer id and epoch, so data arriving after its transaction ended (a
/// late retry, a zombie) is refused rather than left hanging outside any transaction.
/// Returns the partitions refused, with their error.
async fn verify_transactions(
    ctx: &RequestContext,
    transactional_id: Option<&str>,
    appends: &[(TopicPartition, Vec<RecordBatch>)],
) -> Result<(), Vec<(TopicPartition, PartitionError)>> {
    let transactional: Vec<(TopicPartition, i64, i16)> = appends
        .iter()
        .filter_map(|(tp, batches)| {
            let h = batches.first()?.header();
            h.is_transactional()
                .then(|| (tp.clone(), h.producer_id, h.producer_epoch))
        })
        .collect();
    if transactional.is_empty() {
        return Ok(());
    }
    let refuse_all = |code: ErrorCode, message: &str| {
        Err(transactional
            .iter()
            .map(|(tp, _, _)| (tp.clone(), PartitionError::new(code, message)))
            .collect())
    };
    let Some(id) = transactional_id.map(str::to_string) else {
        return refuse_all(
            ErrorCode::InvalidRequest,
            "transactional records without a transactional id",
        );
    };
    let (pid, epoch) = (transactional[0].1, transactional[0].2);
    if transactional
        .iter()
        .any(|(_, p, e)| (*p, *e) != (pid, epoch))
    {
        return refuse_all(
            ErrorCode::InvalidRequest,
            "transactional records of several producers in one request",
        );
    }
    let partitions: Vec<TopicPartition> = transactional.into_iter().map(|(tp, _, _)| tp).collect();
    let asked = partitions.clone();
    let verdicts = ctx
        .router
        .on_txn_coordinator(&id.clone(), move |router| async move {
            router.state().transactions.verify_partitions(
                &id,
                ProducerId(pid),
                ProducerEpoch(epoch),
                &asked,
            )
        })
        .await;
    let refused: Vec<(TopicPartition, PartitionError)> = match verdicts {
        Ok(Ok(verdicts)) => verdicts
            .into_iter()
            .filter_map(|(tp, verdict)| {
                let error = verdict.err()?;
                let message = format!("{tp} is not in the producer's transaction: {error:?}");
                Some((tp, PartitionError::new(ErrorCode::InvalidTxnState, message)))
            })
            .collect(),
        Ok(Err(e)) => partitions
            .into_iter()
            .map(|tp| (tp, PartitionError::new(e.code(), format!("{e:?}"))))
            .collect(),
        Err(code) => partitions
            .into_iter()
            .map(|tp| (tp, PartitionError::new(code, "no transaction coordinator")))
            .collect(),
    };
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}
