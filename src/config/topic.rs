//! Topic-level configuration: Kafka's topic config names, the broker key that supplies
//! each default, validation, and the typed values the log and handlers use.
//!
//! One table (`TOPIC_CONFIGS`) is the truth for CreateTopics and AlterConfigs validation,
//! for resolving a topic's effective configuration (override, else broker default, else
//! Kafka's default) and for DescribeConfigs (types, synonyms, documentation).

use super::ConfigError;
use std::collections::BTreeMap;

/// The type and range of a config value.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Long {
        min: i64,
    },
    Int {
        min: i32,
    },
    Double {
        min: f64,
        max: f64,
    },
    Bool,
    /// One of the names (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// A comma-separated, non-empty list of the names.
    ListOf(&'static [&'static str]),
    /// Free text (e.g. throttled replica lists); accepted, unused.
    Text,
}

/// A topic config Kafka defines.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    /// The broker property whose value is the default for topics without an override.
    pub broker_key: &'static str,
    pub kind: Kind,
    /// Kafka's default when neither the topic nor the broker sets it.
    pub default: &'static str,
    /// One line for DescribeConfigs' documentation (corelog's words).
    pub doc: &'static str,
}

/// Topic configs Kafka gives no broker-level synonym: no broker key sets their default,
/// none is listed among their synonyms, none is a dynamic broker config.
const WITHOUT_BROKER_SYNONYM: &[&str] = &[
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
];

impl TopicConfigDef {
    /// The broker config whose value is this topic config's default, as Kafka lists it
    /// among the synonyms (`retention.ms` → `log.retention.ms`).
    pub fn broker_synonym(&self) -> Option<&'static str> {
        (!WITHOUT_BROKER_SYNONYM.contains(&self.name)).then_some(self.broker_key)
    }
}

/// Kafka's config value types, as DescribeConfigs (v3+) reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    Unknown = 0,
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl Kind {
    /// The type Kafka declares for a config of this kind.
    pub fn config_type(self) -> ConfigType {
        match self {
            Kind::Long { .. } => ConfigType::Long,
            Kind::Int { .. } => ConfigType::Int,
            Kind::Double { .. } => ConfigType::Double,
            Kind::Bool => ConfigType::Boolean,
            Kind::OneOf(_) => ConfigType::String,
            // The replica throttle lists, Kafka's only free-text topic configs, are lists.
            Kind::ListOf(_) | Kind::Text => ConfigType::List,
        }
    }

    /// Whether IncrementalAlterConfigs may APPEND to or SUBTRACT from it.
    pub fn is_list(self) -> bool {
        self.config_type() == ConfigType::List
    }
}

const LONG_MAX: &str = "9223372036854775807";

const fn def(
    name: &'static str,
    broker_key: &'static str,
    kind: Kind,
    default: &'static str,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_key,
        kind,
        default,
        doc,
    }
}

/// Kafka 4.0's topic configs.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        "log.cleanup.policy",
        Kind::ListOf(&["delete", "compact"]),
        "delete",
        "What happens to old segments: delete them (retention), compact them to the last record per key, or both.",
    ),
    def(
        "compression.gzip.level",
        "compression.gzip.level",
        Kind::Int { min: -1 },
        "-1",
        "The gzip level used when the broker recompresses with gzip.",
    ),
    def(
        "compression.lz4.level",
        "compression.lz4.level",
        Kind::Int { min: 1 },
        "9",
        "The lz4 level used when the broker recompresses with lz4.",
    ),
    def(
        "compression.type",
        "compression.type",
        Kind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "producer",
        "The codec batches are stored with; producer keeps whatever the producer sent.",
    ),
    def(
        "compression.zstd.level",
        "compression.zstd.level",
        Kind::Int { min: -131072 },
        "3",
        "The zstd level used when the broker recompresses with zstd.",
    ),
    def(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        Kind::Long { min: 0 },
        "86400000",
        "How long a compacted topic keeps tombstones and transaction markers after cleaning.",
    ),
    def(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        Kind::Long { min: 0 },
        "60000",
        "How long a deleted segment's files stay on disk before they are removed.",
    ),
    def(
        "flush.messages",
        "log.flush.interval.messages",
        Kind::Long { min: 1 },
        LONG_MAX,
        "Force an fdatasync once this many records are unflushed.",
    ),
    def(
        "flush.ms",
        "log.flush.interval.ms",
        Kind::Long { min: 0 },
        LONG_MAX,
        "Force an fdatasync at most this long after the first unflushed record.",
    ),
    def(
        "follower.replication.throttled.replicas",
        "follower.replication.throttled.replicas",
        Kind::Text,
        "",
        "Replicas whose follower fetches are throttled (accepted; a single node has no followers).",
    ),
    def(
        "index.interval.bytes",
        "log.index.interval.bytes",
        Kind::Int { min: 0 },
        "4096",
        "Bytes of records between two entries of the sparse offset index.",
    ),
    def(
        "leader.replication.throttled.replicas",
        "leader.replication.throttled.replicas",
        Kind::Text,
        "",
        "Replicas whose leader-side replication is throttled (accepted; a single node has no followers).",
    ),
    def(
        "local.retention.bytes",
        "log.local.retention.bytes",
        Kind::Long { min: -2 },
        "-2",
        "Local size limit with tiered storage (accepted; corelog has no tiered storage).",
    ),
    def(
        "local.retention.ms",
        "log.local.retention.ms",
        Kind::Long { min: -2 },
        "-2",
        "Local time limit with tiered storage (accepted; corelog has no tiered storage).",
    ),
    def(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        Kind::Long { min: 1 },
        LONG_MAX,
        "Longest time a record may stay uncompacted.",
    ),
    def(
        "max.message.bytes",
        "message.max.bytes",
        Kind::Int { min: 0 },
        "1048588",
        "Largest record batch a producer may write to the topic.",
    ),
    def(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        Kind::Long { min: 0 },
        "3600000",
        "How far in the future a CreateTime record timestamp may be.",
    ),
    def(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        Kind::Long { min: 0 },
        LONG_MAX,
        "How far in the past a CreateTime record timestamp may be.",
    ),
    def(
        "message.timestamp.type",
        "log.message.timestamp.type",
        Kind::OneOf(&["CreateTime", "LogAppendTime"]),
        "CreateTime",
        "Which timestamp records keep: the producer's (CreateTime) or the broker's (LogAppendTime).",
    ),
    def(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        Kind::Double { min: 0.0, max: 1.0 },
        "0.5",
        "Share of the log that must be uncompacted before the cleaner compacts it.",
    ),
    def(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        Kind::Long { min: 0 },
        "0",
        "Shortest time a record stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        "min.insync.replicas",
        Kind::Int { min: 1 },
        "1",
        "Replicas that must have a write for acks=all to succeed (a single node has one).",
    ),
    def(
        "preallocate",
        "log.preallocate",
        Kind::Bool,
        "false",
        "Preallocate segment files when they are created (accepted, no effect).",
    ),
    def(
        "remote.log.copy.disable",
        "remote.log.copy.disable",
        Kind::Bool,
        "false",
        "Stop copying segments to tiered storage (accepted; corelog has no tiered storage).",
    ),
    def(
        "remote.log.delete.on.disable",
        "remote.log.delete.on.disable",
        Kind::Bool,
        "false",
        "Delete tiered data when tiered storage is disabled (accepted; corelog has no tiered storage).",
    ),
    def(
        "remote.storage.enable",
        "remote.storage.enable",
        Kind::Bool,
        "false",
        "Tier the topic's old segments to remote storage (accepted; corelog has no tiered storage).",
    ),
    def(
        "retention.bytes",
        "log.retention.bytes",
        Kind::Long { min: -1 },
        "-1",
        "Delete the oldest segments while a partition is larger than this; -1 means no size limit.",
    ),
    def(
        "retention.ms",
        "log.retention.ms",
        Kind::Long { min: -1 },
        "604800000",
        "Delete segments whose newest record is older than this; -1 means keep forever.",
    ),
    def(
        "segment.bytes",
        "log.segment.bytes",
        Kind::Int { min: 1024 * 1024 },
        "1073741824",
        "Roll to a new segment file before the active one exceeds this size.",
    ),
    def(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        Kind::Int { min: 4 },
        "10485760",
        "Size each segment's offset and time index is preallocated to.",
    ),
    def(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        Kind::Long { min: 0 },
        "0",
        "Random jitter subtracted from segment.ms so partitions do not roll together.",
    ),
    def(
        "segment.ms",
        "log.roll.ms",
        Kind::Long { min: 1 },
        "604800000",
        "Roll the active segment once it is this old, even if it is not full.",
    ),
    def(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        Kind::Bool,
        "false",
        "Let an out-of-sync replica become leader (accepted; a single node is always in sync).",
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The topic config whose default a broker config sets (`log.retention.ms` →
/// `retention.ms`), if it is one of those synonyms.
pub fn topic_config_of_broker_key(broker_key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_synonym() == Some(broker_key))
}

/// Checks `value` against a definition; `key` names it in the error.
pub fn check_value(key: &str, kind: Kind, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: String| Err(ConfigError::new(key, value, reason));
    match kind {
        Kind::Long { min } => match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => bad(format!("must be at least {min}")),
            Err(_) => bad("must be a 64-bit integer".into()),
        },
        Kind::Int { min } => match value.trim().parse::<i32>() {
            Ok(v) if v >= min => Ok(()),
            Ok(_) => bad(format!("must be at least {min}")),
            Err(_) => bad("must be a 32-bit integer".into()),
        },
        Kind::Double { min, max } => match value.trim().parse::<f64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(()),
            Ok(_) => bad(format!("must be between {min} and {max}")),
            Err(_) => bad("must be a number".into()),
        },
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => bad("must be true or false".into()),
        },
        Kind::OneOf(names) => {
            if names.contains(&value.trim()) {
                Ok(())
            } else {
                bad(format!("must be one of {}", names.join(", ")))
            }
        }
        Kind::ListOf(names) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if items.iter().all(|i| names.contains(i)) && !value.trim().is_empty() {
                Ok(())
            } else {
                bad(format!("must be a list of {}", names.join(", ")))
            }
        }
        Kind::Text => Ok(()),
    }
}

/// What `compression.type` asks of the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep the producer's codec (batches are stored as sent).
    Producer,
    /// Store with this codec (`None` for "uncompressed").
    Codec(crate::protocol::records::Compression),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A topic's effective configuration, typed. Built from overrides over broker defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    pub cleanup_policy_delete: bool,
    pub cleanup_policy_compact: bool,
    pub compression_type: CompressionType,
    pub delete_retention_ms: i64,
    pub file_delete_delay_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: i32,
    pub max_compaction_lag_ms: i64,
    pub max_message_bytes: i32,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: TimestampType,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub min_insync_replicas: i32,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: i32,
    pub segment_index_bytes: i32,
    pub segment_ms: i64,
    /// Every config that was set on the topic itself, as given.
    pub overrides: BTreeMap<String, String>,
}

/// Broker-level defaults for topic configs, keyed by topic config name.
pub type TopicDefaults = BTreeMap<&'static str, String>;

/// Kafka's own defaults for every topic config.
pub fn kafka_topic_defaults() -> TopicDefaults {
    TOPIC_CONFIGS
        .iter()
        .map(|d| (d.name, d.default.to_string()))
        .collect()
}

impl TopicConfig {
    /// Checks every override (unknown names and bad values are errors, as CreateTopics
    /// reports them) and resolves the effective configuration.
    pub fn resolve(
        defaults: &TopicDefaults,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, ConfigError> {
        for (name, value) in overrides {
            let def = topic_config_def(name)
                .ok_or_else(|| ConfigError::new(name, value, "is not a topic config".into()))?;
            check_value(name, def.kind, value)?;
        }
        let get = |name: &'static str| -> &str {
            overrides
                .get(name)
                .map(String::as_str)
                .or_else(|| defaults.get(name).map(String::as_str))
                .or_else(|| topic_config_def(name).map(|d| d.default))
                .unwrap_or_else(|| panic!("topic config {name} has no definition"))
        };
        // Values are validated above (overrides) or by the broker config (defaults).
        let long = |name: &'static str| get(name).trim().parse::<i64>().expect("validated long");
        let int = |name: &'static str| get(name).trim().parse::<i32>().expect("validated int");
        let policy: Vec<&str> = get("cleanup.policy").split(',').map(str::trim).collect();
        let compression_type = match get("compression.type").trim() {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Codec(crate::protocol::records::Compression::None),
            name => CompressionType::Codec(
                crate::protocol::records::Compression::from_name(name).expect("validated codec"),
            ),
        };
        Ok(TopicConfig {
            cleanup_policy_delete: policy.contains(&"delete"),
            cleanup_policy_compact: policy.contains(&"compact"),
            compression_type,
            delete_retention_ms: long("delete.retention.ms"),
            file_delete_delay_ms: long("file.delete.delay.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: int("index.interval.bytes"),
            max_compaction_lag_ms: long("max.compaction.lag.ms"),
            max_message_bytes: int("max.message.bytes"),
            message_timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            message_timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            message_timestamp_type: match get("message.timestamp.type").trim() {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .expect("validated double"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            min_insync_replicas: int("min.insync.replicas"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: int("segment.bytes"),
            segment_index_bytes: int("segment.index.bytes"),
            segment_ms: long("segment.ms"),
            overrides: overrides.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_defaults_apply_when_nothing_is_set() {
        let config = TopicConfig::resolve(&kafka_topic_defaults(), &BTreeMap::new()).unwrap();
        assert_eq!(config.segment_bytes, 1 << 30);
        assert_eq!(config.retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(config.max_message_bytes, 1048588);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.flush_messages, i64::MAX);
        assert_eq!(config.compression_type, CompressionType::Producer);
        assert!(config.cleanup_policy_delete && !config.cleanup_policy_compact);
    }

    #[test]
    fn overrides_win_over_broker_defaults() {
        let mut defaults = kafka_topic_defaults();
        defaults.insert("segment.bytes", "2097152".into());
        defaults.insert("retention.ms", "1000".into());
        let config = TopicConfig::resolve(
            &defaults,
            &overrides(&[
                ("retention.ms", "5000"),
                ("cleanup.policy", "compact,delete"),
            ]),
        )
        .unwrap();
        assert_eq!(config.segment_bytes, 2097152);
        assert_eq!(config.retention_ms, 5000);
        assert!(config.cleanup_policy_compact && config.cleanup_policy_delete);
    }

    #[test]
    fn unknown_names_and_bad_values_name_the_key() {
        let defaults = kafka_topic_defaults();
        let err =
            TopicConfig::resolve(&defaults, &overrides(&[("segment.byte", "1")])).unwrap_err();
        assert_eq!(err.key, "segment.byte");
        let err =
            TopicConfig::resolve(&defaults, &overrides(&[("segment.bytes", "10")])).unwrap_err();
        assert!(err.to_string().contains("segment.bytes") && err.to_string().contains("at least"));
        let err = TopicConfig::resolve(&defaults, &overrides(&[("compression.type", "brotli")]))
            .unwrap_err();
        assert!(err.to_string().contains("one of"));
    }
}
