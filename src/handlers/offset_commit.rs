//! OffsetCommit (key 8): committed offsets written to the group's `__consumer_offsets`
//! partition on its coordinator shard, answered once durable. Kafka 4.x serves v2 and
//! later.

use super::{Handler, RequestContext, newest};
use crate::groups::{GroupCall, offset_commit_response};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_commit_request::OffsetCommitRequest;
use crate::protocol::generated::offset_commit_response::OffsetCommitResponse;

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
        let shard = match ctx.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => return Some(offset_commit_response(&request, &|_, _| code)),
        };
        let call = GroupCall::OffsetCommit {
            version: ctx.version,
            request,
        };
        let answer = ctx.call_coordinator(shard, call).await;
        Some(crate::expect_group_answer!(answer, OffsetCommit))
    }
}
