//! OffsetDelete (key 47): removes committed offsets of partitions the group does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does), with tombstones in
//! `__consumer_offsets`, on the group's coordinator shard.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED otherwise) and on each topic
//! (TOPIC_AUTHORIZATION_FAILED for its partitions), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::generated::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use crate::security::AclOperation;

pub struct OffsetDelete;

impl Handler for OffsetDelete {
    type Request = OffsetDeleteRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::OffsetDelete),
    };

    async fn handle(
        ctx: &RequestContext,
        request: OffsetDeleteRequest,
    ) -> Option<OffsetDeleteResponse> {
        let mut request = request;
        let group_id = request.group_id.clone();
        // Topics the client may not READ are answered apart, in place.
        let mut denied = Vec::new();
        for (index, topic) in std::mem::take(&mut request.topics).into_iter().enumerate() {
            if ctx.authorize_topic(AclOperation::Read, &topic.name) {
                request.topics.push(topic);
            } else {
                denied.push((index, topic));
            }
        }
        let answer = if !ctx.authorize_group(AclOperation::Read, &group_id) {
            Err(ErrorCode::GroupAuthorizationFailed)
        } else {
            ctx.router
                .on_coordinator(&group_id, move |shard| async move {
                    shard.groups.offset_delete(&shard.metadata, request).await
                })
                .await
        };
        let mut response = answer.unwrap_or_else(|code| OffsetDeleteResponse {
            error_code: code.code(),
            ..OffsetDeleteResponse::default()
        });
        if response.error_code == ErrorCode::None.code() {
            for (index, topic) in denied {
                let refused = OffsetDeleteResponseTopic {
                    name: topic.name,
                    partitions: topic
                        .partitions
                        .iter()
                        .map(|p| OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code: ErrorCode::TopicAuthorizationFailed.code(),
                            ..OffsetDeleteResponsePartition::default()
                        })
                        .collect(),
                    ..OffsetDeleteResponseTopic::default()
                };
                response
                    .topics
                    .insert(index.min(response.topics.len()), refused);
            }
        }
        Some(response)
    }
}
