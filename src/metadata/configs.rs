//! Configs as Kafka's admin APIs see them: the resources (a topic, this broker, the
//! cluster-wide broker default), the changes IncrementalAlterConfigs and AlterConfigs
//! ask for, and what DescribeConfigs reports — each config's value, where the value
//! comes from and the chain of synonyms behind it, in Kafka's order.
//!
//! Pure functions over the metadata a shard holds (topic overrides, dynamic broker
//! configs) and the static broker configuration: the controller uses them to validate
//! changes, every shard to describe.

use super::controller::{TopicError, TopicErrorKind};
use crate::config::{
    BROKER_KEYS, BrokerConfig, ConfigType, DynamicBrokerConfigs, DynamicConfigError, DynamicLevel,
    GROUP_CONFIGS, TOPIC_CONFIGS, TopicConfigDef, WITHOUT_EFFECT, broker_synonym_aliases,
    check_dynamic_names, topic_config_def, topic_config_of_broker_key, without_effect,
};
use std::collections::{BTreeMap, BTreeSet};

/// Kafka's resource type ids (`ConfigResource.Type`).
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;

/// Where a config's value comes from (Kafka's `ConfigSource`, as DescribeConfigs and
/// CreateTopics report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
    DynamicGroup = 8,
}

impl ConfigSource {
    fn of_level(level: DynamicLevel) -> ConfigSource {
        match level {
            DynamicLevel::ClusterDefault => ConfigSource::DynamicDefaultBroker,
            DynamicLevel::Node => ConfigSource::DynamicBroker,
        }
    }
}

/// A resource whose configs the admin APIs read or change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigTarget {
    Topic(String),
    /// A broker resource: the cluster-wide default ("") or this node (its id).
    Broker(DynamicLevel),
    /// A group resource: its group id (any, existing or not).
    Group(String),
}

impl ConfigTarget {
    /// Kafka's reading of a resource type and name, with its errors (INVALID_REQUEST).
    pub fn parse(resource_type: i8, name: &str, node_id: i32) -> Result<ConfigTarget, TopicError> {
        match resource_type {
            RESOURCE_TOPIC => Ok(ConfigTarget::Topic(name.to_string())),
            RESOURCE_BROKER if name.is_empty() => {
                Ok(ConfigTarget::Broker(DynamicLevel::ClusterDefault))
            }
            RESOURCE_BROKER => match name.parse::<i32>() {
                Ok(id) if id == node_id => Ok(ConfigTarget::Broker(DynamicLevel::Node)),
                Ok(_) => Err(malformed(format!(
                    "Unexpected broker id, expected {node_id}, but received {name}"
                ))),
                Err(_) => Err(malformed(format!(
                    "Node id must be an integer, but it is: {name}"
                ))),
            },
            RESOURCE_GROUP if name.is_empty() => {
                Err(malformed("Group name must not be empty".to_string()))
            }
            RESOURCE_GROUP => Ok(ConfigTarget::Group(name.to_string())),
            // BROKER_LOGGER and CLIENT_METRICS: Kafka's, not corelog's.
            8 | 16 => Err(malformed(format!(
                "Resource type {resource_type} is not served by corelog, which changes TOPIC \
                 ({RESOURCE_TOPIC}), BROKER ({RESOURCE_BROKER}) and GROUP ({RESOURCE_GROUP}) \
                 configs"
            ))),
            other => Err(malformed(format!("Unknown resource type {other}"))),
        }
    }
}

fn malformed(message: String) -> TopicError {
    TopicError::new(TopicErrorKind::MalformedRequest, message)
}

fn invalid_config(message: String) -> TopicError {
    TopicError::new(TopicErrorKind::InvalidConfig, message)
}

/// One IncrementalAlterConfigs operation (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    /// Adds list items not yet there (list configs only).
    Append(String),
    /// Removes list items (list configs only).
    Subtract(String),
}

impl ConfigOp {
    fn name(&self) -> &'static str {
        match self {
            ConfigOp::Set(_) => "SET",
            ConfigOp::Delete => "DELETE",
            ConfigOp::Append(_) => "APPEND",
            ConfigOp::Subtract(_) => "SUBTRACT",
        }
    }
}

/// What a request asks of one resource's configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alteration {
    /// IncrementalAlterConfigs: these operations on the current values.
    Incremental(Vec<(String, ConfigOp)>),
    /// AlterConfigs: exactly these values, every other one back to its default.
    Replace(BTreeMap<String, String>),
}

/// Reads IncrementalAlterConfigs entries (name, operation, value) as Kafka's broker
/// does before anything else: a key named twice, an unknown operation or a null value
/// for anything but DELETE make the resource an INVALID_REQUEST.
pub fn incremental_ops(
    entries: &[(String, i8, Option<String>)],
) -> Result<Vec<(String, ConfigOp)>, TopicError> {
    let mut names = BTreeSet::new();
    if !entries
        .iter()
        .all(|(name, _, _)| names.insert(name.as_str()))
    {
        return Err(malformed("Error due to duplicate config keys".into()));
    }
    let nulls: Vec<&str> = entries
        .iter()
        .filter(|(_, op, value)| *op != 1 && value.is_none())
        .map(|(name, _, _)| name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(malformed(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    entries
        .iter()
        .map(|(name, op, value)| {
            let value = || value.clone().unwrap_or_default();
            let op = match op {
                0 => ConfigOp::Set(value()),
                1 => ConfigOp::Delete,
                2 => ConfigOp::Append(value()),
                3 => ConfigOp::Subtract(value()),
                other => return Err(malformed(format!("Unknown operations type {other}"))),
            };
            Ok((name.clone(), op))
        })
        .collect()
}

/// Reads AlterConfigs entries (name, value): every value set, none named twice.
pub fn replacement(
    entries: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, TopicError> {
    let mut names = BTreeSet::new();
    if !entries.iter().all(|(name, _)| names.insert(name.as_str())) {
        return Err(malformed("Error due to duplicate config keys".into()));
    }
    let nulls: Vec<&str> = entries
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| name.as_str())
        .collect();
    if !nulls.is_empty() {
        return Err(malformed(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    Ok(entries
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().unwrap_or_default()))
        .collect())
}

/// The values a topic's overrides become under `alteration`. APPEND and SUBTRACT work
/// on list configs only (INVALID_CONFIG otherwise, with Kafka's controller's words) and
/// start from the override, else Kafka's default, as Kafka does. Values are checked by
/// the caller.
pub fn altered_topic_overrides(
    current: &BTreeMap<String, String>,
    alteration: &Alteration,
) -> Result<BTreeMap<String, String>, TopicError> {
    apply(current, alteration, |name, op| {
        let def = topic_config_def(name).filter(|d| d.kind.is_list());
        match def {
            Some(def) => Ok(def.default),
            None => Err(invalid_config(format!(
                "Can't {} to key {name} because its type is not LIST.",
                op.name()
            ))),
        }
    })
}

/// The values one level of dynamic broker configs becomes under `alteration`. Keys that
/// are not dynamic broker configs are refused first, with Kafka's words
/// (INVALID_REQUEST); APPEND and SUBTRACT work on list configs only (INVALID_CONFIG, with
/// Kafka's broker's words). Values are checked by the caller.
pub fn altered_broker_configs(
    current: &BTreeMap<String, String>,
    alteration: &Alteration,
) -> Result<BTreeMap<String, String>, TopicError> {
    refuse_static_keys(alteration)?;
    apply(
        current,
        alteration,
        |name, op| match topic_config_of_broker_key(name).filter(|d| d.kind.is_list()) {
            Some(def) => Ok(def.default),
            None => Err(invalid_config(format!(
                "Config value {} is not allowed for config key: {name}",
                op.name().to_ascii_lowercase()
            ))),
        },
    )
}

/// The overrides a group has under `alteration`. Group configs are no lists: APPEND and
/// SUBTRACT are INVALID_CONFIG, with Kafka's controller's words. Values are checked by
/// the caller.
pub fn altered_group_configs(
    current: &BTreeMap<String, String>,
    alteration: &Alteration,
) -> Result<BTreeMap<String, String>, TopicError> {
    apply(current, alteration, |name, op| {
        Err(invalid_config(format!(
            "Can't {} to key {name} because its type is not LIST.",
            op.name()
        )))
    })
}

/// Refuses, with Kafka's words (INVALID_REQUEST), an alteration of broker configs that
/// sets keys which are not dynamic.
fn refuse_static_keys(alteration: &Alteration) -> Result<(), TopicError> {
    let named: Vec<&str> = match alteration {
        Alteration::Replace(values) => values.keys().map(String::as_str).collect(),
        Alteration::Incremental(ops) => ops
            .iter()
            .filter(|(_, op)| *op != ConfigOp::Delete)
            .map(|(name, _)| name.as_str())
            .collect(),
    };
    check_dynamic_names(named.into_iter()).map_err(|e: DynamicConfigError| malformed(e.to_string()))
}

/// Applies an alteration to `current`; `list_default` says, for an APPEND or SUBTRACT,
/// the default a list starts from when unset, or refuses a key that is not a list.
fn apply(
    current: &BTreeMap<String, String>,
    alteration: &Alteration,
    list_default: impl Fn(&str, &ConfigOp) -> Result<&'static str, TopicError>,
) -> Result<BTreeMap<String, String>, TopicError> {
    let ops = match alteration {
        Alteration::Replace(values) => return Ok(values.clone()),
        Alteration::Incremental(ops) => ops,
    };
    let mut values = current.clone();
    for (name, op) in ops {
        match op {
            ConfigOp::Set(value) => {
                values.insert(name.clone(), value.clone());
            }
            ConfigOp::Delete => {
                values.remove(name);
            }
            ConfigOp::Append(items) | ConfigOp::Subtract(items) => {
                let default = list_default(name, op)?;
                let base = values.get(name).map(String::as_str).unwrap_or(default);
                let mut list: Vec<&str> = base.split(',').filter(|s| !s.is_empty()).collect();
                for item in items.split(',') {
                    if matches!(op, ConfigOp::Append(_)) {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    } else if let Some(at) = list.iter().position(|i| *i == item) {
                        list.remove(at);
                    }
                }
                let joined = list.join(",");
                values.insert(name.clone(), joined);
            }
        }
    }
    Ok(values)
}

/// The documentation of the dynamic broker configs corelog accepts without effect.
const WITHOUT_EFFECT_DOC: &str =
    "A Kafka dynamic broker config corelog accepts and keeps without effect.";

/// One synonym of a described config: a key that sets it and where its value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedConfig {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Every key that could set the value, the one in effect first (Kafka's order:
    /// topic override, this broker's dynamic value, the cluster-wide dynamic default,
    /// the static configuration, the default).
    pub synonyms: Vec<Synonym>,
    pub config_type: ConfigType,
    pub documentation: String,
}

impl DescribedConfig {
    /// A config whose value is its first synonym's (the default's when none).
    fn from_synonyms(
        name: &str,
        synonyms: Vec<Synonym>,
        read_only: bool,
        config_type: ConfigType,
        documentation: String,
    ) -> DescribedConfig {
        let (value, source) = synonyms.first().map_or((None, ConfigSource::Default), |s| {
            (s.value.clone(), s.source)
        });
        DescribedConfig {
            name: name.to_string(),
            value,
            source,
            read_only,
            synonyms,
            config_type,
            documentation,
        }
    }
}

/// What describing configs needs: the static configuration and the dynamic broker
/// configs of the metadata.
pub struct ConfigView<'a> {
    pub broker: &'a BrokerConfig,
    pub dynamic: &'a DynamicBrokerConfigs,
}

impl ConfigView<'_> {
    /// A broker synonym's chain below the topic level: this node's dynamic value, the
    /// cluster-wide dynamic default, the static value, the default; `def` gives the
    /// static value (its topic default) and the default.
    fn broker_chain(&self, key: &str, def: &TopicConfigDef) -> Vec<Synonym> {
        let mut chain = Vec::new();
        for level in [DynamicLevel::Node, DynamicLevel::ClusterDefault] {
            if let Some(value) = self.dynamic.level(level).get(key) {
                chain.push(Synonym {
                    name: key.to_string(),
                    value: Some(value.clone()),
                    source: ConfigSource::of_level(level),
                });
            }
        }
        if self.broker.is_static(key, broker_synonym_aliases(key)) {
            chain.push(Synonym {
                name: key.to_string(),
                value: self.broker.topic_default(def.name).map(str::to_string),
                source: ConfigSource::StaticBroker,
            });
        }
        chain.push(Synonym {
            name: key.to_string(),
            value: Some(def.default.to_string()),
            source: ConfigSource::Default,
        });
        chain
    }

    /// Every topic config of a topic with these overrides: the override, else what the
    /// broker sets, else the default. Configs without a broker synonym in Kafka report
    /// their default with no synonyms when not overridden.
    pub fn describe_topic(&self, overrides: &BTreeMap<String, String>) -> Vec<DescribedConfig> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let mut synonyms = Vec::new();
                if let Some(value) = overrides.get(def.name) {
                    synonyms.push(Synonym {
                        name: def.name.to_string(),
                        value: Some(value.clone()),
                        source: ConfigSource::DynamicTopic,
                    });
                }
                match def.broker_synonym() {
                    Some(key) => synonyms.extend(self.broker_chain(key, def)),
                    None if synonyms.is_empty() => {
                        return DescribedConfig {
                            name: def.name.to_string(),
                            value: Some(def.default.to_string()),
                            source: ConfigSource::Default,
                            read_only: false,
                            synonyms,
                            config_type: def.kind.config_type(),
                            documentation: def.doc.to_string(),
                        };
                    }
                    None => {}
                }
                DescribedConfig::from_synonyms(
                    def.name,
                    synonyms,
                    false,
                    def.kind.config_type(),
                    def.doc.to_string(),
                )
            })
            .collect()
    }

    /// This node's broker configs: the static ones corelog reads (read-only) and the
    /// broker synonyms of topic configs (dynamic), sorted by name.
    pub fn describe_node(&self) -> Vec<DescribedConfig> {
        let defaults = BrokerConfig::defaults();
        let mut configs: Vec<DescribedConfig> = BROKER_KEYS
            .iter()
            .map(|key| {
                let mut synonyms = Vec::new();
                if self.broker.is_static(key.name, key.aliases) {
                    synonyms.push(Synonym {
                        name: key.name.to_string(),
                        value: self.broker.value_of(key.name),
                        source: ConfigSource::StaticBroker,
                    });
                }
                synonyms.push(Synonym {
                    name: key.name.to_string(),
                    value: defaults.value_of(key.name),
                    source: ConfigSource::Default,
                });
                let mut described = DescribedConfig::from_synonyms(
                    key.name,
                    synonyms,
                    true,
                    key.config_type,
                    key.doc.to_string(),
                );
                // The value in effect, even where the default depends on the machine
                // (the advertised host name, the data directory made absolute).
                described.value = self.broker.value_of(key.name);
                described
            })
            .collect();
        for def in TOPIC_CONFIGS {
            let Some(key) = def.broker_synonym() else {
                continue;
            };
            if configs.iter().any(|c| c.name == key) {
                continue;
            }
            configs.push(DescribedConfig::from_synonyms(
                key,
                self.broker_chain(key, def),
                false,
                def.kind.config_type(),
                format!("The default of the topic config {}: {}", def.name, def.doc),
            ));
        }
        // Kafka's dynamic broker configs corelog accepts without effect, where set.
        for w in WITHOUT_EFFECT {
            let chain = self.dynamic_chain(w.name);
            if !chain.is_empty() {
                configs.push(DescribedConfig::from_synonyms(
                    w.name,
                    chain,
                    false,
                    w.config_type,
                    WITHOUT_EFFECT_DOC.to_string(),
                ));
            }
        }
        configs.sort_by(|a, b| a.name.cmp(&b.name));
        configs
    }

    /// A dynamic broker config's values: this node's, then the cluster-wide default.
    fn dynamic_chain(&self, key: &str) -> Vec<Synonym> {
        [DynamicLevel::Node, DynamicLevel::ClusterDefault]
            .into_iter()
            .filter_map(|level| {
                self.dynamic.level(level).get(key).map(|value| Synonym {
                    name: key.to_string(),
                    value: Some(value.clone()),
                    source: ConfigSource::of_level(level),
                })
            })
            .collect()
    }

    /// A group's configs (any group id, existing or not): its override, else the
    /// broker config that is the default, with that one's chain of synonyms below it
    /// (Kafka's order), as Kafka describes a GROUP resource.
    pub fn describe_group(&self, group_id: &str) -> Vec<DescribedConfig> {
        let defaults = BrokerConfig::defaults();
        let overrides = self.dynamic.group(group_id);
        GROUP_CONFIGS
            .iter()
            .map(|def| {
                let mut synonyms = Vec::new();
                if let Some(value) = overrides.and_then(|o| o.get(def.name)) {
                    synonyms.push(Synonym {
                        name: def.name.to_string(),
                        value: Some(value.clone()),
                        source: ConfigSource::DynamicGroup,
                    });
                }
                if self.broker.is_static(def.broker_key, &[]) {
                    synonyms.push(Synonym {
                        name: def.broker_key.to_string(),
                        value: self.broker.value_of(def.broker_key),
                        source: ConfigSource::StaticBroker,
                    });
                }
                synonyms.push(Synonym {
                    name: def.broker_key.to_string(),
                    value: defaults.value_of(def.broker_key),
                    source: ConfigSource::Default,
                });
                DescribedConfig::from_synonyms(
                    def.name,
                    synonyms,
                    false,
                    ConfigType::Int,
                    def.doc.to_string(),
                )
            })
            .collect()
    }

    /// The cluster-wide default broker resource: the dynamic defaults set, each with
    /// that one synonym, as Kafka lists them.
    pub fn describe_cluster_default(&self) -> Vec<DescribedConfig> {
        self.dynamic
            .cluster_default
            .iter()
            .map(|(key, value)| {
                let def = topic_config_of_broker_key(key);
                let (config_type, doc) = match (def, without_effect(key)) {
                    (Some(d), _) => (
                        d.kind.config_type(),
                        format!("The default of the topic config {}: {}", d.name, d.doc),
                    ),
                    (None, Some(w)) => (w.config_type, WITHOUT_EFFECT_DOC.to_string()),
                    (None, None) => (ConfigType::Unknown, String::new()),
                };
                DescribedConfig::from_synonyms(
                    key,
                    vec![Synonym {
                        name: key.clone(),
                        value: Some(value.clone()),
                        source: ConfigSource::DynamicDefaultBroker,
                    }],
                    false,
                    config_type,
                    doc,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ops(list: &[(&str, ConfigOp)]) -> Alteration {
        Alteration::Incremental(
            list.iter()
                .map(|(k, op)| (k.to_string(), op.clone()))
                .collect(),
        )
    }

    fn code<T>(result: Result<T, TopicError>) -> ErrorCode {
        result.err().map_or(ErrorCode::None, |e| e.code())
    }

    #[test]
    fn resources_are_read_as_kafka_reads_them() {
        assert_eq!(
            ConfigTarget::parse(2, "t", 1),
            Ok(ConfigTarget::Topic("t".into()))
        );
        assert_eq!(
            ConfigTarget::parse(4, "", 1),
            Ok(ConfigTarget::Broker(DynamicLevel::ClusterDefault))
        );
        assert_eq!(
            ConfigTarget::parse(4, "1", 1),
            Ok(ConfigTarget::Broker(DynamicLevel::Node))
        );
        let other = ConfigTarget::parse(4, "2", 1).unwrap_err();
        assert_eq!(other.code(), ErrorCode::InvalidRequest);
        assert_eq!(
            other.message,
            "Unexpected broker id, expected 1, but received 2"
        );
        assert_eq!(
            ConfigTarget::parse(4, "one", 1).unwrap_err().message,
            "Node id must be an integer, but it is: one"
        );
        assert_eq!(
            code(ConfigTarget::parse(9, "x", 1)),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn incremental_entries_are_checked_before_anything_else() {
        let entry = |k: &str, op: i8, v: Option<&str>| (k.to_string(), op, v.map(String::from));
        assert_eq!(
            incremental_ops(&[entry("a", 0, Some("1")), entry("a", 1, None)])
                .unwrap_err()
                .message,
            "Error due to duplicate config keys"
        );
        assert_eq!(
            incremental_ops(&[
                entry("a", 0, None),
                entry("b", 2, None),
                entry("c", 1, None)
            ])
            .unwrap_err()
            .message,
            "Null value not supported for : a, b"
        );
        assert_eq!(
            incremental_ops(&[entry("a", 7, Some("x"))])
                .unwrap_err()
                .message,
            "Unknown operations type 7"
        );
        assert_eq!(
            incremental_ops(&[entry("a", 3, Some("x")), entry("b", 1, Some("ignored"))]).unwrap(),
            vec![
                ("a".to_string(), ConfigOp::Subtract("x".into())),
                ("b".to_string(), ConfigOp::Delete)
            ]
        );
        let replace = |k: &str, v: Option<&str>| (k.to_string(), v.map(String::from));
        assert_eq!(
            code(replacement(&[replace("a", None)])),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            replacement(&[replace("a", Some("1"))]).unwrap(),
            map(&[("a", "1")])
        );
    }

    #[test]
    fn append_and_subtract_work_on_lists_only_from_the_default() {
        let none = BTreeMap::new();
        let appended = altered_topic_overrides(
            &none,
            &ops(&[("cleanup.policy", ConfigOp::Append("compact".into()))]),
        )
        .unwrap();
        assert_eq!(appended, map(&[("cleanup.policy", "delete,compact")]));
        let subtracted = altered_topic_overrides(
            &appended,
            &ops(&[("cleanup.policy", ConfigOp::Subtract("delete".into()))]),
        )
        .unwrap();
        assert_eq!(subtracted, map(&[("cleanup.policy", "compact")]));
        let again = altered_topic_overrides(
            &subtracted,
            &ops(&[("cleanup.policy", ConfigOp::Append("compact".into()))]),
        )
        .unwrap();
        assert_eq!(
            again, subtracted,
            "appending an item already there changes nothing"
        );
        let refused = altered_topic_overrides(
            &none,
            &ops(&[("retention.ms", ConfigOp::Append("5".into()))]),
        )
        .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidConfig);
        assert_eq!(
            refused.message,
            "Can't APPEND to key retention.ms because its type is not LIST."
        );
        let deleted = altered_topic_overrides(
            &map(&[("retention.ms", "5"), ("segment.ms", "6")]),
            &ops(&[
                ("retention.ms", ConfigOp::Delete),
                ("segment.ms", ConfigOp::Set("7".into())),
            ]),
        )
        .unwrap();
        assert_eq!(deleted, map(&[("segment.ms", "7")]));
        let replaced = altered_topic_overrides(
            &map(&[("retention.ms", "5")]),
            &Alteration::Replace(map(&[("segment.ms", "9")])),
        )
        .unwrap();
        assert_eq!(replaced, map(&[("segment.ms", "9")]));
    }

    #[test]
    fn broker_alterations_take_dynamic_keys_only() {
        let none = BTreeMap::new();
        let refused = altered_broker_configs(
            &none,
            &ops(&[
                ("log.dirs", ConfigOp::Set("/x".into())),
                ("log.retention.ms", ConfigOp::Set("5".into())),
                ("num.partitions", ConfigOp::Set("2".into())),
            ]),
        )
        .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidRequest);
        assert_eq!(
            refused.message,
            "Cannot update these configs dynamically: Set(log.dirs, num.partitions)"
        );
        let appended = altered_broker_configs(
            &none,
            &ops(&[("log.cleanup.policy", ConfigOp::Append("compact".into()))]),
        )
        .unwrap();
        assert_eq!(appended, map(&[("log.cleanup.policy", "delete,compact")]));
        let refused = altered_broker_configs(
            &none,
            &ops(&[("log.retention.ms", ConfigOp::Subtract("5".into()))]),
        )
        .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidConfig);
        assert_eq!(
            refused.message,
            "Config value subtract is not allowed for config key: log.retention.ms"
        );
    }

    #[test]
    fn a_topic_config_reports_its_source_and_synonyms_in_kafkas_order() {
        let (broker, _) =
            BrokerConfig::from_entries(vec![("log.retention.hours".into(), "2".into())]).unwrap();
        let dynamic = DynamicBrokerConfigs {
            cluster_default: map(&[
                ("log.retention.ms", "60000"),
                ("log.segment.bytes", "2097152"),
            ]),
            node: map(&[("log.retention.ms", "30000")]),
            groups: BTreeMap::new(),
        };
        let view = ConfigView {
            broker: &broker,
            dynamic: &dynamic,
        };
        let described = view.describe_topic(&map(&[("segment.bytes", "3145728")]));
        assert_eq!(described.len(), TOPIC_CONFIGS.len());
        let get = |name: &str| described.iter().find(|c| c.name == name).unwrap();
        let retention = get("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("30000"));
        assert_eq!(retention.source, ConfigSource::DynamicBroker);
        let chain: Vec<(&str, Option<&str>, ConfigSource)> = retention
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_deref(), s.source))
            .collect();
        assert_eq!(
            chain,
            vec![
                (
                    "log.retention.ms",
                    Some("30000"),
                    ConfigSource::DynamicBroker
                ),
                (
                    "log.retention.ms",
                    Some("60000"),
                    ConfigSource::DynamicDefaultBroker
                ),
                (
                    "log.retention.ms",
                    Some("7200000"),
                    ConfigSource::StaticBroker
                ),
                ("log.retention.ms", Some("604800000"), ConfigSource::Default),
            ]
        );
        let segment = get("segment.bytes");
        assert_eq!(segment.source, ConfigSource::DynamicTopic);
        assert_eq!(segment.synonyms[0].name, "segment.bytes");
        assert_eq!(
            segment.synonyms[1].source,
            ConfigSource::DynamicDefaultBroker
        );
        let policy = get("cleanup.policy");
        assert_eq!(policy.source, ConfigSource::Default);
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_eq!(policy.config_type, ConfigType::List);
        assert!(!policy.documentation.is_empty());
        let remote = get("remote.storage.enable");
        assert_eq!(remote.source, ConfigSource::Default);
        assert!(remote.synonyms.is_empty());
    }

    #[test]
    fn the_broker_resources_list_static_read_only_and_dynamic_configs() {
        let (broker, _) =
            BrokerConfig::from_entries(vec![("num.partitions".into(), "3".into())]).unwrap();
        let dynamic = DynamicBrokerConfigs {
            cluster_default: map(&[("log.retention.ms", "60000"), ("num.io.threads", "4")]),
            node: map(&[("background.threads", "9")]),
            groups: [(
                "g".to_string(),
                map(&[("consumer.session.timeout.ms", "50000")]),
            )]
            .into(),
        };
        let view = ConfigView {
            broker: &broker,
            dynamic: &dynamic,
        };
        let node = view.describe_node();
        let get = |name: &str| node.iter().find(|c| c.name == name).unwrap();
        let partitions = get("num.partitions");
        assert_eq!(partitions.value.as_deref(), Some("3"));
        assert_eq!(partitions.source, ConfigSource::StaticBroker);
        assert!(partitions.read_only);
        assert_eq!(get("delete.topic.enable").source, ConfigSource::Default);
        let retention = get("log.retention.ms");
        assert_eq!(retention.source, ConfigSource::DynamicDefaultBroker);
        assert!(!retention.read_only);
        assert_eq!(
            node.iter().filter(|c| c.name == "compression.type").count(),
            1
        );
        let threads = get("background.threads");
        assert_eq!(threads.value.as_deref(), Some("9"));
        assert_eq!(threads.source, ConfigSource::DynamicBroker);
        assert_eq!(threads.config_type, ConfigType::Int);
        assert_eq!(
            get("num.io.threads").source,
            ConfigSource::DynamicDefaultBroker
        );
        let cluster = view.describe_cluster_default();
        assert_eq!(cluster.len(), 2);
        assert_eq!(cluster[0].name, "log.retention.ms");
        assert_eq!(cluster[0].source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(cluster[1].name, "num.io.threads");
        assert_eq!(cluster[1].config_type, ConfigType::Int);
        // Groups: the override, else the broker's value (static here: not given, so
        // Kafka's default).
        let group = view.describe_group("g");
        let names: Vec<&str> = group.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "consumer.heartbeat.interval.ms",
                "consumer.session.timeout.ms"
            ]
        );
        assert_eq!(group[1].value.as_deref(), Some("50000"));
        assert_eq!(group[1].source, ConfigSource::DynamicGroup);
        assert_eq!(
            group[1].synonyms[1].name,
            "group.consumer.session.timeout.ms"
        );
        assert_eq!(group[0].value.as_deref(), Some("5000"));
        assert_eq!(group[0].source, ConfigSource::Default);
        let unknown = view.describe_group("nobody");
        assert_eq!(unknown[1].value.as_deref(), Some("45000"));
        assert_eq!(unknown[1].source, ConfigSource::Default);
    }

    #[test]
    fn group_resources_are_read_and_altered_as_kafka_does() {
        assert_eq!(
            ConfigTarget::parse(32, "g", 1),
            Ok(ConfigTarget::Group("g".into()))
        );
        assert_eq!(
            code(ConfigTarget::parse(32, "", 1)),
            ErrorCode::InvalidRequest
        );
        let current = map(&[("consumer.session.timeout.ms", "50000")]);
        assert_eq!(
            altered_group_configs(
                &current,
                &ops(&[
                    ("consumer.session.timeout.ms", ConfigOp::Delete),
                    (
                        "consumer.heartbeat.interval.ms",
                        ConfigOp::Set("6000".into())
                    ),
                ])
            )
            .unwrap(),
            map(&[("consumer.heartbeat.interval.ms", "6000")])
        );
        let refused = altered_group_configs(
            &current,
            &ops(&[("consumer.session.timeout.ms", ConfigOp::Append("1".into()))]),
        )
        .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidConfig);
    }
}
