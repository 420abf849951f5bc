//! AlterConfigs (key 33): replaces a resource's whole set of config overrides — a
//! topic's, a group's, or the dynamic broker configs of this broker (its node id) or of the
//! cluster-wide default ("") — as Kafka does: what the request leaves out goes back to
//! its default. The controller on shard 0 validates exactly as CreateTopics does,
//! persists, and has every shard apply the change live before answering. Also the
//! request-level checks IncrementalAlterConfigs shares (`alter`).

use super::{Handler, RequestContext, newest};
use crate::config::without_effect;
use crate::metadata::configs::{Alteration, ConfigOp, ConfigTarget, replacement};
use crate::metadata::controller::TopicError;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::alter_configs_request::AlterConfigsRequest;
use crate::protocol::generated::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};

pub struct AlterConfigs;

impl Handler for AlterConfigs {
    type Request = AlterConfigsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::AlterConfigs),
    };

    async fn handle(
        ctx: &RequestContext,
        request: AlterConfigsRequest,
    ) -> Option<AlterConfigsResponse> {
        let resources = request
            .resources
            .iter()
            .map(|r| {
                let entries: Vec<(String, Option<String>)> = r
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.value.clone()))
                    .collect();
                (
                    r.resource_type,
                    r.resource_name.clone(),
                    replacement(&entries).map(Alteration::Replace),
                )
            })
            .collect();
        let outcomes = alter(ctx, resources, request.validate_only).await;
        Some(AlterConfigsResponse {
            throttle_time_ms: 0,
            responses: request
                .resources
                .iter()
                .zip(outcomes)
                .map(|(r, (code, message))| AlterConfigsResourceResponse {
                    error_code: code.code(),
                    error_message: message,
                    resource_type: r.resource_type,
                    resource_name: r.resource_name.clone(),
                    ..AlterConfigsResourceResponse::default()
                })
                .collect(),
            ..AlterConfigsResponse::default()
        })
    }
}

/// Changes the configs of each resource (type, name, what to do — or why the entries
/// were refused already) and returns each one's error code and message, in order. As
/// Kafka's broker does first: a resource named twice is an INVALID_REQUEST (every time
/// it is named), as is a resource that is neither a topic, a group nor a broker (this
/// one or the cluster default), and a resource the client may not ALTER_CONFIGS (the topic,
/// the group, or the cluster for a broker) gets Kafka's authorization error; the rest go
/// to the controller together, so they are applied as
/// one metadata change.
pub(super) async fn alter(
    ctx: &RequestContext,
    resources: Vec<(i8, String, Result<Alteration, TopicError>)>,
    validate_only: bool,
) -> Vec<(ErrorCode, Option<String>)> {
    let node_id = ctx.shard.metadata.borrow().node_id();
    let mut outcomes: Vec<Option<(ErrorCode, Option<String>)>> = Vec::new();
    let mut asked: Vec<(usize, (ConfigTarget, Alteration))> = Vec::new();
    for (index, (resource_type, name, alteration)) in resources.iter().enumerate() {
        let named = resources
            .iter()
            .filter(|(t, n, _)| t == resource_type && n == name)
            .count();
        let parsed = if named > 1 {
            Err((
                ErrorCode::InvalidRequest,
                Some("Each resource must appear at most once.".to_string()),
            ))
        } else if let Some(denied) = ctx.config_resource_denied(
            *resource_type,
            name,
            crate::security::AclOperation::AlterConfigs,
        ) {
            Err((denied, None))
        } else {
            ConfigTarget::parse(*resource_type, name, node_id)
                .and_then(|target| Ok((target, alteration.clone()?)))
                .map_err(|e| (e.code(), Some(e.message)))
        };
        match parsed {
            Ok(change) => {
                asked.push((index, change));
                outcomes.push(None);
            }
            Err(outcome) => outcomes.push(Some(outcome)),
        }
    }
    let (indexes, changes): (Vec<usize>, Vec<(ConfigTarget, Alteration)>) =
        asked.into_iter().unzip();
    let summary: Vec<(String, Vec<String>)> = changes
        .iter()
        .map(|(t, alteration)| (format!("{t:?}"), without_effect_keys(t, alteration)))
        .collect();
    let results = if changes.is_empty() {
        Vec::new()
    } else {
        ctx.router.alter_configs(changes, validate_only).await
    };
    for ((index, result), (what, ignored)) in indexes.into_iter().zip(results).zip(summary) {
        outcomes[index] = Some(match result {
            Ok(()) => {
                if !validate_only {
                    tracing::info!("configs of {what} changed by {}", ctx.peer);
                    for key in ignored {
                        tracing::info!(
                            "broker config {key} of {what} is accepted without effect: corelog \
                             has no use for it"
                        );
                    }
                }
                (ErrorCode::None, None)
            }
            Err(e) => (e.code(), Some(e.message)),
        });
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every resource is answered"))
        .collect()
}

/// The keys an alteration of broker configs sets that corelog accepts without effect.
fn without_effect_keys(target: &ConfigTarget, alteration: &Alteration) -> Vec<String> {
    if !matches!(target, ConfigTarget::Broker(_)) {
        return Vec::new();
    }
    let named: Vec<&String> = match alteration {
        Alteration::Replace(values) => values.keys().collect(),
        Alteration::Incremental(ops) => ops
            .iter()
            .filter(|(_, op)| *op != ConfigOp::Delete)
            .map(|(name, _)| name)
            .collect(),
    };
    named
        .into_iter()
        .filter(|name| without_effect(name).is_some())
        .cloned()
        .collect()
}
