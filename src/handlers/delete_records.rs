//! DeleteRecords (key 21): moves each partition's log start offset forward (an offset of
//! -1 means the high watermark), on the shard that owns the partition; whole segments
//! below it go at once, and the new log start offsets are made durable
//! (`log-start-offset-checkpoint`) before the answer. Each partition's answer is its new
//! low watermark (log start offset); an offset above the high watermark is
//! OFFSET_OUT_OF_RANGE, an unknown partition UNKNOWN_TOPIC_OR_PARTITION, as Kafka answers.

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::model::Offset;
use crate::partition::PartitionError;
use crate::protocol::ErrorCode;
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
        let mut results: Vec<Option<Result<Offset, PartitionError>>> = Vec::new();
        let mut wanted = Vec::new();
        {
            let metadata = ctx.shard.metadata.borrow();
            for topic in &request.topics {
                let known = metadata.topic(&topic.name);
                for p in &topic.partitions {
                    if known
                        .is_some_and(|t| p.partition_index >= 0 && p.partition_index < t.partitions)
                    {
                        wanted.push((
                            TopicPartition::new(topic.name.clone(), p.partition_index),
                            p.offset,
                        ));
                        results.push(None);
                    } else {
                        results.push(Some(Err(PartitionError::new(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("{}-{} does not exist", topic.name, p.partition_index),
                        ))));
                    }
                }
            }
        }
        let mut moved = ctx.router.delete_records(wanted).await.into_iter();
        for result in results.iter_mut().filter(|r| r.is_none()) {
            *result = Some(moved.next().expect("one result per partition asked"));
        }
        let mut results = results.into_iter();
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
                            match results.next().flatten().expect("one result per partition") {
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
