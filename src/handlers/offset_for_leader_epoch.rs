//! OffsetForLeaderEpoch (key 23): for each partition, the largest leader epoch at or
//! below the one asked and the offset where it ends, from the partition's leader epoch
//! cache (`leader-epoch-checkpoint`), on the shard that owns it. Consumers use it after
//! a leader change to detect truncation (KIP-320). The client's current leader epoch is
//! checked as Kafka does (FENCED_LEADER_EPOCH if older, UNKNOWN_LEADER_EPOCH if newer);
//! an epoch above the leader's gets Kafka's undefined -1/-1.

use super::{Handler, KnownPartitions, RequestContext, newest};
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
        let mut split = KnownPartitions::split(
            ctx,
            crate::security::AclOperation::Describe,
            request.topics.iter().flat_map(|topic| {
                topic.partitions.iter().map(|p| {
                    (
                        topic.topic.as_str(),
                        p.partition,
                        (p.current_leader_epoch, p.leader_epoch),
                    )
                })
            }),
        );
        let answers = ctx
            .router
            .offsets_for_leader_epoch(std::mem::take(&mut split.wanted))
            .await;
        let mut results = split.answers(answers);
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
                            match results.next().expect("one result per partition") {
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
