//! KIP-848 consumer groups: the member heartbeats (ConsumerGroupHeartbeat) and the
//! coordinator computes the assignment itself, then moves each member toward it without
//! ever giving a partition to two members at once.
//!
//! Three epochs, as in Kafka: the *group epoch* moves when membership or subscriptions
//! change; the *assignment epoch* is the group epoch the current target assignment was
//! computed for; each *member epoch* says which target the member has caught up with.
//! Reconciliation (Kafka's `CurrentAssignmentBuilder`): a member first gives up the
//! partitions its target no longer has (state `UnrevokedPartitions`, its epoch held
//! back), then takes the new ones as their previous owners release them
//! (`UnreleasedPartitions`), and is `Stable` once it owns exactly its target.
//!
//! Synchronous and owned by the coordinator shard; every change is returned as the
//! `__consumer_offsets` records Kafka writes for it, which the coordinator persists
//! before answering. Invariant: a partition is in at most one member's assigned or
//! pending-revocation set.

use super::assignor::{self, Assignment, AssignmentSpec};
use super::classic::ClientInfo;
use super::error::GroupError;
use super::records::{
    CoordinatorRecord, consumer_group_current_member_assignment_value as current_value,
    consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue,
    consumer_group_target_assignment_member_value as target_value,
};
use crate::config::{CONSUMER_HEARTBEAT_INTERVAL_MS, CONSUMER_SESSION_TIMEOUT_MS};
use crate::metadata::MetadataImage;
use crate::model::GroupEpoch;
use crate::protocol::generated::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use crate::protocol::generated::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions as OwnedTopicPartitions,
};
use crate::protocol::generated::consumer_group_heartbeat_response::{
    Assignment as ResponseAssignment, ConsumerGroupHeartbeatResponse,
    TopicPartitions as ResponseTopicPartitions,
};
use crate::protocol::generated::group_coordinator::{
    consumer_group_current_member_assignment_value::ConsumerGroupCurrentMemberAssignmentValue,
    consumer_group_metadata_value::ConsumerGroupMetadataValue,
    consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue,
    consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue,
};
use crate::protocol::wire::Uuid;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The broker settings of consumer groups (`group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerLimits {
    pub session_timeout_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// `group.consumer.assignors`: the first is the default.
    pub assignors: Vec<String>,
}

impl ConsumerLimits {
    /// These limits with a group's config overrides (`consumer.session.timeout.ms`,
    /// `consumer.heartbeat.interval.ms`) applied, as set on its GROUP resource.
    pub fn for_group(&self, overrides: Option<&BTreeMap<String, String>>) -> ConsumerLimits {
        let get = |key: &str, default: i32| {
            overrides
                .and_then(|o| o.get(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        ConsumerLimits {
            session_timeout_ms: get(CONSUMER_SESSION_TIMEOUT_MS, self.session_timeout_ms),
            heartbeat_interval_ms: get(CONSUMER_HEARTBEAT_INTERVAL_MS, self.heartbeat_interval_ms),
            ..self.clone()
        }
    }
}

/// Kafka's `MemberState`, with its record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

impl MemberState {
    fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    fn from_code(code: i8) -> MemberState {
        match code {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client: ClientInfo,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// `subscribed_topic_regex` compiled once, anchored (RE2J's `matches`: whole names).
    topic_regex: Option<regex::Regex>,
    pub server_assignor: Option<String>,
    pub member_epoch: GroupEpoch,
    pub previous_member_epoch: GroupEpoch,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    session_deadline: Instant,
    /// Set while the member must revoke partitions: past it, the member is fenced.
    revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    fn new(member_id: &str, now: Instant, limits: &ConsumerLimits) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client: ClientInfo::default(),
            rebalance_timeout_ms: -1,
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            topic_regex: None,
            server_assignor: None,
            member_epoch: GroupEpoch::JOIN,
            previous_member_epoch: GroupEpoch::JOIN,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline: now + session(limits),
            revocation_deadline: None,
        }
    }

    /// Subscribes to the topics a regular expression matches (`None` or empty: none).
    fn set_topic_regex(&mut self, pattern: Option<String>) {
        let pattern = pattern.filter(|p| !p.is_empty());
        self.topic_regex = pattern
            .as_deref()
            .and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok());
        self.subscribed_topic_regex = pattern;
    }

    fn metadata_value(&self) -> ConsumerGroupMemberMetadataValue {
        ConsumerGroupMemberMetadataValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client.client_id.clone(),
            client_host: self.client.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
            ..ConsumerGroupMemberMetadataValue::default()
        }
    }

    fn assignment_value(&self) -> ConsumerGroupCurrentMemberAssignmentValue {
        ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: self.member_epoch.0,
            previous_member_epoch: self.previous_member_epoch.0,
            state: self.state.code(),
            assigned_partitions: to_current_partitions(&self.assigned),
            partitions_pending_revocation: to_current_partitions(&self.pending_revocation),
            ..ConsumerGroupCurrentMemberAssignmentValue::default()
        }
    }
}

fn session(limits: &ConsumerLimits) -> Duration {
    Duration::from_millis(limits.session_timeout_ms.max(0) as u64)
}

fn to_current_partitions(assignment: &Assignment) -> Vec<current_value::TopicPartitions> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| current_value::TopicPartitions {
            topic_id: *topic,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

fn from_partitions<'a>(list: impl IntoIterator<Item = (Uuid, &'a [i32])>) -> Assignment {
    let mut out = Assignment::new();
    for (topic, partitions) in list {
        if !partitions.is_empty() {
            out.entry(topic)
                .or_default()
                .extend(partitions.iter().copied());
        }
    }
    out
}

fn owned_assignment(owned: &[OwnedTopicPartitions]) -> Assignment {
    from_partitions(owned.iter().map(|t| (t.topic_id, t.partitions.as_slice())))
}

fn overlaps(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(topic, ps)| b.get(topic).is_some_and(|other| !ps.is_disjoint(other)))
}

fn is_subset(a: &Assignment, of: &Assignment) -> bool {
    a.iter()
        .all(|(topic, ps)| ps.is_empty() || of.get(topic).is_some_and(|o| ps.is_subset(o)))
}

/// A heartbeat the group refused: why, and a message for the client.
#[derive(Debug, Clone)]
pub struct HeartbeatError {
    pub error: GroupError,
    pub message: String,
}

fn refuse(error: GroupError, message: impl Into<String>) -> HeartbeatError {
    HeartbeatError {
        error,
        message: message.into(),
    }
}

pub struct ConsumerGroup {
    pub group_epoch: GroupEpoch,
    pub assignment_epoch: GroupEpoch,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Instance id → member id of static members.
    static_members: HashMap<String, String>,
    /// Member id → target assignment at `assignment_epoch`.
    pub target: HashMap<String, Assignment>,
    /// The subscribed topics as the target was computed for: name → (id, partitions);
    /// unknown (`None`) right after a load, until the first heartbeat resolves them.
    subscribed: Option<BTreeMap<String, (Uuid, i32)>>,
    /// Wall-clock milliseconds since the group has had no member (offset retention).
    pub empty_since_ms: i64,
    limits: ConsumerLimits,
}

impl ConsumerGroup {
    pub fn new(limits: ConsumerLimits) -> ConsumerGroup {
        ConsumerGroup {
            group_epoch: GroupEpoch::ZERO,
            assignment_epoch: GroupEpoch::ZERO,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: HashMap::new(),
            subscribed: Some(BTreeMap::new()),
            empty_since_ms: crate::model::Timestamp::now().0,
            limits,
        }
    }

    /// Takes new limits (the group's config overrides changed): they apply from each
    /// member's next heartbeat.
    pub fn set_limits(&mut self, limits: ConsumerLimits) {
        self.limits = limits;
    }

    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.revocation_deadline])
            .flatten()
            .min()
    }

    /// Topic names the members subscribe to (regular expressions as resolved last).
    pub fn subscribed_topic_names(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().cloned())
            .chain(self.subscribed.iter().flat_map(|s| s.keys().cloned()))
            .collect()
    }

    /// The assignor the group runs: the one most members ask for, else the default.
    fn assignor(&self) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *votes.entry(name).or_default() += 1;
            }
        }
        let most = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, v)| *v == most && most > 0)
            .map(|(name, _)| name.to_string())
            .or_else(|| self.limits.assignors.first().cloned())
            .unwrap_or_else(|| assignor::UNIFORM.to_string())
    }

    // ---- the heartbeat ----

    /// Kafka's request checks, before the group is looked at.
    pub fn validate(
        request: &ConsumerGroupHeartbeatRequest,
        version: i16,
        limits: &ConsumerLimits,
    ) -> Result<(), HeartbeatError> {
        let invalid = |why: &str| Err(refuse(GroupError::InvalidRequest, why));
        let epoch = GroupEpoch(request.member_epoch);
        if (version >= 1 || epoch > GroupEpoch::JOIN || epoch == GroupEpoch::LEAVE)
            && request.member_id.is_empty()
        {
            return invalid("MemberId can't be empty.");
        }
        if request.group_id.is_empty() {
            return invalid("GroupId can't be empty.");
        }
        // The member's records key it by member id in an `i16`-length string.
        if request.member_id.len() > i16::MAX as usize {
            return invalid("MemberId is too long.");
        }
        if request.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if request.rack_id.as_deref() == Some("") {
            return invalid("RackId can't be empty.");
        }
        if epoch == GroupEpoch::JOIN {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request
                .topic_partitions
                .as_ref()
                .is_none_or(|t| !t.is_empty())
            {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none()
            {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when \
                     (re-)joining.",
                );
            }
        } else if epoch == GroupEpoch::LEAVE_STATIC {
            if request.instance_id.is_none() {
                return invalid("InstanceId can't be null.");
            }
        } else if epoch < GroupEpoch::LEAVE_STATIC {
            return invalid("MemberEpoch is invalid.");
        }
        if let Some(name) = &request.server_assignor
            && !limits.assignors.contains(name)
        {
            return Err(refuse(
                GroupError::UnsupportedAssignor,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    limits.assignors.join(", ")
                ),
            ));
        }
        if let Some(regex) = &request.subscribed_topic_regex
            && let Err(e) = regex::Regex::new(regex)
        {
            return Err(refuse(
                GroupError::InvalidRegularExpression,
                format!("SubscribedTopicRegex {regex} is invalid: {e}"),
            ));
        }
        Ok(())
    }

    /// One ConsumerGroupHeartbeat (validated by `validate`): join, leave, or keep the
    /// member's session and assignment moving. Returns the response and the records
    /// that make the change durable.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        request: &ConsumerGroupHeartbeatRequest,
        client: &ClientInfo,
        metadata: &MetadataImage,
        now: Instant,
    ) -> Result<(ConsumerGroupHeartbeatResponse, Vec<CoordinatorRecord>), HeartbeatError> {
        let mut records = Vec::new();
        let epoch = GroupEpoch(request.member_epoch);
        if epoch == GroupEpoch::LEAVE || epoch == GroupEpoch::LEAVE_STATIC {
            let member_id = self.leave(group_id, request, &mut records)?;
            return Ok((
                ConsumerGroupHeartbeatResponse {
                    member_id: Some(member_id),
                    member_epoch: epoch.0,
                    ..ConsumerGroupHeartbeatResponse::default()
                },
                records,
            ));
        }
        let member_id = if request.member_id.is_empty() {
            // Version 0: the coordinator names new members.
            Uuid::random().to_string()
        } else {
            request.member_id.clone()
        };
        let (previous, is_new) =
            self.member_for(group_id, &member_id, request, now, &mut records)?;

        // 1. The member's own metadata; a changed subscription moves the group epoch.
        let mut member = previous.clone();
        if let Some(instance) = &request.instance_id {
            member.instance_id = Some(instance.clone());
        }
        if let Some(rack) = &request.rack_id {
            member.rack_id = Some(rack.clone());
        }
        if request.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(assignor) = &request.server_assignor {
            member.server_assignor = Some(assignor.clone());
        }
        if let Some(names) = &request.subscribed_topic_names {
            member.subscribed_topic_names = names.clone();
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            member.set_topic_regex(Some(regex.clone()));
        }
        member.client = client.clone();
        let metadata_changed = is_new || member.metadata_value() != previous.metadata_value();
        if metadata_changed {
            records.push(CoordinatorRecord::ConsumerGroupMember {
                group: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(member.metadata_value()),
            });
        }
        let subscription_changed = is_new
            || member.subscribed_topic_names != previous.subscribed_topic_names
            || member.subscribed_topic_regex != previous.subscribed_topic_regex;
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), member);

        // 2. The subscribed topics as they are now: a new topic, or new partitions of a
        // subscribed one, also moves the group epoch.
        let subscribed = self.resolve_subscriptions(metadata);
        let mut bump = self.group_epoch == GroupEpoch::ZERO || subscription_changed;
        match &self.subscribed {
            Some(known) if *known == subscribed => {}
            // Right after a load the target stands as persisted.
            None if !bump => self.subscribed = Some(subscribed),
            _ => {
                self.subscribed = Some(subscribed);
                bump = true;
            }
        }
        if bump {
            self.bump_epoch(group_id, &mut records);
        }

        // 3. A new target assignment for the new group epoch.
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(group_id, &mut records);
        }

        // 4. Move the member toward its target.
        let owned = request.topic_partitions.as_deref().map(owned_assignment);
        self.reconcile(group_id, &member_id, owned.as_ref(), now, &mut records);

        let member = self
            .members
            .get_mut(&member_id)
            .expect("the member was inserted above");
        member.session_deadline = now + session(&self.limits);
        let full_request = epoch == GroupEpoch::JOIN
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.topic_partitions.is_some());
        let assignment =
            (full_request || member.assigned != previous.assigned).then(|| ResponseAssignment {
                topic_partitions: member
                    .assigned
                    .iter()
                    .filter(|(_, ps)| !ps.is_empty())
                    .map(|(topic, ps)| ResponseTopicPartitions {
                        topic_id: *topic,
                        partitions: ps.iter().copied().collect(),
                        ..ResponseTopicPartitions::default()
                    })
                    .collect(),
                ..ResponseAssignment::default()
            });
        Ok((
            ConsumerGroupHeartbeatResponse {
                member_id: Some(member_id),
                member_epoch: member.member_epoch.0,
                heartbeat_interval_ms: self.limits.heartbeat_interval_ms,
                assignment,
                ..ConsumerGroupHeartbeatResponse::default()
            },
            records,
        ))
    }

    /// The member a heartbeat speaks for, created when it joins; Kafka's epoch and
    /// static-membership checks. Returns the member as it was and whether it is new.
    fn member_for(
        &mut self,
        group_id: &str,
        member_id: &str,
        request: &ConsumerGroupHeartbeatRequest,
        now: Instant,
        records: &mut Vec<CoordinatorRecord>,
    ) -> Result<(ConsumerMember, bool), HeartbeatError> {
        let epoch = GroupEpoch(request.member_epoch);
        let full = || {
            refuse(
                GroupError::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.limits.max_size
                ),
            )
        };
        if let Some(instance) = &request.instance_id
            && let Some(owner) = self.static_members.get(instance).cloned()
        {
            let existing = self.members[&owner].clone();
            if owner == member_id {
                if epoch != GroupEpoch::JOIN {
                    check_epoch(&existing, epoch, request.topic_partitions.as_deref())?;
                }
                return Ok((existing, false));
            }
            if epoch != GroupEpoch::JOIN {
                return Err(refuse(
                    GroupError::FencedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance} was fenced by member {owner}."
                    ),
                ));
            }
            if existing.member_epoch != GroupEpoch::LEAVE_STATIC {
                return Err(refuse(
                    GroupError::UnreleasedInstanceId,
                    format!(
                        "Static member {member_id} with instance id {instance} cannot join the \
                         group because the instance id is owned by {owner} member."
                    ),
                ));
            }
            // The static member is back under a new member id: it takes over its old
            // partitions and target, and nobody else rebalances.
            let mut member = existing.clone();
            member.member_id = member_id.to_string();
            member.member_epoch = existing.previous_member_epoch;
            self.members.remove(&owner);
            if let Some(target) = self.target.remove(&owner) {
                self.target.insert(member_id.to_string(), target.clone());
                records.push(target_record(group_id, member_id, Some(&target)));
            }
            records.extend(member_tombstones(group_id, &owner));
            records.push(CoordinatorRecord::CurrentMemberAssignment {
                group: group_id.to_string(),
                member_id: member_id.to_string(),
                value: Some(member.assignment_value()),
            });
            member.session_deadline = now + session(&self.limits);
            self.members.insert(member_id.to_string(), member.clone());
            return Ok((member, true));
        }
        match self.members.get(member_id) {
            Some(existing) => {
                if epoch != GroupEpoch::JOIN {
                    check_epoch(existing, epoch, request.topic_partitions.as_deref())?;
                }
                Ok((existing.clone(), false))
            }
            None if epoch == GroupEpoch::JOIN => {
                if self.members.len() >= self.limits.max_size {
                    return Err(full());
                }
                Ok((ConsumerMember::new(member_id, now, &self.limits), true))
            }
            None => Err(refuse(
                GroupError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {group_id}."),
            )),
        }
    }

    fn leave(
        &mut self,
        group_id: &str,
        request: &ConsumerGroupHeartbeatRequest,
        records: &mut Vec<CoordinatorRecord>,
    ) -> Result<String, HeartbeatError> {
        let member_id = match &request.instance_id {
            Some(instance) => self.static_members.get(instance).cloned().ok_or_else(|| {
                refuse(
                    GroupError::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                )
            })?,
            None => request.member_id.clone(),
        };
        let Some(member) = self.members.get_mut(&member_id) else {
            return Err(refuse(
                GroupError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {group_id}."),
            ));
        };
        if request.instance_id.is_some() && member_id != request.member_id {
            return Err(refuse(
                GroupError::FencedInstanceId,
                format!(
                    "Static member {} was fenced by member {member_id}.",
                    request.member_id
                ),
            ));
        }
        if GroupEpoch(request.member_epoch) == GroupEpoch::LEAVE_STATIC {
            // Keeps its partitions for when it comes back within its session.
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = GroupEpoch::LEAVE_STATIC;
            records.push(CoordinatorRecord::CurrentMemberAssignment {
                group: group_id.to_string(),
                member_id: member_id.clone(),
                value: Some(member.assignment_value()),
            });
        } else {
            self.fence(group_id, &member_id, records);
        }
        Ok(member_id)
    }

    /// Removes a member (left, timed out, or fenced) and moves the group epoch.
    fn fence(&mut self, group_id: &str, member_id: &str, records: &mut Vec<CoordinatorRecord>) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        self.target.remove(member_id);
        records.extend(member_tombstones(group_id, member_id));
        if self.members.is_empty() {
            self.empty_since_ms = crate::model::Timestamp::now().0;
        }
        self.bump_epoch(group_id, records);
    }

    fn bump_epoch(&mut self, group_id: &str, records: &mut Vec<CoordinatorRecord>) {
        self.group_epoch = self.group_epoch.next();
        records.push(CoordinatorRecord::ConsumerGroupEpoch {
            group: group_id.to_string(),
            value: Some(ConsumerGroupMetadataValue {
                epoch: self.group_epoch.0,
                ..ConsumerGroupMetadataValue::default()
            }),
        });
    }

    /// Every subscribed topic that exists: name → (id, partitions).
    fn resolve_subscriptions(&self, metadata: &MetadataImage) -> BTreeMap<String, (Uuid, i32)> {
        let mut out = BTreeMap::new();
        let regexes: Vec<&regex::Regex> = self
            .members
            .values()
            .filter_map(|m| m.topic_regex.as_ref())
            .collect();
        for member in self.members.values() {
            for name in &member.subscribed_topic_names {
                if let Some(topic) = metadata.topic(name) {
                    out.insert(name.clone(), (topic.id, topic.partitions));
                }
            }
        }
        if !regexes.is_empty() {
            for topic in metadata.topics().filter(|t| !t.internal) {
                if regexes.iter().any(|r| r.is_match(&topic.name)) {
                    out.insert(topic.name.clone(), (topic.id, topic.partitions));
                }
            }
        }
        out
    }

    /// The topic ids one member subscribes to, among the resolved subscriptions.
    fn member_topics(&self, member: &ConsumerMember) -> BTreeSet<Uuid> {
        self.subscribed
            .iter()
            .flatten()
            .filter(|(name, _)| {
                member.subscribed_topic_names.contains(name)
                    || member
                        .topic_regex
                        .as_ref()
                        .is_some_and(|r| r.is_match(name))
            })
            .map(|(_, (id, _))| *id)
            .collect()
    }

    fn compute_target(&mut self, group_id: &str, records: &mut Vec<CoordinatorRecord>) {
        let spec = AssignmentSpec {
            members: self
                .members
                .values()
                .map(|m| (m.member_id.clone(), self.member_topics(m)))
                .collect(),
            topics: self
                .subscribed
                .iter()
                .flat_map(|s| s.values().copied())
                .collect(),
            previous: &self.target,
        };
        let target = assignor::assign(&self.assignor(), &spec);
        for (member_id, assignment) in &target {
            if self.target.get(member_id) != Some(assignment) {
                records.push(target_record(group_id, member_id, Some(assignment)));
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        records.push(CoordinatorRecord::TargetAssignmentEpoch {
            group: group_id.to_string(),
            value: Some(ConsumerGroupTargetAssignmentMetadataValue {
                assignment_epoch: self.assignment_epoch.0,
                ..ConsumerGroupTargetAssignmentMetadataValue::default()
            }),
        });
    }

    /// Partitions other members hold (assigned or still to revoke).
    fn held_by_others(&self, member_id: &str) -> Assignment {
        let mut held = Assignment::new();
        for member in self.members.values().filter(|m| m.member_id != member_id) {
            for (topic, ps) in member
                .assigned
                .iter()
                .chain(member.pending_revocation.iter())
            {
                held.entry(*topic).or_default().extend(ps.iter().copied());
            }
        }
        held
    }

    /// Kafka's `CurrentAssignmentBuilder`: the member's next assignment on the way to
    /// its target; `owned` is what the member says it owns (`None`: unchanged).
    fn reconcile(
        &mut self,
        group_id: &str,
        member_id: &str,
        owned: Option<&Assignment>,
        now: Instant,
        records: &mut Vec<CoordinatorRecord>,
    ) {
        let member = &self.members[member_id];
        let target_epoch = self.assignment_epoch;
        let proceed = match member.state {
            MemberState::Stable => member.member_epoch != target_epoch,
            // Held back until the member no longer owns what it must give up.
            MemberState::UnrevokedPartitions => {
                owned.is_some_and(|owned| !overlaps(owned, &member.pending_revocation))
            }
            MemberState::UnreleasedPartitions => true,
        };
        if !proceed || member.member_epoch == GroupEpoch::LEAVE_STATIC {
            return;
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let held = self.held_by_others(member_id);
        let member = &self.members[member_id];
        let mut keep = Assignment::new();
        let mut revoke = Assignment::new();
        let mut take = Assignment::new();
        let mut unreleased = false;
        for (topic, ps) in &member.assigned {
            let wanted = target.get(topic);
            for &p in ps {
                let into = if wanted.is_some_and(|w| w.contains(&p)) {
                    &mut keep
                } else {
                    &mut revoke
                };
                into.entry(*topic).or_default().insert(p);
            }
        }
        for (topic, ps) in &target {
            for &p in ps {
                let mine = member.assigned.get(topic).is_some_and(|a| a.contains(&p));
                if mine {
                    continue;
                }
                if held.get(topic).is_some_and(|h| h.contains(&p)) {
                    unreleased = true;
                } else {
                    take.entry(*topic).or_default().insert(p);
                }
            }
        }
        let mut next = member.clone();
        if !revoke.is_empty() {
            next.assigned = keep;
            next.pending_revocation = revoke;
            next.state = MemberState::UnrevokedPartitions;
            if member.state != MemberState::UnrevokedPartitions {
                let timeout = Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64);
                next.revocation_deadline = Some(now + timeout);
            }
        } else {
            for (topic, ps) in take {
                keep.entry(topic).or_default().extend(ps);
            }
            next.assigned = keep;
            next.pending_revocation = Assignment::new();
            next.revocation_deadline = None;
            if next.member_epoch != target_epoch {
                next.previous_member_epoch = next.member_epoch;
                next.member_epoch = target_epoch;
            }
            next.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
        }
        let changed = next.member_epoch != member.member_epoch
            || next.state != member.state
            || next.assigned != member.assigned
            || next.pending_revocation != member.pending_revocation;
        if changed {
            records.push(CoordinatorRecord::CurrentMemberAssignment {
                group: group_id.to_string(),
                member_id: member_id.to_string(),
                value: Some(next.assignment_value()),
            });
        }
        self.members.insert(member_id.to_string(), next);
    }

    // ---- timers, offsets, admin ----

    /// Fences members whose session or revocation deadline passed.
    pub fn expire(&mut self, group_id: &str, now: Instant) -> Vec<CoordinatorRecord> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline <= now || m.revocation_deadline.is_some_and(|d| d <= now)
            })
            .map(|m| m.member_id.clone())
            .collect();
        let mut records = Vec::new();
        for member_id in expired {
            tracing::info!("group {group_id}: member {member_id} timed out and is fenced");
            self.fence(group_id, &member_id, &mut records);
        }
        records
    }

    /// OffsetCommit against a consumer group: the member must exist at that epoch
    /// (a commit with no member and a negative epoch is an admin's, allowed when empty).
    pub fn check_offset_commit(
        &self,
        version: i16,
        member_id: &str,
        epoch: GroupEpoch,
    ) -> Result<(), GroupError> {
        if epoch < GroupEpoch::ZERO && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if version < 9 {
            return Err(GroupError::UnsupportedVersion);
        }
        if epoch != member.member_epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// TxnOffsetCommit's checks, Kafka's for a transactional commit: anyone may commit
    /// to an empty group, and a commit naming no member and no epoch (v0–v2) is
    /// accepted; otherwise the member must exist at that epoch (an older epoch is an
    /// illegal generation, as Kafka answers a transactional commit).
    pub fn check_txn_offset_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        epoch: GroupEpoch,
    ) -> Result<(), GroupError> {
        let anonymous = epoch < GroupEpoch::ZERO && member_id.is_empty() && instance.is_none();
        if (epoch < GroupEpoch::ZERO && self.members.is_empty()) || anonymous {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if epoch > member.member_epoch {
            Err(GroupError::FencedMemberEpoch)
        } else if epoch < member.member_epoch {
            Err(GroupError::IllegalGeneration)
        } else {
            Ok(())
        }
    }

    /// OffsetFetch v9+ naming a member: it must exist at that epoch.
    pub fn check_offset_fetch(&self, member_id: &str, epoch: GroupEpoch) -> Result<(), GroupError> {
        if epoch < GroupEpoch::ZERO && member_id.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if epoch != member.member_epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The records that delete the group's state (its offsets aside).
    pub fn tombstones(&self, group_id: &str) -> Vec<CoordinatorRecord> {
        let mut out: Vec<CoordinatorRecord> = self
            .members
            .keys()
            .flat_map(|m| member_tombstones(group_id, m))
            .collect();
        out.push(CoordinatorRecord::TargetAssignmentEpoch {
            group: group_id.to_string(),
            value: None,
        });
        out.push(CoordinatorRecord::ConsumerGroupEpoch {
            group: group_id.to_string(),
            value: None,
        });
        out
    }

    pub fn describe(&self, group_id: &str, metadata: &MetadataImage) -> DescribedGroup {
        let describe = |assignment: &Assignment| DescribedAssignment {
            topic_partitions: assignment
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(topic, ps)| DescribedTopicPartitions {
                    topic_id: *topic,
                    topic_name: metadata
                        .topic_by_id(topic)
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                    partitions: ps.iter().copied().collect(),
                    ..DescribedTopicPartitions::default()
                })
                .collect(),
            ..DescribedAssignment::default()
        };
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: self.state_name().to_string(),
            group_epoch: self.group_epoch.0,
            assignment_epoch: self.assignment_epoch.0,
            assignor_name: self.assignor(),
            members: self
                .members
                .values()
                .map(|m| DescribedMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch.0,
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    subscribed_topic_names: m.subscribed_topic_names.clone(),
                    subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                    assignment: describe(&m.assigned),
                    target_assignment: describe(
                        &self.target.get(&m.member_id).cloned().unwrap_or_default(),
                    ),
                    ..DescribedMember::default()
                })
                .collect(),
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        }
    }
}

/// Kafka's member epoch check: a member ahead of the coordinator, or behind it other
/// than by one lost response, must rejoin.
fn check_epoch(
    member: &ConsumerMember,
    epoch: GroupEpoch,
    owned: Option<&[OwnedTopicPartitions]>,
) -> Result<(), HeartbeatError> {
    let fenced = || {
        refuse(
            GroupError::FencedMemberEpoch,
            format!(
                "The consumer group member has a member epoch ({epoch}) other than the one \
                 known by the group coordinator ({}). The member must abandon all its \
                 partitions and rejoin.",
                member.member_epoch
            ),
        )
    };
    if epoch > member.member_epoch {
        return Err(fenced());
    }
    if epoch < member.member_epoch {
        let lost_response = epoch == member.previous_member_epoch
            && owned.is_some_and(|o| is_subset(&owned_assignment(o), &member.assigned));
        if !lost_response {
            return Err(fenced());
        }
    }
    Ok(())
}

fn target_record(
    group_id: &str,
    member_id: &str,
    target: Option<&Assignment>,
) -> CoordinatorRecord {
    CoordinatorRecord::TargetAssignmentMember {
        group: group_id.to_string(),
        member_id: member_id.to_string(),
        value: target.map(|t| ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: t
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(topic, ps)| target_value::TopicPartition {
                    topic_id: *topic,
                    partitions: ps.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..ConsumerGroupTargetAssignmentMemberValue::default()
        }),
    }
}

fn member_tombstones(group_id: &str, member_id: &str) -> Vec<CoordinatorRecord> {
    vec![
        CoordinatorRecord::CurrentMemberAssignment {
            group: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
        target_record(group_id, member_id, None),
        CoordinatorRecord::ConsumerGroupMember {
            group: group_id.to_string(),
            member_id: member_id.to_string(),
            value: None,
        },
    ]
}

/// A consumer group's records as replaying its offsets partition found them.
#[derive(Default)]
pub struct Replayed {
    epoch: Option<i32>,
    assignment_epoch: i32,
    members: BTreeMap<String, ConsumerGroupMemberMetadataValue>,
    targets: BTreeMap<String, Assignment>,
    current: BTreeMap<String, ConsumerGroupCurrentMemberAssignmentValue>,
}

impl Replayed {
    pub fn apply(&mut self, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::ConsumerGroupEpoch { value, .. } => {
                self.epoch = value.map(|v| v.epoch);
            }
            CoordinatorRecord::TargetAssignmentEpoch { value, .. } => {
                self.assignment_epoch = value.map_or(0, |v| v.assignment_epoch);
            }
            CoordinatorRecord::ConsumerGroupMember {
                member_id, value, ..
            } => match value {
                Some(v) => {
                    self.members.insert(member_id, v);
                }
                None => {
                    self.members.remove(&member_id);
                }
            },
            CoordinatorRecord::TargetAssignmentMember {
                member_id, value, ..
            } => match value {
                Some(v) => {
                    let target = from_partitions(
                        v.topic_partitions
                            .iter()
                            .map(|t| (t.topic_id, t.partitions.as_slice())),
                    );
                    self.targets.insert(member_id, target);
                }
                None => {
                    self.targets.remove(&member_id);
                }
            },
            CoordinatorRecord::CurrentMemberAssignment {
                member_id, value, ..
            } => match value {
                Some(v) => {
                    self.current.insert(member_id, v);
                }
                None => {
                    self.current.remove(&member_id);
                }
            },
            _ => {}
        }
    }

    /// The group, if its records say one exists. Members must heartbeat within a
    /// session timeout of the load.
    pub fn build(self, limits: &ConsumerLimits, now: Instant) -> Option<ConsumerGroup> {
        let epoch = self.epoch?;
        let mut group = ConsumerGroup::new(limits.clone());
        group.group_epoch = GroupEpoch(epoch);
        group.assignment_epoch = GroupEpoch(self.assignment_epoch);
        group.target = self.targets.into_iter().collect();
        for (member_id, value) in self.members {
            let mut member = ConsumerMember::new(&member_id, now, limits);
            member.instance_id = value.instance_id;
            member.rack_id = value.rack_id;
            member.client = ClientInfo {
                client_id: value.client_id,
                client_host: value.client_host,
            };
            member.rebalance_timeout_ms = value.rebalance_timeout_ms;
            member.subscribed_topic_names = value.subscribed_topic_names;
            member.set_topic_regex(value.subscribed_topic_regex);
            member.server_assignor = value.server_assignor;
            if let Some(current) = self.current.get(&member_id) {
                member.member_epoch = GroupEpoch(current.member_epoch);
                member.previous_member_epoch = GroupEpoch(current.previous_member_epoch);
                member.state = MemberState::from_code(current.state);
                member.assigned = from_partitions(
                    current
                        .assigned_partitions
                        .iter()
                        .map(|t| (t.topic_id, t.partitions.as_slice())),
                );
                member.pending_revocation = from_partitions(
                    current
                        .partitions_pending_revocation
                        .iter()
                        .map(|t| (t.topic_id, t.partitions.as_slice())),
                );
            }
            if let Some(instance) = &member.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), member_id.clone());
            }
            group.members.insert(member_id, member);
        }
        // The subscription as the target was computed for is not persisted: the first
        // heartbeat resolves it again.
        group.subscribed = None;
        Some(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::metadata::controller::{Controller, NewTopic};
    use shards::ShardId;

    fn limits() -> ConsumerLimits {
        ConsumerLimits {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: 10,
            assignors: vec!["uniform".into(), "range".into()],
        }
    }

    /// A shard's metadata with topic `t` of six partitions.
    fn metadata() -> MetadataImage {
        let config = BrokerConfig::defaults();
        let mut controller = Controller::new(&config, 1);
        let created = controller.validate_create(&[NewTopic {
            name: "t".into(),
            num_partitions: 6,
            replication_factor: -1,
            ..NewTopic::default()
        }]);
        let delta = controller.commit(vec![created[0].clone().unwrap()], Vec::new());
        let mut image = MetadataImage::new(
            ShardId(0),
            "cluster".into(),
            1,
            config.topic_defaults.clone(),
        );
        image.apply(&delta).unwrap();
        image
    }

    fn join(member: &str) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            topic_partitions: Some(Vec::new()),
            ..ConsumerGroupHeartbeatRequest::default()
        }
    }

    fn beat(
        member: &str,
        epoch: i32,
        owned: Option<&[i32]>,
        topic: Uuid,
    ) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: member.into(),
            member_epoch: epoch,
            topic_partitions: owned.map(|ps| {
                vec![OwnedTopicPartitions {
                    topic_id: topic,
                    partitions: ps.to_vec(),
                    ..OwnedTopicPartitions::default()
                }]
            }),
            ..ConsumerGroupHeartbeatRequest::default()
        }
    }

    fn partitions(response: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
        response.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().copied())
                .collect()
        })
    }

    /// No partition is ever assigned (or pending revocation) to two members.
    fn assert_exclusive(group: &ConsumerGroup) {
        let mut seen = BTreeSet::new();
        for member in group.members.values() {
            for (topic, ps) in member.assigned.iter().chain(&member.pending_revocation) {
                for p in ps {
                    assert!(seen.insert((*topic, *p)), "{topic}-{p} held twice");
                }
            }
        }
    }

    #[test]
    fn a_joining_member_gets_partitions_only_after_their_owner_revoked_them() {
        let image = metadata();
        let topic = image.topic("t").unwrap().id;
        let client = ClientInfo::default();
        let now = Instant::now();
        let mut group = ConsumerGroup::new(limits());
        let heartbeat = |group: &mut ConsumerGroup, request: ConsumerGroupHeartbeatRequest| {
            ConsumerGroup::validate(&request, 1, &limits()).unwrap();
            let (response, records) = group
                .heartbeat("g", &request, &client, &image, now)
                .unwrap();
            assert_exclusive(group);
            (response, records)
        };

        let (a, records) = heartbeat(&mut group, join("a"));
        assert_eq!(a.member_epoch, 1);
        assert_eq!(partitions(&a), Some(vec![0, 1, 2, 3, 4, 5]));
        assert!(
            records
                .iter()
                .any(|r| matches!(r, CoordinatorRecord::ConsumerGroupEpoch { .. }))
        );
        assert_eq!(group.state_name(), "Stable");

        // b joins: the target splits 3/3, but a still owns everything.
        let (b, _) = heartbeat(&mut group, join("b"));
        assert_eq!(b.member_epoch, 2);
        assert_eq!(partitions(&b), Some(vec![]));
        assert_eq!(group.state_name(), "Reconciling");

        // a is told to keep three (its epoch held back until it revokes the others).
        let all = [0, 1, 2, 3, 4, 5];
        let (a, _) = heartbeat(&mut group, beat("a", 1, Some(&all), topic));
        assert_eq!(a.member_epoch, 1);
        let kept = partitions(&a).unwrap();
        assert_eq!(kept.len(), 3);
        // b still waits.
        let (b, _) = heartbeat(&mut group, beat("b", 2, Some(&[]), topic));
        assert_eq!(b.assignment, None, "nothing changed for b");
        // a revoked: it moves to epoch 2, and b gets the other three.
        let (a, _) = heartbeat(&mut group, beat("a", 1, Some(&kept), topic));
        assert_eq!(a.member_epoch, 2);
        let (b, _) = heartbeat(&mut group, beat("b", 2, None, topic));
        let given = partitions(&b).unwrap();
        assert_eq!(given.len(), 3);
        assert!(given.iter().all(|p| !kept.contains(p)));
        assert_eq!(group.state_name(), "Stable");

        // Epoch checks: ahead is fenced; an unknown member must rejoin.
        let request = beat("a", 9, None, topic);
        let error = group
            .heartbeat("g", &request, &client, &image, now)
            .unwrap_err();
        assert_eq!(error.error, GroupError::FencedMemberEpoch);
        let request = beat("zed", 2, None, topic);
        let error = group
            .heartbeat("g", &request, &client, &image, now)
            .unwrap_err();
        assert_eq!(error.error, GroupError::UnknownMemberId);

        // b leaves: a gets everything back.
        let leave = beat("b", GroupEpoch::LEAVE.0, None, topic);
        let (left, _) = heartbeat(&mut group, leave);
        assert_eq!(left.member_epoch, GroupEpoch::LEAVE.0);
        let (a, _) = heartbeat(&mut group, beat("a", 2, Some(&kept), topic));
        assert_eq!(partitions(&a), Some(vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn a_regular_expression_subscribes_to_the_whole_names_it_matches() {
        let image = metadata();
        let mut group = ConsumerGroup::new(limits());
        let join_regex = |pattern: &str| ConsumerGroupHeartbeatRequest {
            subscribed_topic_names: None,
            subscribed_topic_regex: Some(pattern.into()),
            ..join("m")
        };
        let client = ClientInfo::default();
        let now = Instant::now();
        let (partial, _) = group
            .heartbeat("g", &join_regex(""), &client, &image, now)
            .unwrap();
        assert_eq!(
            partitions(&partial),
            Some(vec![]),
            "an empty regex subscribes to nothing"
        );
        let mut group = ConsumerGroup::new(limits());
        let (none, _) = group
            .heartbeat("g", &join_regex("x|t-more"), &client, &image, now)
            .unwrap();
        assert_eq!(
            partitions(&none),
            Some(vec![]),
            "'t' is not matched by a part of a pattern"
        );
        let mut group = ConsumerGroup::new(limits());
        let (all, _) = group
            .heartbeat("g", &join_regex("[st]"), &client, &image, now)
            .unwrap();
        assert_eq!(partitions(&all), Some(vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn invalid_heartbeats_get_kafkas_errors() {
        let limits = limits();
        let check = |request: ConsumerGroupHeartbeatRequest, version: i16| {
            ConsumerGroup::validate(&request, version, &limits)
                .unwrap_err()
                .error
        };
        assert_eq!(
            check(join(""), 1),
            GroupError::InvalidRequest,
            "v1 needs a member id"
        );
        assert!(ConsumerGroup::validate(&join(""), 0, &limits).is_ok());
        let mut no_timeout = join("a");
        no_timeout.rebalance_timeout_ms = -1;
        assert_eq!(check(no_timeout, 1), GroupError::InvalidRequest);
        let mut owning = join("a");
        owning.topic_partitions = Some(vec![OwnedTopicPartitions::default()]);
        assert_eq!(check(owning, 1), GroupError::InvalidRequest);
        let mut assignor = join("a");
        assignor.server_assignor = Some("sticky".into());
        assert_eq!(check(assignor, 1), GroupError::UnsupportedAssignor);
        let mut regex = join("a");
        regex.subscribed_topic_regex = Some("(".into());
        assert_eq!(check(regex, 1), GroupError::InvalidRegularExpression);
    }
}
