//! The controller: the authoritative topic list and partition placement, on shard 0.
//!
//! Validation follows Kafka's CreateTopics and DeleteTopics rules and error codes;
//! placement puts each new partition on the shard that owns the fewest, so a topic's
//! partitions spread over every core. Every change becomes one `MetadataDelta`, which
//! the caller persists and sends to every shard.

use super::names::{collision_key, is_internal_topic, topic_name_problem};
use super::{MetadataDelta, TopicPartition, TopicRecord};
use crate::config::{BrokerConfig, TopicConfig, TopicDefaults};
use crate::protocol::ErrorCode;
use crate::protocol::wire::Uuid;
use shards::{ShardId, ShardTable};
use std::collections::{BTreeMap, HashSet};

/// A CreateTopics entry, in the controller's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTopic {
    pub name: String,
    /// −1 asks for the broker default (`num.partitions`).
    pub num_partitions: i32,
    /// −1 asks for the broker default (`default.replication.factor`).
    pub replication_factor: i16,
    /// Explicit replica assignment: partition index → broker ids.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

impl NewTopic {
    /// An internal topic of a coordinator (`__consumer_offsets`, `__transaction_state`) as
    /// Kafka creates it: compacted, the coordinator's codec kept, its own segment size.
    pub fn internal(name: &str, partitions: i32, segment_bytes: i32) -> NewTopic {
        NewTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".into(), Some("compact".into())),
                ("compression.type".into(), Some("producer".into())),
                ("segment.bytes".into(), Some(segment_bytes.to_string())),
            ],
        }
    }
}

/// Why one topic of a request failed, and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    pub kind: TopicErrorKind,
    pub message: String,
}

/// The controller's reasons to refuse a topic change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicErrorKind {
    /// The request names the topic twice, or combines exclusive fields.
    MalformedRequest,
    /// More partitions than `topic.partitions.per.shard` allows, or fewer than one.
    InvalidPartitions,
    /// Not a legal topic name.
    InvalidName,
    /// Differs from an existing topic only in '.' versus '_' (their metrics would clash).
    NameCollision,
    AlreadyExists,
    InvalidReplicationFactor,
    InvalidConfig,
    InvalidReplicaAssignment,
    /// `delete.topic.enable=false`.
    DeletionDisabled,
    /// Internal topics cannot be deleted.
    Internal,
    Unknown,
}

impl TopicErrorKind {
    /// Kafka's code for the refusal.
    pub fn code(self) -> ErrorCode {
        match self {
            TopicErrorKind::MalformedRequest => ErrorCode::InvalidRequest,
            TopicErrorKind::InvalidPartitions => ErrorCode::InvalidPartitions,
            TopicErrorKind::InvalidName
            | TopicErrorKind::NameCollision
            | TopicErrorKind::Internal => ErrorCode::InvalidTopicException,
            TopicErrorKind::AlreadyExists => ErrorCode::TopicAlreadyExists,
            TopicErrorKind::InvalidReplicationFactor => ErrorCode::InvalidReplicationFactor,
            TopicErrorKind::InvalidConfig => ErrorCode::InvalidConfig,
            TopicErrorKind::InvalidReplicaAssignment => ErrorCode::InvalidReplicaAssignment,
            TopicErrorKind::DeletionDisabled => ErrorCode::TopicDeletionDisabled,
            TopicErrorKind::Unknown => ErrorCode::UnknownTopicOrPartition,
        }
    }
}

impl TopicError {
    fn new(kind: TopicErrorKind, message: impl Into<String>) -> TopicError {
        TopicError {
            kind,
            message: message.into(),
        }
    }

    /// Kafka's code for the client.
    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }
}

pub struct Controller {
    node_id: i32,
    shards: usize,
    default_partitions: i32,
    default_replication_factor: i16,
    delete_topic_enable: bool,
    /// `topic.partitions.per.shard`: how many partitions each shard may carry.
    partitions_per_shard: i64,
    defaults: TopicDefaults,
    topics: BTreeMap<String, TopicRecord>,
    owners: ShardTable<TopicPartition>,
}

impl Controller {
    pub fn new(config: &BrokerConfig, shards: usize) -> Controller {
        Controller {
            node_id: config.node_id,
            shards,
            default_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            delete_topic_enable: config.delete_topic_enable,
            partitions_per_shard: i64::from(config.topic_partitions_per_shard),
            defaults: config.topic_defaults.clone(),
            topics: BTreeMap::new(),
            owners: ShardTable::new(),
        }
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicRecord> {
        self.topics.values()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicRecord> {
        self.topics.get(name)
    }

    pub fn revision(&self) -> u64 {
        self.owners.revision()
    }

    /// Checks each requested topic against the existing topics and the rest of the
    /// request. An `Ok` holds the record that creating the topic would add.
    pub fn validate_create(&self, requests: &[NewTopic]) -> Vec<Result<TopicRecord, TopicError>> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for request in requests {
            *seen.entry(request.name.as_str()).or_default() += 1;
        }
        let existing_keys: HashSet<String> =
            self.topics.keys().map(|name| collision_key(name)).collect();
        let mut partitions: i64 = self.topics.values().map(|t| i64::from(t.partitions)).sum();
        requests
            .iter()
            .map(|request| {
                if seen[request.name.as_str()] > 1 {
                    return Err(TopicError::new(
                        TopicErrorKind::MalformedRequest,
                        format!(
                            "topic '{}' appears more than once in the request",
                            request.name
                        ),
                    ));
                }
                let record = self.validate_one(request, &existing_keys)?;
                // Every partition holds files open and memory on its shard: the broker
                // takes at most `topic.partitions.per.shard` per shard (as Redpanda).
                let limit = self.partitions_per_shard * self.shards as i64;
                if partitions + i64::from(record.partitions) > limit {
                    return Err(TopicError::new(
                        TopicErrorKind::InvalidPartitions,
                        format!(
                            "{} more partitions would exceed this broker's {limit} \
                             (topic.partitions.per.shard {} on {} shards; {partitions} exist)",
                            record.partitions, self.partitions_per_shard, self.shards
                        ),
                    ));
                }
                partitions += i64::from(record.partitions);
                Ok(record)
            })
            .collect()
    }

    fn validate_one(
        &self,
        request: &NewTopic,
        existing_keys: &HashSet<String>,
    ) -> Result<TopicRecord, TopicError> {
        let name = &request.name;
        if let Some(problem) = topic_name_problem(name) {
            return Err(TopicError::new(TopicErrorKind::InvalidName, problem));
        }
        if self.topics.contains_key(name) {
            return Err(TopicError::new(
                TopicErrorKind::AlreadyExists,
                format!("topic '{name}' already exists"),
            ));
        }
        if existing_keys.contains(&collision_key(name)) {
            return Err(TopicError::new(
                TopicErrorKind::NameCollision,
                format!(
                    "topic '{name}' collides with an existing topic whose name differs only in '.' versus '_'"
                ),
            ));
        }
        let partitions = if request.assignments.is_empty() {
            let partitions = match request.num_partitions {
                -1 => self.default_partitions,
                n if n >= 1 => n,
                n => {
                    return Err(TopicError::new(
                        TopicErrorKind::InvalidPartitions,
                        format!(
                            "number of partitions must be at least 1 (or -1 for the default), got {n}"
                        ),
                    ));
                }
            };
            let replication = match request.replication_factor {
                -1 => self.default_replication_factor,
                n if n >= 1 => n,
                n => {
                    return Err(TopicError::new(
                        TopicErrorKind::InvalidReplicationFactor,
                        format!(
                            "replication factor must be at least 1 (or -1 for the default), got {n}"
                        ),
                    ));
                }
            };
            if replication > 1 {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidReplicationFactor,
                    format!(
                        "replication factor {replication} cannot be met: this cluster has 1 broker"
                    ),
                ));
            }
            partitions
        } else {
            self.validate_assignments(request)?
        };
        let mut configs = BTreeMap::new();
        for (key, value) in &request.configs {
            let Some(value) = value else {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidConfig,
                    format!("config '{key}' has a null value"),
                ));
            };
            configs.insert(key.clone(), value.clone());
        }
        TopicConfig::resolve(&self.defaults, &configs)
            .map_err(|e| TopicError::new(TopicErrorKind::InvalidConfig, e.to_string()))?;
        Ok(TopicRecord {
            name: name.clone(),
            id: Uuid::random(),
            partitions,
            configs,
            internal: is_internal_topic(name),
        })
    }

    /// An explicit assignment: partitions 0..n, each replicated on this broker only.
    fn validate_assignments(&self, request: &NewTopic) -> Result<i32, TopicError> {
        if request.num_partitions != -1 || request.replication_factor != -1 {
            return Err(TopicError::new(
                TopicErrorKind::MalformedRequest,
                "both a replica assignment and a number of partitions or replication factor were given",
            ));
        }
        let mut indexes: Vec<i32> = request.assignments.iter().map(|(p, _)| *p).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, p)| *p != i as i32) {
            return Err(TopicError::new(
                TopicErrorKind::InvalidReplicaAssignment,
                "assigned partitions must be numbered consecutively from 0",
            ));
        }
        for (partition, brokers) in &request.assignments {
            if brokers.is_empty() {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidReplicaAssignment,
                    format!("partition {partition} is assigned to no broker"),
                ));
            }
            let unique: HashSet<&i32> = brokers.iter().collect();
            if unique.len() != brokers.len() {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidReplicaAssignment,
                    format!("partition {partition} names a broker twice"),
                ));
            }
            if let Some(unknown) = brokers.iter().find(|b| **b != self.node_id) {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidReplicaAssignment,
                    format!(
                        "partition {partition} is assigned to broker {unknown}, which does not exist"
                    ),
                ));
            }
        }
        Ok(request.assignments.len() as i32)
    }

    /// Checks topics named for deletion; an `Ok` holds the record that would go.
    pub fn validate_delete(&self, names: &[String]) -> Vec<Result<TopicRecord, TopicError>> {
        names
            .iter()
            .map(|name| {
                if !self.delete_topic_enable {
                    return Err(TopicError::new(
                        TopicErrorKind::DeletionDisabled,
                        "topic deletion is disabled (delete.topic.enable=false)",
                    ));
                }
                if is_internal_topic(name) && self.topics.contains_key(name) {
                    return Err(TopicError::new(
                        TopicErrorKind::Internal,
                        format!("'{name}' is an internal topic and cannot be deleted"),
                    ));
                }
                self.topics.get(name).cloned().ok_or_else(|| {
                    TopicError::new(
                        TopicErrorKind::Unknown,
                        format!("topic '{name}' does not exist"),
                    )
                })
            })
            .collect()
    }

    /// The topic with this id, for deletions by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicRecord> {
        self.topics.values().find(|t| t.id == *id)
    }

    /// Adds and removes topics, places the new partitions, and returns the delta every
    /// shard must apply.
    pub fn commit(
        &mut self,
        created: Vec<TopicRecord>,
        deleted: Vec<TopicRecord>,
    ) -> MetadataDelta {
        let mut changes = Vec::new();
        for record in &deleted {
            let removed = self.topics.remove(&record.name);
            assert_eq!(
                removed.as_ref().map(|t| t.id),
                Some(record.id),
                "deleting an unknown topic"
            );
            for partition in 0..record.partitions {
                changes.push((TopicPartition::new(record.name.clone(), partition), None));
            }
        }
        let mut counts = self.owners.counts(self.shards);
        for (tp, owner) in &changes {
            if owner.is_none() {
                let shard = self
                    .owners
                    .owner(tp)
                    .expect("a deleted partition had an owner");
                counts[shard.0] -= 1;
            }
        }
        for record in &created {
            assert!(
                !self.topics.contains_key(&record.name),
                "creating topic {} twice",
                record.name
            );
            for partition in 0..record.partitions {
                let (least, _) = counts
                    .iter()
                    .enumerate()
                    .min_by_key(|(shard, count)| (**count, *shard))
                    .expect("at least one shard");
                counts[least] += 1;
                changes.push((
                    TopicPartition::new(record.name.clone(), partition),
                    Some(ShardId(least)),
                ));
            }
            self.topics.insert(record.name.clone(), record.clone());
        }
        let owners = self.owners.commit(changes);
        MetadataDelta {
            revision: owners.revision,
            created,
            deleted,
            owners,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataImage;

    fn controller(shards: usize) -> Controller {
        Controller::new(&BrokerConfig::defaults(), shards)
    }

    fn new_topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            ..NewTopic::default()
        }
    }

    fn create(c: &mut Controller, topics: &[NewTopic]) -> Vec<Result<TopicRecord, TopicError>> {
        let results = c.validate_create(topics);
        let ok: Vec<TopicRecord> = results.iter().filter_map(|r| r.clone().ok()).collect();
        c.commit(ok, Vec::new());
        results
    }

    fn code(result: &Result<TopicRecord, TopicError>) -> ErrorCode {
        result
            .as_ref()
            .err()
            .map(|e| e.code())
            .unwrap_or(ErrorCode::None)
    }

    #[test]
    fn partitions_spread_evenly_over_shards() {
        let mut c = controller(2);
        create(&mut c, &[new_topic("a", 6), new_topic("b", 3)]);
        assert_eq!(c.owners.counts(2), vec![5, 4]);
        let owners: Vec<usize> = (0..6)
            .map(|p| c.owners.owner(&TopicPartition::new("a", p)).unwrap().0)
            .collect();
        assert_eq!(owners, vec![0, 1, 0, 1, 0, 1]);
    }

    #[test]
    fn kafka_errors_for_bad_requests() {
        let mut c = controller(1);
        create(&mut c, &[new_topic("taken", 1), new_topic("a.b", 1)]);
        let mut assigned = new_topic("assigned", -1);
        assigned.assignments = vec![(0, vec![1]), (2, vec![1])];
        let mut foreign = new_topic("foreign", -1);
        foreign.assignments = vec![(0, vec![7])];
        let mut bad_config = new_topic("badconfig", 1);
        bad_config.configs = vec![("retention.ms".into(), Some("soon".into()))];
        let mut replicated = new_topic("replicated", 1);
        replicated.replication_factor = 3;
        let results = c.validate_create(&[
            new_topic("taken", 1),
            new_topic("a_b", 1),
            new_topic("bad name", 1),
            new_topic("zero", 0),
            replicated,
            assigned,
            foreign,
            bad_config,
            new_topic("dup", 1),
            new_topic("dup", 1),
            new_topic("fine", -1),
        ]);
        let codes: Vec<ErrorCode> = results.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::TopicAlreadyExists,
                ErrorCode::InvalidTopicException,
                ErrorCode::InvalidTopicException,
                ErrorCode::InvalidPartitions,
                ErrorCode::InvalidReplicationFactor,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidConfig,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidRequest,
                ErrorCode::None,
            ]
        );
        assert_eq!(
            results[10].as_ref().unwrap().partitions,
            1,
            "num.partitions default"
        );
    }

    #[test]
    fn every_shard_image_follows_the_controller() {
        let mut c = controller(2);
        let mut images: Vec<MetadataImage> = (0..2)
            .map(|s| MetadataImage::new(ShardId(s), "cluster".into(), 1, c.defaults.clone()))
            .collect();
        let created = c.validate_create(&[new_topic("t", 3)]);
        let delta = c.commit(vec![created[0].clone().unwrap()], Vec::new());
        let opened: Vec<usize> = images
            .iter_mut()
            .map(|image| image.apply(&delta).unwrap().opened.len())
            .collect();
        assert_eq!(opened, vec![2, 1]);
        let doomed = c.validate_delete(&["t".to_string(), "missing".to_string()]);
        assert_eq!(code(&doomed[1]), ErrorCode::UnknownTopicOrPartition);
        let delta = c.commit(Vec::new(), vec![doomed[0].clone().unwrap()]);
        for (shard, image) in images.iter_mut().enumerate() {
            let changes = image.apply(&delta).unwrap();
            assert_eq!(changes.deleted.len(), [2, 1][shard]);
            assert!(image.topic("t").is_none());
            assert_eq!(image.revision(), 2);
        }
        assert_eq!(c.owners.counts(2), vec![0, 0]);
    }
}
