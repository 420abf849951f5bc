//! Cluster metadata: which topics exist (name, topic id, partition count, config
//! overrides), which shard owns each partition, and the security metadata (ACLs and
//! SCRAM credentials, see `security`).
//!
//! - `controller` runs on shard 0 only. It validates CreateTopics, DeleteTopics,
//!   CreatePartitions and config changes as Kafka does, places partitions on shards,
//!   persists the topic list, the dynamic broker configs, the ACLs and the SCRAM
//!   credentials (`store`) and produces a
//!   `MetadataDelta` for every change.
//! - `configs`: config resources, alterations and what DescribeConfigs reports.
//! - `MetadataImage` is the copy every shard keeps. Shard 0 sends each delta to every
//!   shard over the mesh, and each shard applies them in revision order; reads (Metadata
//!   requests, routing a produce) are local lookups with no cross-shard traffic.
//!
//! Invariants: revisions increase by one per delta on every shard; a topic name and a
//! topic id map to each other one-to-one; every partition of every topic has exactly
//! one owning shard.

pub mod configs;
pub mod controller;
pub mod names;
pub mod producer_ids;
pub mod store;

use crate::config::{ConfigError, DynamicBrokerConfigs, TopicConfig, TopicDefaults};
pub use crate::model::TopicPartition;
use crate::protocol::wire::Uuid;
use crate::security::{AclBinding, ScramCredentials};
use shards::{ShardId, ShardTable, TableUpdate};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// A topic as the controller records it; what travels in deltas and is persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level config overrides, as given at creation or by the last config change.
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
}

/// A topic as a shard sees it: the record plus its resolved configuration.
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub config: TopicConfig,
    pub internal: bool,
}

/// One change to the metadata, sent from the controller to every shard.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    pub revision: u64,
    pub created: Vec<TopicRecord>,
    pub deleted: Vec<TopicRecord>,
    /// Existing topics' new records: more partitions (CreatePartitions) or other config
    /// overrides (AlterConfigs).
    pub altered: Vec<TopicRecord>,
    /// The dynamic broker configs, when they changed (or at start-up).
    pub broker_configs: Option<DynamicBrokerConfigs>,
    /// Every ACL binding, when they changed (or at start-up).
    pub acls: Option<Vec<AclBinding>>,
    /// Every SCRAM credential, when they changed (or at start-up).
    pub scram: Option<ScramCredentials>,
    /// Ownership changes at the same revision.
    pub owners: TableUpdate<TopicPartition>,
}

/// What applying a delta changed for the shard that applied it.
#[derive(Debug, Default)]
pub struct LocalChanges {
    /// Partitions this shard now owns and must open.
    pub opened: Vec<(TopicPartition, Rc<Topic>)>,
    /// Partitions this shard no longer owns because their topic was deleted.
    pub deleted: Vec<TopicPartition>,
    /// Partitions moved from this shard to another (released before the move).
    pub moved_away: Vec<TopicPartition>,
    /// Existing topics whose `Topic` changed (more partitions, another effective
    /// configuration): the partitions of them this shard owns take the new one.
    pub reconfigured: Vec<Rc<Topic>>,
}

/// Every shard's copy of the cluster metadata.
#[derive(Debug)]
pub struct MetadataImage {
    shard: ShardId,
    cluster_id: String,
    node_id: i32,
    /// The static topic defaults (`server.properties`, `--set`, Kafka's).
    static_defaults: TopicDefaults,
    dynamic: DynamicBrokerConfigs,
    /// The topic defaults in effect: the dynamic broker configs over the static ones.
    defaults: TopicDefaults,
    revision: u64,
    topics: BTreeMap<String, Rc<Topic>>,
    ids: HashMap<Uuid, String>,
    owners: ShardTable<TopicPartition>,
    /// The ACLs the authorizer consults on this shard.
    acls: Vec<AclBinding>,
    scram: ScramCredentials,
}

impl MetadataImage {
    pub fn new(shard: ShardId, cluster_id: String, node_id: i32, defaults: TopicDefaults) -> Self {
        MetadataImage {
            shard,
            cluster_id,
            node_id,
            static_defaults: defaults.clone(),
            dynamic: DynamicBrokerConfigs::default(),
            defaults,
            revision: 0,
            topics: BTreeMap::new(),
            ids: HashMap::new(),
            owners: ShardTable::new(),
            acls: Vec::new(),
            scram: ScramCredentials::new(),
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

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn set_cluster_id(&mut self, cluster_id: String) {
        self.cluster_id = cluster_id;
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The dynamic broker configs (Kafka's KIP-226) in effect.
    pub fn dynamic_configs(&self) -> &DynamicBrokerConfigs {
        &self.dynamic
    }

    pub fn topic(&self, name: &str) -> Option<&Rc<Topic>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Rc<Topic>> {
        self.ids.get(id).and_then(|name| self.topics.get(name))
    }

    pub fn topics(&self) -> impl Iterator<Item = &Rc<Topic>> {
        self.topics.values()
    }

    pub fn owner(&self, tp: &TopicPartition) -> Option<ShardId> {
        self.owners.owner(tp)
    }

    /// Partitions owned by each shard.
    pub fn partitions_per_shard(&self, shards: usize) -> Vec<usize> {
        self.owners.counts(shards)
    }

    pub fn owners(&self) -> impl Iterator<Item = (&TopicPartition, ShardId)> {
        self.owners.iter()
    }

    /// Applies the next delta and says what this shard must open, drop or reconfigure.
    pub fn apply(&mut self, delta: &MetadataDelta) -> Result<LocalChanges, ConfigError> {
        assert_eq!(
            delta.revision,
            self.revision + 1,
            "metadata delta out of order on {}: at revision {}, got {}",
            self.shard,
            self.revision,
            delta.revision
        );
        assert_eq!(
            delta.owners.revision, delta.revision,
            "a delta's ownership update carries its revision"
        );
        let mut changes = LocalChanges::default();
        // Topics whose `Topic` is replaced, reported once each at the end.
        let mut reconfigured: Vec<String> = Vec::new();
        if let Some(acls) = &delta.acls {
            self.acls = acls.clone();
        }
        if let Some(scram) = &delta.scram {
            self.scram = scram.clone();
        }
        if let Some(dynamic) = &delta.broker_configs {
            self.dynamic = dynamic.clone();
            self.defaults = dynamic.topic_defaults(&self.static_defaults);
            for topic in self.topics.values_mut() {
                let config = TopicConfig::resolve(&self.defaults, &topic.config.overrides)?;
                if config != topic.config {
                    *topic = Rc::new(Topic {
                        config,
                        ..(**topic).clone()
                    });
                    reconfigured.push(topic.name.clone());
                }
            }
        }
        for record in &delta.deleted {
            let removed = self.topics.remove(&record.name);
            assert!(
                removed.as_ref().is_some_and(|t| t.id == record.id),
                "deleting topic {} ({}) that this shard does not have",
                record.name,
                record.id
            );
            self.ids.remove(&record.id);
            for partition in 0..record.partitions {
                let tp = TopicPartition::new(record.name.clone(), partition);
                if self.owners.owner(&tp) == Some(self.shard) {
                    changes.deleted.push(tp);
                }
            }
        }
        // Ownership changes of partitions that existed before this delta: moves.
        for (tp, owner) in &delta.owners.changes {
            let (Some(to), Some(from)) = (owner, self.owners.owner(tp)) else {
                continue;
            };
            if *to == from {
                continue;
            }
            if from == self.shard {
                changes.moved_away.push(tp.clone());
            } else if *to == self.shard {
                let topic = self
                    .topics
                    .get(&tp.topic)
                    .unwrap_or_else(|| panic!("{tp} moved to {to} without its topic"))
                    .clone();
                changes.opened.push((tp.clone(), topic));
            }
        }
        self.owners.apply(&delta.owners);
        for record in &delta.created {
            let config = TopicConfig::resolve(&self.defaults, &record.configs)?;
            let topic = Rc::new(Topic {
                name: record.name.clone(),
                id: record.id,
                partitions: record.partitions,
                config,
                internal: record.internal,
            });
            let previous = self.ids.insert(record.id, record.name.clone());
            assert!(previous.is_none(), "topic id {} used twice", record.id);
            let previous = self.topics.insert(record.name.clone(), topic.clone());
            assert!(previous.is_none(), "topic {} created twice", record.name);
            for partition in 0..record.partitions {
                let tp = TopicPartition::new(record.name.clone(), partition);
                let owner = self.owners.owner(&tp);
                assert!(
                    owner.is_some(),
                    "partition {tp} was created without an owner"
                );
                if owner == Some(self.shard) {
                    changes.opened.push((tp, topic.clone()));
                }
            }
        }
        for record in &delta.altered {
            let previous = self
                .topics
                .get(&record.name)
                .filter(|t| t.id == record.id)
                .unwrap_or_else(|| {
                    panic!(
                        "altering topic {} ({}) that this shard does not have",
                        record.name, record.id
                    )
                })
                .clone();
            let topic = Rc::new(Topic {
                name: record.name.clone(),
                id: record.id,
                partitions: record.partitions,
                config: TopicConfig::resolve(&self.defaults, &record.configs)?,
                internal: record.internal,
            });
            self.topics.insert(record.name.clone(), topic.clone());
            for partition in previous.partitions..record.partitions {
                let tp = TopicPartition::new(record.name.clone(), partition);
                let owner = self.owners.owner(&tp);
                assert!(owner.is_some(), "partition {tp} was added without an owner");
                if owner == Some(self.shard) {
                    changes.opened.push((tp, topic.clone()));
                }
            }
            reconfigured.push(record.name.clone());
        }
        reconfigured.sort();
        reconfigured.dedup();
        changes.reconfigured = reconfigured
            .iter()
            .filter_map(|name| self.topics.get(name).cloned())
            .collect();
        self.revision = delta.revision;
        Ok(changes)
    }
}
