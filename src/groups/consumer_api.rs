//! The KIP-848 group APIs on the coordinator: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe. A heartbeat validates the request, finds or creates the group
//! (an empty classic group turns into a consumer group, its offsets kept), lets the
//! group's state machine (`consumer`) change it, and persists the records it returns
//! before answering.
//!
//! Runs on the coordinator shard of the group. Invariant: a non-empty classic group is
//! never turned into a consumer group, nor the other way round.

use super::classic::ClientInfo;
use super::consumer::ConsumerGroup;
use super::records::CoordinatorRecord;
use super::{Group, GroupCoordinator, GroupError, GroupKind};
use crate::metadata::MetadataImage;
use crate::protocol::generated::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use crate::protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use crate::protocol::generated::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

impl GroupCoordinator {
    pub async fn consumer_heartbeat(
        self: &Rc<Self>,
        metadata: &RefCell<MetadataImage>,
        version: i16,
        client: ClientInfo,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let error = |error: GroupError, message: String| ConsumerGroupHeartbeatResponse {
            error_code: error.code().code(),
            error_message: Some(message),
            ..ConsumerGroupHeartbeatResponse::default()
        };
        // The broker's settings with the group's own config overrides over them.
        let limits = &self
            .config
            .consumer
            .for_group(metadata.borrow().dynamic_configs().group(&request.group_id));
        if let Err(e) = ConsumerGroup::validate(&request, version, limits) {
            return error(e.error, e.message);
        }
        let group_id = request.group_id.clone();
        let partition = match self.coordinates(&group_id) {
            Ok(partition) => partition,
            Err(e) => return error(e, format!("not the coordinator of {group_id}")),
        };
        let mut records = Vec::new();
        let slot = match self.slot(&group_id) {
            Some(slot) => slot,
            None if request.member_epoch == 0 => self.insert(Group {
                id: group_id.clone(),
                partition,
                kind: GroupKind::Consumer(ConsumerGroup::new(limits.clone())),
                offsets: BTreeMap::new(),
                pending: BTreeMap::new(),
            }),
            None => {
                return error(
                    GroupError::UnknownMemberId,
                    format!("consumer group {group_id} does not exist"),
                );
            }
        };
        let result = {
            let mut group = slot.group.borrow_mut();
            if let GroupKind::Classic(classic) = &group.kind {
                if !classic.is_empty() {
                    return error(
                        GroupError::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group."),
                    );
                }
                // An empty classic group becomes a consumer group; its offsets stay.
                if classic.generation > 0 {
                    records.push(CoordinatorRecord::ClassicGroup {
                        group: group_id.clone(),
                        value: None,
                    });
                }
                group.kind = GroupKind::Consumer(ConsumerGroup::new(limits.clone()));
            }
            let GroupKind::Consumer(consumer) = &mut group.kind else {
                unreachable!("converted above")
            };
            consumer.set_limits(limits.clone());
            consumer.heartbeat(
                &group_id,
                &request,
                &client,
                &metadata.borrow(),
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        match result {
            Err(e) => {
                self.persist(partition, &records).await.ok();
                error(e.error, e.message)
            }
            Ok((response, more)) => {
                records.extend(more);
                match self.persist(partition, &records).await {
                    Ok(()) => response,
                    Err(e) => error(e, format!("could not persist group {group_id}")),
                }
            }
        }
    }

    pub fn consumer_describe(
        &self,
        metadata: &RefCell<MetadataImage>,
        group_id: &str,
    ) -> ConsumerDescribedGroup {
        let error = |error: GroupError, message: String| ConsumerDescribedGroup {
            error_code: error.code().code(),
            error_message: Some(message),
            group_id: group_id.to_string(),
            authorized_operations: i32::MIN,
            ..ConsumerDescribedGroup::default()
        };
        if let Err(e) = self.coordinates(group_id) {
            return error(e, format!("not the coordinator of {group_id}"));
        }
        let Some(slot) = self.slot(group_id) else {
            return error(
                GroupError::GroupIdNotFound,
                format!("Group {group_id} not found."),
            );
        };
        let group = slot.group.borrow();
        match &group.kind {
            GroupKind::Consumer(consumer) => consumer.describe(group_id, &metadata.borrow()),
            GroupKind::Classic(_) => error(
                GroupError::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ),
        }
    }
}
