//! DescribeUserScramCredentials (key 50): the mechanisms and iteration counts of users'
//! SCRAM credentials (never the keys), from this shard's copy of the metadata, as a
//! KRaft broker answers from its metadata image; needs DESCRIBE on the cluster when an
//! authorizer is configured. The credentials authenticate nobody yet (no SASL
//! listener, see `security::scram`).

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use crate::protocol::generated::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use crate::security::AclOperation;

pub struct DescribeUserScramCredentials;

impl Handler for DescribeUserScramCredentials {
    type Request = DescribeUserScramCredentialsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeUserScramCredentials),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeUserScramCredentialsRequest,
    ) -> Option<DescribeUserScramCredentialsResponse> {
        let asked: Vec<String> = request
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|u| u.name)
            .collect();
        if !ctx.authorize_cluster(AclOperation::Describe) {
            let code = ErrorCode::ClusterAuthorizationFailed.code();
            return Some(DescribeUserScramCredentialsResponse {
                error_code: code,
                results: asked
                    .into_iter()
                    .map(|user| DescribeUserScramCredentialsResult {
                        user,
                        error_code: code,
                        ..DescribeUserScramCredentialsResult::default()
                    })
                    .collect(),
                ..DescribeUserScramCredentialsResponse::default()
            });
        }
        let metadata = ctx.shard.metadata.borrow();
        let credentials = metadata.scram_credentials();
        // (user, named more than once), in request order; every user when none is named.
        let mut users: Vec<(String, bool)> = Vec::new();
        if asked.is_empty() {
            for (user, _) in credentials.keys() {
                if users.last().is_none_or(|(last, _)| last != user) {
                    users.push((user.clone(), false));
                }
            }
        } else {
            for user in asked {
                match users.iter_mut().find(|(u, _)| *u == user) {
                    Some((_, twice)) => *twice = true,
                    None => users.push((user, false)),
                }
            }
        }
        let results = users
            .into_iter()
            .map(|(user, twice)| {
                let infos: Vec<CredentialInfo> = credentials
                    .iter()
                    .filter(|((u, _), _)| *u == user)
                    .map(|((_, mechanism), credential)| CredentialInfo {
                        mechanism: mechanism.code(),
                        iterations: credential.iterations,
                        ..CredentialInfo::default()
                    })
                    .collect();
                let (code, message) = if twice {
                    (
                        ErrorCode::DuplicateResource,
                        Some(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a \
                             single request: {user}"
                        )),
                    )
                } else if infos.is_empty() {
                    (
                        ErrorCode::ResourceNotFound,
                        Some(format!(
                            "Attempt to describe a user credential that does not exist: {user}"
                        )),
                    )
                } else {
                    (ErrorCode::None, None)
                };
                DescribeUserScramCredentialsResult {
                    credential_infos: if code == ErrorCode::None {
                        infos
                    } else {
                        Vec::new()
                    },
                    user,
                    error_code: code.code(),
                    error_message: message,
                    ..DescribeUserScramCredentialsResult::default()
                }
            })
            .collect();
        Some(DescribeUserScramCredentialsResponse {
            results,
            ..DescribeUserScramCredentialsResponse::default()
        })
    }
}
