//! Kafka's dynamic broker configs (KIP-226) as corelog has them: the broker synonyms of
//! topic configs (`log.retention.ms`, `log.segment.bytes`, `log.cleanup.policy`,
//! `message.max.bytes`, `compression.type`, …), changed at run time through
//! IncrementalAlterConfigs or AlterConfigs on a broker resource — for the whole cluster
//! (the resource named "") or for this node (its node id).
//!
//! Their values are the defaults of every topic that has no override of the key: a value
//! for this node wins over the cluster-wide default, which wins over the static
//! configuration (`server.properties`, `--set`), which wins over Kafka's default. Pure
//! values; the controller persists them and every shard's metadata image applies them.

use super::topic::{TopicDefaults, check_value, topic_config_of_broker_key};
use super::{ConfigError, TOPIC_CONFIGS};
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

/// The dynamic broker configs set, per level, keyed by broker config name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    pub cluster_default: BTreeMap<String, String>,
    pub node: BTreeMap<String, String>,
}

/// Why a set of dynamic broker configs cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DynamicConfigError {
    /// Keys that are not dynamic broker configs (static ones, or unknown to corelog).
    NotDynamic(Vec<String>),
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

    /// Checks the complete set of values one level would hold: every key a dynamic
    /// broker config, every value valid for it.
    pub fn check(values: &BTreeMap<String, String>) -> Result<(), DynamicConfigError> {
        let not_dynamic: Vec<String> = values
            .keys()
            .filter(|key| !is_dynamic_broker_config(key))
            .cloned()
            .collect();
        if !not_dynamic.is_empty() {
            return Err(DynamicConfigError::NotDynamic(not_dynamic));
        }
        for (key, value) in values {
            let def = topic_config_of_broker_key(key).expect("checked dynamic above");
            check_value(key, def.kind, value).map_err(DynamicConfigError::Invalid)?;
        }
        Ok(())
    }
}

/// Whether corelog changes this broker config at run time: the broker synonyms of topic
/// configs, which set the defaults of topics.
pub fn is_dynamic_broker_config(key: &str) -> bool {
    topic_config_of_broker_key(key).is_some()
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
    fn only_topic_default_synonyms_are_dynamic_and_values_are_checked() {
        assert!(
            DynamicBrokerConfigs::check(&map(&[
                ("log.retention.ms", "5"),
                ("message.max.bytes", "100"),
                ("compression.type", "zstd"),
                ("log.cleanup.policy", "compact,delete"),
            ]))
            .is_ok()
        );
        let err = DynamicBrokerConfigs::check(&map(&[("log.dirs", "/x"), ("num.partitions", "3")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot update these configs dynamically: Set(log.dirs, num.partitions)"
        );
        let err = DynamicBrokerConfigs::check(&map(&[("log.segment.bytes", "10")])).unwrap_err();
        assert!(
            err.to_string().contains("log.segment.bytes") && err.to_string().contains("at least"),
            "{err}"
        );
        // A topic config without a Kafka broker synonym is no broker config.
        assert!(DynamicBrokerConfigs::check(&map(&[("remote.storage.enable", "true")])).is_err());
    }
}
