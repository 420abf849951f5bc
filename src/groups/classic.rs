//! The classic rebalance protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as one
//! group's state machine, following Kafka's `ClassicGroup`:
//!
//! ```text
//!             join                 all joined / rebalance timeout          leader syncs
//!   Empty ───────────▶ PreparingRebalance ─────────────────▶ CompletingRebalance ───────▶ Stable
//!     ▲                     ▲   │ no member left                  │ rejoin, leave, expiry     │
//!     └─────────────────────┼───┘                                 ▼                           │
//!                           └──────────────────────────── (back to PreparingRebalance) ◀─────┘
//! ```
//!
//! Everything here is synchronous and owned by the coordinator shard: a call changes the
//! state and says what must happen next (answer now, wait for the rebalance, persist the
//! group first). Waiting members hold a `oneshot` the state machine answers when the
//! join or sync phase completes. Time is passed in (`now`), so the machine is tested
//! without a clock; `next_deadline` and `expire` are driven by the group's timer task.
//!
//! Invariants: the leader is a member; every member in `pending_sync` is a member; a
//! static instance id maps to exactly one member; the generation only grows.

use crate::protocol::generated::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use crate::protocol::generated::sync_group_response::SyncGroupResponse;
use crate::protocol::wire::Uuid;
use bytes::Bytes;
use shards::oneshot::{self, Receiver as OneshotReceiver, Sender as OneshotSender};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use super::error::GroupError;
use super::records::group_metadata_value::{GroupMetadataValue, MemberMetadata};

/// The states of a classic group, named as Kafka names them (DescribeGroups, ListGroups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl fmt::Display for ClassicState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        })
    }
}

/// What a client told us about itself, for DescribeGroups and the group record.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    /// As Kafka shows it: `/` and the address.
    pub client_host: String,
}

/// The group-level limits a classic group checks (broker config).
#[derive(Debug, Clone)]
pub struct ClassicLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
}

pub struct ClassicMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client: ClientInfo,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// Protocol names with their metadata, in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    awaiting_join: Option<OneshotSender<JoinGroupResponse>>,
    awaiting_sync: Option<OneshotSender<SyncGroupResponse>>,
    heartbeat_deadline: Instant,
    /// Join order: the longest-standing member becomes leader when the leader leaves.
    joined: u64,
}

impl ClassicMember {
    /// The member's metadata for a protocol (empty if it does not speak it).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    fn session(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms.max(0) as u64)
    }
}

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub version: i16,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client: ClientInfo,
}

/// What a JoinGroup call leads to.
pub enum JoinOutcome {
    /// Answer now.
    Now(JoinGroupResponse),
    /// The answer comes when the join phase completes.
    Wait(OneshotReceiver<JoinGroupResponse>),
    /// A static member replaced its old id in a stable group: persist the group, then
    /// answer.
    PersistThenAnswer(JoinGroupResponse),
}

/// What a SyncGroup call leads to.
pub enum SyncOutcome {
    Now(SyncGroupResponse),
    /// The answer comes when the leader's assignment is persisted.
    Wait(OneshotReceiver<SyncGroupResponse>),
    /// The leader's assignment: persist the group, `complete_sync(generation)`, then
    /// the answer comes.
    Persist {
        generation: i32,
        answer: OneshotReceiver<SyncGroupResponse>,
    },
}

pub struct ClassicGroup {
    pub group_id: String,
    pub state: ClassicState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, ClassicMember>,
    /// Members told MEMBER_ID_REQUIRED that have not rejoined yet, with their deadline.
    pending_members: HashMap<String, Instant>,
    static_members: HashMap<String, String>,
    pending_sync: BTreeSet<String>,
    join_deadline: Option<Instant>,
    /// While the initial rebalance delay runs: how much of the rebalance timeout is left
    /// to extend it by, and whether a member joined during the current delay.
    initial_delay: Option<(Duration, bool)>,
    sync_deadline: Option<Instant>,
    /// Wall-clock milliseconds of the last state change (Kafka's currentStateTimestamp).
    pub state_timestamp_ms: i64,
    next_join: u64,
    initial_delay_ms: i32,
    /// The group became empty: its record must be written (`take_persist`).
    persist: bool,
}

/// A refused JoinGroup, the answer a member gets at once or through its `oneshot`.
fn join_error(error: GroupError, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: error.code().code(),
        generation_id: -1,
        member_id: member_id.to_string(),
        ..JoinGroupResponse::default()
    }
}

/// A refused SyncGroup, the answer a member gets at once or through its `oneshot`.
fn sync_error(error: GroupError) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: error.code().code(),
        ..SyncGroupResponse::default()
    }
}

fn now_ms() -> i64 {
    crate::model::Timestamp::now().0
}

impl ClassicGroup {
    pub fn new(group_id: &str, initial_delay_ms: i32) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: ClassicState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            pending_sync: BTreeSet::new(),
            join_deadline: None,
            initial_delay: None,
            sync_deadline: None,
            state_timestamp_ms: now_ms(),
            next_join: 0,
            initial_delay_ms,
            persist: false,
        }
    }

    /// True once after the group became empty, when its record must be written.
    pub fn take_persist(&mut self) -> bool {
        std::mem::take(&mut self.persist)
    }

    /// The group as its last `GroupMetadataValue` left it: Stable with its members (who
    /// must heartbeat within their session timeout), or Empty.
    pub fn from_record(
        group_id: &str,
        value: &GroupMetadataValue,
        initial_delay_ms: i32,
        now: Instant,
    ) -> ClassicGroup {
        let mut group = ClassicGroup::new(group_id, initial_delay_ms);
        group.protocol_type =
            (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        group.protocol_name = value.protocol.clone();
        group.generation = value.generation;
        group.state_timestamp_ms = value.current_state_timestamp;
        for m in &value.members {
            let joined = group.next_join;
            group.next_join += 1;
            let member = ClassicMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client: ClientInfo {
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                },
                session_timeout_ms: m.session_timeout,
                rebalance_timeout_ms: if m.rebalance_timeout >= 0 {
                    m.rebalance_timeout
                } else {
                    m.session_timeout
                },
                protocol_type: value.protocol_type.clone(),
                protocols: vec![(
                    value.protocol.clone().unwrap_or_default(),
                    m.subscription.clone(),
                )],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline: now + Duration::from_millis(m.session_timeout.max(0) as u64),
                joined,
            };
            if let Some(instance) = &member.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member.member_id.clone());
            }
            group.members.insert(member.member_id.clone(), member);
        }
        if !group.members.is_empty() {
            group.state = ClassicState::Stable;
            group.leader = value
                .leader
                .clone()
                .filter(|l| group.members.contains_key(l))
                .or_else(|| group.members.keys().next().cloned());
        }
        group
    }

    /// The group as Kafka persists it after a rebalance, a static member's replacement,
    /// or when it becomes empty.
    pub fn to_record(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                    ..MemberMetadata::default()
                })
                .collect(),
            ..GroupMetadataValue::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn set_state(&mut self, state: ClassicState) {
        self.state = state;
        self.state_timestamp_ms = now_ms();
    }

    fn max_rebalance_timeout(&self) -> Duration {
        let ms = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        Duration::from_millis(ms.max(0) as u64)
    }

    /// Whether a member joining with these protocols — or rejoining, as `rejoining` —
    /// shares one of them with every other member, under the group's protocol type.
    fn supports(&self, request: &JoinRequest, rejoining: Option<&str>) -> bool {
        if request.protocols.is_empty() || request.protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return false;
        }
        request.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| Some(m.member_id.as_str()) != rejoining)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for
    /// the first one it lists; the most votes wins (ties go to the leader's preference).
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n))
            {
                *votes.entry(name).or_default() += 1;
            }
        }
        let preference: Vec<&String> = match self.leader.as_ref().and_then(|l| self.members.get(l))
        {
            Some(leader) => leader.protocols.iter().map(|(n, _)| n).collect(),
            None => candidates.clone(),
        };
        let most = votes.values().copied().max()?;
        preference
            .into_iter()
            .find(|name| votes.get(name) == Some(&most))
            .or_else(|| votes.iter().find(|(_, v)| **v == most).map(|(n, _)| *n))
            .cloned()
    }

    fn check_instance(&self, member_id: &str, instance: Option<&str>) -> Result<(), GroupError> {
        match instance.and_then(|i| self.static_members.get(i)) {
            Some(owner) if owner != member_id => Err(GroupError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// JoinGroup. The request was validated for group id and session timeout bounds.
    pub fn join(
        &mut self,
        request: JoinRequest,
        limits: &ClassicLimits,
        now: Instant,
    ) -> JoinOutcome {
        if self.state == ClassicState::Dead {
            return JoinOutcome::Now(join_error(
                GroupError::CoordinatorNotAvailable,
                &request.member_id,
            ));
        }
        if request.member_id.is_empty() {
            self.join_new_member(request, limits, now)
        } else {
            self.join_known_member(request, now)
        }
    }

    fn join_new_member(
        &mut self,
        request: JoinRequest,
        limits: &ClassicLimits,
        now: Instant,
    ) -> JoinOutcome {
        if !self.supports(&request, None) {
            return JoinOutcome::Now(join_error(GroupError::InconsistentGroupProtocol, ""));
        }
        let replaces = request
            .group_instance_id
            .as_ref()
            .and_then(|i| self.static_members.get(i))
            .cloned();
        if replaces.is_none() && self.members.len() + self.pending_members.len() >= limits.max_size
        {
            return JoinOutcome::Now(join_error(GroupError::GroupMaxSizeReached, ""));
        }
        let client_id = if request.client.client_id.is_empty() {
            "member"
        } else {
            &request.client.client_id
        };
        let member_id = format!("{client_id}-{}", Uuid::random());
        if let Some(old_id) = replaces {
            return self.replace_static_member(&old_id, member_id, request, now);
        }
        if request.group_instance_id.is_none() && request.version >= 4 {
            // KIP-394: the member must come back with the id, so that a client that
            // never does leaves no member behind.
            let deadline = now + Duration::from_millis(request.session_timeout_ms.max(0) as u64);
            self.pending_members.insert(member_id.clone(), deadline);
            return JoinOutcome::Now(join_error(GroupError::MemberIdRequired, &member_id));
        }
        JoinOutcome::Wait(self.add_member(member_id, request, now))
    }

    fn join_known_member(&mut self, request: JoinRequest, now: Instant) -> JoinOutcome {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            if !self.supports(&request, None) {
                return JoinOutcome::Now(join_error(
                    GroupError::InconsistentGroupProtocol,
                    &member_id,
                ));
            }
            return JoinOutcome::Wait(self.add_member(member_id, request, now));
        }
        if !self.members.contains_key(&member_id) {
            return JoinOutcome::Now(join_error(GroupError::UnknownMemberId, &member_id));
        }
        if let Err(code) = self.check_instance(&member_id, request.group_instance_id.as_deref()) {
            return JoinOutcome::Now(join_error(code, &member_id));
        }
        if !self.supports(&request, Some(&member_id)) {
            return JoinOutcome::Now(join_error(
                GroupError::InconsistentGroupProtocol,
                &member_id,
            ));
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                let answer = self.update_member(&member_id, &request, now);
                self.try_complete_join(now);
                JoinOutcome::Wait(answer)
            }
            ClassicState::CompletingRebalance | ClassicState::Stable => {
                let member = &self.members[&member_id];
                let unchanged = member.same_protocols(&request.protocols);
                let is_leader = self.leader.as_deref() == Some(member_id.as_str());
                if unchanged && (self.state == ClassicState::CompletingRebalance || !is_leader) {
                    // Nothing changed: the member gets the current generation again.
                    let response = self.join_response(&member_id, false);
                    JoinOutcome::Now(response)
                } else {
                    let answer = self.update_member(&member_id, &request, now);
                    self.prepare_rebalance(now);
                    JoinOutcome::Wait(answer)
                }
            }
            ClassicState::Empty | ClassicState::Dead => {
                JoinOutcome::Now(join_error(GroupError::UnknownMemberId, &member_id))
            }
        }
    }

    /// A static member came back with a new member id: the old id is fenced, and the
    /// group rebalances unless it is stable and nothing changed (KIP-345).
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        request: JoinRequest,
        now: Instant,
    ) -> JoinOutcome {
        let mut member = self
            .members
            .remove(old_id)
            .expect("a static member id maps to a member");
        if let Some(waiting) = member.awaiting_join.take() {
            waiting.send(join_error(GroupError::FencedInstanceId, old_id));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            waiting.send(sync_error(GroupError::FencedInstanceId));
        }
        let unchanged = member.same_protocols(&request.protocols);
        member.member_id = new_id.clone();
        member.client = request.client.clone();
        member.heartbeat_deadline = now + member.session();
        let instance = member
            .group_instance_id
            .clone()
            .expect("a static member has an instance id");
        self.static_members.insert(instance, new_id.clone());
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        match self.state {
            ClassicState::Stable if unchanged => {
                // Same subscription: keep the assignment, no rebalance. A replaced leader
                // gets the member list but must not compute a new assignment (v9's
                // SkipAssignment).
                let mut response = self.join_response(&new_id, was_leader);
                response.skip_assignment = was_leader;
                JoinOutcome::PersistThenAnswer(response)
            }
            ClassicState::PreparingRebalance => {
                let answer = self.update_member(&new_id, &request, now);
                self.try_complete_join(now);
                JoinOutcome::Wait(answer)
            }
            _ => {
                let answer = self.update_member(&new_id, &request, now);
                self.prepare_rebalance(now);
                JoinOutcome::Wait(answer)
            }
        }
    }

    fn add_member(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
    ) -> OneshotReceiver<JoinGroupResponse> {
        let (reply, answer) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        let joined = self.next_join;
        self.next_join += 1;
        let member = ClassicMember {
            member_id: member_id.clone(),
            group_instance_id: request.group_instance_id.clone(),
            client: request.client.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocol_type: request.protocol_type.clone(),
            protocols: request.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: Some(reply),
            awaiting_sync: None,
            heartbeat_deadline: now
                + Duration::from_millis(request.session_timeout_ms.max(0) as u64),
            joined,
        };
        if let Some(instance) = &request.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.members.insert(member_id, member);
        if let Some((_, joined_during_delay)) = &mut self.initial_delay {
            *joined_during_delay = true;
        }
        match self.state {
            ClassicState::PreparingRebalance => self.try_complete_join(now),
            _ => self.prepare_rebalance(now),
        }
        answer
    }

    fn update_member(
        &mut self,
        member_id: &str,
        request: &JoinRequest,
        now: Instant,
    ) -> OneshotReceiver<JoinGroupResponse> {
        let (reply, answer) = oneshot::channel();
        let member = self
            .members
            .get_mut(member_id)
            .expect("update_member of a member");
        member.protocols = request.protocols.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.client = request.client.clone();
        member.heartbeat_deadline = now + member.session();
        if let Some(previous) = member.awaiting_join.replace(reply) {
            previous.send(join_error(GroupError::RebalanceInProgress, member_id));
        }
        answer
    }

    /// Starts (or restarts) the join phase.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == ClassicState::CompletingRebalance {
            self.reset_assignments();
        }
        let rebalance_timeout = self.max_rebalance_timeout();
        if self.state == ClassicState::Empty && self.initial_delay_ms > 0 {
            // The first members: give others a moment to join, so a group starting up
            // does not rebalance once per member (group.initial.rebalance.delay.ms).
            let delay = Duration::from_millis(self.initial_delay_ms as u64).min(rebalance_timeout);
            self.initial_delay = Some((rebalance_timeout.saturating_sub(delay), false));
            self.join_deadline = Some(now + delay);
        } else {
            self.initial_delay = None;
            self.join_deadline = Some(now + rebalance_timeout);
        }
        self.set_state(ClassicState::PreparingRebalance);
        self.try_complete_join(now);
    }

    fn reset_assignments(&mut self) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            if let Some(waiting) = member.awaiting_sync.take() {
                waiting.send(sync_error(GroupError::RebalanceInProgress));
            }
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != ClassicState::PreparingRebalance || self.initial_delay.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if all_joined {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped (static members
    /// stay), the generation moves on, and every waiting member gets its answer — the
    /// leader with every member's metadata.
    fn complete_join(&mut self, now: Instant) {
        let dropped: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in dropped {
            self.remove_member(&member_id, GroupError::UnknownMemberId);
        }
        self.join_deadline = None;
        self.initial_delay = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(ClassicState::Empty);
            self.persist = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        self.set_state(ClassicState::CompletingRebalance);
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in &member_ids {
            let response = self.join_response(member_id, false);
            let member = self.members.get_mut(member_id).expect("listed member");
            member.heartbeat_deadline = now + member.session();
            if let Some(waiting) = member.awaiting_join.take() {
                waiting.send(response);
            }
        }
        self.pending_sync = member_ids.into_iter().collect();
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
    }

    /// The JoinGroup answer for a member of the current generation; the leader (or a
    /// member told to act as one) also gets every member's metadata.
    fn join_response(&self, member_id: &str, force_members: bool) -> JoinGroupResponse {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if is_leader || force_members {
            self.members
                .values()
                .map(|m| JoinGroupResponseMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                    ..JoinGroupResponseMember::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            error_code: 0,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members,
            ..JoinGroupResponse::default()
        }
    }

    /// Removes a member; waiting calls of its own are answered with `error`.
    fn remove_member(&mut self, member_id: &str, error: GroupError) {
        let Some(mut member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(waiting) = member.awaiting_join.take() {
            waiting.send(join_error(error, member_id));
        }
        if let Some(waiting) = member.awaiting_sync.take() {
            waiting.send(sync_error(error));
        }
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined)
                .map(|m| m.member_id.clone());
        }
    }

    /// After members left or expired: rebalance, or finish a join phase they held up.
    fn after_departure(&mut self, now: Instant) {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => self.prepare_rebalance(now),
            ClassicState::PreparingRebalance => self.try_complete_join(now),
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    /// Kafka's member check of SyncGroup, Heartbeat, LeaveGroup and OffsetCommit: a
    /// static member is known by its instance id (another member id under that instance
    /// is fenced), a dynamic one by its member id.
    fn validate_member(&self, member_id: &str, instance: Option<&str>) -> Result<(), GroupError> {
        match instance {
            Some(instance) => match self.static_members.get(instance) {
                None => Err(GroupError::UnknownMemberId),
                Some(owner) if owner != member_id => Err(GroupError::FencedInstanceId),
                Some(_) => Ok(()),
            },
            None if self.members.contains_key(member_id) => Ok(()),
            None => Err(GroupError::UnknownMemberId),
        }
    }

    /// `validate_member`, then the generation.
    fn check_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        self.validate_member(member_id, instance)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> SyncOutcome {
        let now_error = |error: GroupError| SyncOutcome::Now(sync_error(error));
        match self.state {
            ClassicState::Dead => return now_error(GroupError::CoordinatorNotAvailable),
            ClassicState::Empty => return now_error(GroupError::UnknownMemberId),
            _ => {}
        }
        if let Err(code) = self.check_member(member_id, instance, generation) {
            return now_error(code);
        }
        let mismatched = |given: Option<&str>, ours: &Option<String>| {
            given.is_some_and(|g| ours.as_deref() != Some(g))
        };
        if mismatched(protocol_type, &self.protocol_type)
            || mismatched(protocol_name, &self.protocol_name)
        {
            return now_error(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            ClassicState::PreparingRebalance => now_error(GroupError::RebalanceInProgress),
            ClassicState::Stable => {
                self.pending_sync.remove(member_id);
                let member = &self.members[member_id];
                let response = self.sync_response(member.assignment.clone());
                SyncOutcome::Now(response)
            }
            ClassicState::CompletingRebalance => {
                self.pending_sync.remove(member_id);
                let member = self.members.get_mut(member_id).expect("checked member");
                member.heartbeat_deadline = now + member.session();
                let (reply, answer) = oneshot::channel();
                if let Some(previous) = member.awaiting_sync.replace(reply) {
                    previous.send(sync_error(GroupError::RebalanceInProgress));
                }
                if self.leader.as_deref() != Some(member_id) {
                    return SyncOutcome::Wait(answer);
                }
                let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = given.remove(&member.member_id).unwrap_or_default();
                }
                SyncOutcome::Persist {
                    generation: self.generation,
                    answer,
                }
            }
            ClassicState::Empty | ClassicState::Dead => unreachable!("handled above"),
        }
    }

    fn sync_response(&self, assignment: Bytes) -> SyncGroupResponse {
        SyncGroupResponse {
            error_code: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
            ..SyncGroupResponse::default()
        }
    }

    /// The leader's assignment is persisted: the group is stable and every member
    /// waiting in SyncGroup gets its assignment — unless the group moved on meanwhile.
    pub fn complete_sync(&mut self, generation: i32) {
        if self.state != ClassicState::CompletingRebalance || self.generation != generation {
            return;
        }
        self.set_state(ClassicState::Stable);
        self.sync_deadline = None;
        let responses: Vec<(String, SyncGroupResponse)> = self
            .members
            .values()
            .map(|m| {
                (
                    m.member_id.clone(),
                    self.sync_response(m.assignment.clone()),
                )
            })
            .collect();
        for (member_id, response) in responses {
            let member = self.members.get_mut(&member_id).expect("listed member");
            if let Some(waiting) = member.awaiting_sync.take() {
                waiting.send(response);
            }
        }
    }

    /// Heartbeat: keeps the member's session alive and tells it whether to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        match self.state {
            ClassicState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            ClassicState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        self.check_member(member_id, instance, generation)?;
        let member = self.members.get_mut(member_id).expect("checked member");
        member.heartbeat_deadline = now + member.session();
        match self.state {
            // The session is kept all the same; the error tells the member to rejoin.
            ClassicState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// LeaveGroup for one member (by id, or by instance id when the id is empty).
    pub fn leave(&mut self, member_id: &str, instance: Option<&str>) -> Result<(), GroupError> {
        let member_id = if member_id.is_empty() {
            match instance.and_then(|i| self.static_members.get(i)) {
                Some(id) => id.clone(),
                None => return Err(GroupError::UnknownMemberId),
            }
        } else {
            member_id.to_string()
        };
        if self.pending_members.remove(&member_id).is_some() {
            return Ok(());
        }
        self.validate_member(&member_id, instance)?;
        self.remove_member(&member_id, GroupError::UnknownMemberId);
        Ok(())
    }

    /// Call once after a batch of `leave`s that removed someone.
    pub fn members_left(&mut self, now: Instant) {
        self.after_departure(now);
    }

    /// Checks an OffsetCommit against the group (Kafka's rules: a commit with a
    /// negative generation is a simple consumer's, allowed while the group is empty).
    pub fn check_offset_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        match self.state {
            ClassicState::Dead => Err(GroupError::CoordinatorNotAvailable),
            _ if generation < 0 && self.state == ClassicState::Empty => Ok(()),
            ClassicState::CompletingRebalance => Err(GroupError::RebalanceInProgress),
            _ => self.check_member(member_id, instance, generation),
        }
    }

    /// TxnOffsetCommit's checks, Kafka's for a transactional commit: as OffsetCommit's,
    /// except that a commit naming no member and no generation (all of v0–v2) passes
    /// whatever the group's state, and a rebalance does not refuse it.
    pub fn check_txn_offset_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let anonymous = generation < 0 && member_id.is_empty() && instance.is_none();
        match self.state {
            ClassicState::Dead => Err(GroupError::CoordinatorNotAvailable),
            _ if generation < 0 && self.state == ClassicState::Empty => Ok(()),
            _ if anonymous => Ok(()),
            _ => self.check_member(member_id, instance, generation),
        }
    }

    /// The earliest time something here times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        let members = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.heartbeat_deadline);
        members
            .chain(self.pending_members.values().copied())
            .chain(self.join_deadline)
            .chain(self.sync_deadline)
            .min()
    }

    /// Applies every timeout due at `now`; returns the members it removed.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        self.pending_members.retain(|_, deadline| *deadline > now);
        let timed_out: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.heartbeat_deadline <= now
            })
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in &timed_out {
            self.remove_member(member_id, GroupError::UnknownMemberId);
        }
        expired.extend(timed_out);
        if self.state == ClassicState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| d <= now)
        {
            // Members that never sent SyncGroup hold everyone up: drop them.
            let laggards: Vec<String> = self.pending_sync.iter().cloned().collect();
            for member_id in &laggards {
                self.remove_member(member_id, GroupError::RebalanceInProgress);
            }
            expired.extend(laggards);
            self.sync_deadline = None;
        }
        if !expired.is_empty() {
            self.after_departure(now);
        }
        if self.state == ClassicState::PreparingRebalance
            && self.join_deadline.is_some_and(|d| d <= now)
        {
            match self.initial_delay {
                Some((remaining, true)) if !remaining.is_zero() => {
                    // Members keep arriving: wait another delay, within the rebalance
                    // timeout.
                    let delay =
                        Duration::from_millis(self.initial_delay_ms.max(0) as u64).min(remaining);
                    self.initial_delay = Some((remaining - delay, false));
                    self.join_deadline = Some(now + delay);
                }
                _ => self.complete_join(now),
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    const LIMITS: ClassicLimits = ClassicLimits {
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 100_000,
        initial_rebalance_delay_ms: 100,
        max_size: 3,
    };

    fn request(member_id: &str, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            version: 5,
            member_id: member_id.to_string(),
            group_instance_id: None,
            session_timeout_ms: 1_000,
            rebalance_timeout_ms: 2_000,
            protocol_type: "consumer".to_string(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
                .collect(),
            client: ClientInfo {
                client_id: "client".into(),
                client_host: "/127.0.0.1".into(),
            },
        }
    }

    fn ready<T>(receiver: OneshotReceiver<T>) -> T {
        block_on(receiver).expect("answered")
    }

    /// Joins a new dynamic member (two steps, KIP-394) and returns its pending answer.
    fn join_new(
        group: &mut ClassicGroup,
        protocols: &[&str],
        now: Instant,
    ) -> (String, OneshotReceiver<JoinGroupResponse>) {
        let JoinOutcome::Now(required) = group.join(request("", protocols), &LIMITS, now) else {
            panic!("a first JoinGroup without a member id is answered at once")
        };
        assert_eq!(
            required.error_code,
            GroupError::MemberIdRequired.code().code()
        );
        assert!(required.member_id.starts_with("client-"));
        match group.join(request(&required.member_id, protocols), &LIMITS, now) {
            JoinOutcome::Wait(answer) => (required.member_id, answer),
            _ => panic!("the rejoin with the member id waits for the join phase"),
        }
    }

    fn sync_leader(
        group: &mut ClassicGroup,
        leader: &str,
        assignments: &[(&str, &str)],
        now: Instant,
    ) {
        let given = assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect();
        let SyncOutcome::Persist { generation, answer } =
            group.sync(leader, None, group.generation, None, None, given, now)
        else {
            panic!("the leader's SyncGroup persists the group")
        };
        group.complete_sync(generation);
        assert_eq!(ready(answer).error_code, 0);
        assert_eq!(group.state, ClassicState::Stable);
    }

    #[test]
    fn the_first_members_wait_out_the_initial_delay_then_the_first_one_leads_generation_1() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", LIMITS.initial_rebalance_delay_ms);
        let (a, a_answer) = join_new(&mut group, &["range", "roundrobin"], t0);
        let (b, b_answer) = join_new(&mut group, &["roundrobin", "range"], t0);
        assert_eq!(group.state, ClassicState::PreparingRebalance);
        group.expire(t0 + Duration::from_millis(50));
        assert_eq!(
            group.state,
            ClassicState::PreparingRebalance,
            "still within the delay"
        );
        // A member joined during the delay: it is extended once more.
        group.expire(t0 + Duration::from_millis(101));
        assert_eq!(group.state, ClassicState::PreparingRebalance);
        group.expire(t0 + Duration::from_millis(202));
        assert_eq!(group.state, ClassicState::CompletingRebalance);
        let (a_join, b_join) = (ready(a_answer), ready(b_answer));
        assert_eq!((a_join.generation_id, b_join.generation_id), (1, 1));
        assert_eq!(a_join.leader, a);
        assert_eq!(a_join.members.len(), 2, "the leader gets every member");
        assert!(b_join.members.is_empty(), "followers get none");
        // One vote each: the leader's preference breaks the tie.
        assert_eq!(a_join.protocol_name.as_deref(), Some("range"));
        assert_eq!(b_join.member_id, b);
    }

    #[test]
    fn the_leaders_assignment_reaches_every_member_once_persisted() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", 0);
        let (a, a_answer) = join_new(&mut group, &["range"], t0);
        group.expire(t0);
        ready(a_answer);
        // A second member forces a rebalance; the first learns it through its heartbeat.
        let (b, b_answer) = join_new(&mut group, &["range"], t0);
        assert_eq!(
            group.heartbeat(&a, None, 1, t0),
            Err(GroupError::RebalanceInProgress)
        );
        let JoinOutcome::Wait(a_answer) = group.join(request(&a, &["range"]), &LIMITS, t0) else {
            panic!("a rejoin during a rebalance waits")
        };
        assert_eq!(ready(a_answer).generation_id, 2);
        assert_eq!(ready(b_answer).generation_id, 2);
        let SyncOutcome::Wait(b_sync) = group.sync(&b, None, 2, None, None, vec![], t0) else {
            panic!("a follower waits for the leader")
        };
        sync_leader(&mut group, &a, &[(&a, "for-a"), (&b, "for-b")], t0);
        assert_eq!(ready(b_sync).assignment, Bytes::from("for-b"));
        assert_eq!(group.heartbeat(&b, None, 2, t0), Ok(()));
        let record = group.to_record();
        assert_eq!(record.generation, 2);
        assert_eq!(record.members.len(), 2);
        assert_eq!(record.protocol.as_deref(), Some("range"));
    }

    #[test]
    fn heartbeats_and_syncs_get_kafkas_errors() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", 0);
        let (a, answer) = join_new(&mut group, &["range"], t0);
        group.expire(t0);
        ready(answer);
        assert_eq!(
            group.heartbeat("nobody", None, 1, t0),
            Err(GroupError::UnknownMemberId)
        );
        assert_eq!(
            group.heartbeat(&a, None, 7, t0),
            Err(GroupError::IllegalGeneration)
        );
        assert_eq!(group.heartbeat(&a, None, 1, t0), Ok(()), "completing: fine");
        let SyncOutcome::Now(wrong) = group.sync(&a, None, 1, Some("connect"), None, vec![], t0)
        else {
            panic!("a mismatched protocol type is refused at once")
        };
        assert_eq!(
            wrong.error_code,
            GroupError::InconsistentGroupProtocol.code().code()
        );
        let JoinOutcome::Now(refused) = group.join(request("", &["sticky"]), &LIMITS, t0) else {
            panic!("no common protocol")
        };
        assert_eq!(
            refused.error_code,
            GroupError::InconsistentGroupProtocol.code().code()
        );
    }

    #[test]
    fn a_member_whose_session_ends_is_removed_and_the_last_one_leaves_the_group_empty() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", 0);
        let (a, a_answer) = join_new(&mut group, &["range"], t0);
        ready(a_answer);
        let (b, b_answer) = join_new(&mut group, &["range"], t0);
        let JoinOutcome::Wait(a_answer) = group.join(request(&a, &["range"]), &LIMITS, t0) else {
            panic!("a rejoin during a rebalance waits")
        };
        ready(a_answer);
        ready(b_answer);
        sync_leader(&mut group, &a, &[], t0);
        // b heartbeats, a does not: a's session (1 s) ends.
        let t1 = t0 + Duration::from_millis(900);
        assert_eq!(group.heartbeat(&b, None, 2, t1), Ok(()));
        assert_eq!(
            group.expire(t0 + Duration::from_millis(1_100)),
            vec![a.clone()]
        );
        assert_eq!(group.state, ClassicState::PreparingRebalance);
        assert_eq!(
            group.leader.as_deref(),
            Some(b.as_str()),
            "leadership moves on"
        );
        assert_eq!(group.leave(&b, None), Ok(()));
        group.members_left(t1);
        assert_eq!(group.state, ClassicState::Empty);
        assert!(group.take_persist(), "an emptied group is persisted");
        assert_eq!(group.generation, 3);
        assert_eq!(group.leave(&b, None), Err(GroupError::UnknownMemberId));
    }

    #[test]
    fn a_static_member_back_under_a_new_id_keeps_its_assignment_and_fences_the_old_id() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", 0);
        let mut static_request = request("", &["range"]);
        static_request.group_instance_id = Some("instance-1".into());
        let JoinOutcome::Wait(answer) = group.join(static_request.clone(), &LIMITS, t0) else {
            panic!("static members join in one step")
        };
        group.expire(t0);
        let old = ready(answer).member_id;
        sync_leader(&mut group, &old, &[(&old, "mine")], t0);
        let JoinOutcome::PersistThenAnswer(back) = group.join(static_request, &LIMITS, t0) else {
            panic!("a stable group takes its static member back without a rebalance")
        };
        assert_ne!(back.member_id, old);
        assert_eq!(back.generation_id, 1);
        assert!(back.skip_assignment, "a replaced leader must not reassign");
        assert_eq!(group.state, ClassicState::Stable);
        assert_eq!(
            group.members[&back.member_id].assignment,
            Bytes::from("mine")
        );
        assert_eq!(
            group.heartbeat(&old, Some("instance-1"), 1, t0),
            Err(GroupError::FencedInstanceId)
        );
        assert_eq!(
            group.heartbeat(&back.member_id, Some("instance-1"), 1, t0),
            Ok(())
        );
    }

    #[test]
    fn a_full_group_refuses_new_members_and_pending_members_expire() {
        let t0 = Instant::now();
        let mut group = ClassicGroup::new("g", 0);
        for _ in 0..LIMITS.max_size {
            let JoinOutcome::Now(r) = group.join(request("", &["range"]), &LIMITS, t0) else {
                panic!()
            };
            assert_eq!(r.error_code, GroupError::MemberIdRequired.code().code());
        }
        let JoinOutcome::Now(full) = group.join(request("", &["range"]), &LIMITS, t0) else {
            panic!()
        };
        assert_eq!(
            full.error_code,
            GroupError::GroupMaxSizeReached.code().code()
        );
        // Members that never came back with their id are forgotten after a session.
        group.expire(t0 + Duration::from_secs(2));
        assert!(group.is_empty());
    }
}
