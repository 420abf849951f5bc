//! OffsetDelete (key 47): removes committed offsets of partitions the group does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC for those it does), with tombstones in
//! `__consumer_offsets`, on the group's coordinator shard.

use super::{Handler, RequestContext, newest};
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
        let group_id = request.group_id.clone();
        let answer = ctx
            .router
            .on_coordinator(&group_id, move |shard| async move {
                shard.groups.offset_delete(&shard.metadata, request).await
            })
            .await;
        Some(answer.unwrap_or_else(|code| OffsetDeleteResponse {
            error_code: code.code(),
            ..OffsetDeleteResponse::default()
        }))
    }
}
