//! DescribeGroups (key 15): classic groups' state, protocol and members (with their
//! metadata and assignment once stable), each from its coordinator shard. A group that
//! does not exist, or is not a classic group, is described as Dead, as Kafka does
//! before v6. A group the client may not DESCRIBE gets GROUP_AUTHORIZATION_FAILED, as
//! in Kafka.

use super::{Handler, OPERATIONS_NOT_REQUESTED, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::generated::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup,
};
use crate::security::acl::GROUP_OPERATIONS;
use crate::security::{AclOperation, ResourceType};

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
        let include_operations = request.include_authorized_operations;
        let groups = ctx
            .per_authorized_group(
                AclOperation::Describe,
                request.groups,
                |group_ids| async move {
                    let described = ctx
                        .router
                        .per_coordinator(
                            group_ids,
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
                    described
                        .into_iter()
                        .map(|group| DescribedGroup {
                            authorized_operations: ctx.authorized_operations(
                                include_operations,
                                ResourceType::Group,
                                &group.group_id,
                                GROUP_OPERATIONS,
                            ),
                            ..group
                        })
                        .collect()
                },
                |group_id| DescribedGroup {
                    error_code: ErrorCode::GroupAuthorizationFailed.code(),
                    group_id,
                    group_state: String::new(),
                    authorized_operations: OPERATIONS_NOT_REQUESTED,
                    ..DescribedGroup::default()
                },
            )
            .await;
        Some(DescribeGroupsResponse {
            groups,
            ..DescribeGroupsResponse::default()
        })
    }
}
