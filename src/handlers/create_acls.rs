//! CreateAcls (key 30): adds ACL bindings through the controller, which checks them as
//! Kafka does; needs ALTER on the cluster. Without an authorizer every binding gets
//! SECURITY_DISABLED, as Kafka answers.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::create_acls_request::{AclCreation, CreateAclsRequest};
use crate::protocol::generated::create_acls_response::{AclCreationResult, CreateAclsResponse};
use crate::security::{AclBinding, AclOperation, PatternType, PermissionType, ResourceType};

/// Kafka's message when CreateAcls or DeleteAcls reach a broker without an authorizer.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

pub struct CreateAcls;

/// The binding a creation asks for; codes Kafka does not define read as UNKNOWN, which
/// the controller refuses.
fn binding(creation: &AclCreation) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code_or_unknown(creation.resource_type),
        name: creation.resource_name.clone(),
        pattern_type: PatternType::from_code_or_unknown(creation.resource_pattern_type),
        principal: creation.principal.clone(),
        host: creation.host.clone(),
        operation: AclOperation::from_code_or_unknown(creation.operation),
        permission: PermissionType::from_code_or_unknown(creation.permission_type),
    }
}

impl Handler for CreateAcls {
    type Request = CreateAclsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::CreateAcls),
    };

    async fn handle(
        ctx: &RequestContext,
        request: CreateAclsRequest,
    ) -> Option<CreateAclsResponse> {
        let failed = |code: ErrorCode, message: Option<&str>| {
            Some(CreateAclsResponse {
                results: request
                    .creations
                    .iter()
                    .map(|_| AclCreationResult {
                        error_code: code.code(),
                        error_message: message.map(str::to_string),
                        ..AclCreationResult::default()
                    })
                    .collect(),
                ..CreateAclsResponse::default()
            })
        };
        if !ctx.authorize_cluster(AclOperation::Alter) {
            return failed(ErrorCode::ClusterAuthorizationFailed, None);
        }
        if !ctx.shard.config.authorizer.enabled {
            return failed(ErrorCode::SecurityDisabled, Some(NO_AUTHORIZER));
        }
        let bindings: Vec<AclBinding> = request.creations.iter().map(binding).collect();
        let results = ctx.router.create_acls(bindings).await;
        Some(CreateAclsResponse {
            results: results
                .into_iter()
                .map(|result| match result {
                    Ok(()) => AclCreationResult::default(),
                    Err(message) => AclCreationResult {
                        error_code: ErrorCode::InvalidRequest.code(),
                        error_message: Some(message),
                        ..AclCreationResult::default()
                    },
                })
                .collect(),
            ..CreateAclsResponse::default()
        })
    }
}
