//! Fetch (key 1): record batches from each partition's owner, sent to the client from
//! the segment files with sendfile (`server::sendfile`), never copied on the hot path.
//!
//! Every partition is read on its owner (this shard or another, the same road) and comes
//! back as a `SegmentRange`, a duplicated file descriptor the response sends from. The response's `max_bytes` is spent in request order, with the first
//! non-empty partition always included whole, even past its limits (KIP-74); later ones
//! only within theirs. Below `min_bytes`, the fetch
//! waits — woken by an append to any of its partitions, never by polling — until
//! `max_wait_ms`. No fetch sessions: session id 0 tells clients to send full requests.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::model::Offset;
use crate::partition::{PartitionError, SegmentRange};
use crate::protocol::ErrorCode;
use crate::protocol::codec::{Records, VersionRange};
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::fetch_request::FetchRequest;
use crate::protocol::generated::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use crate::security::AclOperation;
use crate::shard::bump;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Kafka's isolation level READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

pub struct Fetch;

/// One requested partition.
struct Slot {
    topic_index: usize,
    partition: i32,
    tp: Option<TopicPartition>,
    offset: Offset,
    max_bytes: usize,
    error: Option<ErrorCode>,
}

/// What a read round found for one partition.
struct Found {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    aborted: Vec<AbortedTransaction>,
    data: Option<(u64, SegmentRange)>,
}

impl Handler for Fetch {
    type Request = FetchRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 4,
        max: newest(ApiKey::Fetch),
    };

    async fn handle(ctx: &RequestContext, request: FetchRequest) -> Option<FetchResponse> {
        // A fetch changes nothing: the next request need not wait for it.
        ctx.issued();
        let by_id = ctx.version >= 13;
        let mut topics = Vec::with_capacity(request.topics.len());
        let mut slots = Vec::new();
        {
            let metadata = ctx.shard.metadata.borrow();
            for (topic_index, topic) in request.topics.iter().enumerate() {
                let known = if by_id {
                    metadata.topic_by_id(&topic.topic_id)
                } else {
                    metadata.topic(&topic.topic)
                };
                topics.push(FetchableTopicResponse {
                    topic: topic.topic.clone(),
                    topic_id: topic.topic_id,
                    ..FetchableTopicResponse::default()
                });
                // Kafka's check: READ on the topic (a topic id names it only if known).
                let name = known.map_or(topic.topic.as_str(), |t| t.name.as_str());
                let read_denied =
                    (known.is_some() || !by_id) && !ctx.authorize_topic(AclOperation::Read, name);
                for p in &topic.partitions {
                    let (tp, error) = match known {
                        _ if read_denied => (None, Some(ErrorCode::TopicAuthorizationFailed)),
                        None if by_id => (None, Some(ErrorCode::UnknownTopicId)),
                        None => (None, Some(ErrorCode::UnknownTopicOrPartition)),
                        Some(t) if p.partition < 0 || p.partition >= t.partitions => {
                            (None, Some(ErrorCode::UnknownTopicOrPartition))
                        }
                        Some(t) => (Some(TopicPartition::new(t.name.clone(), p.partition)), None),
                    };
                    slots.push(Slot {
                        topic_index,
                        partition: p.partition,
                        tp,
                        offset: Offset(p.fetch_offset),
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                        error,
                    });
                }
            }
        }
        ctx.note_partitions(slots.iter().filter_map(|s| s.tp.as_ref()));

        let read_committed = request.isolation_level == READ_COMMITTED;
        let max_bytes = request.max_bytes.max(0) as usize;
        let min_bytes = request.min_bytes.max(0) as usize;
        let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
        let deadline = Instant::now() + wait;
        let found = loop {
            let found = read_round(ctx, &slots, read_committed).await;
            let total: u64 = found
                .iter()
                .filter_map(|f| f.as_ref().ok().and_then(|f| f.data.as_ref().map(|d| d.0)))
                .sum();
            let failed =
                slots.iter().any(|s| s.error.is_some()) || found.iter().any(|f| f.is_err());
            let now = Instant::now();
            if total as usize >= min_bytes || failed || now >= deadline || ctx.hangup.is_gone() {
                break found;
            }
            drop(found);
            wait_for_appends(ctx, &slots, deadline - now).await;
        };

        let mut spent = 0u64;
        for (slot, found) in slots.iter().zip(found) {
            let mut data = PartitionData {
                partition_index: slot.partition,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                preferred_read_replica: -1,
                aborted_transactions: read_committed.then(Vec::new),
                records: Some(Records::Bytes(Bytes::new())),
                ..PartitionData::default()
            };
            match (slot.error, found) {
                (Some(code), _) => data.error_code = code.code(),
                (None, Err(e)) => data.error_code = e.code.code(),
                (None, Ok(found)) => {
                    data.high_watermark = found.high_watermark;
                    data.last_stable_offset = found.last_stable_offset;
                    data.log_start_offset = found.log_start_offset;
                    if read_committed {
                        data.aborted_transactions = Some(found.aborted);
                    }
                    // KIP-74: only the first partition with data may go past its own
                    // and the response's limits (to make progress); a later one whose
                    // first batch alone is too large returns nothing this time.
                    if let Some((len, source)) = found.data
                        && (spent == 0
                            || (len <= slot.max_bytes as u64 && spent + len <= max_bytes as u64))
                    {
                        spent += len;
                        let id = ctx.add_splice(source);
                        data.records = Some(Records::Spliced {
                            len: len as u32,
                            id,
                        });
                    }
                }
            }
            topics[slot.topic_index].partitions.push(data);
        }
        bump(&ctx.shard.stats.fetch_bytes, spent);
        Some(FetchResponse {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            responses: topics,
            ..FetchResponse::default()
        })
    }
}

/// Reads every partition without an error once, on its owner.
async fn read_round(
    ctx: &RequestContext,
    slots: &[Slot],
    read_committed: bool,
) -> Vec<Result<Found, PartitionError>> {
    let wanted: Vec<_> = slots
        .iter()
        .filter(|s| s.error.is_none())
        .map(|s| {
            (
                s.tp.clone()
                    .expect("a slot without error names a partition"),
                (s.offset, s.max_bytes),
            )
        })
        .collect();
    let mut fetched = ctx.router.fetch(wanted, read_committed).await.into_iter();
    slots
        .iter()
        .map(|s| match s.error {
            // A slot refused up front (unknown topic or partition) keeps its error.
            Some(code) => Err(PartitionError::new(code, "refused before reading")),
            None => fetched
                .next()
                .expect("one result per partition read")
                .map(|f| Found {
                    high_watermark: f.high_watermark.0,
                    last_stable_offset: f.last_stable_offset.0,
                    log_start_offset: f.log_start_offset.0,
                    aborted: f
                        .aborted
                        .iter()
                        .map(|t| AbortedTransaction {
                            producer_id: t.producer_id.0,
                            first_offset: t.first_offset.0,
                            ..AbortedTransaction::default()
                        })
                        .collect(),
                    data: f.range.map(|r| (r.length, r)),
                }),
        })
        .collect()
}

/// The longest a fetch waits for data, whatever its `max_wait_ms` (clients wait 500 ms
/// by default; a longer wait answers empty and the client fetches again).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Waits until an append moves any requested partition past its fetch offset, for
/// `timeout` at most, or until the client hangs up.
async fn wait_for_appends(ctx: &RequestContext, slots: &[Slot], timeout: Duration) {
    let wanted = slots
        .iter()
        .filter(|s| s.error.is_none())
        .map(|s| {
            (
                s.tp.clone()
                    .expect("a slot without error names a partition"),
                s.offset,
            )
        })
        .collect();
    ctx.router
        .wait_for_appends(wanted, timeout, ctx.hangup.wait())
        .await;
}
