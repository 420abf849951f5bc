//! Metadata changes: validated and persisted by the controller on shard 0, one change
//! at a time, then applied by every shard (which opens the partitions it now owns,
//! gives the partitions of altered topics their new configuration and deletes those of
//! deleted topics) before the change is answered.

use super::Router;
use crate::metadata::configs::{Alteration, ConfigTarget};
use crate::metadata::controller::{
    Change, ConfigUpdate, Controller, NewPartitions, NewTopic, TopicError,
};
use crate::metadata::producer_ids::ProducerIdBlock;
use crate::metadata::{MetadataDelta, TopicRecord, store};
use crate::model::ProducerId;
use crate::security::{AclBinding, AclFilter, scram};
use shards::ShardId;

impl Router {
    /// The one path of a metadata change: on the controller (shard 0), under its
    /// one-change lock, `decide` validates against the current metadata and returns the
    /// answers and the change to make, if any; that change is committed, persisted and
    /// applied by every shard before the answers return.
    async fn controller_change<R, F>(&self, decide: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(&Controller) -> (R, Option<Change>) + Send + 'static,
    {
        self.call(ShardId(0), move |router, _| async move {
            let state = router.state().controller();
            let _one_change = state.one_change().await;
            let (answers, change) = decide(&state.controller.borrow());
            if let Some(change) = change {
                let delta = state.controller.borrow_mut().commit_change(change);
                router.persist_and_apply(delta).await;
            }
            answers
        })
        .await
    }

    /// Asks the controller to create topics; one result per topic, in order. Created
    /// topics' partitions are open on their shards when this returns.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Vec<Result<TopicRecord, TopicError>> {
        self.controller_change(move |controller| {
            let results = controller.validate_create(&topics);
            let created: Vec<TopicRecord> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            let change = (!validate_only && !created.is_empty()).then(|| Change {
                created,
                ..Change::default()
            });
            (results, change)
        })
        .await
    }

    /// Asks the controller to delete topics (by name); one result per name, in order.
    /// Deleted partitions are closed and their directories gone when this returns.
    pub async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<TopicRecord, TopicError>> {
        self.controller_change(move |controller| {
            let results = controller.validate_delete(&names);
            let mut deleted: Vec<TopicRecord> = Vec::new();
            for record in results.iter().filter_map(|r| r.as_ref().ok()) {
                if !deleted.iter().any(|d| d.name == record.name) {
                    deleted.push(record.clone());
                }
            }
            let change = (!deleted.is_empty()).then(|| Change {
                deleted,
                ..Change::default()
            });
            (results, change)
        })
        .await
    }

    /// Asks the controller to add partitions to topics (names distinct); one result per
    /// entry, in order. The new partitions are open on their shards when this returns.
    pub async fn create_partitions(
        &self,
        requests: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<TopicRecord, TopicError>> {
        self.controller_change(move |controller| {
            let results = controller.validate_create_partitions(&requests);
            let grown: Vec<TopicRecord> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            let change = (!validate_only && !grown.is_empty()).then(|| Change {
                altered: grown,
                ..Change::default()
            });
            (results, change)
        })
        .await
    }

    /// Asks the controller to change configs (resources distinct); one result per
    /// entry, in order. Every shard runs with the new configuration when this returns.
    pub async fn alter_configs(
        &self,
        requests: Vec<(ConfigTarget, Alteration)>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        self.controller_change(move |controller| {
            let results = controller.validate_alter_configs(&requests);
            let updates: Vec<ConfigUpdate> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().cloned())
                .collect();
            let answers = results.into_iter().map(|r| r.map(|_| ())).collect();
            let change =
                (!validate_only && !updates.is_empty()).then(|| controller.config_change(updates));
            (answers, change)
        })
        .await
    }

    /// Asks the controller to create ACL bindings; one result per binding, in order (an
    /// `Err` is INVALID_REQUEST with Kafka's message). Every shard authorizes with the
    /// new bindings when this returns.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Vec<Result<(), String>> {
        self.controller_change(move |controller| {
            let (results, acls) = controller.create_acls(&bindings);
            (results, acls.map(Change::acls))
        })
        .await
    }

    /// Asks the controller to delete the ACL bindings the filters match; one result per
    /// filter, in order, with the bindings it matched. Every shard authorizes without
    /// them when this returns.
    pub async fn delete_acls(
        &self,
        filters: Vec<AclFilter>,
    ) -> Vec<Result<Vec<AclBinding>, String>> {
        self.controller_change(move |controller| {
            let (results, acls) = controller.delete_acls(&filters);
            (results, acls.map(Change::acls))
        })
        .await
    }

    /// Asks the controller to delete and upsert SCRAM credentials; one result per user.
    /// Every shard has the new credentials when this returns.
    pub async fn alter_scram_credentials(
        &self,
        deletions: Vec<scram::Deletion>,
        upsertions: Vec<scram::Upsertion>,
    ) -> Vec<scram::UserResult> {
        self.controller_change(move |controller| {
            let (results, credentials) = controller.alter_scram(&deletions, &upsertions);
            let change = credentials.map(|scram| Change {
                scram: Some(scram),
                ..Change::default()
            });
            (results, change)
        })
        .await
    }

    /// Shard 0, at start-up: the cluster's identity and every persisted topic, opened
    /// (and recovered) on its shard, all shards in parallel. Returns the cluster id
    /// and the number of topics.
    pub async fn load_metadata(&self) -> (String, usize) {
        let state = self.state();
        let dir = state.config.log_dirs[0].clone();
        let meta = store::load_or_init_meta(&dir, state.config.node_id)
            .await
            .unwrap_or_else(|e| crate::stop::fatal(&format!("cannot load meta.properties: {e}")));
        let cluster_id = meta.cluster_id.clone();
        self.broadcast(move |router, _| async move {
            router.state().set_cluster_id(cluster_id);
        })
        .await;
        let broker_configs = store::load_broker_configs(&dir).await.unwrap_or_else(|e| {
            crate::stop::fatal(&format!("cannot load the dynamic broker configs: {e}"))
        });
        let (acls, scram) = store::load_security(&dir).await.unwrap_or_else(|e| {
            crate::stop::fatal(&format!("cannot load the ACLs and SCRAM credentials: {e}"))
        });
        let topics = store::load_topics(&dir)
            .await
            .unwrap_or_else(|e| crate::stop::fatal(&format!("cannot load the topic list: {e}")));
        let count = topics.len();
        let delta = state
            .controller()
            .controller
            .borrow_mut()
            .commit_change(Change {
                created: topics,
                broker_configs: Some(broker_configs),
                acls: Some(acls),
                scram: Some(scram),
                ..Change::default()
            });
        self.apply_everywhere(delta).await;
        (meta.cluster_id, count)
    }

    /// Persists the controller's topic list (and the dynamic broker configs, the ACLs
    /// and the SCRAM credentials, when `delta` changes them), then has every shard apply
    /// `delta`.
    async fn persist_and_apply(&self, delta: MetadataDelta) {
        let state = self.state();
        if delta.acls.is_some() || delta.scram.is_some() {
            let (acls, credentials) = {
                let controller = state.controller().controller.borrow();
                (
                    controller.acls().to_vec(),
                    controller.scram_credentials().clone(),
                )
            };
            if let Err(e) =
                store::save_security(&state.config.log_dirs[0], &acls, &credentials).await
            {
                crate::stop::fatal(&format!(
                    "cannot persist the ACLs and SCRAM credentials: {e}"
                ));
            }
        }
        if let Some(configs) = &delta.broker_configs
            && let Err(e) = store::save_broker_configs(&state.config.log_dirs[0], configs).await
        {
            crate::stop::fatal(&format!("cannot persist the dynamic broker configs: {e}"));
        }
        let topics: Vec<TopicRecord> = state
            .controller()
            .controller
            .borrow()
            .topics()
            .cloned()
            .collect();
        if let Err(e) = store::save_topics(&state.config.log_dirs[0], &topics).await {
            crate::stop::fatal(&format!("cannot persist the topic list: {e}"));
        }
        self.apply_everywhere(delta).await;
    }

    /// Has every shard apply `delta` (a change that persists nothing: a placement move).
    pub async fn apply_everywhere(&self, delta: MetadataDelta) {
        self.broadcast(move |router, _| async move {
            router.state().apply_metadata(delta).await;
        })
        .await;
    }

    /// A producer id no one was given before: from this shard's block, or from a new
    /// block the controller allocates (and persists) when the block is used up.
    pub async fn new_producer_id(&self) -> ProducerId {
        loop {
            if let Some(id) = self.state().producer_ids.take() {
                return id;
            }
            let block = self.allocate_producer_id_block().await;
            self.state().producer_ids.refill(block);
        }
    }

    /// The controller's next block of producer ids, persisted before it is handed out.
    async fn allocate_producer_id_block(&self) -> ProducerIdBlock {
        self.call(ShardId(0), |router, _| async move {
            let state = router.state();
            let controller = state.controller();
            let _one_change = controller.one_change().await;
            let dir = &state.config.log_dirs[0];
            let first = match controller.next_producer_id.get() {
                Some(first) => first,
                None => store::load_next_producer_id(dir).await.unwrap_or_else(|e| {
                    crate::stop::fatal(&format!("cannot read the producer id file: {e}"))
                }),
            };
            let block = ProducerIdBlock::starting_at(first);
            if let Err(e) = store::save_next_producer_id(dir, block.end()).await {
                crate::stop::fatal(&format!("cannot persist the producer id file: {e}"));
            }
            controller.next_producer_id.set(Some(block.end()));
            block
        })
        .await
    }
}
