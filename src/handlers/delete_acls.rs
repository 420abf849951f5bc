//! DeleteAcls (key 31): removes the ACL bindings each filter matches, through the
//! controller, and answers them per filter; needs ALTER on the cluster. Without an
//! authorizer every filter gets SECURITY_DISABLED, as Kafka answers.

use super::create_acls::NO_AUTHORIZER;
use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::delete_acls_request::DeleteAclsRequest;
use crate::protocol::generated::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use crate::security::{AclFilter, AclOperation, PatternType, PermissionType, ResourceType};

pub struct DeleteAcls;

impl Handler for DeleteAcls {
    type Request = DeleteAclsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::DeleteAcls),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DeleteAclsRequest,
    ) -> Option<DeleteAclsResponse> {
        let failed = |code: ErrorCode, message: Option<&str>| {
            Some(DeleteAclsResponse {
                filter_results: request
                    .filters
                    .iter()
                    .map(|_| DeleteAclsFilterResult {
                        error_code: code.code(),
                        error_message: message.map(str::to_string),
                        ..DeleteAclsFilterResult::default()
                    })
                    .collect(),
                ..DeleteAclsResponse::default()
            })
        };
        if !ctx.authorize_cluster(AclOperation::Alter) {
            return failed(ErrorCode::ClusterAuthorizationFailed, None);
        }
        if !ctx.shard.config.authorizer.enabled {
            return failed(ErrorCode::SecurityDisabled, Some(NO_AUTHORIZER));
        }
        let filters: Vec<AclFilter> = request
            .filters
            .into_iter()
            .map(|f| AclFilter {
                resource_type: ResourceType::from_code_or_unknown(f.resource_type_filter),
                name: f.resource_name_filter,
                pattern_type: PatternType::from_code_or_unknown(f.pattern_type_filter),
                principal: f.principal_filter,
                host: f.host_filter,
                operation: AclOperation::from_code_or_unknown(f.operation),
                permission: PermissionType::from_code_or_unknown(f.permission_type),
            })
            .collect();
        let results = ctx.router.delete_acls(filters).await;
        Some(DeleteAclsResponse {
            filter_results: results
                .into_iter()
                .map(|result| match result {
                    Ok(matched) => DeleteAclsFilterResult {
                        matching_acls: matched
                            .into_iter()
                            .map(|acl| DeleteAclsMatchingAcl {
                                resource_type: acl.resource_type.code(),
                                resource_name: acl.name,
                                pattern_type: acl.pattern_type.code(),
                                principal: acl.principal,
                                host: acl.host,
                                operation: acl.operation.code(),
                                permission_type: acl.permission.code(),
                                ..DeleteAclsMatchingAcl::default()
                            })
                            .collect(),
                        ..DeleteAclsFilterResult::default()
                    },
                    Err(message) => DeleteAclsFilterResult {
                        error_code: ErrorCode::InvalidRequest.code(),
                        error_message: Some(message),
                        ..DeleteAclsFilterResult::default()
                    },
                })
                .collect(),
            ..DeleteAclsResponse::default()
        })
    }
}
