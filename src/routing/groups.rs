//! Calls to group coordinators. A group's coordinator is the shard owning the group's
//! `__consumer_offsets` partition; until that topic exists (the first FindCoordinator
//! creates it) every group answers COORDINATOR_NOT_AVAILABLE.

use super::Router;
use crate::groups::{OFFSETS_TOPIC, offsets_partition};
use crate::metadata::TopicPartition;
use crate::protocol::ErrorCode;
use crate::shard::ShardState;
use shards::ShardId;
use std::future::Future;
use std::rc::Rc;

impl Router {
    /// The shard coordinating `group_id`.
    pub fn group_coordinator(&self, group_id: &str) -> Result<ShardId, ErrorCode> {
        let metadata = self.state().metadata.borrow();
        let topic = metadata
            .topic(OFFSETS_TOPIC)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, offsets_partition(group_id, topic.partitions));
        metadata
            .owner(&tp)
            .ok_or(ErrorCode::CoordinatorNotAvailable)
    }

    /// Runs `work` on the coordinator of `group_id` with that shard's state (its
    /// `groups` is the coordinator), or says why there is none.
    pub async fn on_coordinator<T, F, Fut>(&self, group_id: &str, work: F) -> Result<T, ErrorCode>
    where
        T: Send + 'static,
        F: FnOnce(Rc<ShardState>) -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let shard = self.group_coordinator(group_id)?;
        Ok(self
            .call(shard, move |router, _| work(router.state().clone()))
            .await)
    }

    /// Asks every coordinator about its share of `group_ids` (one call per shard;
    /// `work` answers each of its ids in order) and returns one answer per id in
    /// request order; ids without a coordinator get `failed`.
    pub async fn per_coordinator<T, W, Fut>(
        &self,
        group_ids: Vec<String>,
        failed: impl Fn(&str, ErrorCode) -> T,
        work: W,
    ) -> Vec<T>
    where
        T: Send + 'static,
        W: FnOnce(Rc<ShardState>, Vec<String>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Vec<T>> + 'static,
    {
        let items: Vec<(String, ())> = group_ids.into_iter().map(|id| (id, ())).collect();
        self.scatter(
            items,
            |id| self.group_coordinator(id).map_err(|code| failed(id, code)),
            move |router, owned| {
                work(
                    router.state().clone(),
                    owned.into_iter().map(|(id, ())| id).collect(),
                )
            },
        )
        .await
        .answers()
        .await
    }

    /// Runs `work` on every shard's coordinator; results in shard order.
    pub async fn every_coordinator<T, W, Fut>(&self, work: W) -> Vec<T>
    where
        T: Send + 'static,
        W: FnOnce(Rc<ShardState>) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.broadcast(move |router, _| work(router.state().clone()))
            .await
    }
}
