//! IncrementalAlterConfigs (key 44): SET, DELETE, APPEND and SUBTRACT on a topic's
//! overrides, a group's configs, or the dynamic broker configs of this broker (its node
//! id) or of the cluster-wide default (""). APPEND and SUBTRACT work on list configs only
//! (`cleanup.policy`, `log.cleanup.policy`). Validated by the controller exactly as
//! CreateTopics validates configs, persisted, and applied live on every shard before the
//! answer (see `alter_configs::alter`).

use super::alter_configs::alter;
use super::{Handler, RequestContext, newest};
use crate::metadata::configs::{Alteration, incremental_ops};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use crate::protocol::generated::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};

pub struct IncrementalAlterConfigs;

impl Handler for IncrementalAlterConfigs {
    type Request = IncrementalAlterConfigsRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::IncrementalAlterConfigs),
    };

    async fn handle(
        ctx: &RequestContext,
        request: IncrementalAlterConfigsRequest,
    ) -> Option<IncrementalAlterConfigsResponse> {
        let resources = request
            .resources
            .iter()
            .map(|r| {
                let entries: Vec<(String, i8, Option<String>)> = r
                    .configs
                    .iter()
                    .map(|c| (c.name.clone(), c.config_operation, c.value.clone()))
                    .collect();
                (
                    r.resource_type,
                    r.resource_name.clone(),
                    incremental_ops(&entries).map(Alteration::Incremental),
                )
            })
            .collect();
        let outcomes = alter(ctx, resources, request.validate_only).await;
        Some(IncrementalAlterConfigsResponse {
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
            ..IncrementalAlterConfigsResponse::default()
        })
    }
}
