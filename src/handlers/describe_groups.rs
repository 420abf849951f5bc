//! DescribeGroups (key 15): classic groups' state, protocol and members (with their
//! metadata and assignment once stable), each from its coordinator shard. A group that
//! does not exist, or is not a classic group, is described as Dead, as Kafka does
//! before v6.

use super::{Handler, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::generated::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup,
};

/// No authorizer: every group operation Kafka defines is allowed (READ, DELETE,
/// DESCRIBE as ACL operation bits).
pub const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub struct DescribeGroups;

impl Handler for DescribeGroups {
    type Request = DescribeGroupsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeGroups),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeGroupsRequest,
    ) -> Option<DescribeGroupsResponse> {
        let described =
            ctx.router
                .per_coordinator(
                    request.groups,
                    |group_id, code| DescribedGroup {
                        error_code: code.code(),
                        group_id: group_id.to_string(),
                        group_state: "Dead".to_string(),
                        ..DescribedGroup::default()
                    },
                    |shard, groups| async move {
                        groups.iter().map(|g| shard.groups.describe(g)).collect()
                    },
                )
                .await;
        let operations = if request.include_authorized_operations {
            GROUP_OPERATIONS
        } else {
            i32::MIN
        };
        Some(DescribeGroupsResponse {
            groups: described
                .into_iter()
                .map(|group| DescribedGroup {
                    authorized_operations: operations,
                    ..group
                })
                .collect(),
            ..DescribeGroupsResponse::default()
        })
    }
}
