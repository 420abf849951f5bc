//! ListGroups (key 16): every group of every coordinator shard, filtered by state (v4+)
//! and type (v5+), case-insensitively as Kafka compares them.

use super::{Handler, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::list_groups_request::ListGroupsRequest;
use crate::protocol::generated::list_groups_response::ListGroupsResponse;

pub struct ListGroups;

impl Handler for ListGroups {
    type Request = ListGroupsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::ListGroups),
    };

    async fn handle(
        ctx: &RequestContext,
        request: ListGroupsRequest,
    ) -> Option<ListGroupsResponse> {
        let (states, types) = (request.states_filter, request.types_filter);
        let mut groups: Vec<_> = ctx
            .router
            .every_coordinator(move |shard| async move { shard.groups.list(&states, &types) })
            .await
            .into_iter()
            .flatten()
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Some(ListGroupsResponse {
            groups,
            ..ListGroupsResponse::default()
        })
    }
}
