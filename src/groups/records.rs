//! The records group coordinators write to `__consumer_offsets`, in Kafka's formats
//! (`kafka-message-specs/group-coordinator`): a record key is an int16 version, which
//! says what the record is, followed by the key struct; a value is an int16 version
//! followed by the value struct; a null value is a tombstone for its key.
//!
//! | key version | record |
//! |---|---|
//! | 0, 1 | committed offset (`OffsetCommitKey` / `OffsetCommitValue`) |
//! | 2 | classic group metadata (`GroupMetadataKey` / `GroupMetadataValue`) |
//! | 3 | consumer group epoch (`ConsumerGroupMetadata*`) |
//! | 4 | consumer group subscription metadata (read and ignored) |
//! | 5 | consumer group member (`ConsumerGroupMemberMetadata*`) |
//! | 6 | consumer group target assignment epoch (`ConsumerGroupTargetAssignmentMetadata*`) |
//! | 7 | a member's target assignment (`ConsumerGroupTargetAssignmentMember*`) |
//! | 8 | a member's current assignment (`ConsumerGroupCurrentMemberAssignment*`) |
//!
//! Later key versions (share groups) are skipped when a partition is replayed.

use crate::model::TopicPartition;
use crate::protocol::codec::{Decodable, DecodeError, Encodable, EncodeError, Encoder};
use crate::protocol::generated::group_coordinator::{
    consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey,
    consumer_group_current_member_assignment_value::ConsumerGroupCurrentMemberAssignmentValue,
    consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey,
    consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue,
    consumer_group_metadata_key::ConsumerGroupMetadataKey,
    consumer_group_metadata_value::ConsumerGroupMetadataValue,
    consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey,
    consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue,
    consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey,
    consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue,
    group_metadata_key::GroupMetadataKey, group_metadata_value::GroupMetadataValue,
    offset_commit_key::OffsetCommitKey, offset_commit_value::OffsetCommitValue,
};
use crate::protocol::wire::Reader;
use bytes::Bytes;

pub use crate::protocol::generated::group_coordinator::{
    consumer_group_current_member_assignment_value, consumer_group_member_metadata_value,
    consumer_group_target_assignment_member_value, group_metadata_value,
};

/// The value versions corelog writes, as Kafka 4.x writes them.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Kafka writes version 1 when the commit carries an explicit expire timestamp.
const OFFSET_COMMIT_VALUE_WITH_EXPIRY_VERSION: i16 = 1;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// One record of `__consumer_offsets`; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordinatorRecord {
    Offset {
        group: String,
        tp: TopicPartition,
        value: Option<OffsetCommitValue>,
    },
    ClassicGroup {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    ConsumerGroupEpoch {
        group: String,
        value: Option<ConsumerGroupMetadataValue>,
    },
    ConsumerGroupMember {
        group: String,
        member_id: String,
        value: Option<ConsumerGroupMemberMetadataValue>,
    },
    TargetAssignmentEpoch {
        group: String,
        value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    },
    TargetAssignmentMember {
        group: String,
        member_id: String,
        value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    },
    CurrentMemberAssignment {
        group: String,
        member_id: String,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    },
    /// A record this coordinator does not use (subscription metadata, share groups).
    Ignored { key_version: i16 },
}

fn encode(version: i16, message: &impl Encodable) -> Result<Bytes, EncodeError> {
    let mut w = Encoder::new();
    w.put_i16(version);
    message.encode(&mut w, version)?;
    Ok(w.into_bytes())
}

fn encode_value(
    version: i16,
    value: &Option<impl Encodable>,
) -> Result<Option<Bytes>, EncodeError> {
    value.as_ref().map(|v| encode(version, v)).transpose()
}

fn decode_value<T: Decodable>(value: Option<Bytes>) -> Result<Option<T>, DecodeError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut r = Reader::new(value);
    let version = r.i16()?;
    T::decode(&mut r, version).map(Some)
}

impl CoordinatorRecord {
    /// The group the record belongs to (`None` for an ignored record).
    pub fn group(&self) -> Option<&str> {
        match self {
            CoordinatorRecord::Offset { group, .. }
            | CoordinatorRecord::ClassicGroup { group, .. }
            | CoordinatorRecord::ConsumerGroupEpoch { group, .. }
            | CoordinatorRecord::ConsumerGroupMember { group, .. }
            | CoordinatorRecord::TargetAssignmentEpoch { group, .. }
            | CoordinatorRecord::TargetAssignmentMember { group, .. }
            | CoordinatorRecord::CurrentMemberAssignment { group, .. } => Some(group),
            CoordinatorRecord::Ignored { .. } => None,
        }
    }

    /// The record's key and value (`None`: a tombstone) as they go into a batch. Fails
    /// when a string does not fit its field (e.g. a group id longer than `i16::MAX`
    /// bytes); handlers refuse such values first, so this is a last line of defence.
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), EncodeError> {
        Ok(match self {
            CoordinatorRecord::Offset { group, tp, value } => {
                let key = OffsetCommitKey {
                    group: group.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    ..Default::default()
                };
                let version = match value {
                    Some(v) if v.expire_timestamp >= 0 => OFFSET_COMMIT_VALUE_WITH_EXPIRY_VERSION,
                    _ => OFFSET_COMMIT_VALUE_VERSION,
                };
                (encode(1, &key)?, encode_value(version, value)?)
            }
            CoordinatorRecord::ClassicGroup { group, value } => {
                let key = GroupMetadataKey {
                    group: group.clone(),
                    ..Default::default()
                };
                (
                    encode(2, &key)?,
                    encode_value(GROUP_METADATA_VALUE_VERSION, value)?,
                )
            }
            CoordinatorRecord::ConsumerGroupEpoch { group, value } => {
                let key = ConsumerGroupMetadataKey {
                    group_id: group.clone(),
                    ..Default::default()
                };
                (encode(3, &key)?, encode_value(0, value)?)
            }
            CoordinatorRecord::ConsumerGroupMember {
                group,
                member_id,
                value,
            } => {
                let key = ConsumerGroupMemberMetadataKey {
                    group_id: group.clone(),
                    member_id: member_id.clone(),
                    ..Default::default()
                };
                (encode(5, &key)?, encode_value(0, value)?)
            }
            CoordinatorRecord::TargetAssignmentEpoch { group, value } => {
                let key = ConsumerGroupTargetAssignmentMetadataKey {
                    group_id: group.clone(),
                    ..Default::default()
                };
                (encode(6, &key)?, encode_value(0, value)?)
            }
            CoordinatorRecord::TargetAssignmentMember {
                group,
                member_id,
                value,
            } => {
                let key = ConsumerGroupTargetAssignmentMemberKey {
                    group_id: group.clone(),
                    member_id: member_id.clone(),
                    ..Default::default()
                };
                (encode(7, &key)?, encode_value(0, value)?)
            }
            CoordinatorRecord::CurrentMemberAssignment {
                group,
                member_id,
                value,
            } => {
                let key = ConsumerGroupCurrentMemberAssignmentKey {
                    group_id: group.clone(),
                    member_id: member_id.clone(),
                    ..Default::default()
                };
                (encode(8, &key)?, encode_value(0, value)?)
            }
            CoordinatorRecord::Ignored { key_version } => {
                panic!("an ignored record (key version {key_version}) is never written")
            }
        })
    }

    /// Reads one record of the partition; an error means the record is not one Kafka's
    /// formats allow (the caller skips it and says so).
    pub fn decode(key: Bytes, value: Option<Bytes>) -> Result<CoordinatorRecord, DecodeError> {
        let mut r = Reader::new(key);
        let key_version = r.i16()?;
        Ok(match key_version {
            0 | 1 => {
                let key = OffsetCommitKey::decode(&mut r, key_version)?;
                CoordinatorRecord::Offset {
                    group: key.group,
                    tp: TopicPartition::new(key.topic, key.partition),
                    value: decode_value(value)?,
                }
            }
            2 => CoordinatorRecord::ClassicGroup {
                group: GroupMetadataKey::decode(&mut r, 2)?.group,
                value: decode_value(value)?,
            },
            3 => CoordinatorRecord::ConsumerGroupEpoch {
                group: ConsumerGroupMetadataKey::decode(&mut r, 3)?.group_id,
                value: decode_value(value)?,
            },
            5 => {
                let key = ConsumerGroupMemberMetadataKey::decode(&mut r, 5)?;
                CoordinatorRecord::ConsumerGroupMember {
                    group: key.group_id,
                    member_id: key.member_id,
                    value: decode_value(value)?,
                }
            }
            6 => CoordinatorRecord::TargetAssignmentEpoch {
                group: ConsumerGroupTargetAssignmentMetadataKey::decode(&mut r, 6)?.group_id,
                value: decode_value(value)?,
            },
            7 => {
                let key = ConsumerGroupTargetAssignmentMemberKey::decode(&mut r, 7)?;
                CoordinatorRecord::TargetAssignmentMember {
                    group: key.group_id,
                    member_id: key.member_id,
                    value: decode_value(value)?,
                }
            }
            8 => {
                let key = ConsumerGroupCurrentMemberAssignmentKey::decode(&mut r, 8)?;
                CoordinatorRecord::CurrentMemberAssignment {
                    group: key.group_id,
                    member_id: key.member_id,
                    value: decode_value(value)?,
                }
            }
            other => CoordinatorRecord::Ignored { key_version: other },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: CoordinatorRecord) {
        let (key, value) = record.encode().unwrap();
        assert_eq!(CoordinatorRecord::decode(key, value).unwrap(), record);
    }

    #[test]
    fn every_record_kind_round_trips_and_tombstones_stay_tombstones() {
        let offset = OffsetCommitValue {
            offset: 42,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: -1,
            ..Default::default()
        };
        round_trip(CoordinatorRecord::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 3),
            value: Some(offset.clone()),
        });
        round_trip(CoordinatorRecord::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 3),
            value: Some(OffsetCommitValue {
                expire_timestamp: 1_800_000_000_000,
                leader_epoch: -1,
                ..offset
            }),
        });
        round_trip(CoordinatorRecord::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 3),
            value: None,
        });
        round_trip(CoordinatorRecord::ClassicGroup {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 4,
                protocol: Some("range".into()),
                leader: Some("m-1".into()),
                current_state_timestamp: 5,
                members: vec![group_metadata_value::MemberMetadata {
                    member_id: "m-1".into(),
                    group_instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        });
        round_trip(CoordinatorRecord::ConsumerGroupEpoch {
            group: "g".into(),
            value: Some(ConsumerGroupMetadataValue {
                epoch: 7,
                ..Default::default()
            }),
        });
        round_trip(CoordinatorRecord::CurrentMemberAssignment {
            group: "g".into(),
            member_id: "m".into(),
            value: None,
        });
    }

    #[test]
    fn offset_keys_are_written_at_kafkas_version_and_unknown_kinds_are_ignored() {
        let (key, value) = CoordinatorRecord::Offset {
            group: "g".into(),
            tp: TopicPartition::new("t", 0),
            value: Some(OffsetCommitValue::default()),
        }
        .encode()
        .unwrap();
        assert_eq!(&key[..2], &[0, 1]);
        assert_eq!(&value.unwrap()[..2], &[0, 3]);
        let share_group_key = Bytes::from_static(&[0, 11, 0, 1, b'g']);
        assert_eq!(
            CoordinatorRecord::decode(share_group_key, None).unwrap(),
            CoordinatorRecord::Ignored { key_version: 11 }
        );
        assert!(CoordinatorRecord::decode(Bytes::from_static(&[0, 1, 0, 9]), None).is_err());
    }
}
