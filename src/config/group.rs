//! Kafka's group configs (`GroupConfig`, KIP-848): per-group overrides of the KIP-848
//! coordinator's `group.consumer.session.timeout.ms` and
//! `group.consumer.heartbeat.interval.ms`, set by IncrementalAlterConfigs or
//! AlterConfigs on a GROUP resource and checked, as Kafka checks them, against the
//! broker's `group.consumer.min/max.*` bounds. Kafka's share-group configs
//! (`share.*`) are not served: corelog has no share groups.

use super::ConfigError;
use super::broker::BrokerConfig;
use super::topic::{Kind, check_value};
use std::collections::BTreeMap;

pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// A group config and the broker config that is its default.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfigDef {
    pub name: &'static str,
    pub broker_key: &'static str,
    pub doc: &'static str,
}

/// Every group config corelog serves, sorted by name.
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: CONSUMER_HEARTBEAT_INTERVAL_MS,
        broker_key: "group.consumer.heartbeat.interval.ms",
        doc: "The heartbeat interval given to the members of this consumer group.",
    },
    GroupConfigDef {
        name: CONSUMER_SESSION_TIMEOUT_MS,
        broker_key: "group.consumer.session.timeout.ms",
        doc: "The timeout to detect client failures of this consumer group's members.",
    },
];

/// The broker settings group configs default to and are bounded by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigBounds {
    pub session_timeout_ms: i32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
}

impl GroupConfigBounds {
    pub fn from_broker(config: &BrokerConfig) -> GroupConfigBounds {
        GroupConfigBounds {
            session_timeout_ms: config.group_consumer_session_timeout_ms,
            min_session_timeout_ms: config.group_consumer_min_session_timeout_ms,
            max_session_timeout_ms: config.group_consumer_max_session_timeout_ms,
            heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
            min_heartbeat_interval_ms: config.group_consumer_min_heartbeat_interval_ms,
            max_heartbeat_interval_ms: config.group_consumer_max_heartbeat_interval_ms,
        }
    }

    /// The session timeout and heartbeat interval of a group with these overrides.
    pub fn effective(&self, overrides: Option<&BTreeMap<String, String>>) -> (i32, i32) {
        let get = |key: &str, default: i32| {
            overrides
                .and_then(|o| o.get(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        (
            get(CONSUMER_SESSION_TIMEOUT_MS, self.session_timeout_ms),
            get(CONSUMER_HEARTBEAT_INTERVAL_MS, self.heartbeat_interval_ms),
        )
    }
}

/// Whether `name` is a group config corelog serves.
pub fn is_group_config(name: &str) -> bool {
    GROUP_CONFIGS.iter().any(|d| d.name == name)
}

/// Checks names and types: every key a group config, every value an int of at least 1.
/// The message is Kafka's for an unknown name.
pub fn check_group_config_names(values: &BTreeMap<String, String>) -> Result<(), String> {
    if let Some(unknown) = values.keys().find(|k| !is_group_config(k)) {
        return Err(format!("Unknown group config name: {unknown}"));
    }
    for (key, value) in values {
        check_value(key, Kind::Int { min: 1 }, value).map_err(|e: ConfigError| e.to_string())?;
    }
    Ok(())
}

/// Checks the complete set of overrides a group would have, as Kafka does: names and
/// types, then the values in effect (overrides over the broker's) against the broker's
/// bounds, then the session timeout against the heartbeat interval; Kafka's messages.
pub fn check_group_configs(
    values: &BTreeMap<String, String>,
    bounds: &GroupConfigBounds,
) -> Result<(), String> {
    check_group_config_names(values)?;
    let (session, heartbeat) = bounds.effective(Some(values));
    let checks = [
        (
            heartbeat >= bounds.min_heartbeat_interval_ms,
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            "must be greater than or equal to group.consumer.min.heartbeat.interval.ms",
        ),
        (
            heartbeat <= bounds.max_heartbeat_interval_ms,
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            "must be less than or equal to group.consumer.max.heartbeat.interval.ms",
        ),
        (
            session >= bounds.min_session_timeout_ms,
            CONSUMER_SESSION_TIMEOUT_MS,
            "must be greater than or equal to group.consumer.min.session.timeout.ms",
        ),
        (
            session <= bounds.max_session_timeout_ms,
            CONSUMER_SESSION_TIMEOUT_MS,
            "must be less than or equal to group.consumer.max.session.timeout.ms",
        ),
        (
            session > heartbeat,
            CONSUMER_SESSION_TIMEOUT_MS,
            "must be greater than consumer.heartbeat.interval.ms",
        ),
    ];
    match checks.into_iter().find(|(ok, ..)| !ok) {
        Some((_, key, why)) => Err(format!("{key} {why}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn group_configs_are_checked_against_the_brokers_bounds_in_kafkas_words() {
        let bounds = GroupConfigBounds::from_broker(&BrokerConfig::defaults());
        assert_eq!(bounds.effective(None), (45_000, 5_000));
        assert!(
            check_group_configs(&map(&[("consumer.session.timeout.ms", "50000")]), &bounds).is_ok()
        );
        assert!(
            check_group_configs(&map(&[("consumer.heartbeat.interval.ms", "6000")]), &bounds)
                .is_ok()
        );
        let refused =
            |pairs: &[(&str, &str)]| check_group_configs(&map(pairs), &bounds).unwrap_err();
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "70000")]),
            "consumer.session.timeout.ms must be less than or equal to \
             group.consumer.max.session.timeout.ms"
        );
        assert_eq!(
            refused(&[("consumer.session.timeout.ms", "1000")]),
            "consumer.session.timeout.ms must be greater than or equal to \
             group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            refused(&[("consumer.heartbeat.interval.ms", "16000")]),
            "consumer.heartbeat.interval.ms must be less than or equal to \
             group.consumer.max.heartbeat.interval.ms"
        );
        assert_eq!(
            refused(&[("consumer.heartbeat.interval.ms", "100")]),
            "consumer.heartbeat.interval.ms must be greater than or equal to \
             group.consumer.min.heartbeat.interval.ms"
        );
        assert_eq!(
            refused(&[("share.session.timeout.ms", "50000")]),
            "Unknown group config name: share.session.timeout.ms"
        );
        assert!(refused(&[("consumer.session.timeout.ms", "x")]).contains("32-bit integer"));
        let wide = GroupConfigBounds {
            max_heartbeat_interval_ms: 60_000,
            ..bounds
        };
        assert_eq!(
            check_group_configs(&map(&[("consumer.heartbeat.interval.ms", "50000")]), &wide)
                .unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
        assert_eq!(
            bounds.effective(Some(&map(&[("consumer.heartbeat.interval.ms", "6000")]))),
            (45_000, 6_000)
        );
    }
}
