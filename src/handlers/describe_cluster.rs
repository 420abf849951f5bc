//! DescribeCluster (key 60): this node as the whole cluster, and its controller.

use super::{Handler, RequestContext, newest};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_cluster_request::DescribeClusterRequest;
use crate::protocol::generated::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};

/// Kafka's endpoint types: brokers (1) and controllers (2).
const ENDPOINT_BROKERS: i8 = 1;

pub struct DescribeCluster;

impl Handler for DescribeCluster {
    type Request = DescribeClusterRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 0,
        max: newest(ApiKey::DescribeCluster),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeClusterRequest,
    ) -> Option<DescribeClusterResponse> {
        let config = &ctx.shard.config;
        let metadata = ctx.shard.metadata.borrow();
        let mut response = DescribeClusterResponse {
            endpoint_type: ENDPOINT_BROKERS,
            cluster_id: metadata.cluster_id().to_string(),
            controller_id: config.node_id,
            cluster_authorized_operations: ctx.authorized_operations(
                request.include_cluster_authorized_operations,
                crate::security::ResourceType::Cluster,
                crate::security::acl::CLUSTER_NAME,
                crate::security::acl::CLUSTER_OPERATIONS,
            ),
            ..DescribeClusterResponse::default()
        };
        if request.endpoint_type != ENDPOINT_BROKERS && ctx.version >= 1 {
            response.error_code = ErrorCode::MismatchedEndpointType.code();
            response.error_message = Some(
                "this listener serves brokers; corelog has no separate controller listener".into(),
            );
            return Some(response);
        }
        response.brokers = config
            .advertised_listeners
            .iter()
            .take(1)
            .map(|l| DescribeClusterBroker {
                broker_id: config.node_id,
                host: l.host.clone(),
                port: i32::from(l.port),
                rack: None,
                ..DescribeClusterBroker::default()
            })
            .collect();
        Some(response)
    }
}
