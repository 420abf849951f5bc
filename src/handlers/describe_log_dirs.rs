//! DescribeLogDirs (key 35): each log dir (`log.dirs`) with the partitions it holds,
//! their size in bytes and offset lag (high watermark − log end offset, 0 on a leader),
//! and (v4) the file system's total and usable bytes. A null topic list asks for every
//! partition; otherwise only the partitions named that exist are listed, as Kafka
//! answers. The sizes come from every shard at once.

use super::{Handler, RequestContext, newest};
use crate::protocol::codec::VersionRange;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::describe_log_dirs_request::DescribeLogDirsRequest;
use crate::protocol::generated::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub struct DescribeLogDirs;

impl Handler for DescribeLogDirs {
    type Request = DescribeLogDirsRequest;
    /// Kafka 4 serves v1 and up (KIP-896 removed v0).
    const VERSIONS: VersionRange = VersionRange {
        min: 1,
        max: newest(ApiKey::DescribeLogDirs),
    };

    async fn handle(
        ctx: &RequestContext,
        request: DescribeLogDirsRequest,
    ) -> Option<DescribeLogDirsResponse> {
        ctx.issued();
        // Kafka's check: DESCRIBE on the cluster, else no log dir at all.
        if !ctx.authorize_cluster(crate::security::AclOperation::Describe) {
            return Some(DescribeLogDirsResponse {
                error_code: crate::protocol::ErrorCode::ClusterAuthorizationFailed.code(),
                ..DescribeLogDirsResponse::default()
            });
        }
        let wanted: Option<BTreeSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
                .collect()
        });
        let usage = ctx.router.log_dir_usage().await;
        let mut by_dir: BTreeMap<PathBuf, BTreeMap<String, Vec<DescribeLogDirsPartition>>> = ctx
            .shard
            .config
            .log_dirs
            .iter()
            .map(|dir| (dir.clone(), BTreeMap::new()))
            .collect();
        for (dir, tp, size, lag) in usage {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&(tp.topic.clone(), tp.partition)))
            {
                continue;
            }
            by_dir
                .entry(dir)
                .or_default()
                .entry(tp.topic.clone())
                .or_default()
                .push(DescribeLogDirsPartition {
                    partition_index: tp.partition,
                    partition_size: size as i64,
                    offset_lag: lag,
                    is_future_key: false,
                    ..DescribeLogDirsPartition::default()
                });
        }
        let mut results = Vec::with_capacity(by_dir.len());
        for (dir, topics) in by_dir {
            let (total_bytes, usable_bytes) = space(&dir).await;
            results.push(DescribeLogDirsResult {
                error_code: 0,
                log_dir: absolute(&dir),
                topics: topics
                    .into_iter()
                    .map(|(name, mut partitions)| {
                        partitions.sort_by_key(|p| p.partition_index);
                        DescribeLogDirsTopic {
                            name,
                            partitions,
                            ..DescribeLogDirsTopic::default()
                        }
                    })
                    .collect(),
                total_bytes,
                usable_bytes,
                ..DescribeLogDirsResult::default()
            });
        }
        Some(DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            results,
            ..DescribeLogDirsResponse::default()
        })
    }
}

/// The log dir as Kafka names it: an absolute path.
fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// The file system's total and usable bytes under `dir` (-1, -1 if it cannot be read,
/// as Kafka reports an unknown size), asked off the shard.
async fn space(dir: &Path) -> (i64, i64) {
    let dir = dir.to_path_buf();
    shards::rt::offload(move || {
        let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
            return (-1, -1);
        };
        // SAFETY: statvfs fills the struct we own from a NUL-terminated path.
        unsafe {
            let mut stat: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
                return (-1, -1);
            }
            let block = stat.f_frsize as i64;
            (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
        }
    })
    .await
}
