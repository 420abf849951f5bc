//! The broker's shared vocabulary (as Redpanda's `model/`): Kafka's names for positions,
//! epochs and identities, as distinct types every layer uses — storage, groups,
//! metadata, routing — without importing one another for a name.
//!
//! - [`TopicPartition`], with Kafka's directory naming.
//! - [`Offset`] (one record's position), and the positions of a partition log that must
//!   never be confused: [`LogStartOffset`] ≤ [`LastStableOffset`] ≤ [`HighWatermark`] ≤
//!   [`LogEndOffset`]. Each wraps an `Offset`; comparing two different kinds needs an
//!   explicit `.offset()`, so a high watermark cannot silently be passed where a log end
//!   offset is meant.
//! - [`LeaderEpoch`], [`ProducerId`], [`ProducerEpoch`], [`GroupEpoch`] (KIP-848 group, assignment and member epochs) and
//!   [`Timestamp`] (milliseconds since the Unix epoch).
//! - [`partition_for_key`]: the partition of a coordinator's internal topic that holds a
//!   group or a transactional id.
//!
//! Pure values: usable on any shard, `Send`, no I/O.

use std::fmt;

/// The position of one record in a partition (Kafka's "offset").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl Offset {
    pub const ZERO: Offset = Offset(0);

    pub const fn value(self) -> i64 {
        self.0
    }

    /// The offset right after this one.
    pub const fn next(self) -> Offset {
        Offset(self.0 + 1)
    }

    pub const fn plus(self, delta: i64) -> Offset {
        Offset(self.0 + delta)
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! log_position {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub Offset);

        impl $name {
            pub const fn offset(self) -> Offset {
                self.0
            }

            pub const fn value(self) -> i64 {
                self.0 .0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0 .0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0 .0)
            }
        }
    };
}

log_position!(
    /// The first offset a consumer can read; everything below it was deleted (retention)
    /// or never existed.
    LogStartOffset
);
log_position!(
    /// The offset below which no transaction is open (Kafka's LSO): what a
    /// READ_COMMITTED consumer may read up to. Without transactions, the high watermark.
    LastStableOffset
);
log_position!(
    /// The offset below which records are committed and visible to consumers. Advanced
    /// explicitly by whoever decides that the ack condition holds (single node: after the
    /// append, or after the fdatasync for acks=all); never above the log end offset.
    HighWatermark
);
log_position!(
    /// The offset the next appended record will get: one past the last record whose write
    /// has completed. Readers never see a hole below it.
    LogEndOffset
);

/// A leader epoch (Kafka's `partitionLeaderEpoch`), stamped into every appended batch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct LeaderEpoch(pub i32);

impl LeaderEpoch {
    /// Kafka's "no epoch" (-1), as in batches written before epochs existed.
    pub const UNKNOWN: LeaderEpoch = LeaderEpoch(-1);
}

impl fmt::Display for LeaderEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A producer's id (Kafka's `producerId`): assigned by InitProducerId; -1 for a producer
/// without idempotence.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ProducerId(pub i64);

impl ProducerId {
    /// Kafka's `RecordBatch.NO_PRODUCER_ID`.
    pub const NONE: ProducerId = ProducerId(-1);
}

/// The epoch of a producer id (Kafka's `producerEpoch`), bumped when a transactional
/// producer restarts to fence the previous incarnation; -1 without idempotence.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct ProducerEpoch(pub i16);

impl ProducerEpoch {
    /// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
    pub const NONE: ProducerEpoch = ProducerEpoch(-1);
}

/// An epoch of a KIP-848 consumer group. The group epoch (moved by every membership or
/// subscription change), the assignment epoch (the group epoch the target assignment was
/// computed for) and each member's epoch (the target it has caught up with) count in the
/// same sequence, so they are one type. A member sends 0 to join, -1 to leave, -2 to
/// leave for a while (a static member); its epoch is positive while it is a member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct GroupEpoch(pub i32);

impl GroupEpoch {
    pub const ZERO: GroupEpoch = GroupEpoch(0);
    /// A member epoch asking to join.
    pub const JOIN: GroupEpoch = GroupEpoch(0);
    /// A member epoch asking to leave the group.
    pub const LEAVE: GroupEpoch = GroupEpoch(-1);
    /// A static member leaving for a while: it keeps its partitions until its session ends.
    pub const LEAVE_STATIC: GroupEpoch = GroupEpoch(-2);

    /// The epoch after this one.
    pub const fn next(self) -> GroupEpoch {
        GroupEpoch(self.0 + 1)
    }
}

impl fmt::Display for GroupEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds since the Unix epoch, as in Kafka's record timestamps.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Kafka's `RecordBatch.NO_TIMESTAMP` (-1).
    pub const NONE: Timestamp = Timestamp(-1);

    /// The wall clock now.
    pub fn now() -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since_epoch.as_millis() as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A topic name and partition index; names the partition's directory
/// `<topic>-<partition>` under a log dir.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Kafka's directory name for the partition: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name; the partition follows the last `-` (topics may contain
    /// dashes themselves).
    pub fn from_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty() || partition.is_empty() || partition.starts_with('+') {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        if partition < 0 {
            return None;
        }
        Some(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The partition of a coordinator topic (`__consumer_offsets`, `__transaction_state`)
/// that holds a group id or a transactional id: Kafka's
/// `Utils.abs(key.hashCode()) % partitions`, with Java's `String.hashCode` over UTF-16
/// code units, so a key lands where Kafka would put it.
pub fn partition_for_key(key: &str, partitions: i32) -> i32 {
    assert!(partitions > 0, "a coordinator topic has partitions");
    let hash = key.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps i32::MIN to 0, not to itself.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names_split_at_the_last_dash() {
        let tp = TopicPartition::from_dir_name("my-topic-12").unwrap();
        assert_eq!(tp, TopicPartition::new("my-topic", 12));
        assert_eq!(tp.dir_name(), "my-topic-12");
        assert_eq!(TopicPartition::from_dir_name("nodash"), None);
        assert_eq!(TopicPartition::from_dir_name("t-+1"), None);
        assert_eq!(TopicPartition::from_dir_name("-3"), None);
    }

    #[test]
    fn log_positions_are_distinct_types_over_offsets() {
        let hw = HighWatermark(Offset(5));
        let leo = LogEndOffset(Offset(7));
        assert!(hw.offset() <= leo.offset());
        assert_eq!(format!("{hw:?}"), "HighWatermark(5)");
    }

    #[test]
    fn keys_land_on_the_partition_kafka_picks() {
        // Java: Math.abs("my-group".hashCode()) % 50 and friends.
        assert_eq!(partition_for_key("", 50), 0);
        assert_eq!(partition_for_key("my-group", 50), 12);
        assert_eq!(partition_for_key("test-consumer-group", 50), 31);
        for id in ["a", "group-1", "ünïcode", "𝄞"] {
            assert!((0..50).contains(&partition_for_key(id, 50)));
        }
    }
}
