//! The classic group APIs on the coordinator: JoinGroup, SyncGroup, Heartbeat and
//! LeaveGroup. Each finds the group's slot (creating it for a first JoinGroup), hands
//! the request to the group's state machine (`classic`), wakes the group's timer, and
//! persists the group's record when the machine asks for it, answering only once that
//! record is durable.
//!
//! Runs on the coordinator shard of the group. Invariant: the group's `RefCell` is
//! never borrowed across an await, so a JoinGroup or SyncGroup waiting for its
//! rebalance never holds the group.

use super::classic::{self, ClassicGroup, ClientInfo, JoinOutcome, SyncOutcome};
use super::records::CoordinatorRecord;
use super::{GroupCoordinator, GroupError, GroupKind, GroupSlot, response_code};
use crate::protocol::generated::heartbeat_request::HeartbeatRequest;
use crate::protocol::generated::join_group_request::JoinGroupRequest;
use crate::protocol::generated::join_group_response::JoinGroupResponse;
use crate::protocol::generated::leave_group_request::LeaveGroupRequest;
use crate::protocol::generated::leave_group_response::{LeaveGroupResponse, MemberResponse};
use crate::protocol::generated::sync_group_request::SyncGroupRequest;
use crate::protocol::generated::sync_group_response::SyncGroupResponse;
use std::rc::Rc;
use std::time::Instant;

/// Whether every string a JoinGroup puts into the group's record fits the record's
/// `i16`-length strings (the member id is the client id, a dash and 22 characters).
fn join_fits_group_record(client: &ClientInfo, request: &JoinGroupRequest) -> bool {
    let fits = |s: &str| s.len() <= i16::MAX as usize;
    fits(&request.member_id)
        && client.client_id.len() + 1 + 22 <= i16::MAX as usize
        && fits(&client.client_host)
        && request.group_instance_id.as_deref().is_none_or(fits)
        && fits(&request.protocol_type)
        && request.protocols.iter().all(|p| fits(&p.name))
}

impl GroupCoordinator {
    pub async fn join(
        self: &Rc<Self>,
        version: i16,
        client: ClientInfo,
        request: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let error = |error: GroupError| JoinGroupResponse {
            error_code: error.code().code(),
            generation_id: -1,
            member_id: request.member_id.clone(),
            ..JoinGroupResponse::default()
        };
        if request.group_id.is_empty() {
            return error(GroupError::InvalidGroupId);
        }
        if !join_fits_group_record(&client, &request) {
            return error(GroupError::InvalidRequest);
        }
        let limits = &self.config.classic;
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return error(GroupError::InvalidSessionTimeout);
        }
        let partition = match self.coordinates(&request.group_id) {
            Ok(partition) => partition,
            Err(e) => return error(e),
        };
        let slot = match self.slot(&request.group_id) {
            Some(slot) => slot,
            None if request.member_id.is_empty() => {
                self.insert(self.new_classic(&request.group_id, partition))
            }
            None => return error(GroupError::UnknownMemberId),
        };
        let outcome = {
            let mut group = slot.group.borrow_mut();
            let group = &mut *group;
            if let GroupKind::Consumer(consumer) = &group.kind {
                if !consumer.members.is_empty() {
                    return error(GroupError::InconsistentGroupProtocol);
                }
                // An empty KIP-848 group turns into a classic one (its offsets stay).
                group.kind = GroupKind::Classic(ClassicGroup::new(
                    &group.id,
                    limits.initial_rebalance_delay_ms,
                ));
            }
            let GroupKind::Classic(classic) = &mut group.kind else {
                unreachable!("converted above")
            };
            // Join rebalance timeouts default to the session timeout (v0).
            let rebalance_timeout_ms = if version == 0 || request.rebalance_timeout_ms < 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            };
            classic.join(
                classic::JoinRequest {
                    version,
                    member_id: request.member_id.clone(),
                    group_instance_id: request.group_instance_id.clone(),
                    session_timeout_ms: request.session_timeout_ms,
                    rebalance_timeout_ms,
                    protocol_type: request.protocol_type.clone(),
                    protocols: request
                        .protocols
                        .iter()
                        .map(|p| (p.name.clone(), p.metadata.clone()))
                        .collect(),
                    client,
                },
                limits,
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        let response = match outcome {
            JoinOutcome::Now(response) => response,
            JoinOutcome::PersistThenAnswer(response) => {
                let record = self.classic_record(&slot);
                if let Err(e) = self.persist(partition, &[record]).await {
                    return error(e);
                }
                response
            }
            JoinOutcome::Wait(answer) => answer
                .await
                .unwrap_or_else(|_| error(GroupError::CoordinatorNotAvailable)),
        };
        self.persist_if_emptied(&slot).await;
        self.forget_if_dead(&slot);
        response
    }

    fn classic_record(&self, slot: &GroupSlot) -> CoordinatorRecord {
        let group = slot.group.borrow();
        let GroupKind::Classic(classic) = &group.kind else {
            panic!("classic_record of a consumer group {}", group.id)
        };
        CoordinatorRecord::ClassicGroup {
            group: group.id.clone(),
            value: Some(classic.to_record()),
        }
    }

    /// The classic group of a request that needs one to exist.
    fn classic_slot(&self, group_id: &str) -> Result<Rc<GroupSlot>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.coordinates(group_id)?;
        let slot = self.slot(group_id).ok_or(GroupError::UnknownMemberId)?;
        if !matches!(slot.group.borrow().kind, GroupKind::Classic(_)) {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(slot)
    }

    pub async fn sync(self: &Rc<Self>, request: SyncGroupRequest) -> SyncGroupResponse {
        let error = |error: GroupError| SyncGroupResponse {
            error_code: error.code().code(),
            ..SyncGroupResponse::default()
        };
        let slot = match self.classic_slot(&request.group_id) {
            Ok(slot) => slot,
            Err(e) => return error(e),
        };
        let outcome = {
            let mut group = slot.group.borrow_mut();
            let GroupKind::Classic(classic) = &mut group.kind else {
                return error(GroupError::UnknownMemberId);
            };
            classic.sync(
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id,
                request.protocol_type.as_deref(),
                request.protocol_name.as_deref(),
                request
                    .assignments
                    .iter()
                    .map(|a| (a.member_id.clone(), a.assignment.clone()))
                    .collect(),
                Instant::now(),
            )
        };
        slot.changed.notify_all();
        match outcome {
            SyncOutcome::Now(response) => response,
            SyncOutcome::Wait(answer) => answer
                .await
                .unwrap_or_else(|_| error(GroupError::CoordinatorNotAvailable)),
            SyncOutcome::Persist { generation, answer } => {
                let record = self.classic_record(&slot);
                let partition = slot.group.borrow().partition;
                if let Err(e) = self.persist(partition, &[record]).await {
                    return error(e);
                }
                if let GroupKind::Classic(classic) = &mut slot.group.borrow_mut().kind {
                    classic.complete_sync(generation);
                }
                slot.changed.notify_all();
                answer
                    .await
                    .unwrap_or_else(|_| error(GroupError::CoordinatorNotAvailable))
            }
        }
    }

    pub fn heartbeat(&self, request: HeartbeatRequest) -> Result<(), GroupError> {
        let slot = self.classic_slot(&request.group_id)?;
        let mut group = slot.group.borrow_mut();
        let GroupKind::Classic(classic) = &mut group.kind else {
            return Err(GroupError::UnknownMemberId);
        };
        classic.heartbeat(
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
            Instant::now(),
        )
    }

    pub async fn leave(&self, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
        let identities: Vec<(String, Option<String>)> = if version >= 3 {
            request
                .members
                .iter()
                .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
                .collect()
        } else {
            vec![(request.member_id.clone(), None)]
        };
        let top_level = |result: Result<(), GroupError>| LeaveGroupResponse {
            error_code: response_code(result),
            ..LeaveGroupResponse::default()
        };
        let slot = match self.classic_slot(&request.group_id) {
            Ok(slot) => slot,
            Err(e) => return top_level(Err(e)),
        };
        let results: Vec<(String, Option<String>, Result<(), GroupError>)> = {
            let mut group = slot.group.borrow_mut();
            let GroupKind::Classic(classic) = &mut group.kind else {
                return top_level(Err(GroupError::UnknownMemberId));
            };
            let results: Vec<(String, Option<String>, Result<(), GroupError>)> = identities
                .into_iter()
                .map(|(member_id, instance)| {
                    let left = classic.leave(&member_id, instance.as_deref());
                    (member_id, instance, left)
                })
                .collect();
            if results.iter().any(|(_, _, left)| left.is_ok()) {
                classic.members_left(Instant::now());
            }
            results
        };
        slot.changed.notify_all();
        self.persist_if_emptied(&slot).await;
        if version < 3 {
            return top_level(results[0].2);
        }
        LeaveGroupResponse {
            error_code: 0,
            members: results
                .into_iter()
                .map(|(member_id, instance, left)| MemberResponse {
                    error_code: response_code(left),
                    member_id,
                    group_instance_id: instance,
                    ..MemberResponse::default()
                })
                .collect(),
            ..LeaveGroupResponse::default()
        }
    }
}
