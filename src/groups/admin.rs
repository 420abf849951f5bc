//! The group APIs that look at groups from outside: DescribeGroups, ListGroups and
//! DeleteGroups, on the coordinator shard of each group (ListGroups asks every
//! coordinator). A group of either protocol is listed, and deleted once empty;
//! DescribeGroups shows a KIP-848 group as Dead (ConsumerGroupDescribe, in
//! `consumer_api`, describes those). Invariant: a deleted group is gone from memory
//! before its tombstones are written, so no request finds it half deleted.

use super::classic::ClassicState;
use super::{GroupCoordinator, GroupError, GroupKind, response_code};
use crate::protocol::generated::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use crate::protocol::generated::list_groups_response::ListedGroup;

impl GroupCoordinator {
    pub fn describe(&self, group_id: &str) -> DescribedGroup {
        let dead = |result: Result<(), GroupError>| DescribedGroup {
            error_code: response_code(result),
            group_id: group_id.to_string(),
            group_state: ClassicState::Dead.to_string(),
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        };
        if let Err(e) = self.coordinates(group_id) {
            return dead(Err(e));
        }
        let Some(slot) = self.slot(group_id) else {
            return dead(Ok(()));
        };
        let group = slot.group.borrow();
        let GroupKind::Classic(classic) = &group.kind else {
            return dead(Ok(()));
        };
        let stable = classic.state == ClassicState::Stable;
        let protocol = classic.protocol_name.clone().unwrap_or_default();
        DescribedGroup {
            error_code: 0,
            group_id: group_id.to_string(),
            group_state: classic.state.to_string(),
            protocol_type: classic.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: classic
                .members
                .values()
                .map(|m| DescribedGroupMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client.client_id.clone(),
                    client_host: m.client.client_host.clone(),
                    member_metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Default::default()
                    },
                    member_assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Default::default()
                    },
                    ..DescribedGroupMember::default()
                })
                .collect(),
            authorized_operations: i32::MIN,
            ..DescribedGroup::default()
        }
    }

    pub async fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        self.coordinates(group_id)?;
        let Some(slot) = self.slot(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let (partition, records) = {
            let group = slot.group.borrow();
            let empty = match &group.kind {
                GroupKind::Classic(g) => g.state == ClassicState::Empty && g.is_empty(),
                GroupKind::Consumer(g) => g.members.is_empty(),
            };
            if !empty {
                return Err(GroupError::NonEmptyGroup);
            }
            (group.partition, group.tombstones())
        };
        self.remove(group_id);
        self.persist(partition, &records).await
    }

    pub fn list(&self, states: &[String], types: &[String]) -> Vec<ListedGroup> {
        let wanted = |filter: &[String], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        let mut listed: Vec<ListedGroup> = self
            .groups
            .borrow()
            .values()
            .filter_map(|slot| {
                let group = slot.group.borrow();
                let state = group.state_name();
                (wanted(states, &state) && wanted(types, group.type_name())).then(|| ListedGroup {
                    group_id: group.id.clone(),
                    protocol_type: group.protocol_type(),
                    group_state: state,
                    group_type: group.type_name().to_string(),
                    ..ListedGroup::default()
                })
            })
            .collect();
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listed
    }
}
