//! SyncGroup (key 14): forwarded to the group's coordinator shard; the leader's
//! assignment is persisted before any member gets its share.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::sync_group_request::SyncGroupRequest;
use crate::protocol::generated::sync_group_response::SyncGroupResponse;

pub struct SyncGroup;

impl Handler for SyncGroup {
    type Request = SyncGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::SyncGroup),
    };

    async fn handle(ctx: &RequestContext, request: SyncGroupRequest) -> Option<SyncGroupResponse> {
        let shard = match ctx.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                return Some(SyncGroupResponse {
                    error_code: code.code(),
                    ..SyncGroupResponse::default()
                });
            }
        };
        let answer = ctx
            .call_coordinator(shard, GroupCall::Sync { request })
            .await;
        Some(crate::expect_group_answer!(answer, Sync))
    }
}
