//! OffsetDelete (key 47): removes committed offsets of partitions the group does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does), with tombstones in
//! `__consumer_offsets`, on the group's coordinator shard.

use super::{Handler, RequestContext, newest};
use crate::groups::GroupCall;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::offset_delete_request::OffsetDeleteRequest;
use crate::protocol::generated::offset_delete_response::OffsetDeleteResponse;

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
        let shard = match ctx.group_coordinator(&request.group_id) {
            Ok(shard) => shard,
            Err(code) => {
                return Some(OffsetDeleteResponse {
                    error_code: code.code(),
                    ..OffsetDeleteResponse::default()
                });
            }
        };
        let answer = ctx
            .call_coordinator(shard, GroupCall::OffsetDelete { request })
            .await;
        Some(crate::expect_group_answer!(answer, OffsetDelete))
    }
}
