//! ConsumerGroupDescribe (key 69): KIP-848 groups' epochs, assignor and members with
//! their current and target assignments, each from its coordinator shard. A group the
//! client may not DESCRIBE gets GROUP_AUTHORIZATION_FAILED, as in Kafka.

use super::{Handler, OPERATIONS_NOT_REQUESTED, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use crate::protocol::generated::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};
use crate::security::acl::GROUP_OPERATIONS;
use crate::security::{AclOperation, ResourceType};

pub struct ConsumerGroupDescribe;

impl Handler for ConsumerGroupDescribe {
    type Request = ConsumerGroupDescribeRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::ConsumerGroupDescribe),
    };

    async fn handle(
        ctx: &RequestContext,
        request: ConsumerGroupDescribeRequest,
    ) -> Option<ConsumerGroupDescribeResponse> {
        let include_operations = request.include_authorized_operations;
        let groups = ctx
            .per_authorized_group(
                AclOperation::Describe,
                request.group_ids,
                |group_ids| async move {
                    let described = ctx
                        .router
                        .per_coordinator(
                            group_ids,
                            |group_id, code| DescribedGroup {
                                error_code: code.code(),
                                group_id: group_id.to_string(),
                                ..DescribedGroup::default()
                            },
                            |shard, groups| async move {
                                groups
                                    .iter()
                                    .map(|g| shard.groups.consumer_describe(&shard.metadata, g))
                                    .collect()
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
                    authorized_operations: OPERATIONS_NOT_REQUESTED,
                    ..DescribedGroup::default()
                },
            )
            .await;
        Some(ConsumerGroupDescribeResponse {
            groups,
            ..ConsumerGroupDescribeResponse::default()
        })
    }
}
