//! Per-topic log configuration with Kafka's names and defaults.
//!
//! Owns [`LogConfig`], the subset of Kafka's topic configs the partition log obeys. Each
//! field documents the Kafka key it stands for. Parsing from `server.properties` and
//! topic configs comes with the config issue; this module only fixes the meaning, the
//! defaults and the limits the on-disk format imposes (checked by [`LogConfig::validate`]).
//! Pure values: usable on any shard.

use std::time::Duration;

use super::index::OFFSET_INDEX_ENTRY_BYTES;

/// `message.timestamp.type`: which timestamp the log keeps for each record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MessageTimestampType {
    /// Keep the producer's timestamps (Kafka's default).
    #[default]
    CreateTime,
    /// Overwrite each batch's max timestamp with the broker's clock at append.
    LogAppendTime,
}

/// Kafka's `Long.MAX_VALUE`, the default of `flush.messages` and `flush.ms` ("never").
pub const NEVER: u64 = i64::MAX as u64;

/// The configuration of one partition log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before the active one would exceed this.
    pub segment_bytes: u32,
    /// `segment.ms`: roll a non-empty active segment older than this (counted from when
    /// the segment was created or, after a restart, from when the log was opened).
    pub segment_ms: u64,
    /// `segment.index.bytes`: size each offset and time index file is preallocated to
    /// (trimmed to its entries at roll and close); a full index forces a roll.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes of batches between two sparse index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages`: fdatasync once this many records are unflushed.
    pub flush_messages: u64,
    /// `flush.ms`: fdatasync at most this long after the first unflushed append.
    pub flush_ms: u64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: MessageTimestampType,
    /// `max.message.bytes`: the largest batch the log accepts.
    pub max_message_bytes: u32,
    /// `cleanup.policy` contains `delete`: retention deletes old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    /// `retention.ms`: delete a segment whose largest timestamp is older than this
    /// ([`NEVER`]: keep by time forever).
    pub retention_ms: u64,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this
    /// ([`NEVER`]: no size limit).
    pub retention_bytes: u64,
    /// `file.delete.delay.ms`: how long a deleted segment's files stay (renamed
    /// `.deleted`) so that readers holding them finish.
    pub file_delete_delay_ms: u64,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone (and a transaction
    /// marker) after the segment holding it was cleaned.
    pub delete_retention_ms: u64,
    /// `min.cleanable.dirty.ratio`: clean once this share of the log is uncleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a record stays uncompacted at least this long.
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms`: a record is eligible for compaction at most this long
    /// after it was written, whatever the dirty ratio ([`NEVER`]: no limit).
    pub max_compaction_lag_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            flush_messages: NEVER,
            flush_ms: NEVER,
            message_timestamp_type: MessageTimestampType::CreateTime,
            max_message_bytes: 1024 * 1024 + 12,
            cleanup_delete: true,
            cleanup_compact: false,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: NEVER,
            file_delete_delay_ms: 60_000,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: NEVER,
        }
    }
}

/// Why a [`LogConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    pub key: &'static str,
    pub reason: String,
}

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for InvalidConfig {}

impl LogConfig {
    /// The log's part of a topic's effective configuration (values already validated by
    /// the config layer; negative "never" values map to [`NEVER`]).
    pub fn from_topic_config(topic: &crate::config::TopicConfig) -> LogConfig {
        let positive = |v: i64| if v < 0 { NEVER } else { v as u64 };
        LogConfig {
            segment_bytes: topic.segment_bytes.max(0) as u32,
            segment_ms: positive(topic.segment_ms),
            segment_index_bytes: topic.segment_index_bytes.max(0) as u32,
            index_interval_bytes: topic.index_interval_bytes.max(0) as u32,
            flush_messages: positive(topic.flush_messages),
            flush_ms: positive(topic.flush_ms),
            message_timestamp_type: match topic.message_timestamp_type {
                crate::config::TimestampType::CreateTime => MessageTimestampType::CreateTime,
                crate::config::TimestampType::LogAppendTime => MessageTimestampType::LogAppendTime,
            },
            max_message_bytes: topic.max_message_bytes.max(0) as u32,
            cleanup_delete: topic.cleanup_policy_delete,
            cleanup_compact: topic.cleanup_policy_compact,
            retention_ms: positive(topic.retention_ms),
            retention_bytes: positive(topic.retention_bytes),
            file_delete_delay_ms: positive(topic.file_delete_delay_ms),
            delete_retention_ms: positive(topic.delete_retention_ms),
            min_cleanable_dirty_ratio: topic.min_cleanable_dirty_ratio,
            min_compaction_lag_ms: positive(topic.min_compaction_lag_ms),
            max_compaction_lag_ms: positive(topic.max_compaction_lag_ms),
        }
    }

    /// Checks the limits Kafka's file format imposes (positions are 32-bit signed in the
    /// offset index, so segments cannot exceed `i32::MAX` bytes).
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let invalid = |key, reason: String| Err(InvalidConfig { key, reason });
        if self.segment_bytes < 14 || self.segment_bytes > i32::MAX as u32 {
            return invalid(
                "segment.bytes",
                format!("{} is outside [14, {}]", self.segment_bytes, i32::MAX),
            );
        }
        if self.segment_index_bytes < 2 * OFFSET_INDEX_ENTRY_BYTES as u32 {
            return invalid(
                "segment.index.bytes",
                format!("{} is below 2 index entries", self.segment_index_bytes),
            );
        }
        if self.segment_ms == 0 {
            return invalid("segment.ms", "must be at least 1".into());
        }
        if self.flush_messages == 0 {
            return invalid("flush.messages", "must be at least 1".into());
        }
        if self.max_message_bytes == 0 {
            return invalid("max.message.bytes", "must be at least 1".into());
        }
        Ok(())
    }

    pub(crate) fn segment_age_limit(&self) -> Duration {
        Duration::from_millis(self.segment_ms)
    }

    pub(crate) fn flush_interval(&self) -> Option<Duration> {
        (self.flush_ms < NEVER).then(|| Duration::from_millis(self.flush_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let config = LogConfig::default();
        assert_eq!(config.segment_bytes, 1_073_741_824);
        assert_eq!(config.segment_ms, 604_800_000);
        assert_eq!(config.segment_index_bytes, 10_485_760);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.flush_messages, 9_223_372_036_854_775_807);
        assert_eq!(config.flush_ms, 9_223_372_036_854_775_807);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert!(config.cleanup_delete && !config.cleanup_compact);
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.retention_bytes, NEVER);
        assert_eq!(config.file_delete_delay_ms, 60_000);
        assert_eq!(config.delete_retention_ms, 86_400_000);
        assert_eq!(config.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(config.max_compaction_lag_ms, NEVER);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn topic_config_defaults_give_the_log_defaults() {
        let topic = crate::config::TopicConfig::resolve(
            &crate::config::kafka_topic_defaults(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(LogConfig::from_topic_config(&topic), LogConfig::default());
    }

    #[test]
    fn segments_larger_than_an_index_position_are_rejected() {
        let config = LogConfig {
            segment_bytes: u32::MAX,
            ..LogConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().key, "segment.bytes");
    }
}
