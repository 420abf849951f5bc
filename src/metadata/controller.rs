//! The controller: the authoritative topic list and partition placement, on shard 0.
//!
//! Validation follows Kafka's CreateTopics, DeleteTopics, CreatePartitions,
//! IncrementalAlterConfigs and AlterConfigs rules and error codes; placement puts each
//! new partition on the shard that owns the fewest, so a topic's partitions spread over
//! every core. Every change becomes one `MetadataDelta`, which the caller persists and
//! sends to every shard. ACL and SCRAM credential changes are checked here too
//! (Kafka's `AclControlManager` and `ScramControlManager`) and travel the same way, as
//! the complete new set.

use super::configs::{
    Alteration, ConfigTarget, altered_broker_configs, altered_group_configs,
    altered_topic_overrides,
};
use super::names::{collision_key, is_internal_topic, topic_name_problem};
use super::{MetadataDelta, TopicPartition, TopicRecord};
use crate::config::{
    BrokerConfig, DynamicBrokerConfigs, DynamicLevel, GroupConfigBounds, PlacementError,
    PlacementRules, TopicConfig, TopicDefaults, check_group_configs,
};
use crate::protocol::ErrorCode;
use crate::protocol::wire::Uuid;
use crate::security::{AclBinding, AclFilter, ScramCredentials, scram};
use crate::storage::LogConfig;
use shards::{ShardId, ShardTable};
use std::collections::{BTreeMap, HashSet};

/// What one DeleteAcls filter matched (and so deleted), or why it was refused.
pub type AclDeletion = Result<Vec<AclBinding>, String>;

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

/// A CreatePartitions entry: the partition count `name` should have afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewPartitions {
    pub name: String,
    pub count: i32,
    /// The brokers of each added partition, if the client chose them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// A validated config change, ready to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigUpdate {
    /// The topic with its new overrides.
    Topic(TopicRecord),
    /// The complete new set of dynamic broker configs at one level.
    Broker(DynamicLevel, BTreeMap<String, String>),
    /// The complete new set of a group's config overrides.
    Group(String, BTreeMap<String, String>),
}

/// Everything one metadata change does.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub created: Vec<TopicRecord>,
    pub deleted: Vec<TopicRecord>,
    /// Existing topics with more partitions or other overrides.
    pub altered: Vec<TopicRecord>,
    /// The new dynamic broker configs, if they change.
    pub broker_configs: Option<DynamicBrokerConfigs>,
    /// The new ACL set, if it changes.
    pub acls: Option<Vec<AclBinding>>,
    /// The new SCRAM credentials, if they change.
    pub scram: Option<ScramCredentials>,
}

impl Change {
    /// A change of the ACL set alone.
    pub fn acls(acls: Vec<AclBinding>) -> Change {
        Change {
            acls: Some(acls),
            ..Change::default()
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
    pub fn new(kind: TopicErrorKind, message: impl Into<String>) -> TopicError {
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
    /// The static topic defaults (`server.properties`, `--set`, Kafka's).
    defaults: TopicDefaults,
    /// The dynamic broker configs, over the static defaults (and the group configs).
    dynamic: DynamicBrokerConfigs,
    /// The broker settings group configs are checked against.
    group_bounds: GroupConfigBounds,
    topics: BTreeMap<String, TopicRecord>,
    owners: ShardTable<TopicPartition>,
    /// The placement file's rules (none: spread by count).
    placement: PlacementRules,
    /// Every ACL binding, sorted, without duplicates.
    acls: Vec<AclBinding>,
    scram: ScramCredentials,
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
            dynamic: DynamicBrokerConfigs::default(),
            group_bounds: GroupConfigBounds::from_broker(config),
            topics: BTreeMap::new(),
            owners: ShardTable::new(),
            placement: checked_placement(config.placement.clone(), shards),
            acls: Vec::new(),
            scram: ScramCredentials::new(),
        }
    }

    /// The shard that owns `tp`, if the partition exists.
    pub fn owner(&self, tp: &TopicPartition) -> Option<ShardId> {
        self.owners.owner(tp)
    }

    /// Every partition with its owner.
    pub fn owners(&self) -> impl Iterator<Item = (&TopicPartition, ShardId)> {
        self.owners.iter()
    }

    /// The placement rules in effect.
    pub fn placement(&self) -> &PlacementRules {
        &self.placement
    }

    /// Takes new placement rules (a reload); they decide where partitions created from
    /// now on go. Refused, changing nothing, if they name a shard the broker lacks.
    pub fn set_placement(&mut self, rules: PlacementRules) -> Result<(), PlacementError> {
        rules.check_shards(self.shards)?;
        self.placement = rules;
        Ok(())
    }

    /// Where the rules want every partition, for those not where they should be: a
    /// partition whose shard the rules allow stays; the others go to the allowed shard
    /// carrying the fewest partitions once earlier moves are counted.
    pub fn misplaced(&self) -> Vec<(TopicPartition, ShardId, ShardId)> {
        let mut counts = self.owners.counts(self.shards);
        let mut owners: Vec<(&TopicPartition, ShardId)> = self.owners.iter().collect();
        owners.sort();
        let mut moves = Vec::new();
        for (tp, owner) in owners {
            let allowed = self.placement.allowed(tp, self.shards);
            if allowed.contains(&owner.0) {
                continue;
            }
            let to = self.placement.choose(tp, &counts);
            counts[owner.0] -= 1;
            counts[to] += 1;
            moves.push((tp.clone(), owner, ShardId(to)));
        }
        moves
    }

    /// Moves `tp` to shard `to` in the shard table: the delta every shard applies once
    /// the partition's old owner has released it.
    pub fn commit_move(&mut self, tp: &TopicPartition, to: ShardId) -> MetadataDelta {
        assert!(to.0 < self.shards, "moving {tp} to {to}, beyond the shards");
        assert!(self.owners.owner(tp).is_some(), "moving unknown {tp}");
        let owners = self.owners.commit(vec![(tp.clone(), Some(to))]);
        MetadataDelta {
            revision: owners.revision,
            created: Vec::new(),
            deleted: Vec::new(),
            altered: Vec::new(),
            broker_configs: None,
            acls: None,
            scram: None,
            owners,
        }
    }

    /// Every ACL binding.
    pub fn acls(&self) -> &[AclBinding] {
        &self.acls
    }

    /// Every SCRAM credential.
    pub fn scram_credentials(&self) -> &ScramCredentials {
        &self.scram
    }

    /// Checks CreateAcls bindings as Kafka does (an `Err` is INVALID_REQUEST with
    /// Kafka's message) and returns the ACL set with the valid ones added, if that adds
    /// any (creating an existing binding succeeds and changes nothing).
    pub fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> (Vec<Result<(), String>>, Option<Vec<AclBinding>>) {
        let mut acls = self.acls.clone();
        let results = bindings
            .iter()
            .map(|binding| {
                binding.validate()?;
                acls.push(binding.clone());
                Ok(())
            })
            .collect();
        acls.sort();
        acls.dedup();
        let changed = acls != self.acls;
        (results, changed.then_some(acls))
    }

    /// Applies DeleteAcls filters as Kafka does: each valid filter answers the bindings
    /// it matches (an `Err` is INVALID_REQUEST with Kafka's message); returns the ACL set
    /// without every matched binding, if any matched.
    pub fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> (Vec<AclDeletion>, Option<Vec<AclBinding>>) {
        let mut deleted = vec![false; self.acls.len()];
        let results = filters
            .iter()
            .map(|filter| {
                filter.validate()?;
                Ok(self
                    .acls
                    .iter()
                    .enumerate()
                    .filter(|(_, acl)| filter.matches(acl))
                    .map(|(i, acl)| {
                        deleted[i] = true;
                        acl.clone()
                    })
                    .collect())
            })
            .collect();
        let remaining: Vec<AclBinding> = self
            .acls
            .iter()
            .zip(&deleted)
            .filter(|(_, gone)| !**gone)
            .map(|(acl, _)| acl.clone())
            .collect();
        let changed = remaining.len() != self.acls.len();
        (results, changed.then_some(remaining))
    }

    /// Checks an AlterUserScramCredentials request (see `scram::alter`); returns one
    /// result per user and the new credentials, if they change.
    pub fn alter_scram(
        &self,
        deletions: &[scram::Deletion],
        upsertions: &[scram::Upsertion],
    ) -> (Vec<scram::UserResult>, Option<ScramCredentials>) {
        let (results, after) = scram::alter(&self.scram, deletions, upsertions);
        let changed = after != self.scram;
        (results, changed.then_some(after))
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

    pub fn dynamic_configs(&self) -> &DynamicBrokerConfigs {
        &self.dynamic
    }

    /// Checks a topic's overrides as every change of them is checked: each a topic
    /// config with a valid value, and the resolved configuration one the log can run
    /// with (INVALID_CONFIG naming the key otherwise).
    fn check_topic_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, TopicError> {
        check_resolved(&self.dynamic.topic_defaults(&self.defaults), overrides)
            .map_err(|message| TopicError::new(TopicErrorKind::InvalidConfig, message))
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
        self.check_topic_config(&configs)?;
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

    /// Checks each CreatePartitions entry (names are distinct: the caller answers a
    /// duplicated name itself) against the topics and the partitions the request adds
    /// before it. An `Ok` holds the topic's record with its new partition count.
    pub fn validate_create_partitions(
        &self,
        requests: &[NewPartitions],
    ) -> Vec<Result<TopicRecord, TopicError>> {
        let mut partitions: i64 = self.topics.values().map(|t| i64::from(t.partitions)).sum();
        let limit = self.partitions_per_shard * self.shards as i64;
        requests
            .iter()
            .map(|request| {
                let record = self.validate_growth(request)?;
                let existing = self.topics[&request.name].partitions;
                let added = i64::from(record.partitions) - i64::from(existing);
                if partitions + added > limit {
                    return Err(TopicError::new(
                        TopicErrorKind::InvalidPartitions,
                        format!(
                            "{added} more partitions would exceed this broker's {limit} \
                             (topic.partitions.per.shard {} on {} shards; {partitions} exist)",
                            self.partitions_per_shard, self.shards
                        ),
                    ));
                }
                partitions += added;
                Ok(record)
            })
            .collect()
    }

    /// Kafka's checks of one CreatePartitions entry, in its order and words.
    fn validate_growth(&self, request: &NewPartitions) -> Result<TopicRecord, TopicError> {
        let Some(topic) = self.topics.get(&request.name) else {
            return Err(TopicError::new(
                TopicErrorKind::Unknown,
                "This server does not host this topic-partition.",
            ));
        };
        if topic.internal {
            // Kafka lets it happen; corelog's coordinators find a group's (or a
            // transactional id's) partition by the partition count, so it is refused.
            return Err(TopicError::new(
                TopicErrorKind::Internal,
                format!(
                    "'{}' is an internal topic: its partition count places the \
                     coordinators' state and cannot change",
                    topic.name
                ),
            ));
        }
        if request.count == topic.partitions {
            return Err(TopicError::new(
                TopicErrorKind::InvalidPartitions,
                format!("Topic already has {} partition(s).", topic.partitions),
            ));
        }
        if request.count < topic.partitions {
            return Err(TopicError::new(
                TopicErrorKind::InvalidPartitions,
                format!(
                    "The topic {} currently has {} partition(s); {} would not be an increase.",
                    topic.name, topic.partitions, request.count
                ),
            ));
        }
        let additional = i64::from(request.count) - i64::from(topic.partitions);
        if let Some(assignments) = &request.assignments {
            if assignments.len() as i64 != additional {
                return Err(TopicError::new(
                    TopicErrorKind::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} \
                         assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            for replicas in assignments {
                self.check_manual_assignment(replicas)?;
            }
        }
        Ok(TopicRecord {
            partitions: request.count,
            ..topic.clone()
        })
    }

    /// Kafka's check of one manually assigned partition: brokers that exist, each once,
    /// as many as the topic's other partitions have (one, on a single node).
    fn check_manual_assignment(&self, replicas: &[i32]) -> Result<(), TopicError> {
        let refuse = |message: String| {
            Err(TopicError::new(
                TopicErrorKind::InvalidReplicaAssignment,
                message,
            ))
        };
        if replicas.is_empty() {
            return refuse(
                "The manual partition assignment includes an empty replica list.".into(),
            );
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        let mut previous = None;
        for broker in &sorted {
            if *broker != self.node_id {
                return refuse(format!(
                    "The manual partition assignment includes broker {broker}, but no such \
                     broker is registered."
                ));
            }
            if previous == Some(*broker) {
                return refuse(format!(
                    "The manual partition assignment includes the broker {broker} more than \
                     once."
                ));
            }
            previous = Some(*broker);
        }
        if sorted.len() != 1 {
            return refuse(format!(
                "The manual partition assignment includes a partition with {} replica(s), but \
                 this is not consistent with previous partitions, which have 1 replica(s).",
                sorted.len()
            ));
        }
        Ok(())
    }

    /// Checks each config change (resources are distinct: the caller refuses a resource
    /// named twice). An `Ok` holds what committing it sets.
    pub fn validate_alter_configs(
        &self,
        requests: &[(ConfigTarget, Alteration)],
    ) -> Vec<Result<ConfigUpdate, TopicError>> {
        requests
            .iter()
            .map(|(target, alteration)| match target {
                ConfigTarget::Topic(name) => {
                    if name.is_empty() {
                        return Err(TopicError::new(
                            TopicErrorKind::MalformedRequest,
                            "Default topic resources are not allowed.",
                        ));
                    }
                    if let Some(problem) = topic_name_problem(name) {
                        return Err(TopicError::new(TopicErrorKind::InvalidName, problem));
                    }
                    let topic = self.topics.get(name).ok_or_else(|| {
                        TopicError::new(
                            TopicErrorKind::Unknown,
                            format!("The topic '{name}' does not exist."),
                        )
                    })?;
                    let overrides = altered_topic_overrides(&topic.configs, alteration)?;
                    self.check_topic_config(&overrides)?;
                    Ok(ConfigUpdate::Topic(TopicRecord {
                        configs: overrides,
                        ..topic.clone()
                    }))
                }
                ConfigTarget::Broker(level) => {
                    let values = altered_broker_configs(self.dynamic.level(*level), alteration)?;
                    let malformed = |message: String| {
                        TopicError::new(TopicErrorKind::MalformedRequest, message)
                    };
                    DynamicBrokerConfigs::check(&values, *level)
                        .map_err(|e| malformed(e.to_string()))?;
                    // The new defaults must make a configuration the log runs with.
                    let mut dynamic = self.dynamic.clone();
                    dynamic.set_level(*level, values.clone());
                    check_resolved(&dynamic.topic_defaults(&self.defaults), &BTreeMap::new())
                        .map_err(malformed)?;
                    Ok(ConfigUpdate::Broker(*level, values))
                }
                ConfigTarget::Group(group_id) => {
                    let current = self.dynamic.group(group_id).cloned().unwrap_or_default();
                    let values = altered_group_configs(&current, alteration)?;
                    check_group_configs(&values, &self.group_bounds)
                        .map_err(|e| TopicError::new(TopicErrorKind::InvalidConfig, e))?;
                    Ok(ConfigUpdate::Group(group_id.clone(), values))
                }
            })
            .collect()
    }

    /// The change that commits these config updates.
    pub fn config_change(&self, updates: Vec<ConfigUpdate>) -> Change {
        let mut change = Change::default();
        for update in updates {
            match update {
                ConfigUpdate::Topic(record) => change.altered.push(record),
                ConfigUpdate::Broker(level, values) => {
                    let dynamic = change
                        .broker_configs
                        .get_or_insert_with(|| self.dynamic.clone());
                    dynamic.set_level(level, values);
                }
                ConfigUpdate::Group(group_id, values) => {
                    let dynamic = change
                        .broker_configs
                        .get_or_insert_with(|| self.dynamic.clone());
                    dynamic.set_group(&group_id, values);
                }
            }
        }
        change
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
        self.commit_change(Change {
            created,
            deleted,
            ..Change::default()
        })
    }

    /// Makes a validated change: new dynamic broker configs, deleted, created and
    /// altered topics (partitions added to an existing topic are placed like a new
    /// topic's); returns the delta every shard must apply.
    pub fn commit_change(&mut self, change: Change) -> MetadataDelta {
        let Change {
            created,
            deleted,
            altered,
            broker_configs,
            acls,
            scram,
        } = change;
        if let Some(dynamic) = &broker_configs {
            self.dynamic = dynamic.clone();
        }
        if let Some(acls) = &acls {
            self.acls = acls.clone();
        }
        if let Some(scram) = &scram {
            self.scram = scram.clone();
        }
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
                let tp = TopicPartition::new(record.name.clone(), partition);
                let shard = self.placement.choose(&tp, &counts);
                counts[shard] += 1;
                changes.push((tp, Some(ShardId(shard))));
            }
            self.topics.insert(record.name.clone(), record.clone());
        }
        for record in &altered {
            let existing = self
                .topics
                .get_mut(&record.name)
                .unwrap_or_else(|| panic!("altering unknown topic {}", record.name));
            assert_eq!(
                existing.id, record.id,
                "altering {} by another id",
                record.name
            );
            assert!(
                record.partitions >= existing.partitions,
                "{} cannot shrink from {} to {} partitions",
                record.name,
                existing.partitions,
                record.partitions
            );
            for partition in existing.partitions..record.partitions {
                let tp = TopicPartition::new(record.name.clone(), partition);
                let shard = self.placement.choose(&tp, &counts);
                counts[shard] += 1;
                changes.push((tp, Some(ShardId(shard))));
            }
            *existing = record.clone();
        }
        let owners = self.owners.commit(changes);
        MetadataDelta {
            revision: owners.revision,
            created,
            deleted,
            altered,
            broker_configs,
            acls,
            scram,
            owners,
        }
    }
}

/// The placement rules, if they fit the broker's shards; start-up stops otherwise.
fn checked_placement(rules: PlacementRules, shards: usize) -> PlacementRules {
    if let Err(e) = rules.check_shards(shards) {
        crate::stop::fatal(&e.to_string());
    }
    rules
}

/// Resolves a topic configuration and checks the log can run with it: the message
/// names the key whose value is refused.
fn check_resolved(
    defaults: &TopicDefaults,
    overrides: &BTreeMap<String, String>,
) -> Result<TopicConfig, String> {
    let config = TopicConfig::resolve(defaults, overrides).map_err(|e| e.to_string())?;
    LogConfig::from_topic_config(&config)
        .validate()
        .map_err(|e| {
            format!(
                "invalid value for configuration key '{}': {}",
                e.key, e.reason
            )
        })?;
    Ok(config)
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

    fn code<T>(result: &Result<T, TopicError>) -> ErrorCode {
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

    fn grow(name: &str, count: i32, assignments: Option<Vec<Vec<i32>>>) -> NewPartitions {
        NewPartitions {
            name: name.into(),
            count,
            assignments,
        }
    }

    fn message<T>(result: &Result<T, TopicError>) -> &str {
        result.as_ref().err().map_or("", |e| e.message.as_str())
    }

    #[test]
    fn create_partitions_answers_kafkas_errors_in_kafkas_words() {
        let mut c = controller(1);
        create(&mut c, &[new_topic("t", 3)]);
        let internal = NewTopic::internal("__consumer_offsets", 2, 1 << 20);
        create(&mut c, &[internal]);
        let results = c.validate_create_partitions(&[
            grow("missing", 4, None),
            grow("t", 3, None),
            grow("t", 2, None),
            grow("t", -22, None),
            grow("t", 6, Some(vec![vec![1]])),
            grow("t", 4, Some(vec![vec![]])),
            grow("t", 4, Some(vec![vec![7]])),
            grow("t", 4, Some(vec![vec![1, 1]])),
            grow("__consumer_offsets", 3, None),
        ]);
        let codes: Vec<ErrorCode> = results.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::UnknownTopicOrPartition,
                ErrorCode::InvalidPartitions,
                ErrorCode::InvalidPartitions,
                ErrorCode::InvalidPartitions,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidReplicaAssignment,
                ErrorCode::InvalidTopicException,
            ]
        );
        assert_eq!(message(&results[1]), "Topic already has 3 partition(s).");
        assert_eq!(
            message(&results[2]),
            "The topic t currently has 3 partition(s); 2 would not be an increase."
        );
        assert_eq!(
            message(&results[4]),
            "Attempted to add 3 additional partition(s), but only 1 assignment(s) were specified."
        );
        assert_eq!(
            message(&results[5]),
            "The manual partition assignment includes an empty replica list."
        );
        assert_eq!(
            message(&results[6]),
            "The manual partition assignment includes broker 7, but no such broker is registered."
        );
        assert_eq!(
            message(&results[7]),
            "The manual partition assignment includes the broker 1 more than once."
        );
        assert_eq!(
            c.topic("t").unwrap().partitions,
            3,
            "validation changes nothing"
        );
    }

    #[test]
    fn added_partitions_are_placed_on_the_least_loaded_shards_within_the_limit() {
        let mut config = BrokerConfig::defaults();
        config.topic_partitions_per_shard = 4;
        let mut c = Controller::new(&config, 2);
        create(&mut c, &[new_topic("a", 3), new_topic("b", 2)]);
        assert_eq!(c.owners.counts(2), vec![3, 2]);
        let results =
            c.validate_create_partitions(&[grow("b", 3, Some(vec![vec![1]])), grow("a", 6, None)]);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert_eq!(
            code(&results[1]),
            ErrorCode::InvalidPartitions,
            "9 of 8 allowed"
        );
        let grown = results[0].clone().unwrap();
        assert_eq!(grown.partitions, 3);
        let before = c.topic("b").unwrap().clone();
        let delta = c.commit_change(Change {
            altered: vec![grown],
            ..Change::default()
        });
        assert_eq!(
            delta.owners.changes.len(),
            1,
            "only the new partition moves"
        );
        assert_eq!(c.owners.counts(2), vec![3, 3]);
        assert_eq!(
            c.owners.owner(&TopicPartition::new("b", 2)),
            Some(ShardId(1))
        );
        let after = c.topic("b").unwrap();
        assert_eq!((after.id, after.partitions), (before.id, 3));
    }

    #[test]
    fn config_changes_are_validated_as_create_topics_validates_them() {
        use super::super::configs::ConfigOp;
        let mut c = controller(1);
        let mut t = new_topic("t", 1);
        t.configs = vec![("retention.ms".into(), Some("1000".into()))];
        let created = c.validate_create(&[t]);
        let delta = c.commit(
            created.into_iter().map(Result::unwrap).collect(),
            Vec::new(),
        );
        let mut image = MetadataImage::new(ShardId(0), "cluster".into(), 1, c.defaults.clone());
        image.apply(&delta).unwrap();
        let set = |k: &str, v: &str| {
            Alteration::Incremental(vec![(k.to_string(), ConfigOp::Set(v.to_string()))])
        };
        let topic = || ConfigTarget::Topic("t".into());
        let results = c.validate_alter_configs(&[
            (topic(), set("segment.bytes", "10")),
            (topic(), set("segmentbytes", "1048576")),
            (
                ConfigTarget::Topic("missing".into()),
                set("retention.ms", "1"),
            ),
            (topic(), set("max.message.bytes", "0")),
            (ConfigTarget::Topic("".into()), set("retention.ms", "1")),
            (
                ConfigTarget::Topic("bad name".into()),
                set("retention.ms", "1"),
            ),
            (topic(), set("max.message.bytes", "2000")),
            (
                ConfigTarget::Broker(DynamicLevel::ClusterDefault),
                set("log.retention.ms", "5000"),
            ),
            (
                ConfigTarget::Broker(DynamicLevel::Node),
                set("log.segment.bytes", "12"),
            ),
            (
                ConfigTarget::Broker(DynamicLevel::Node),
                set("log.dirs", "/elsewhere"),
            ),
        ]);
        let codes: Vec<ErrorCode> = results.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                ErrorCode::InvalidConfig,
                ErrorCode::InvalidConfig,
                ErrorCode::UnknownTopicOrPartition,
                ErrorCode::InvalidConfig,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidTopicException,
                ErrorCode::None,
                ErrorCode::None,
                ErrorCode::InvalidRequest,
                ErrorCode::InvalidRequest,
            ]
        );
        assert!(message(&results[0]).contains("segment.bytes"));
        assert!(message(&results[1]).contains("segmentbytes"));
        assert_eq!(message(&results[2]), "The topic 'missing' does not exist.");
        assert!(message(&results[3]).contains("max.message.bytes"));
        assert!(message(&results[8]).contains("log.segment.bytes"));

        let updates: Vec<ConfigUpdate> = results.into_iter().filter_map(Result::ok).collect();
        let change = c.config_change(updates);
        let delta = c.commit_change(change);
        let changes = image.apply(&delta).unwrap();
        let t = image.topic("t").unwrap();
        assert_eq!(t.config.max_message_bytes, 2000);
        assert_eq!(t.config.retention_ms, 1000, "the override keeps winning");
        assert_eq!(changes.reconfigured.len(), 1);
        assert!(changes.opened.is_empty());
        assert_eq!(
            image.dynamic_configs().cluster_default["log.retention.ms"],
            "5000"
        );
        assert_eq!(c.topic("t").unwrap().configs["max.message.bytes"], "2000");
    }

    #[test]
    fn a_dynamic_default_reconfigures_topics_without_an_override() {
        use super::super::configs::ConfigOp;
        let mut c = controller(1);
        let mut pinned = new_topic("pinned", 1);
        pinned.configs = vec![("retention.ms".into(), Some("1000".into()))];
        let created = c.validate_create(&[new_topic("free", 1), pinned]);
        let delta = c.commit(
            created.into_iter().map(Result::unwrap).collect(),
            Vec::new(),
        );
        let mut image = MetadataImage::new(ShardId(0), "cluster".into(), 1, c.defaults.clone());
        image.apply(&delta).unwrap();
        let results = c.validate_alter_configs(&[(
            ConfigTarget::Broker(DynamicLevel::ClusterDefault),
            Alteration::Incremental(vec![(
                "log.retention.ms".into(),
                ConfigOp::Set("5000".into()),
            )]),
        )]);
        let change = c.config_change(results.into_iter().map(Result::unwrap).collect());
        let delta = c.commit_change(change);
        let changes = image.apply(&delta).unwrap();
        let names: Vec<&str> = changes
            .reconfigured
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, vec!["free"]);
        assert_eq!(image.topic("free").unwrap().config.retention_ms, 5000);
        assert_eq!(image.topic("pinned").unwrap().config.retention_ms, 1000);
        assert_eq!(c.dynamic_configs().cluster_default.len(), 1);
    }

    #[test]
    fn group_configs_are_checked_against_the_brokers_bounds_and_committed() {
        use super::super::configs::ConfigOp;
        let mut c = controller(1);
        let group = || ConfigTarget::Group("g".into());
        let set = |key: &str, value: &str| {
            Alteration::Incremental(vec![(key.into(), ConfigOp::Set(value.into()))])
        };
        let results = c.validate_alter_configs(&[
            (group(), set("consumer.session.timeout.ms", "50000")),
            (
                ConfigTarget::Group("h".into()),
                set("consumer.session.timeout.ms", "70000"),
            ),
            (
                ConfigTarget::Group("i".into()),
                set("consumer.heartbeat.interval.ms", "1"),
            ),
            (
                ConfigTarget::Group("j".into()),
                set("session.timeout.ms", "1"),
            ),
        ]);
        assert_eq!(code(&results[0]), ErrorCode::None);
        assert_eq!(code(&results[1]), ErrorCode::InvalidConfig);
        assert_eq!(
            message(&results[1]),
            "consumer.session.timeout.ms must be less than or equal to \
             group.consumer.max.session.timeout.ms"
        );
        assert_eq!(code(&results[2]), ErrorCode::InvalidConfig);
        assert_eq!(code(&results[3]), ErrorCode::InvalidConfig);
        assert_eq!(
            message(&results[3]),
            "Unknown group config name: session.timeout.ms"
        );
        let updates: Vec<ConfigUpdate> = results.into_iter().filter_map(Result::ok).collect();
        let change = c.config_change(updates);
        c.commit_change(change);
        assert_eq!(
            c.dynamic_configs().group("g").unwrap()["consumer.session.timeout.ms"],
            "50000"
        );
        // Deleting the last override removes the group's entry.
        let results = c.validate_alter_configs(&[(
            group(),
            Alteration::Incremental(vec![(
                "consumer.session.timeout.ms".into(),
                ConfigOp::Delete,
            )]),
        )]);
        let change = c.config_change(results.into_iter().map(Result::unwrap).collect());
        c.commit_change(change);
        assert!(c.dynamic_configs().groups.is_empty());
    }
}
