//! ListGroups (key 16): every group of every coordinator shard, filtered by state (v4+)
//! and type (v5+), case-insensitively as Kafka compares them. Without DESCRIBE on the
//! cluster, only the groups the client may DESCRIBE, as in Kafka.

use super::{Handler, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::list_groups_request::ListGroupsRequest;
use crate::protocol::generated::list_groups_response::ListGroupsResponse;
use crate::security::AclOperation;

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
        // Kafka's check: every group with DESCRIBE on the cluster, else those the client
        // may DESCRIBE.
        if !ctx.authorize_cluster(AclOperation::Describe) {
            groups.retain(|g| ctx.authorize_group(AclOperation::Describe, &g.group_id));
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Some(ListGroupsResponse {
            groups,
            ..ListGroupsResponse::default()
        })
    }
}
