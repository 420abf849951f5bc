//! LeaveGroup (key 13): members leave a classic group (one by member id before v3, a
//! batch by member or instance id from v3, KIP-345), on the group's coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::leave_group_request::LeaveGroupRequest;
use crate::protocol::generated::leave_group_response::LeaveGroupResponse;

pub struct LeaveGroup;

impl Handler for LeaveGroup {
    type Request = LeaveGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::LeaveGroup),
    };

    async fn handle(
        ctx: &RequestContext,
        request: LeaveGroupRequest,
    ) -> Option<LeaveGroupResponse> {
        let shard = match ctx.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                return Some(LeaveGroupResponse {
                    error_code: code.code(),
                    ..LeaveGroupResponse::default()
                });
            }
        };
        let call = GroupCall::Leave {
            version: ctx.version,
            request,
        };
        let answer = ctx.call_coordinator(shard, call).await;
        Some(crate::expect_group_answer!(answer, Leave))
    }
}
