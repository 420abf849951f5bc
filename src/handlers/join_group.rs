//! JoinGroup (key 11): forwarded to the group's coordinator shard, where it waits until
//! the join phase completes (see `groups::classic`). Kafka 4.x serves v2 and later.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::join_group_request::JoinGroupRequest;
use crate::protocol::generated::join_group_response::JoinGroupResponse;

pub struct JoinGroup;

impl Handler for JoinGroup {
    type Request = JoinGroupRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 2,
        max: newest(ApiKey::JoinGroup),
    };

    async fn handle(ctx: &RequestContext, request: JoinGroupRequest) -> Option<JoinGroupResponse> {
        let shard = match ctx.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                return Some(JoinGroupResponse {
                    error_code: code.code(),
                    generation_id: -1,
                    member_id: request.member_id,
                    ..JoinGroupResponse::default()
                });
            }
        };
        let call = GroupCall::Join {
            version: ctx.version,
            client: ctx.client_info(),
            request,
        };
        let answer = ctx.call_coordinator(shard, call).await;
        Some(crate::expect_group_answer!(answer, Join))
    }
}
