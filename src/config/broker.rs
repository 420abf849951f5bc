//! The broker's configuration: Kafka's property names and defaults, precedence rules
//! (`log.retention.ms` over `.minutes` over `.hours`, `log.dirs` over `log.dir`, …), and
//! corelog's own keys (`shards`, `cpuset`). Built once at start-up, then read-only and
//! copied to every shard.

use super::ConfigError;
use super::placement::PlacementRules;
use super::topic::{
    ConfigType, Kind, TOPIC_CONFIGS, TopicDefaults, check_value, kafka_topic_defaults,
};
use shards::CpuList;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// A `listeners` / `advertised.listeners` entry: `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.name, self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: i32,
    /// `queued.max.request.bytes`: request bytes all connections may hold in memory at
    /// once (`None`: unbounded, Kafka's -1).
    pub queued_max_request_bytes: Option<u64>,
    /// `topic.partitions.per.shard` (corelog, after Redpanda's setting): partitions each
    /// shard may carry; CreateTopics beyond it gets INVALID_PARTITIONS.
    pub topic_partitions_per_shard: i32,
    /// `max.connections`: client connections served at once; more wait to be accepted.
    pub max_connections: i32,
    /// `max.connections.per.ip`: connections from one address served at once; more are
    /// closed as they arrive.
    pub max_connections_per_ip: i32,
    /// `max.connections.per.ip.overrides`: per-address exceptions (`ip:count,...`).
    pub max_connections_per_ip_overrides: Vec<(std::net::IpAddr, i32)>,
    pub connections_max_idle_ms: i64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_segment_bytes: i32,
    pub offsets_retention_minutes: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_max_size: i32,
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms` / `.max.`: the bounds of a group's
    /// `consumer.session.timeout.ms` (IncrementalAlterConfigs on a GROUP resource).
    pub group_consumer_min_session_timeout_ms: i32,
    pub group_consumer_max_session_timeout_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms` / `.max.`: the bounds of a group's
    /// `consumer.heartbeat.interval.ms`.
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: i32,
    /// `group.consumer.assignors` as corelog names them (`uniform`, `range`).
    pub group_consumer_assignors: Vec<String>,
    pub offset_metadata_max_bytes: i32,
    pub offsets_retention_check_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.segment.bytes`.
    pub transaction_state_log_segment_bytes: i32,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: how long a transactional id without a
    /// transaction in progress is kept after its last update.
    pub transactional_id_expiration_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i32,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub transaction_remove_expired_transaction_cleanup_interval_ms: i32,
    /// `producer.id.expiration.ms`: how long a partition remembers an idle producer id
    /// (its last sequences) without an open transaction.
    pub producer_id_expiration_ms: i32,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: i32,
    /// `log.retention.check.interval.ms`: how often each shard applies retention to its
    /// partitions.
    pub log_retention_check_interval_ms: i64,
    /// Broker defaults for topic configs, keyed by topic config name.
    pub topic_defaults: TopicDefaults,
    /// Number of shards (`None`: one per CPU of `cpuset`).
    pub shards: Option<usize>,
    /// CPUs to run shards on (`None`: the process's affinity mask).
    pub cpuset: Option<CpuList>,
    /// `metrics.listener`: host:port of the Prometheus endpoint; empty disables it.
    pub metrics_listener: Option<String>,
    /// `placement.file`: the placement rules, read at start-up (empty without a file).
    pub placement: PlacementRules,
    /// `placement.balancer`: `load` moves hot partitions off a saturated shard.
    pub placement_balancer: bool,
    /// `placement.balancer.interval.ms`: how often the balancer measures and decides.
    pub placement_balancer_interval_ms: i64,
    /// `placement.balancer.threshold.percent`: the busy-time gap between the busiest
    /// and the idlest shard, in points of one core, the balancer tolerates.
    pub placement_balancer_threshold_percent: i32,
    /// `placement.balancer.max.moves`: partitions the balancer moves per interval.
    pub placement_balancer_max_moves: i32,
    /// `placement.connections.follow`: a connection whose produce and fetch requests go
    /// to one other shard moves to that shard.
    pub placement_connections_follow: bool,
    /// `placement.connections.spread`: a shard that accepts a connection while it serves
    /// at least two more than another shard hands it to the shard serving the fewest.
    pub placement_connections_spread: bool,
    /// `log.cleaner.enable`: compacted topics are cleaned.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaners' I/O, all shards together
    /// (infinite: unlimited, Kafka's `Double.MAX_VALUE`).
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: the cleaners' offset maps, all shards together.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `log.cleaner.backoff.ms`: how long a cleaner sleeps when no log is cleanable.
    pub log_cleaner_backoff_ms: i64,
    /// `authorizer.class.name` as given (empty: no authorizer).
    pub authorizer_class_name: String,
    /// The authorizer's settings (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`).
    pub authorizer: crate::security::AuthorizerConfig,
    /// The keys the file and `--set` gave (DescribeConfigs' STATIC_BROKER_CONFIG), as
    /// given: `log.retention.hours` stays itself.
    pub static_keys: BTreeSet<String>,
}

/// A broker config corelog has, as DescribeConfigs lists it for the broker resource
/// (besides the broker synonyms of topic configs, which `TOPIC_CONFIGS` describes).
#[derive(Debug, Clone, Copy)]
pub struct BrokerKey {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// Other keys that set it (`broker.id` for `node.id`), in Kafka's precedence order.
    pub aliases: &'static [&'static str],
    /// One line for DescribeConfigs' documentation (corelog's words).
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    config_type: ConfigType,
    aliases: &'static [&'static str],
    doc: &'static str,
) -> BrokerKey {
    BrokerKey {
        name,
        config_type,
        aliases,
        doc,
    }
}

/// Every broker config corelog reads apart from the topic defaults; none changes at run
/// time (they are read-only in DescribeConfigs).
pub const BROKER_KEYS: &[BrokerKey] = &[
    key(
        "advertised.listeners",
        ConfigType::String,
        &[],
        "The addresses Metadata gives clients.",
    ),
    key(
        "allow.everyone.if.no.acl.found",
        ConfigType::Boolean,
        &[],
        "With an authorizer: allow actions on resources that no ACL matches.",
    ),
    key(
        "authorizer.class.name",
        ConfigType::String,
        &[],
        "The authorizer: empty for none, or Kafka's StandardAuthorizer.",
    ),
    key(
        "auto.create.topics.enable",
        ConfigType::Boolean,
        &[],
        "Create unknown topics when Metadata asks for them.",
    ),
    key(
        "connections.max.idle.ms",
        ConfigType::Long,
        &[],
        "Close connections idle this long.",
    ),
    key(
        "cpuset",
        ConfigType::String,
        &[],
        "corelog: the CPUs shards are pinned to.",
    ),
    key(
        "default.replication.factor",
        ConfigType::Int,
        &[],
        "Replication factor of topics created without one (1 on a single node).",
    ),
    key(
        "delete.topic.enable",
        ConfigType::Boolean,
        &[],
        "Whether DeleteTopics may delete topics.",
    ),
    key(
        "group.consumer.assignors",
        ConfigType::List,
        &[],
        "Server-side assignors of KIP-848 groups, the first the default.",
    ),
    key(
        "group.consumer.heartbeat.interval.ms",
        ConfigType::Int,
        &[],
        "Heartbeat interval given to KIP-848 members.",
    ),
    key(
        "group.consumer.max.heartbeat.interval.ms",
        ConfigType::Int,
        &[],
        "Largest consumer.heartbeat.interval.ms a group may be given.",
    ),
    key(
        "group.consumer.max.session.timeout.ms",
        ConfigType::Int,
        &[],
        "Largest consumer.session.timeout.ms a group may be given.",
    ),
    key(
        "group.consumer.max.size",
        ConfigType::Int,
        &[],
        "Largest number of members of a KIP-848 group.",
    ),
    key(
        "group.consumer.min.heartbeat.interval.ms",
        ConfigType::Int,
        &[],
        "Smallest consumer.heartbeat.interval.ms a group may be given.",
    ),
    key(
        "group.consumer.min.session.timeout.ms",
        ConfigType::Int,
        &[],
        "Smallest consumer.session.timeout.ms a group may be given.",
    ),
    key(
        "group.consumer.session.timeout.ms",
        ConfigType::Int,
        &[],
        "Session timeout of KIP-848 members.",
    ),
    key(
        "group.initial.rebalance.delay.ms",
        ConfigType::Int,
        &[],
        "How long a new classic group waits for more members before its first rebalance.",
    ),
    key(
        "group.max.session.timeout.ms",
        ConfigType::Int,
        &[],
        "Longest session timeout a classic member may ask for.",
    ),
    key(
        "group.max.size",
        ConfigType::Int,
        &[],
        "Largest number of members of a classic group.",
    ),
    key(
        "group.min.session.timeout.ms",
        ConfigType::Int,
        &[],
        "Shortest session timeout a classic member may ask for.",
    ),
    key(
        "listeners",
        ConfigType::String,
        &[],
        "Where the broker accepts client connections.",
    ),
    key(
        "log.dirs",
        ConfigType::String,
        &["log.dir"],
        "Directories holding the partitions.",
    ),
    key(
        "log.retention.check.interval.ms",
        ConfigType::Long,
        &[],
        "How often each shard applies retention to its partitions.",
    ),
    key(
        "max.connections",
        ConfigType::Int,
        &[],
        "Client connections served at once.",
    ),
    key(
        "max.connections.per.ip",
        ConfigType::Int,
        &[],
        "Connections served at once from one address.",
    ),
    key(
        "max.connections.per.ip.overrides",
        ConfigType::String,
        &[],
        "Per-address exceptions to max.connections.per.ip.",
    ),
    key(
        "metrics.listener",
        ConfigType::String,
        &[],
        "corelog: host:port of the Prometheus endpoint.",
    ),
    key(
        "node.id",
        ConfigType::Int,
        &["broker.id"],
        "This broker's id.",
    ),
    key(
        "num.partitions",
        ConfigType::Int,
        &[],
        "Partitions of topics created without a count.",
    ),
    key(
        "offset.metadata.max.bytes",
        ConfigType::Int,
        &[],
        "Largest metadata string of a committed offset.",
    ),
    key(
        "offsets.retention.check.interval.ms",
        ConfigType::Long,
        &[],
        "How often expired committed offsets are looked for.",
    ),
    key(
        "offsets.retention.minutes",
        ConfigType::Int,
        &[],
        "How long the offsets of an empty group are kept.",
    ),
    key(
        "offsets.topic.num.partitions",
        ConfigType::Int,
        &[],
        "Partitions of __consumer_offsets.",
    ),
    key(
        "offsets.topic.segment.bytes",
        ConfigType::Int,
        &[],
        "Segment size of __consumer_offsets.",
    ),
    key(
        "placement.balancer",
        ConfigType::String,
        &[],
        "corelog: none, or load to move hot partitions off a saturated shard.",
    ),
    key(
        "placement.balancer.interval.ms",
        ConfigType::Long,
        &[],
        "corelog: how often the balancer measures the shards and decides.",
    ),
    key(
        "placement.balancer.max.moves",
        ConfigType::Int,
        &[],
        "corelog: partitions the balancer moves per interval at most.",
    ),
    key(
        "placement.balancer.threshold.percent",
        ConfigType::Int,
        &[],
        "corelog: busy-time gap between shards (points of one core) the balancer tolerates.",
    ),
    key(
        "placement.connections.follow",
        ConfigType::Boolean,
        &[],
        "corelog: move a connection to the shard that owns the partitions it uses.",
    ),
    key(
        "placement.connections.spread",
        ConfigType::Boolean,
        &[],
        "corelog: hand a connection just accepted to the shard serving the fewest.",
    ),
    key(
        "placement.file",
        ConfigType::String,
        &[],
        "corelog: rules pinning partitions to shards (tuning/PLACEMENT.md).",
    ),
    key(
        "producer.id.expiration.check.interval.ms",
        ConfigType::Int,
        &[],
        "How often idle producer ids are looked for.",
    ),
    key(
        "producer.id.expiration.ms",
        ConfigType::Int,
        &[],
        "How long a partition remembers an idle producer id.",
    ),
    key(
        "queued.max.request.bytes",
        ConfigType::Long,
        &[],
        "Request bytes all connections may hold in memory at once.",
    ),
    key(
        "shards",
        ConfigType::Int,
        &[],
        "corelog: number of pinned executors.",
    ),
    key(
        "socket.request.max.bytes",
        ConfigType::Int,
        &[],
        "Largest request frame accepted.",
    ),
    key(
        "super.users",
        ConfigType::String,
        &[],
        "Principals the authorizer allows everything (semicolon-separated).",
    ),
    key(
        "topic.partitions.per.shard",
        ConfigType::Int,
        &[],
        "corelog: partitions each shard may carry.",
    ),
    key(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        ConfigType::Int,
        &[],
        "How often timed-out transactions are aborted.",
    ),
    key(
        "transaction.max.timeout.ms",
        ConfigType::Int,
        &[],
        "Longest transaction timeout a producer may ask for.",
    ),
    key(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        ConfigType::Int,
        &[],
        "How often expired transactional ids are removed.",
    ),
    key(
        "transaction.state.log.num.partitions",
        ConfigType::Int,
        &[],
        "Partitions of __transaction_state.",
    ),
    key(
        "transaction.state.log.segment.bytes",
        ConfigType::Int,
        &[],
        "Segment size of __transaction_state.",
    ),
    key(
        "transactional.id.expiration.ms",
        ConfigType::Int,
        &[],
        "How long an idle transactional id is kept.",
    ),
];

/// Other keys that set a topic default's broker synonym, in Kafka's precedence order.
pub fn broker_synonym_aliases(broker_key: &str) -> &'static [&'static str] {
    match broker_key {
        "log.retention.ms" => &["log.retention.minutes", "log.retention.hours"],
        "log.roll.ms" => &["log.roll.hours"],
        "log.flush.interval.ms" => &["log.flush.scheduler.interval.ms"],
        _ => &[],
    }
}

/// corelog's default for `queued.max.request.bytes` (Kafka's is -1, unbounded): 512 MiB,
/// so that connections sending large requests cannot take all memory.
pub const DEFAULT_QUEUED_MAX_REQUEST_BYTES: i64 = 512 * 1024 * 1024;

/// Kafka broker properties corelog accepts and ignores: they configure pieces corelog
/// does not have (KRaft controller wiring, thread pools, socket buffers) or that one
/// node makes moot.
const ACCEPTED_WITHOUT_EFFECT: &[&str] = &[
    "broker.rack",
    "controller.listener.names",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.voters",
    "group.coordinator.rebalance.protocols",
    "inter.broker.listener.name",
    "listener.security.protocol.map",
    // The cleaner reads and writes in slices of at most 1 MiB and fills its offset map to
    // Kafka's default load factor (0.9); one cleaner runs per shard.
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.threads",
    "log.flush.offset.checkpoint.interval.ms",
    "num.io.threads",
    "num.network.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "offsets.topic.replication.factor",
    "process.roles",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "transaction.state.log.min.isr",
    "transaction.state.log.replication.factor",
];

/// What loading the configuration noticed without failing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigNotes {
    pub unknown_keys: Vec<String>,
    pub ignored_keys: Vec<String>,
}

struct Entries(BTreeMap<String, String>);

impl Entries {
    fn take(&mut self, key: &str) -> Option<String> {
        self.0.remove(key).map(|v| v.trim().to_string())
    }

    fn typed<T: std::str::FromStr>(
        &mut self,
        key: &str,
        default: T,
        kind: Kind,
    ) -> Result<T, ConfigError> {
        match self.take(key) {
            None => Ok(default),
            Some(value) => {
                check_value(key, kind, &value)?;
                value
                    .parse()
                    .map_err(|_| ConfigError::new(key, &value, "is out of range".into()))
            }
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.take(key) {
            None => Ok(default),
            Some(value) => {
                check_value(key, Kind::Bool, &value)?;
                Ok(value.eq_ignore_ascii_case("true"))
            }
        }
    }
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = |why: &str| ConfigError::new(key, value, format!("'{item}' {why}"));
        let (name, address) = item
            .split_once("://")
            .ok_or_else(|| bad("must look like NAME://host:port"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("must look like NAME://host:port"))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| bad("has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        listeners.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if listeners.is_empty() {
        return Err(ConfigError::new(key, value, "names no listener".into()));
    }
    Ok(listeners)
}

/// The name a client should use to reach a listener bound to every interface.
fn machine_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

impl BrokerConfig {
    /// Kafka's defaults, with corelog's single-node embedded choices: listening on
    /// localhost:9092, data in `./data`, node id 1.
    pub fn defaults() -> BrokerConfig {
        Self::from_entries(Vec::new())
            .expect("the defaults are valid")
            .0
    }

    /// Builds the configuration from `key=value` entries (a properties file, then
    /// `--set` overrides, later entries winning). Unknown keys are returned as notes;
    /// invalid values are errors naming the key.
    pub fn from_entries(
        entries: Vec<(String, String)>,
    ) -> Result<(BrokerConfig, ConfigNotes), ConfigError> {
        let mut e = Entries(entries.into_iter().collect());
        let given: BTreeSet<String> = e.0.keys().cloned().collect();
        let node_id = match e.take("node.id") {
            Some(v) => v,
            None => e.take("broker.id").unwrap_or_else(|| "1".to_string()),
        };
        check_value("node.id", Kind::Int { min: 0 }, &node_id)?;
        let node_id = node_id.parse().expect("checked");

        let listeners_text = e
            .take("listeners")
            .unwrap_or_else(|| "PLAINTEXT://localhost:9092".to_string());
        let listeners = parse_listeners("listeners", &listeners_text)?;
        for listener in &listeners {
            if listener.name != "PLAINTEXT" {
                return Err(ConfigError::new(
                    "listeners",
                    &listeners_text,
                    format!(
                        "listener {} is not supported: corelog serves PLAINTEXT listeners only",
                        listener.name
                    ),
                ));
            }
        }
        let advertised_listeners = match e.take("advertised.listeners") {
            Some(text) => parse_listeners("advertised.listeners", &text)?,
            None => listeners
                .iter()
                .map(|l| Listener {
                    host: if l.host.is_empty() || l.host == "0.0.0.0" {
                        machine_hostname()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect(),
        };

        let log_dirs_text = match e.take("log.dirs") {
            Some(dirs) => {
                e.take("log.dir");
                dirs
            }
            None => e.take("log.dir").unwrap_or_else(|| "data".to_string()),
        };
        // Relative directories are resolved against the working directory once, here:
        // the storage layer opens everything by absolute path.
        let log_dirs: Vec<PathBuf> = log_dirs_text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir)))
            .collect();
        if log_dirs.is_empty() {
            return Err(ConfigError::new(
                "log.dirs",
                &log_dirs_text,
                "names no directory".into(),
            ));
        }

        // Topic-config defaults, including Kafka's precedence among the time keys.
        let mut topic_defaults = kafka_topic_defaults();
        let retention_ms = first_time_key(
            &mut e,
            &[
                ("log.retention.ms", 1),
                ("log.retention.minutes", 60_000),
                ("log.retention.hours", 3_600_000),
            ],
        )?;
        if let Some(ms) = retention_ms {
            topic_defaults.insert("retention.ms", ms.to_string());
        }
        let roll_ms = first_time_key(&mut e, &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)])?;
        if let Some(ms) = roll_ms {
            topic_defaults.insert("segment.ms", ms.to_string());
        }
        if !e.0.contains_key("log.flush.interval.ms") {
            if let Some(ms) = e.take("log.flush.scheduler.interval.ms") {
                check_value(
                    "log.flush.scheduler.interval.ms",
                    Kind::Long { min: 0 },
                    &ms,
                )?;
                topic_defaults.insert("flush.ms", ms);
            }
        } else {
            e.take("log.flush.scheduler.interval.ms");
        }
        for def in TOPIC_CONFIGS {
            if let Some(value) = e.take(def.broker_key) {
                check_value(def.broker_key, def.kind, &value)?;
                topic_defaults.insert(def.name, value);
            }
        }

        let shards = match e.take("shards") {
            None => None,
            Some(v) => {
                check_value("shards", Kind::Int { min: 1 }, &v)?;
                Some(v.parse().expect("checked"))
            }
        };
        let cpuset = match e.take("cpuset") {
            None => None,
            Some(v) => Some(
                v.parse::<CpuList>()
                    .map_err(|why| ConfigError::new("cpuset", &v, why))?,
            ),
        };

        let metrics_listener = match e.take("metrics.listener") {
            None => Some("localhost:9644".to_string()),
            Some(v) if v.is_empty() => None,
            Some(v) => {
                let port = v.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
                if port.is_none() {
                    return Err(ConfigError::new(
                        "metrics.listener",
                        &v,
                        "must look like host:port".into(),
                    ));
                }
                Some(v)
            }
        };
        let authorizer_class_name = e.take("authorizer.class.name").unwrap_or_default();
        let super_users = e.take("super.users").unwrap_or_default();
        let allow_everyone = e.bool("allow.everyone.if.no.acl.found", false)?;
        let authorizer = crate::security::AuthorizerConfig::parse(
            &authorizer_class_name,
            &super_users,
            allow_everyone,
        )
        .map_err(|why| {
            let key = if why.contains("principalType") {
                "super.users"
            } else {
                "authorizer.class.name"
            };
            let value = if key == "super.users" {
                &super_users
            } else {
                &authorizer_class_name
            };
            ConfigError::new(key, value, why)
        })?;
        let placement = match e.take("placement.file") {
            None => PlacementRules::default(),
            Some(v) if v.is_empty() => PlacementRules::default(),
            Some(v) => PlacementRules::load(std::path::Path::new(&v))
                .map_err(|why| ConfigError::new("placement.file", &v, why.to_string()))?,
        };
        let placement_balancer = match e.take("placement.balancer").as_deref() {
            None | Some("none") => false,
            Some("load") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "placement.balancer",
                    other,
                    "must be none or load".into(),
                ));
            }
        };
        let mut config = BrokerConfig {
            placement,
            placement_balancer,
            placement_balancer_interval_ms: e.typed(
                "placement.balancer.interval.ms",
                10_000,
                Kind::Long { min: 100 },
            )?,
            placement_balancer_threshold_percent: e.typed(
                "placement.balancer.threshold.percent",
                20,
                Kind::Int { min: 1 },
            )?,
            placement_balancer_max_moves: e.typed(
                "placement.balancer.max.moves",
                1,
                Kind::Int { min: 1 },
            )?,
            placement_connections_follow: e.bool("placement.connections.follow", true)?,
            placement_connections_spread: e.bool("placement.connections.spread", true)?,
            authorizer_class_name,
            authorizer,
            node_id,
            listeners,
            advertised_listeners,
            log_dirs,
            num_partitions: e.typed("num.partitions", 1, Kind::Int { min: 1 })?,
            default_replication_factor: e.typed(
                "default.replication.factor",
                1,
                Kind::Int { min: 1 },
            )?,
            auto_create_topics_enable: e.bool("auto.create.topics.enable", true)?,
            delete_topic_enable: e.bool("delete.topic.enable", true)?,
            socket_request_max_bytes: e.typed(
                "socket.request.max.bytes",
                104_857_600,
                Kind::Int { min: 1 },
            )?,
            queued_max_request_bytes: {
                let bytes: i64 = e.typed(
                    "queued.max.request.bytes",
                    DEFAULT_QUEUED_MAX_REQUEST_BYTES,
                    Kind::Long { min: -1 },
                )?;
                match bytes {
                    -1 => None,
                    0 => {
                        return Err(ConfigError::new(
                            "queued.max.request.bytes",
                            "0",
                            "must be -1 (unbounded) or positive".into(),
                        ));
                    }
                    bytes => Some(bytes as u64),
                }
            },
            max_connections: e.typed("max.connections", i32::MAX, Kind::Int { min: 1 })?,
            topic_partitions_per_shard: e.typed(
                "topic.partitions.per.shard",
                1000,
                Kind::Int { min: 1 },
            )?,
            max_connections_per_ip: e.typed(
                "max.connections.per.ip",
                i32::MAX,
                Kind::Int { min: 0 },
            )?,
            max_connections_per_ip_overrides: match e.take("max.connections.per.ip.overrides") {
                None => Vec::new(),
                Some(value) => parse_ip_overrides(&value)?,
            },
            connections_max_idle_ms: e.typed(
                "connections.max.idle.ms",
                600_000,
                Kind::Long { min: 0 },
            )?,
            offsets_topic_num_partitions: e.typed(
                "offsets.topic.num.partitions",
                50,
                Kind::Int { min: 1 },
            )?,
            offsets_topic_segment_bytes: e.typed(
                "offsets.topic.segment.bytes",
                104_857_600,
                Kind::Int { min: 14 },
            )?,
            offsets_retention_minutes: e.typed(
                "offsets.retention.minutes",
                10_080,
                Kind::Int { min: 1 },
            )?,
            group_initial_rebalance_delay_ms: e.typed(
                "group.initial.rebalance.delay.ms",
                3_000,
                Kind::Int { min: 0 },
            )?,
            group_min_session_timeout_ms: e.typed(
                "group.min.session.timeout.ms",
                6_000,
                Kind::Int { min: 0 },
            )?,
            group_max_session_timeout_ms: e.typed(
                "group.max.session.timeout.ms",
                1_800_000,
                Kind::Int { min: 0 },
            )?,
            group_max_size: e.typed("group.max.size", i32::MAX, Kind::Int { min: 1 })?,
            group_consumer_session_timeout_ms: e.typed(
                "group.consumer.session.timeout.ms",
                45_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_heartbeat_interval_ms: e.typed(
                "group.consumer.heartbeat.interval.ms",
                5_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_min_session_timeout_ms: e.typed(
                "group.consumer.min.session.timeout.ms",
                45_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_max_session_timeout_ms: e.typed(
                "group.consumer.max.session.timeout.ms",
                60_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_min_heartbeat_interval_ms: e.typed(
                "group.consumer.min.heartbeat.interval.ms",
                5_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_max_heartbeat_interval_ms: e.typed(
                "group.consumer.max.heartbeat.interval.ms",
                15_000,
                Kind::Int { min: 1 },
            )?,
            group_consumer_max_size: e.typed(
                "group.consumer.max.size",
                i32::MAX,
                Kind::Int { min: 1 },
            )?,
            group_consumer_assignors: match e.take("group.consumer.assignors") {
                None => vec!["uniform".to_string(), "range".to_string()],
                Some(v) => parse_assignors(&v)?,
            },
            offset_metadata_max_bytes: e.typed(
                "offset.metadata.max.bytes",
                4096,
                Kind::Int { min: 0 },
            )?,
            offsets_retention_check_interval_ms: e.typed(
                "offsets.retention.check.interval.ms",
                600_000,
                Kind::Long { min: 1 },
            )?,
            transaction_state_log_num_partitions: e.typed(
                "transaction.state.log.num.partitions",
                50,
                Kind::Int { min: 1 },
            )?,
            transaction_state_log_segment_bytes: e.typed(
                "transaction.state.log.segment.bytes",
                104_857_600,
                Kind::Int { min: 14 },
            )?,
            transaction_max_timeout_ms: e.typed(
                "transaction.max.timeout.ms",
                900_000,
                Kind::Int { min: 1 },
            )?,
            transactional_id_expiration_ms: e.typed(
                "transactional.id.expiration.ms",
                604_800_000,
                Kind::Int { min: 1 },
            )?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: e.typed(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
                Kind::Int { min: 1 },
            )?,
            transaction_remove_expired_transaction_cleanup_interval_ms: e.typed(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
                Kind::Int { min: 1 },
            )?,
            producer_id_expiration_ms: e.typed(
                "producer.id.expiration.ms",
                86_400_000,
                Kind::Int { min: 1 },
            )?,
            producer_id_expiration_check_interval_ms: e.typed(
                "producer.id.expiration.check.interval.ms",
                600_000,
                Kind::Int { min: 1 },
            )?,
            log_retention_check_interval_ms: e.typed(
                "log.retention.check.interval.ms",
                300_000,
                Kind::Long { min: 1 },
            )?,
            log_cleaner_enable: e.bool("log.cleaner.enable", true)?,
            log_cleaner_io_max_bytes_per_second: {
                let rate: f64 = e.typed(
                    "log.cleaner.io.max.bytes.per.second",
                    f64::MAX,
                    Kind::Double {
                        min: f64::MIN_POSITIVE,
                        max: f64::MAX,
                    },
                )?;
                if rate >= f64::MAX {
                    f64::INFINITY
                } else {
                    rate
                }
            },
            log_cleaner_dedupe_buffer_size: e.typed(
                "log.cleaner.dedupe.buffer.size",
                134_217_728,
                Kind::Long { min: 1024 * 1024 },
            )?,
            log_cleaner_backoff_ms: e.typed(
                "log.cleaner.backoff.ms",
                15_000,
                Kind::Long { min: 0 },
            )?,
            topic_defaults,
            shards,
            cpuset,
            metrics_listener,
            static_keys: BTreeSet::new(),
        };
        if config.default_replication_factor != 1 {
            return Err(ConfigError::new(
                "default.replication.factor",
                &config.default_replication_factor.to_string(),
                "must be 1 on a single-node corelog".into(),
            ));
        }

        config.check_group_consumer_bounds()?;

        let mut notes = ConfigNotes::default();
        config.static_keys = given
            .into_iter()
            .filter(|key| !e.0.contains_key(key))
            .collect();
        for key in e.0.into_keys() {
            if ACCEPTED_WITHOUT_EFFECT.contains(&key.as_str())
                || super::dynamic::without_effect(&key).is_some()
            {
                notes.ignored_keys.push(key);
            } else {
                notes.unknown_keys.push(key);
            }
        }
        Ok((config, notes))
    }

    /// Kafka's start-up checks between the `group.consumer.*` timeouts and their bounds
    /// (`GroupCoordinatorConfig`), in Kafka's words.
    fn check_group_consumer_bounds(&self) -> Result<(), ConfigError> {
        let checks = [
            (
                self.group_consumer_max_heartbeat_interval_ms
                    >= self.group_consumer_min_heartbeat_interval_ms,
                "group.consumer.max.heartbeat.interval.ms",
                self.group_consumer_max_heartbeat_interval_ms,
                "must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
            ),
            (
                self.group_consumer_heartbeat_interval_ms
                    >= self.group_consumer_min_heartbeat_interval_ms,
                "group.consumer.heartbeat.interval.ms",
                self.group_consumer_heartbeat_interval_ms,
                "must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
            ),
            (
                self.group_consumer_heartbeat_interval_ms
                    <= self.group_consumer_max_heartbeat_interval_ms,
                "group.consumer.heartbeat.interval.ms",
                self.group_consumer_heartbeat_interval_ms,
                "must be less than or equal to group.consumer.max.heartbeat.interval.ms",
            ),
            (
                self.group_consumer_max_session_timeout_ms
                    >= self.group_consumer_min_session_timeout_ms,
                "group.consumer.max.session.timeout.ms",
                self.group_consumer_max_session_timeout_ms,
                "must be greater than or equal to group.consumer.min.session.timeout.ms",
            ),
            (
                self.group_consumer_session_timeout_ms
                    >= self.group_consumer_min_session_timeout_ms,
                "group.consumer.session.timeout.ms",
                self.group_consumer_session_timeout_ms,
                "must be greater than or equal to group.consumer.min.session.timeout.ms",
            ),
            (
                self.group_consumer_session_timeout_ms
                    <= self.group_consumer_max_session_timeout_ms,
                "group.consumer.session.timeout.ms",
                self.group_consumer_session_timeout_ms,
                "must be less than or equal to group.consumer.max.session.timeout.ms",
            ),
            (
                self.group_consumer_session_timeout_ms > self.group_consumer_heartbeat_interval_ms,
                "group.consumer.session.timeout.ms",
                self.group_consumer_session_timeout_ms,
                "must be greater than group.consumer.heartbeat.interval.ms",
            ),
        ];
        match checks.into_iter().find(|(ok, ..)| !ok) {
            Some((_, key, value, why)) => {
                Err(ConfigError::new(key, &value.to_string(), why.to_string()))
            }
            None => Ok(()),
        }
    }

    /// The broker default of a topic config.
    pub fn topic_default(&self, name: &str) -> Option<&str> {
        self.topic_defaults.get(name).map(String::as_str)
    }

    /// Whether the file or `--set` gave `key` (or one of `aliases`, the other keys that
    /// set it).
    pub fn is_static(&self, key: &str, aliases: &[&str]) -> bool {
        self.static_keys.contains(key) || aliases.iter().any(|a| self.static_keys.contains(*a))
    }

    /// The value of one of `BROKER_KEYS` as DescribeConfigs shows it (`None`: unset,
    /// Kafka's null).
    pub fn value_of(&self, key: &str) -> Option<String> {
        let listeners = |l: &[Listener]| {
            l.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        Some(match key {
            "advertised.listeners" => listeners(&self.advertised_listeners),
            "allow.everyone.if.no.acl.found" => {
                self.authorizer.allow_everyone_if_no_acl_found.to_string()
            }
            "authorizer.class.name" => self.authorizer_class_name.clone(),
            "super.users" => self.authorizer.super_users.join(";"),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "connections.max.idle.ms" => self.connections_max_idle_ms.to_string(),
            "cpuset" => self.cpuset.as_ref()?.to_string(),
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "delete.topic.enable" => self.delete_topic_enable.to_string(),
            "group.consumer.assignors" => self.group_consumer_assignors.join(","),
            "group.consumer.heartbeat.interval.ms" => {
                self.group_consumer_heartbeat_interval_ms.to_string()
            }
            "group.consumer.max.heartbeat.interval.ms" => {
                self.group_consumer_max_heartbeat_interval_ms.to_string()
            }
            "group.consumer.max.session.timeout.ms" => {
                self.group_consumer_max_session_timeout_ms.to_string()
            }
            "group.consumer.max.size" => self.group_consumer_max_size.to_string(),
            "group.consumer.min.heartbeat.interval.ms" => {
                self.group_consumer_min_heartbeat_interval_ms.to_string()
            }
            "group.consumer.min.session.timeout.ms" => {
                self.group_consumer_min_session_timeout_ms.to_string()
            }
            "group.consumer.session.timeout.ms" => {
                self.group_consumer_session_timeout_ms.to_string()
            }
            "group.initial.rebalance.delay.ms" => self.group_initial_rebalance_delay_ms.to_string(),
            "group.max.session.timeout.ms" => self.group_max_session_timeout_ms.to_string(),
            "group.max.size" => self.group_max_size.to_string(),
            "group.min.session.timeout.ms" => self.group_min_session_timeout_ms.to_string(),
            "listeners" => listeners(&self.listeners),
            "log.dirs" => self
                .log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            "max.connections" => self.max_connections.to_string(),
            "max.connections.per.ip" => self.max_connections_per_ip.to_string(),
            "max.connections.per.ip.overrides" => self
                .max_connections_per_ip_overrides
                .iter()
                .map(|(ip, count)| match ip {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]:{count}"),
                    std::net::IpAddr::V4(v4) => format!("{v4}:{count}"),
                })
                .collect::<Vec<_>>()
                .join(","),
            "metrics.listener" => self.metrics_listener.clone().unwrap_or_default(),
            "placement.file" => self
                .placement
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            "placement.balancer" => if self.placement_balancer {
                "load"
            } else {
                "none"
            }
            .to_string(),
            "placement.balancer.interval.ms" => self.placement_balancer_interval_ms.to_string(),
            "placement.balancer.threshold.percent" => {
                self.placement_balancer_threshold_percent.to_string()
            }
            "placement.balancer.max.moves" => self.placement_balancer_max_moves.to_string(),
            "placement.connections.follow" => self.placement_connections_follow.to_string(),
            "placement.connections.spread" => self.placement_connections_spread.to_string(),
            "node.id" => self.node_id.to_string(),
            "num.partitions" => self.num_partitions.to_string(),
            "offset.metadata.max.bytes" => self.offset_metadata_max_bytes.to_string(),
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms.to_string()
            }
            "offsets.retention.minutes" => self.offsets_retention_minutes.to_string(),
            "offsets.topic.num.partitions" => self.offsets_topic_num_partitions.to_string(),
            "offsets.topic.segment.bytes" => self.offsets_topic_segment_bytes.to_string(),
            "producer.id.expiration.check.interval.ms" => {
                self.producer_id_expiration_check_interval_ms.to_string()
            }
            "producer.id.expiration.ms" => self.producer_id_expiration_ms.to_string(),
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms.to_string(),
            "queued.max.request.bytes" => self
                .queued_max_request_bytes
                .map_or(-1, |b| b as i64)
                .to_string(),
            "shards" => self.shards?.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "topic.partitions.per.shard" => self.topic_partitions_per_shard.to_string(),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => self
                .transaction_abort_timed_out_transaction_cleanup_interval_ms
                .to_string(),
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms.to_string(),
            "transaction.remove.expired.transaction.cleanup.interval.ms" => self
                .transaction_remove_expired_transaction_cleanup_interval_ms
                .to_string(),
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions.to_string()
            }
            "transaction.state.log.segment.bytes" => {
                self.transaction_state_log_segment_bytes.to_string()
            }
            "transactional.id.expiration.ms" => self.transactional_id_expiration_ms.to_string(),
            _ => return None,
        })
    }
}

/// `max.connections.per.ip.overrides`: `ip:count` pairs separated by commas (an IPv6
/// address in brackets, `[::1]:5`).
fn parse_ip_overrides(value: &str) -> Result<Vec<(std::net::IpAddr, i32)>, ConfigError> {
    let key = "max.connections.per.ip.overrides";
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = item.rsplit_once(':').and_then(|(ip, count)| {
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            Some((
                ip.parse().ok()?,
                count.parse::<i32>().ok().filter(|c| *c >= 0)?,
            ))
        });
        match parsed {
            Some(entry) => out.push(entry),
            None => {
                return Err(ConfigError::new(
                    key,
                    value,
                    format!("'{item}' is not ip:count (a non-negative count)"),
                ));
            }
        }
    }
    Ok(out)
}

/// `group.consumer.assignors`: Kafka's assignor names or class names, in order.
fn parse_assignors(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let name = match item {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => "uniform",
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => "range",
            other => {
                return Err(ConfigError::new(
                    "group.consumer.assignors",
                    value,
                    format!("'{other}' is not an assignor corelog has (uniform, range)"),
                ));
            }
        };
        out.push(name.to_string());
    }
    if out.is_empty() {
        return Err(ConfigError::new(
            "group.consumer.assignors",
            value,
            "names no assignor".into(),
        ));
    }
    Ok(out)
}

/// The first of `keys` that is set, converted to milliseconds; the rest are consumed.
fn first_time_key(e: &mut Entries, keys: &[(&str, i64)]) -> Result<Option<i64>, ConfigError> {
    let mut found = None;
    for (key, ms_per_unit) in keys {
        if let Some(value) = e.take(key) {
            check_value(key, Kind::Long { min: -1 }, &value)?;
            let units: i64 = value.parse().expect("checked");
            if found.is_none() {
                // -1 means unlimited in every unit.
                found = Some(if units < 0 {
                    -1
                } else {
                    units.saturating_mul(*ms_per_unit)
                });
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<(BrokerConfig, ConfigNotes), ConfigError> {
        BrokerConfig::from_entries(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_embedded_default_is_a_single_node_on_localhost_9092_with_data_in_data() {
        let config = BrokerConfig::defaults();
        assert_eq!(
            config.listeners[0].to_string(),
            "PLAINTEXT://localhost:9092"
        );
        assert_eq!(config.advertised_listeners, config.listeners);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            config.log_dirs,
            vec![cwd.join("data")],
            "./data, made absolute"
        );
        assert_eq!(config.num_partitions, 1);
        assert_eq!(config.socket_request_max_bytes, 104_857_600);
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.topic_default("retention.ms"), Some("604800000"));
        assert_eq!(config.transaction_state_log_num_partitions, 50);
        assert_eq!(config.transaction_state_log_segment_bytes, 104_857_600);
        assert_eq!(config.transaction_max_timeout_ms, 900_000);
        assert_eq!(config.transactional_id_expiration_ms, 604_800_000);
        assert_eq!(
            config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            10_000
        );
        assert_eq!(
            config.transaction_remove_expired_transaction_cleanup_interval_ms,
            3_600_000
        );
    }

    #[test]
    fn kafka_precedence_rules_hold() {
        let (config, _) = load(&[
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
            ("log.dir", "/ignored"),
            ("log.dirs", "/a, /b"),
            ("log.roll.hours", "2"),
            ("log.segment.bytes", "2097152"),
        ])
        .unwrap();
        assert_eq!(config.topic_default("retention.ms"), Some("120000"));
        assert_eq!(config.topic_default("segment.ms"), Some("7200000"));
        assert_eq!(config.topic_default("segment.bytes"), Some("2097152"));
        assert_eq!(
            config.log_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn unknown_keys_are_noted_and_controller_keys_ignored() {
        let (_, notes) = load(&[
            ("process.roles", "broker,controller"),
            ("num.partitons", "3"),
        ])
        .unwrap();
        assert_eq!(notes.unknown_keys, vec!["num.partitons".to_string()]);
        assert_eq!(notes.ignored_keys, vec!["process.roles".to_string()]);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value, expect) in [
            ("num.partitions", "0", "at least 1"),
            ("num.partitions", "three", "integer"),
            ("auto.create.topics.enable", "yes", "true or false"),
            ("listeners", "localhost:9092", "NAME://host:port"),
            ("listeners", "SSL://:9093", "PLAINTEXT"),
            ("log.segment.bytes", "100", "at least"),
            ("cpuset", "x", "not a CPU number"),
            ("shards", "0", "at least 1"),
            ("group.consumer.assignors", "sticky", "uniform, range"),
            (
                "queued.max.request.bytes",
                "0",
                "-1 (unbounded) or positive",
            ),
            ("queued.max.request.bytes", "-2", "at least -1"),
            ("max.connections", "0", "at least 1"),
            ("max.connections.per.ip", "-1", "at least 0"),
            (
                "max.connections.per.ip.overrides",
                "127.0.0.1",
                "not ip:count",
            ),
            ("max.connections.per.ip.overrides", "host:3", "not ip:count"),
            ("transaction.state.log.num.partitions", "0", "at least 1"),
            ("transaction.max.timeout.ms", "-5", "at least 1"),
            ("transactional.id.expiration.ms", "0", "at least 1"),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "0",
                "at least 1",
            ),
        ] {
            let err = load(&[(key, value)]).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(key) && text.contains(expect),
                "{key}={value}: {text}"
            );
        }
    }

    #[test]
    fn connection_and_request_limits_default_to_kafkas_but_bound_request_memory() {
        let config = BrokerConfig::defaults();
        assert_eq!(config.queued_max_request_bytes, Some(512 << 20));
        assert_eq!(config.max_connections, i32::MAX);
        assert_eq!(config.max_connections_per_ip, i32::MAX);
        let (config, _) = load(&[
            ("queued.max.request.bytes", "-1"),
            ("max.connections.per.ip.overrides", "127.0.0.2:5, [::1]:0"),
        ])
        .unwrap();
        assert_eq!(config.queued_max_request_bytes, None);
        assert_eq!(
            config.max_connections_per_ip_overrides,
            vec![
                ("127.0.0.2".parse().unwrap(), 5),
                ("::1".parse().unwrap(), 0)
            ]
        );
    }

    #[test]
    fn static_keys_are_the_keys_given_and_every_broker_key_has_a_value() {
        let (config, _) = load(&[
            ("broker.id", "3"),
            ("log.retention.hours", "2"),
            ("num.partitions", "4"),
            ("process.roles", "broker"),
            ("no.such.key", "1"),
        ])
        .unwrap();
        assert!(config.is_static("node.id", &["broker.id"]));
        assert!(config.is_static("num.partitions", &[]));
        assert!(config.is_static("log.retention.ms", &["log.retention.hours"]));
        assert!(!config.is_static("log.segment.bytes", &[]));
        assert!(!config.static_keys.contains("no.such.key"));
        assert!(!config.static_keys.contains("process.roles"));
        for key in BROKER_KEYS {
            let value = config.value_of(key.name);
            assert!(
                value.is_some() || matches!(key.name, "cpuset" | "shards"),
                "{} has a value",
                key.name
            );
        }
        assert_eq!(config.value_of("node.id").as_deref(), Some("3"));
        assert_eq!(config.value_of("no.such.key"), None);
        let names: Vec<&str> = BROKER_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "BROKER_KEYS is sorted by name");
    }

    #[test]
    fn log_cleaner_settings_are_kafkas() {
        let config = BrokerConfig::defaults();
        assert!(config.log_cleaner_enable);
        assert_eq!(config.log_cleaner_dedupe_buffer_size, 134_217_728);
        assert_eq!(config.log_cleaner_backoff_ms, 15_000);
        assert!(config.log_cleaner_io_max_bytes_per_second.is_infinite());
        let (config, notes) = load(&[
            ("log.cleaner.enable", "false"),
            ("log.cleaner.io.max.bytes.per.second", "1048576"),
            ("log.cleaner.backoff.ms", "100"),
            ("log.cleaner.threads", "4"),
        ])
        .unwrap();
        assert!(!config.log_cleaner_enable);
        assert_eq!(config.log_cleaner_io_max_bytes_per_second, 1_048_576.0);
        assert_eq!(config.log_cleaner_backoff_ms, 100);
        assert_eq!(notes.ignored_keys, vec!["log.cleaner.threads".to_string()]);
        assert!(load(&[("log.cleaner.dedupe.buffer.size", "10")]).is_err());
    }

    #[test]
    fn an_unbound_host_is_advertised_by_machine_name() {
        let (config, _) = load(&[("listeners", "PLAINTEXT://:19092")]).unwrap();
        assert_eq!(config.listeners[0].host, "");
        assert!(!config.advertised_listeners[0].host.is_empty());
        assert_eq!(config.advertised_listeners[0].port, 19092);
    }

    #[test]
    fn group_consumer_timeouts_are_checked_against_their_bounds_at_start_up() {
        let build = |pairs: &[(&str, &str)]| {
            BrokerConfig::from_entries(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
            .map(|(c, _)| c)
        };
        let defaults = build(&[]).unwrap();
        assert_eq!(defaults.group_consumer_min_session_timeout_ms, 45_000);
        assert_eq!(defaults.group_consumer_max_session_timeout_ms, 60_000);
        assert_eq!(defaults.group_consumer_min_heartbeat_interval_ms, 5_000);
        assert_eq!(defaults.group_consumer_max_heartbeat_interval_ms, 15_000);
        let err = build(&[("group.consumer.heartbeat.interval.ms", "500")]).unwrap_err();
        assert_eq!(err.key, "group.consumer.heartbeat.interval.ms");
        assert!(
            err.reason
                .contains("group.consumer.min.heartbeat.interval.ms"),
            "{err}"
        );
        assert!(
            build(&[
                ("group.consumer.heartbeat.interval.ms", "500"),
                ("group.consumer.min.heartbeat.interval.ms", "500"),
            ])
            .is_ok()
        );
        let err = build(&[("group.consumer.max.session.timeout.ms", "40000")]).unwrap_err();
        assert_eq!(err.key, "group.consumer.max.session.timeout.ms");
        let err = build(&[
            ("group.consumer.session.timeout.ms", "15000"),
            ("group.consumer.min.session.timeout.ms", "15000"),
            ("group.consumer.heartbeat.interval.ms", "15000"),
        ])
        .unwrap_err();
        assert_eq!(
            err.reason,
            "must be greater than group.consumer.heartbeat.interval.ms"
        );
    }
}
