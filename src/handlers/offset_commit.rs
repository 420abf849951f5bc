//! OffsetCommit (key 8): committed offsets written to the group's `__consumer_offsets`
//! partition on its coordinator shard, answered once durable. Kafka 4.x serves v2 and
//! later.
//! Needs READ on the group (GROUP_AUTHORIZATION_FAILED) and on each topic
//! (TOPIC_AUTHORIZATION_FAILED), as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::groups::offset_commit_response;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_commit_request::OffsetCommitRequest;
use crate::protocol::generated::offset_commit_response::OffsetCommitResponse;
use crate::security::AclOperation;

pub struct OffsetCommit;

impl Handler for OffsetCommit {
    type Request = OffsetCommitRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 2,
        max: newest(ApiKey::OffsetCommit),
    };

    async fn handle(
        ctx: &RequestContext,
        request: OffsetCommitRequest,
    ) -> Option<OffsetCommitResponse> {
        let mut request = request;
        if !ctx.authorize_group(AclOperation::Read, &request.group_id) {
            let code = ErrorCode::GroupAuthorizationFailed.code();
            return Some(offset_commit_response(&request, &|_, _| code));
        }
        // Kafka's topic check: READ; the refused topics are answered apart, in place.
        let mut denied = Vec::new();
        for (index, topic) in std::mem::take(&mut request.topics).into_iter().enumerate() {
            if ctx.authorize_topic(AclOperation::Read, &topic.name) {
                request.topics.push(topic);
            } else {
                denied.push((index, topic));
            }
        }
        let mut answer = Self::commit(ctx, request).await;
        let refused = OffsetCommitRequest {
            topics: denied.iter().map(|(_, t)| t.clone()).collect(),
            ..OffsetCommitRequest::default()
        };
        let code = ErrorCode::TopicAuthorizationFailed.code();
        let refused = offset_commit_response(&refused, &|_, _| code);
        for ((index, _), topic) in denied.into_iter().zip(refused.topics) {
            answer.topics.insert(index.min(answer.topics.len()), topic);
        }
        Some(answer)
    }
}

impl OffsetCommit {
    async fn commit(ctx: &RequestContext, request: OffsetCommitRequest) -> OffsetCommitResponse {
        let shard = match ctx.router.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => return offset_commit_response(&request, &|_, _| code.code()),
        };
        let version = ctx.version;
        ctx.router
            .call(shard, move |router, _| async move {
                let shard = router.state();
                shard
                    .groups
                    .offset_commit(&shard.metadata, version, request)
                    .await
            })
            .await
    }
}
