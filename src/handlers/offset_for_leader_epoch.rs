//! OffsetForLeaderEpoch (key 23): for each partition, the largest leader epoch at or
//! below the one asked and the offset where it ends, from the partition's leader epoch
//! cache (`leader-epoch-checkpoint`), on the shard that owns it. Consumers use it after
//! a leader change to detect truncation (KIP-320). The client's current leader epoch is
//! checked as Kafka does (FENCED_LEADER_EPOCH if older, UNKNOWN_LEADER_EPOCH if newer);
//! an epoch above the leader's gets Kafka's undefined -1/-1.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::partition::PartitionError;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use crate::protocol::generated::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

pub struct OffsetForLeaderEpoch;

impl Handler for OffsetForLeaderEpoch {
    type Request = OffsetForLeaderEpochRequest;
    /// Kafka 4 serves v2 and up (KIP-896 removed v0–1).
    const VERSIONS: VersionRange = VersionRange {
        min: 2,
        max: newest(ApiKey::OffsetForLeaderEpoch),
    };

    async fn handle(
        ctx: &RequestContext,
        request: OffsetForLeaderEpochRequest,
    ) -> Option<OffsetForLeaderEpochResponse> {
        ctx.issued();
        let mut results: Vec<Option<Result<(i32, i64), PartitionError>>> = Vec::new();
        let mut wanted = Vec::new();
        {
            let metadata = ctx.shard.metadata.borrow();
            for topic in &request.topics {
                let known = metadata.topic(&topic.topic);
                for p in &topic.partitions {
                    if known.is_some_and(|t| p.partition >= 0 && p.partition < t.partitions) {
                        wanted.push((
                            TopicPartition::new(topic.topic.clone(), p.partition),
                            (p.current_leader_epoch, p.leader_epoch),
                        ));
                        results.push(None);
                    } else {
                        results.push(Some(Err(PartitionError::new(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("{}-{} does not exist", topic.topic, p.partition),
                        ))));
                    }
                }
            }
        }
        let mut found = ctx
            .router
            .offsets_for_leader_epoch(wanted)
            .await
            .into_iter();
        for result in results.iter_mut().filter(|r| r.is_none()) {
            *result = Some(found.next().expect("one result per partition asked"));
        }
        let mut results = results.into_iter();
        let topics = request
            .topics
            .iter()
            .map(|topic| OffsetForLeaderTopicResult {
                topic: topic.topic.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let (error_code, leader_epoch, end_offset) =
                            match results.next().flatten().expect("one result per partition") {
                                Ok((epoch, offset)) => (0, epoch, offset),
                                Err(e) => (e.code.code(), -1, -1),
                            };
                        EpochEndOffset {
                            error_code,
                            partition: p.partition,
                            leader_epoch,
                            end_offset,
                            ..EpochEndOffset::default()
                        }
                    })
                    .collect(),
                ..OffsetForLeaderTopicResult::default()
            })
            .collect();
        Some(OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics,
            ..OffsetForLeaderEpochResponse::default()
        })
    }
}
