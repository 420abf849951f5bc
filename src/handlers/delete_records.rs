//! DeleteRecords (key 21): moves each partition's log start offset forward (an offset of
//! -1 means the high watermark), on the shard that owns the partition; whole segments
//! below it go at once, and the new log start offsets are made durable
//! (`log-start-offset-checkpoint`) before the answer. Each partition's answer is its new
//! low watermark (log start offset); an offset above the high watermark is
//! OFFSET_OUT_OF_RANGE, an unknown partition UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.

use super::{Handler, KnownPartitions, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_records_request::DeleteRecordsRequest;
use crate::protocol::generated::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

pub struct DeleteRecords;

impl Handler for DeleteRecords {
    type Request = DeleteRecordsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DeleteRecords),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DeleteRecordsRequest,
    ) -> Option<DeleteRecordsResponse> {
        ctx.issued();
        let mut split = KnownPartitions::split(
            ctx,
            crate::security::AclOperation::Delete,
            request.topics.iter().flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|p| (topic.name.as_str(), p.partition_index, p.offset))
            }),
        );
        let answers = ctx
            .router
            .delete_records(std::mem::take(&mut split.wanted))
            .await;
        let mut results = split.answers(answers);
        let topics = request
            .topics
            .iter()
            .map(|topic| DeleteRecordsTopicResult {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let (low_watermark, error_code) =
                            match results.next().expect("one result per partition") {
                                Ok(log_start) => (log_start.0, 0),
                                Err(e) => (-1, e.code.code()),
                            };
                        DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark,
                            error_code,
                            ..DeleteRecordsPartitionResult::default()
                        }
                    })
                    .collect(),
                ..DeleteRecordsTopicResult::default()
            })
            .collect();
        Some(DeleteRecordsResponse {
            throttle_time_ms: 0,
            topics,
            ..DeleteRecordsResponse::default()
        })
    }
}
