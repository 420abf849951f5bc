//! OffsetCommit (key 8): committed offsets written to the group's `__consumer_offsets`
//! partition on its coordinator shard, answered once durable. Kafka 4.x serves v2 and
//! later.

use super::{Handler, RequestContext, newest};
use crate::groups::offset_commit_response;
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
        let shard = match ctx.router.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => return Some(offset_commit_response(&request, &|_, _| code.code())),
        };
        let version = ctx.version;
        let answer = ctx
            .router
            .call(shard, move |router, _| async move {
                let shard = router.state();
                shard
                    .groups
                    .offset_commit(&shard.metadata, version, request)
                    .await
            })
            .await;
        Some(answer)
    }
}
