//! Kafka's dynamic broker configs (KIP-226) as corelog has them: the broker synonyms of
//! topic configs (`log.retention.ms`, `log.segment.bytes`, `log.cleanup.policy`,
//! `message.max.bytes`, `compression.type`, …), changed at run time through
//! IncrementalAlterConfigs or AlterConfigs on a broker resource — for the whole cluster
//! (the resource named "") or for this node (its node id).
//!
//! Kafka's other dynamic broker configs — thread pools, the log cleaner, SASL and SSL
//! listener settings, … (`DynamicBrokerConfig.AllDynamicConfigs`) — configure pieces
//! corelog does not have: they are accepted *without effect* (`WITHOUT_EFFECT`),
//! checked by type, persisted and described like the others. Keys corelog reads from
//! its static configuration (`listeners`, `max.connections`, …) stay static.
//!
//! The same file also keeps the group configs (`consumer.session.timeout.ms`, …) set
//! on GROUP resources (`groups`), which the controller persists next to them.
//!
//! Their values are the defaults of every topic that has no override of the key: a value
//! for this node wins over the cluster-wide default, which wins over the static
//! configuration (`server.properties`, `--set`), which wins over Kafka's default. Pure
//! values; the controller persists them and every shard's metadata image applies them.

use super::topic::{ConfigType, Kind, TopicDefaults, check_value, topic_config_of_broker_key};
use super::{ConfigError, TOPIC_CONFIGS, check_group_config_names};
use std::collections::BTreeMap;
use std::fmt;

/// Which broker resource a dynamic value was set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicLevel {
    /// The broker resource named "": Kafka's cluster-wide default
    /// (DYNAMIC_DEFAULT_BROKER_CONFIG).
    ClusterDefault,
    /// The broker resource named by this node's id (DYNAMIC_BROKER_CONFIG).
    Node,
}

/// The dynamic broker configs set, per level, keyed by broker config name; and the
/// group configs set, per group id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    pub cluster_default: BTreeMap<String, String>,
    pub node: BTreeMap<String, String>,
    /// Group id → its group config overrides (never empty: a group without overrides
    /// has no entry).
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
}

/// One of Kafka's dynamic broker configs corelog accepts without effect.
#[derive(Debug, Clone, Copy)]
pub struct WithoutEffect {
    pub name: &'static str,
    pub kind: Kind,
    pub config_type: ConfigType,
    /// Kafka takes it for one broker only, never as the cluster-wide default.
    pub per_broker: bool,
}

const fn without(
    name: &'static str,
    kind: Kind,
    config_type: ConfigType,
    per_broker: bool,
) -> WithoutEffect {
    WithoutEffect {
        name,
        kind,
        config_type,
        per_broker,
    }
}

const INT0: Kind = Kind::Int { min: 0 };
const INT1: Kind = Kind::Int { min: 1 };
const LONG0: Kind = Kind::Long { min: 0 };
const LONG1: Kind = Kind::Long { min: 1 };
const RATIO: Kind = Kind::Double {
    min: 0.0,
    max: f64::MAX,
};
const TEXT: Kind = Kind::Text;

/// Kafka 4.0's dynamically updatable broker configs that corelog has no use for, sorted
/// by name: the thread pools, the log cleaner, metric reporters and config providers,
/// the listeners' SASL and SSL settings (per broker in Kafka), connection creation
/// rates, transaction verification and the remote log manager's quotas.
pub const WITHOUT_EFFECT: &[WithoutEffect] = {
    use ConfigType as T;
    &[
        without("background.threads", INT1, T::Int, false),
        without("config.providers", TEXT, T::List, false),
        without("listener.security.protocol.map", TEXT, T::String, true),
        without("log.cleaner.backoff.ms", LONG0, T::Long, false),
        without("log.cleaner.dedupe.buffer.size", LONG0, T::Long, false),
        without("log.cleaner.io.buffer.load.factor", RATIO, T::Double, false),
        without("log.cleaner.io.buffer.size", INT0, T::Int, false),
        without(
            "log.cleaner.io.max.bytes.per.second",
            RATIO,
            T::Double,
            false,
        ),
        without("log.cleaner.threads", INT0, T::Int, false),
        without("max.connection.creation.rate", INT0, T::Int, false),
        without("metric.reporters", TEXT, T::List, false),
        without("num.io.threads", INT1, T::Int, false),
        without("num.network.threads", INT1, T::Int, false),
        without("num.recovery.threads.per.data.dir", INT1, T::Int, false),
        without("num.replica.fetchers", INT1, T::Int, false),
        without("principal.builder.class", TEXT, T::Class, true),
        without(
            "remote.log.index.file.cache.total.size.bytes",
            LONG1,
            T::Long,
            false,
        ),
        without(
            "remote.log.manager.copy.max.bytes.per.second",
            LONG1,
            T::Long,
            false,
        ),
        without(
            "remote.log.manager.fetch.max.bytes.per.second",
            LONG1,
            T::Long,
            false,
        ),
        without("sasl.enabled.mechanisms", TEXT, T::List, true),
        without("sasl.jaas.config", TEXT, T::Password, true),
        without("sasl.kerberos.kinit.cmd", TEXT, T::String, true),
        without(
            "sasl.kerberos.min.time.before.relogin",
            LONG0,
            T::Long,
            true,
        ),
        without(
            "sasl.kerberos.principal.to.local.rules",
            TEXT,
            T::List,
            true,
        ),
        without("sasl.kerberos.service.name", TEXT, T::String, true),
        without("sasl.kerberos.ticket.renew.jitter", RATIO, T::Double, true),
        without(
            "sasl.kerberos.ticket.renew.window.factor",
            RATIO,
            T::Double,
            true,
        ),
        without("sasl.login.refresh.buffer.seconds", INT0, T::Short, true),
        without(
            "sasl.login.refresh.min.period.seconds",
            INT0,
            T::Short,
            true,
        ),
        without("sasl.login.refresh.window.factor", RATIO, T::Double, true),
        without("sasl.login.refresh.window.jitter", RATIO, T::Double, true),
        without(
            "sasl.mechanism.inter.broker.protocol",
            TEXT,
            T::String,
            true,
        ),
        without("ssl.cipher.suites", TEXT, T::List, true),
        without(
            "ssl.client.auth",
            Kind::OneOf(&["required", "requested", "none"]),
            T::String,
            true,
        ),
        without("ssl.enabled.protocols", TEXT, T::List, true),
        without(
            "ssl.endpoint.identification.algorithm",
            TEXT,
            T::String,
            true,
        ),
        without("ssl.engine.factory.class", TEXT, T::Class, true),
        without("ssl.keymanager.algorithm", TEXT, T::String, true),
        without("ssl.protocol", TEXT, T::String, true),
        without("ssl.provider", TEXT, T::String, true),
        without("ssl.secure.random.implementation", TEXT, T::String, true),
        without("ssl.trustmanager.algorithm", TEXT, T::String, true),
        without(
            "transaction.partition.verification.enable",
            Kind::Bool,
            T::Boolean,
            false,
        ),
    ]
};

/// Kafka's dynamic security configs that it takes only with a listener prefix
/// (`listener.name.<listener>.<key>`), which corelog does not serve.
const PER_LISTENER_ONLY: &[&str] = &[
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
];

/// The definition of a dynamic broker config corelog accepts without effect.
pub fn without_effect(key: &str) -> Option<&'static WithoutEffect> {
    WITHOUT_EFFECT.iter().find(|w| w.name == key)
}

/// Why a set of dynamic broker configs cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicConfigError {
    /// Keys that are not dynamic broker configs (static ones, or unknown to corelog).
    NotDynamic(Vec<String>),
    /// Security configs Kafka changes only per listener.
    PerListenerOnly(Vec<String>),
    /// Configs Kafka changes only per broker, set on the cluster-wide default.
    PerBrokerOnly(Vec<String>),
    /// A dynamic key with an invalid value.
    Invalid(ConfigError),
}

impl fmt::Display for DynamicConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Kafka's words, its Scala set included.
            DynamicConfigError::NotDynamic(keys) => write!(
                f,
                "Cannot update these configs dynamically: Set({})",
                keys.join(", ")
            ),
            DynamicConfigError::PerListenerOnly(keys) => write!(
                f,
                "These security configs can be dynamically updated only per-listener using \
                 the listener prefix: Set({})",
                keys.join(", ")
            ),
            DynamicConfigError::PerBrokerOnly(keys) => write!(
                f,
                "Cannot update these configs at default cluster level, broker id must be \
                 specified: Set({})",
                keys.join(", ")
            ),
            DynamicConfigError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl DynamicBrokerConfigs {
    /// The values set at `level`.
    pub fn level(&self, level: DynamicLevel) -> &BTreeMap<String, String> {
        match level {
            DynamicLevel::ClusterDefault => &self.cluster_default,
            DynamicLevel::Node => &self.node,
        }
    }

    /// Replaces the values set at `level`.
    pub fn set_level(&mut self, level: DynamicLevel, values: BTreeMap<String, String>) {
        match level {
            DynamicLevel::ClusterDefault => self.cluster_default = values,
            DynamicLevel::Node => self.node = values,
        }
    }

    /// The dynamic value of a broker config and the level it comes from, the node's
    /// first.
    pub fn get(&self, key: &str) -> Option<(&str, DynamicLevel)> {
        self.node
            .get(key)
            .map(|v| (v.as_str(), DynamicLevel::Node))
            .or_else(|| {
                self.cluster_default
                    .get(key)
                    .map(|v| (v.as_str(), DynamicLevel::ClusterDefault))
            })
    }

    /// The topic defaults in effect: `static_defaults` (keyed by topic config name) with
    /// every dynamic value over them.
    pub fn topic_defaults(&self, static_defaults: &TopicDefaults) -> TopicDefaults {
        let mut defaults = static_defaults.clone();
        for def in TOPIC_CONFIGS {
            if let Some((value, _)) = def.broker_synonym().and_then(|key| self.get(key)) {
                defaults.insert(def.name, value.to_string());
            }
        }
        defaults
    }

    /// The group config overrides of a group (none when it has none).
    pub fn group(&self, group_id: &str) -> Option<&BTreeMap<String, String>> {
        self.groups.get(group_id)
    }

    /// Replaces a group's overrides (an empty set removes the group's entry).
    pub fn set_group(&mut self, group_id: &str, values: BTreeMap<String, String>) {
        if values.is_empty() {
            self.groups.remove(group_id);
        } else {
            self.groups.insert(group_id.to_string(), values);
        }
    }

    /// Checks the complete set of values one level would hold, in Kafka's order: every
    /// key a dynamic broker config (and not one Kafka changes per listener only), every
    /// value valid for it, and no per-broker config on the cluster-wide default.
    pub fn check(
        values: &BTreeMap<String, String>,
        level: DynamicLevel,
    ) -> Result<(), DynamicConfigError> {
        check_names(values.keys().map(String::as_str))?;
        for (key, value) in values {
            let kind = match (topic_config_of_broker_key(key), without_effect(key)) {
                (Some(def), _) => def.kind,
                (None, Some(w)) => w.kind,
                (None, None) => unreachable!("checked dynamic above"),
            };
            check_value(key, kind, value).map_err(DynamicConfigError::Invalid)?;
        }
        if level == DynamicLevel::ClusterDefault {
            let per_broker: Vec<String> = values
                .keys()
                .filter(|key| without_effect(key).is_some_and(|w| w.per_broker))
                .cloned()
                .collect();
            if !per_broker.is_empty() {
                return Err(DynamicConfigError::PerBrokerOnly(per_broker));
            }
        }
        Ok(())
    }

    /// Checks the group configs of every group: known names, valid values (the bounds
    /// of the broker's configuration are checked when they are set).
    pub fn check_groups(&self) -> Result<(), String> {
        for (group, values) in &self.groups {
            check_group_config_names(values).map_err(|e| format!("group {group}: {e}"))?;
        }
        Ok(())
    }
}

/// Refuses keys that are not dynamic broker configs, then security configs Kafka
/// changes per listener only, with Kafka's words.
pub fn check_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), DynamicConfigError> {
    let names: Vec<&str> = names.collect();
    let not_dynamic: Vec<String> = names
        .iter()
        .filter(|key| !is_dynamic_broker_config(key) && !PER_LISTENER_ONLY.contains(key))
        .map(|key| key.to_string())
        .collect();
    if !not_dynamic.is_empty() {
        return Err(DynamicConfigError::NotDynamic(not_dynamic));
    }
    let per_listener: Vec<String> = names
        .iter()
        .filter(|key| PER_LISTENER_ONLY.contains(key))
        .map(|key| key.to_string())
        .collect();
    if !per_listener.is_empty() {
        return Err(DynamicConfigError::PerListenerOnly(per_listener));
    }
    Ok(())
}

/// Whether corelog takes this broker config at run time: the broker synonyms of topic
/// configs, which set the defaults of topics, and Kafka's other dynamic broker configs
/// corelog has no use for (`WITHOUT_EFFECT`).
pub fn is_dynamic_broker_config(key: &str) -> bool {
    topic_config_of_broker_key(key).is_some() || without_effect(key).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kafka_topic_defaults;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_node_value_wins_over_the_cluster_default_which_wins_over_the_static_one() {
        let mut statics = kafka_topic_defaults();
        statics.insert("retention.ms", "1000".into());
        statics.insert("segment.bytes", "2097152".into());
        let dynamic = DynamicBrokerConfigs {
            cluster_default: map(&[
                ("log.retention.ms", "2000"),
                ("log.segment.bytes", "3145728"),
            ]),
            node: map(&[("log.retention.ms", "3000")]),
            groups: BTreeMap::new(),
        };
        let defaults = dynamic.topic_defaults(&statics);
        assert_eq!(defaults["retention.ms"], "3000");
        assert_eq!(defaults["segment.bytes"], "3145728");
        assert_eq!(defaults["cleanup.policy"], "delete");
        assert_eq!(
            dynamic.get("log.retention.ms"),
            Some(("3000", DynamicLevel::Node))
        );
        assert_eq!(
            dynamic.get("log.segment.bytes"),
            Some(("3145728", DynamicLevel::ClusterDefault))
        );
    }

    #[test]
    fn only_kafkas_dynamic_keys_are_dynamic_and_values_are_checked() {
        let node = DynamicLevel::Node;
        let cluster = DynamicLevel::ClusterDefault;
        assert!(
            DynamicBrokerConfigs::check(
                &map(&[
                    ("log.retention.ms", "5"),
                    ("message.max.bytes", "100"),
                    ("compression.type", "zstd"),
                    ("log.cleanup.policy", "compact,delete"),
                ]),
                cluster
            )
            .is_ok()
        );
        let err =
            DynamicBrokerConfigs::check(&map(&[("log.dirs", "/x"), ("num.partitions", "3")]), node)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot update these configs dynamically: Set(log.dirs, num.partitions)"
        );
        let err =
            DynamicBrokerConfigs::check(&map(&[("log.segment.bytes", "10")]), node).unwrap_err();
        assert!(
            err.to_string().contains("log.segment.bytes") && err.to_string().contains("at least"),
            "{err}"
        );
        // A topic config without a Kafka broker synonym is no broker config.
        assert!(
            DynamicBrokerConfigs::check(&map(&[("remote.storage.enable", "true")]), node).is_err()
        );
        // Kafka's other dynamic keys are taken without effect, checked by type.
        let without = map(&[
            ("background.threads", "9"),
            ("num.io.threads", "4"),
            ("log.cleaner.threads", "2"),
            ("sasl.kerberos.min.time.before.relogin", "58000"),
            ("ssl.cipher.suites", "TLS_AES_128_GCM_SHA256"),
        ]);
        assert!(DynamicBrokerConfigs::check(&without, node).is_ok());
        let err =
            DynamicBrokerConfigs::check(&map(&[("background.threads", "0")]), node).unwrap_err();
        assert!(err.to_string().contains("background.threads"), "{err}");
        let err =
            DynamicBrokerConfigs::check(&map(&[("num.io.threads", "many")]), cluster).unwrap_err();
        assert!(err.to_string().contains("num.io.threads"), "{err}");
        // Per-broker keys are refused on the cluster-wide default, as Kafka does.
        assert!(DynamicBrokerConfigs::check(&map(&[("background.threads", "9")]), cluster).is_ok());
        assert_eq!(
            DynamicBrokerConfigs::check(&without, cluster)
                .unwrap_err()
                .to_string(),
            "Cannot update these configs at default cluster level, broker id must be \
             specified: Set(sasl.kerberos.min.time.before.relogin, ssl.cipher.suites)"
        );
        assert_eq!(
            DynamicBrokerConfigs::check(&map(&[("ssl.keystore.location", "/k")]), node)
                .unwrap_err()
                .to_string(),
            "These security configs can be dynamically updated only per-listener using the \
             listener prefix: Set(ssl.keystore.location)"
        );
        // Keys corelog reads statically stay static, even where Kafka's are dynamic.
        assert!(matches!(
            DynamicBrokerConfigs::check(&map(&[("max.connections", "5")]), node),
            Err(DynamicConfigError::NotDynamic(_))
        ));
    }

    #[test]
    fn the_without_effect_list_is_sorted_and_holds_no_key_corelog_reads() {
        let names: Vec<&str> = WITHOUT_EFFECT.iter().map(|w| w.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        for name in names {
            assert!(
                !crate::config::BROKER_KEYS.iter().any(|k| k.name == name)
                    && topic_config_of_broker_key(name).is_none(),
                "{name} is a config corelog reads"
            );
        }
    }
}
