//! ListOffsets (key 2): the offset for a timestamp in each partition — latest (-1, the
//! high watermark), earliest (-2, the log start offset), the record with the largest
//! timestamp (-3), or the first record at or after a timestamp — looked up on the shard
//! that owns the partition.

use super::{Handler, KnownPartitions, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::list_offsets_request::ListOffsetsRequest;
use crate::protocol::generated::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

pub struct ListOffsets;

impl Handler for ListOffsets {
    type Request = ListOffsetsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::ListOffsets),
    };

    async fn handle(
        ctx: &RequestContext,
        request: ListOffsetsRequest,
    ) -> Option<ListOffsetsResponse> {
        ctx.issued();
        let mut split = KnownPartitions::split(
            ctx,
            crate::security::AclOperation::Describe,
            request.topics.iter().flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|p| (topic.name.as_str(), p.partition_index, p.timestamp))
            }),
        );
        let read_committed = request.isolation_level == 1;
        let listed = ctx
            .router
            .list_offsets(std::mem::take(&mut split.wanted), read_committed)
            .await;
        let mut results = split.answers(listed);
        let topics = request
            .topics
            .iter()
            .map(|topic| ListOffsetsTopicResponse {
                name: topic.name.clone(),
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut response = ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..ListOffsetsPartitionResponse::default()
                        };
                        match results.next().expect("one result per partition") {
                            Ok(Some(found)) => {
                                response.timestamp = found.timestamp.0;
                                response.offset = found.offset.0;
                                response.leader_epoch = found.leader_epoch.0;
                            }
                            // No record at or after the timestamp: Kafka answers -1/-1.
                            Ok(None) => {}
                            Err(e) => response.error_code = e.code.code(),
                        }
                        response
                    })
                    .collect(),
                ..ListOffsetsTopicResponse::default()
            })
            .collect();
        Some(ListOffsetsResponse {
            throttle_time_ms: 0,
            topics,
            ..ListOffsetsResponse::default()
        })
    }
}
