//! DescribeConfigs (key 32): answered from this shard's copy of the metadata. A topic
//! lists every topic config; this broker (its node id) lists the broker configs corelog
//! reads, read-only, and the broker synonyms of topic configs, which can change at run
//! time; the cluster-wide default broker resource ("") lists the dynamic defaults set.
//! Each config carries its value, its source and, on request, its synonyms (Kafka's
//! order) and a line of documentation. Each resource needs DESCRIBE_CONFIGS on the
//! topic, the group, or the cluster for a broker (Kafka's
//! TOPIC_/GROUP_/CLUSTER_AUTHORIZATION_FAILED otherwise).

use super::{Handler, RequestContext, newest};
use crate::config::ConfigType;
use crate::metadata::configs::{
    ConfigView, DescribedConfig, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC,
};
use crate::metadata::names::topic_name_problem;
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use crate::protocol::generated::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};

pub struct DescribeConfigs;

impl Handler for DescribeConfigs {
    type Request = DescribeConfigsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::DescribeConfigs),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeConfigsRequest,
    ) -> Option<DescribeConfigsResponse> {
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let described = match ctx.config_resource_denied(
                    resource.resource_type,
                    &resource.resource_name,
                    crate::security::AclOperation::DescribeConfigs,
                ) {
                    Some(denied) => Err((denied, None)),
                    None => describe(ctx, resource),
                };
                let (code, message, configs) = match described {
                    Ok(configs) => (ErrorCode::None, None, configs),
                    Err((code, message)) => (code, message, Vec::new()),
                };
                DescribeConfigsResult {
                    error_code: code.code(),
                    error_message: message,
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name.clone(),
                    configs: configs
                        .into_iter()
                        .filter(|c| wanted(resource, &c.name))
                        .map(|c| entry(c, request.include_synonyms, request.include_documentation))
                        .collect(),
                    ..DescribeConfigsResult::default()
                }
            })
            .collect();
        Some(DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
            ..DescribeConfigsResponse::default()
        })
    }
}

/// Every config of one resource, or Kafka's error for it.
fn describe(
    ctx: &RequestContext,
    resource: &DescribeConfigsResource,
) -> Result<Vec<DescribedConfig>, (ErrorCode, Option<String>)> {
    let metadata = ctx.shard.metadata.borrow();
    let view = ConfigView {
        broker: &ctx.shard.config,
        dynamic: metadata.dynamic_configs(),
    };
    let name = &resource.resource_name;
    match resource.resource_type {
        RESOURCE_TOPIC => {
            if let Some(problem) = topic_name_problem(name) {
                return Err((ErrorCode::InvalidTopicException, Some(problem)));
            }
            match metadata.topic(name) {
                Some(topic) => Ok(view.describe_topic(&topic.config.overrides)),
                // Kafka answers an unknown topic without a message.
                None => Err((ErrorCode::UnknownTopicOrPartition, None)),
            }
        }
        RESOURCE_BROKER if name.is_empty() => Ok(view.describe_cluster_default()),
        RESOURCE_BROKER => match name.parse::<i32>() {
            Ok(id) if id == metadata.node_id() => Ok(view.describe_node()),
            Ok(_) => Err((
                ErrorCode::InvalidRequest,
                Some(format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    metadata.node_id()
                )),
            )),
            Err(_) => Err((
                ErrorCode::InvalidRequest,
                Some(format!("Broker id must be an integer, but it is: {name}")),
            )),
        },
        RESOURCE_GROUP if name.is_empty() => Err((
            ErrorCode::InvalidRequest,
            Some("Group name must not be empty".to_string()),
        )),
        RESOURCE_GROUP => Ok(view.describe_group(name)),
        other => Err((
            ErrorCode::InvalidRequest,
            Some(format!(
                "Unsupported resource type {other}: corelog describes TOPIC ({RESOURCE_TOPIC}), \
                 BROKER ({RESOURCE_BROKER}) and GROUP ({RESOURCE_GROUP}) configs"
            )),
        )),
    }
}

/// Whether the request asks for this config: every one when it names none.
fn wanted(resource: &DescribeConfigsResource, name: &str) -> bool {
    match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k == name),
        _ => true,
    }
}

fn entry(
    config: DescribedConfig,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    // Kafka never shows the value of a password.
    let sensitive = config.config_type == ConfigType::Password;
    let shown = |value: Option<String>| if sensitive { None } else { value };
    DescribeConfigsResourceResult {
        name: config.name,
        value: shown(config.value),
        read_only: config.read_only,
        config_source: config.source as i8,
        is_sensitive: sensitive,
        synonyms: if include_synonyms {
            config
                .synonyms
                .into_iter()
                .map(|s| DescribeConfigsSynonym {
                    name: s.name,
                    value: shown(s.value),
                    source: s.source as i8,
                    ..DescribeConfigsSynonym::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        config_type: config.config_type as i8,
        documentation: include_documentation.then_some(config.documentation),
        ..DescribeConfigsResourceResult::default()
    }
}
