//! What shards say to each other: every cross-core interaction of the broker is one of
//! these requests, carried by the `shards` mesh to the shard that owns the work.
//!
//! Everything here is `Send` and owned by the message: record data as `Bytes` slices of
//! the request frame (moved, not copied), file ranges as duplicated descriptors the
//! receiving shard closes when it has sent them.

use crate::groups::{GroupAnswer, GroupCall};
use crate::metadata::controller::{NewTopic, TopicError};
use crate::metadata::{MetadataDelta, TopicPartition, TopicRecord};
use crate::partition::PartitionError;
use crate::storage::{AppendInfo, Offset, TimestampAndOffset};
use bytes::Bytes;
use std::os::fd::OwnedFd;
use std::time::Duration;

pub type Mesh = shards::Shard<ShardRequest, ShardReply>;

/// A request to one shard.
#[derive(Debug)]
pub enum ShardRequest {
    /// The cluster's identity, read by shard 0 at start-up.
    Init {
        cluster_id: String,
    },
    /// Apply the next metadata change: open the partitions this shard now owns, drop the
    /// deleted ones. Sent by the controller (shard 0) to every shard, itself included.
    ApplyMetadata(MetadataDelta),
    /// Controller operations; only shard 0 serves them.
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    /// Append to partitions this shard owns; `durable` for acks=all.
    Produce {
        partitions: Vec<(TopicPartition, Bytes)>,
        durable: bool,
    },
    /// Read from partitions this shard owns, for a connection on another shard.
    Fetch {
        partitions: Vec<FetchPartition>,
    },
    /// ListOffsets targets for partitions this shard owns.
    ListOffsets {
        partitions: Vec<(TopicPartition, i64)>,
    },
    /// Reply once any partition's high watermark passes its offset, or after `timeout`.
    WaitForData {
        partitions: Vec<(TopicPartition, Offset)>,
        timeout: Duration,
        /// Names the wait among the asking shard's, for `CancelWait`.
        wait_id: u64,
    },
    /// The fetch behind a `WaitForData` no longer needs it (its client hung up, or it
    /// was answered from elsewhere): end the wait now.
    CancelWait {
        wait_id: u64,
    },
    /// A group operation, for the coordinator of the group's `__consumer_offsets`
    /// partition (see `groups`).
    Group(GroupCall),
    /// Start accepting connections (after start-up opened every partition).
    StartListening,
    /// This shard's counters, for the metrics endpoint.
    Stats,
    /// The recovery point of every partition this shard owns (for the checkpoint file);
    /// with `sync`, each log first makes everything written so far durable.
    RecoveryPoints {
        sync: bool,
    },
    /// Shard 0: may one more connection from this address be served
    /// (`max.connections.per.ip`)? Counted as open when the answer is yes.
    AdmitConnection {
        ip: std::net::IpAddr,
    },
    /// Shard 0: an admitted connection from this address closed.
    ConnectionClosed {
        ip: std::net::IpAddr,
    },
    /// Stop accepting connections and close every partition cleanly.
    Shutdown,
    /// Leave the shard's main loop (after `Shutdown`); the reply may never come.
    Exit,
}

/// One partition of a fetch: where to read and how much at most.
#[derive(Debug, Clone)]
pub struct FetchPartition {
    pub tp: TopicPartition,
    pub offset: Offset,
    pub max_bytes: usize,
}

/// A range of a segment file handed to another shard: a duplicate of the file's
/// descriptor (closed when dropped) and where the batches are.
#[derive(Debug)]
pub struct SharedRange {
    pub fd: OwnedFd,
    pub position: u64,
    pub length: u64,
}

/// What a fetch found in one partition, in a form that can cross shards.
#[derive(Debug)]
pub struct FetchedShared {
    pub high_watermark: Offset,
    pub log_start_offset: Offset,
    pub range: Option<SharedRange>,
}

/// The answer to a `ShardRequest`, variant for variant.
#[derive(Debug)]
pub enum ShardReply {
    Done,
    Created(Vec<Result<TopicRecord, TopicError>>),
    Deleted(Vec<Result<TopicRecord, TopicError>>),
    Produced(Vec<Result<AppendInfo, PartitionError>>),
    Fetched(Vec<Result<FetchedShared, PartitionError>>),
    Listed(Vec<Result<Option<TimestampAndOffset>, PartitionError>>),
    DataAvailable(bool),
    Admitted(bool),
    Group(GroupAnswer),
    Stats(ShardStatsSnapshot),
    RecoveryPoints(Vec<(TopicPartition, Offset)>),
}

/// A shard's counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct ShardStatsSnapshot {
    pub shard: usize,
    pub cpu: usize,
    pub connections: u64,
    pub connections_total: u64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub produce_batches: u64,
    pub produce_bytes: u64,
    pub fetch_bytes: u64,
    pub sendfile_bytes: u64,
    pub copied_bytes: u64,
    pub cold_ranges: u64,
    pub calls_sent: u64,
    pub calls_received: u64,
    pub partitions: u64,
    pub groups: u64,
    pub recovery_truncated_bytes: u64,
    pub fetch_waits: u64,
    pub request_budget_waits: u64,
}

impl ShardReply {
    /// The name of the variant, for the message of a mismatched reply (a bug).
    pub fn kind(&self) -> &'static str {
        match self {
            ShardReply::Done => "Done",
            ShardReply::Created(_) => "Created",
            ShardReply::Deleted(_) => "Deleted",
            ShardReply::Produced(_) => "Produced",
            ShardReply::Fetched(_) => "Fetched",
            ShardReply::Listed(_) => "Listed",
            ShardReply::DataAvailable(_) => "DataAvailable",
            ShardReply::Admitted(_) => "Admitted",
            ShardReply::Group(_) => "Group",
            ShardReply::Stats(_) => "Stats",
            ShardReply::RecoveryPoints(_) => "RecoveryPoints",
        }
    }
}

/// Unwraps a reply of the expected variant; any other is a bug in the handler.
#[macro_export]
macro_rules! expect_reply {
    ($reply:expr, $variant:ident) => {
        match $reply {
            $crate::routing::ShardReply::$variant(value) => value,
            other => panic!(
                concat!("expected a ", stringify!($variant), " reply, got {}"),
                other.kind()
            ),
        }
    };
}
