//! AlterUserScramCredentials (key 51): deletes and upserts users' SCRAM credentials
//! through the controller, which checks them as Kafka's does and stores the salt,
//! iterations, stored key and server key (see `security::scram`); needs ALTER on the
//! cluster when an authorizer is configured. The credentials authenticate nobody yet
//! (no SASL listener).

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use crate::protocol::generated::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use crate::security::AclOperation;
use crate::security::scram::{Deletion, Upsertion};

pub struct AlterUserScramCredentials;

impl Handler for AlterUserScramCredentials {
    type Request = AlterUserScramCredentialsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::AlterUserScramCredentials),
    };

    async fn handle(
        ctx: &RequestContext,
        request: AlterUserScramCredentialsRequest,
    ) -> Option<AlterUserScramCredentialsResponse> {
        if !ctx.authorize_cluster(AclOperation::Alter) {
            let mut users: Vec<String> = Vec::new();
            for name in request
                .deletions
                .iter()
                .map(|d| &d.name)
                .chain(request.upsertions.iter().map(|u| &u.name))
            {
                if !users.contains(name) {
                    users.push(name.clone());
                }
            }
            return Some(AlterUserScramCredentialsResponse {
                results: users
                    .into_iter()
                    .map(|user| AlterUserScramCredentialsResult {
                        user,
                        error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                        ..AlterUserScramCredentialsResult::default()
                    })
                    .collect(),
                ..AlterUserScramCredentialsResponse::default()
            });
        }
        let deletions = request
            .deletions
            .into_iter()
            .map(|d| Deletion {
                name: d.name,
                mechanism: d.mechanism,
            })
            .collect();
        let upsertions = request
            .upsertions
            .into_iter()
            .map(|u| Upsertion {
                name: u.name,
                mechanism: u.mechanism,
                iterations: u.iterations,
                salt: u.salt.to_vec(),
                salted_password: u.salted_password.to_vec(),
            })
            .collect();
        let results = ctx
            .router
            .alter_scram_credentials(deletions, upsertions)
            .await;
        Some(AlterUserScramCredentialsResponse {
            results: results
                .into_iter()
                .map(|(user, result)| match result {
                    Ok(()) => AlterUserScramCredentialsResult {
                        user,
                        ..AlterUserScramCredentialsResult::default()
                    },
                    Err((code, message)) => AlterUserScramCredentialsResult {
                        user,
                        error_code: code.code(),
                        error_message: Some(message),
                        ..AlterUserScramCredentialsResult::default()
                    },
                })
                .collect(),
            ..AlterUserScramCredentialsResponse::default()
        })
    }
}
