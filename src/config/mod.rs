//! Configuration with Kafka's property names and defaults, so a Kafka user's
//! `server.properties` carries over: the broker's settings (`broker`), topic-level
//! configs with their broker defaults (`topic`), and the file format (`properties`).
//!
//! Loaded once at start-up on the main thread, validated completely (an invalid value
//! stops start-up with a message naming the key; an unknown key is a warning), then
//! copied to every shard and never changed. What changes at run time — Kafka's dynamic
//! broker configs (`dynamic`) and topic overrides — lives in the metadata, which the
//! controller persists and every shard's image applies.

mod broker;
mod dynamic;
mod group;
pub mod placement;
mod properties;
mod topic;

pub use broker::{
    BROKER_KEYS, BrokerConfig, BrokerKey, ConfigNotes, Listener, broker_synonym_aliases,
};
pub use dynamic::{
    DynamicBrokerConfigs, DynamicConfigError, DynamicLevel, WITHOUT_EFFECT, WithoutEffect,
    check_names as check_dynamic_names, is_dynamic_broker_config, without_effect,
};
pub use group::{
    CONSUMER_HEARTBEAT_INTERVAL_MS, CONSUMER_SESSION_TIMEOUT_MS, GROUP_CONFIGS, GroupConfigBounds,
    GroupConfigDef, check_group_config_names, check_group_configs, is_group_config,
};
pub use placement::{Placement, PlacementError, PlacementRules};
pub use properties::{parse_override, parse_properties};
pub use topic::{
    CompressionType, ConfigType, Kind, TOPIC_CONFIGS, TimestampType, TopicConfig, TopicConfigDef,
    TopicDefaults, check_value, kafka_topic_defaults, topic_config_def, topic_config_of_broker_key,
};

use std::fmt;

/// An invalid configuration value; says which key, what value and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: &str, value: &str, reason: String) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "invalid configuration '{}': {}", self.value, self.reason)
        } else {
            write!(
                f,
                "invalid value '{}' for configuration key '{}': {}",
                self.value, self.key, self.reason
            )
        }
    }
}

impl std::error::Error for ConfigError {}
