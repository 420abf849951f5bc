//! WriteTxnMarkers (key 27): COMMIT or ABORT markers written on partitions of this
//! broker, durably, through the partitions' owners — what a transaction coordinator
//! asks of partition leaders (ours writes them directly; this serves tools and, later,
//! the cluster's other brokers).

use super::{Handler, RequestContext, newest};
use crate::metadata::TopicPartition;
use crate::model::{ProducerEpoch, ProducerId};
use crate::protocol::ErrorCode;
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::write_txn_markers_request::WriteTxnMarkersRequest;
use crate::protocol::generated::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};
use crate::security::AclOperation;

pub struct WriteTxnMarkers;

impl Handler for WriteTxnMarkers {
    type Request = WriteTxnMarkersRequest;
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::WriteTxnMarkers),
    };

    async fn handle(
        ctx: &RequestContext,
        request: WriteTxnMarkersRequest,
    ) -> Option<WriteTxnMarkersResponse> {
        let mut markers = Vec::with_capacity(request.markers.len());
        // Kafka's check: CLUSTER_ACTION on the cluster (brokers' own request).
        let allowed = ctx.authorize_cluster(AclOperation::ClusterAction);
        for marker in request.markers {
            let (pid, epoch) = (
                ProducerId(marker.producer_id),
                ProducerEpoch(marker.producer_epoch),
            );
            let commit = marker.transaction_result;
            let mut topics = Vec::with_capacity(marker.topics.len());
            for topic in marker.topics {
                let known = ctx
                    .shard
                    .metadata
                    .borrow()
                    .topic(&topic.name)
                    .map(|t| t.partitions);
                let mut wanted = Vec::new();
                let mut results = Vec::new();
                for &p in &topic.partition_indexes {
                    if !allowed {
                        results.push((p, ErrorCode::ClusterAuthorizationFailed));
                    } else if known.is_some_and(|count| p >= 0 && p < count) {
                        wanted.push((
                            TopicPartition::new(topic.name.clone(), p),
                            (pid, epoch, commit),
                        ));
                    } else {
                        results.push((p, ErrorCode::UnknownTopicOrPartition));
                    }
                }
                let indexes: Vec<i32> = wanted.iter().map(|(tp, _)| tp.partition).collect();
                for (p, written) in indexes
                    .into_iter()
                    .zip(ctx.router.write_markers(wanted).await)
                {
                    results.push((p, written.map_or_else(|e| e.code, |()| ErrorCode::None)));
                }
                topics.push(WritableTxnMarkerTopicResult {
                    name: topic.name,
                    partitions: results
                        .into_iter()
                        .map(|(partition_index, code)| WritableTxnMarkerPartitionResult {
                            partition_index,
                            error_code: code.code(),
                            ..WritableTxnMarkerPartitionResult::default()
                        })
                        .collect(),
                    ..WritableTxnMarkerTopicResult::default()
                });
            }
            markers.push(WritableTxnMarkerResult {
                producer_id: pid.0,
                topics,
                ..WritableTxnMarkerResult::default()
            });
        }
        Some(WriteTxnMarkersResponse {
            markers,
            ..WriteTxnMarkersResponse::default()
        })
    }
}
