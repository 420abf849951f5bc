//! DescribeAcls (key 29): the ACL bindings a filter selects, from this shard's copy of
//! the metadata, grouped by resource pattern; needs DESCRIBE on the cluster. Without an
//! authorizer the answer is SECURITY_DISABLED, as Kafka answers.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_acls_request::DescribeAclsRequest;
use crate::protocol::generated::describe_acls_response::{
    AclDescription, DescribeAclsResource, DescribeAclsResponse,
};
use crate::security::{
    AclBinding, AclFilter, AclOperation, PatternType, PermissionType, ResourceType,
};

/// Kafka's message when DescribeAcls reaches a broker without an authorizer.
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

pub struct DescribeAcls;

/// The bindings of `acls` grouped by resource pattern, in order of first appearance.
pub fn by_resource<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for acl in acls {
        let description = AclDescription {
            principal: acl.principal.clone(),
            host: acl.host.clone(),
            operation: acl.operation.code(),
            permission_type: acl.permission.code(),
            ..AclDescription::default()
        };
        match resources.iter_mut().find(|r| {
            r.resource_type == acl.resource_type.code()
                && r.resource_name == acl.name
                && r.pattern_type == acl.pattern_type.code()
        }) {
            Some(resource) => resource.acls.push(description),
            None => resources.push(DescribeAclsResource {
                resource_type: acl.resource_type.code(),
                resource_name: acl.name.clone(),
                pattern_type: acl.pattern_type.code(),
                acls: vec![description],
                ..DescribeAclsResource::default()
            }),
        }
    }
    resources
}

impl Handler for DescribeAcls {
    type Request = DescribeAclsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::DescribeAcls),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeAclsRequest,
    ) -> Option<DescribeAclsResponse> {
        let failed = |code: ErrorCode, message: String| {
            Some(DescribeAclsResponse {
                error_code: code.code(),
                error_message: Some(message),
                ..DescribeAclsResponse::default()
            })
        };
        if !ctx.authorize_cluster(AclOperation::Describe) {
            return failed(
                ErrorCode::ClusterAuthorizationFailed,
                "Cluster authorization failed.".into(),
            );
        }
        if !ctx.shard.config.authorizer.enabled {
            return failed(ErrorCode::SecurityDisabled, NO_AUTHORIZER.into());
        }
        let filter = AclFilter {
            resource_type: ResourceType::from_code_or_unknown(request.resource_type_filter),
            name: request.resource_name_filter,
            pattern_type: PatternType::from_code_or_unknown(request.pattern_type_filter),
            principal: request.principal_filter,
            host: request.host_filter,
            operation: AclOperation::from_code_or_unknown(request.operation),
            permission: PermissionType::from_code_or_unknown(request.permission_type),
        };
        if let Err(message) = filter.validate() {
            return failed(ErrorCode::InvalidRequest, message);
        }
        let metadata = ctx.shard.metadata.borrow();
        Some(DescribeAclsResponse {
            resources: by_resource(metadata.acls().iter().filter(|acl| filter.matches(acl))),
            ..DescribeAclsResponse::default()
        })
    }
}
