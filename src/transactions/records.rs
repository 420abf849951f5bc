//! The records the transaction coordinator writes to `__transaction_state`, in Kafka's
//! format (`kafka-message-specs/transaction-coordinator`): the key is an int16 version
//! (0, the only kind of record this topic holds) followed by `TransactionLogKey`; the
//! value is an int16 version followed by `TransactionLogValue`; a null value is the
//! tombstone of an expired transactional id.
//!
//! Values are written at version 0, as Kafka writes them without `transaction.version`
//! 2, unless a field only version 1 carries is set (the previous or next producer id,
//! tagged fields); Kafka's loader reads both. An Empty transaction's partitions are
//! written as null, others grouped by topic. Pure functions, no shard of their own.

use super::state::{TxnMetadata, TxnState};
use crate::model::{ProducerEpoch, ProducerId, Timestamp, TopicPartition};
use crate::protocol::codec::{Decodable, DecodeError, Encodable, EncodeError, Encoder};
use crate::protocol::generated::transaction_coordinator::{
    transaction_log_key::TransactionLogKey,
    transaction_log_value::{PartitionsSchema, TransactionLogValue},
};
use crate::protocol::wire::Reader;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::fmt;

/// The key version of a transaction log record (Kafka's `CoordinatorRecordType`).
const KEY_VERSION: i16 = 0;

/// One record of `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecord {
    /// A transactional id's state; `None` is its tombstone.
    Txn {
        transactional_id: String,
        metadata: Option<TxnMetadata>,
    },
    /// A key of another version: Kafka skips it too (a leftover of an aborted upgrade).
    Ignored { key_version: i16 },
}

/// Why a record of the partition could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRecordError {
    Decode(DecodeError),
    /// A status id no Kafka state has.
    UnknownStatus(i8),
}

impl fmt::Display for TxnRecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnRecordError::Decode(e) => write!(f, "{e}"),
            TxnRecordError::UnknownStatus(id) => write!(f, "unknown transaction status {id}"),
        }
    }
}

impl From<DecodeError> for TxnRecordError {
    fn from(e: DecodeError) -> Self {
        TxnRecordError::Decode(e)
    }
}

fn prefixed(version: i16, message: &impl Encodable) -> Result<Bytes, EncodeError> {
    let mut w = Encoder::new();
    w.put_i16(version);
    message.encode(&mut w, version)?;
    Ok(w.into_bytes())
}

/// The record key of a transactional id.
pub fn encode_key(transactional_id: &str) -> Result<Bytes, EncodeError> {
    let key = TransactionLogKey {
        transactional_id: transactional_id.to_string(),
        ..Default::default()
    };
    prefixed(KEY_VERSION, &key)
}

/// The record value of a transactional id's state.
pub fn encode_value(metadata: &TxnMetadata) -> Result<Bytes, EncodeError> {
    let partitions = if metadata.state == TxnState::Empty {
        None
    } else {
        let mut by_topic: Vec<PartitionsSchema> = Vec::new();
        for tp in &metadata.partitions {
            match by_topic.last_mut() {
                Some(last) if last.topic == tp.topic => last.partition_ids.push(tp.partition),
                _ => by_topic.push(PartitionsSchema {
                    topic: tp.topic.clone(),
                    partition_ids: vec![tp.partition],
                    ..Default::default()
                }),
            }
        }
        Some(by_topic)
    };
    let value = TransactionLogValue {
        producer_id: metadata.producer_id.0,
        previous_producer_id: metadata.previous_producer_id.0,
        next_producer_id: metadata.next_producer_id.0,
        producer_epoch: metadata.producer_epoch.0,
        transaction_timeout_ms: metadata.timeout_ms,
        transaction_status: metadata.state.id(),
        transaction_partitions: partitions,
        transaction_last_update_timestamp_ms: metadata.last_update.0,
        transaction_start_timestamp_ms: metadata.start.0,
        ..Default::default()
    };
    let needs_v1 = value.previous_producer_id != ProducerId::NONE.0
        || value.next_producer_id != ProducerId::NONE.0;
    prefixed(i16::from(needs_v1), &value)
}

/// Reads one record of the partition.
pub fn decode(key: Bytes, value: Option<Bytes>) -> Result<TxnRecord, TxnRecordError> {
    let mut r = Reader::new(key);
    let key_version = r.i16().map_err(DecodeError::from)?;
    if key_version != KEY_VERSION {
        return Ok(TxnRecord::Ignored { key_version });
    }
    let transactional_id = TransactionLogKey::decode(&mut r, key_version)?.transactional_id;
    let Some(value) = value else {
        return Ok(TxnRecord::Txn {
            transactional_id,
            metadata: None,
        });
    };
    let mut r = Reader::new(value);
    let version = r.i16().map_err(DecodeError::from)?;
    let value = TransactionLogValue::decode(&mut r, version)?;
    let state = TxnState::from_id(value.transaction_status)
        .ok_or(TxnRecordError::UnknownStatus(value.transaction_status))?;
    let partitions: BTreeSet<TopicPartition> = if state == TxnState::Empty {
        BTreeSet::new()
    } else {
        value
            .transaction_partitions
            .iter()
            .flatten()
            .flat_map(|t| {
                t.partition_ids
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.clone(), *p))
            })
            .collect()
    };
    let metadata = TxnMetadata {
        transactional_id: transactional_id.clone(),
        producer_id: ProducerId(value.producer_id),
        previous_producer_id: ProducerId(value.previous_producer_id),
        next_producer_id: ProducerId(value.next_producer_id),
        producer_epoch: ProducerEpoch(value.producer_epoch),
        last_producer_epoch: ProducerEpoch::NONE,
        timeout_ms: value.transaction_timeout_ms,
        state,
        partitions,
        start: Timestamp(value.transaction_start_timestamp_ms),
        last_update: Timestamp(value.transaction_last_update_timestamp_ms),
        pending: None,
    };
    Ok(TxnRecord::Txn {
        transactional_id,
        metadata: Some(metadata),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> TxnMetadata {
        TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: ProducerId(5),
            previous_producer_id: ProducerId::NONE,
            next_producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch(2),
            last_producer_epoch: ProducerEpoch::NONE,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                TopicPartition::new("b", 0),
                TopicPartition::new("a", 1),
                TopicPartition::new("a", 0),
            ]
            .into_iter()
            .collect(),
            start: Timestamp(1_000),
            last_update: Timestamp(2_000),
            pending: None,
        }
    }

    fn round_trip(metadata: TxnMetadata) {
        let key = encode_key(&metadata.transactional_id).unwrap();
        let value = encode_value(&metadata).unwrap();
        assert_eq!(
            decode(key, Some(value)).unwrap(),
            TxnRecord::Txn {
                transactional_id: metadata.transactional_id.clone(),
                metadata: Some(metadata),
            }
        );
    }

    #[test]
    fn states_round_trip_and_tombstones_stay_tombstones() {
        round_trip(ongoing());
        round_trip(TxnMetadata::new("tx", ProducerId(9), 1, Timestamp(3)));
        round_trip(TxnMetadata {
            previous_producer_id: ProducerId(4),
            partitions: BTreeSet::new(),
            ..ongoing().moved_to(TxnState::CompleteCommit, Timestamp(7))
        });
        let key = encode_key("tx").unwrap();
        assert_eq!(
            decode(key, None).unwrap(),
            TxnRecord::Txn {
                transactional_id: "tx".into(),
                metadata: None
            }
        );
        assert_eq!(
            decode(Bytes::from_static(&[0, 1, 0, 1, b'x']), None).unwrap(),
            TxnRecord::Ignored { key_version: 1 }
        );
    }

    #[test]
    fn bytes_are_kafkas() {
        // Key: version 0, then TransactionalId as an int16-length string.
        assert_eq!(&encode_key("tx").unwrap()[..], &[0, 0, 0, 2, b't', b'x']);
        // Value v0: ProducerId int64, ProducerEpoch int16, TransactionTimeoutMs int32,
        // TransactionStatus int8, TransactionPartitions as an int32-count array of
        // (Topic int16-length string, PartitionIds int32-count array of int32),
        // LastUpdate int64, Start int64.
        let mut expected: Vec<u8> = vec![0, 0]; // value version 0
        expected.extend(5i64.to_be_bytes());
        expected.extend(2i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend(2i32.to_be_bytes()); // two topics, sorted
        expected.extend([0, 1, b'a']);
        expected.extend(2i32.to_be_bytes());
        expected.extend(0i32.to_be_bytes());
        expected.extend(1i32.to_be_bytes());
        expected.extend([0, 1, b'b']);
        expected.extend(1i32.to_be_bytes());
        expected.extend(0i32.to_be_bytes());
        expected.extend(2_000i64.to_be_bytes());
        expected.extend(1_000i64.to_be_bytes());
        assert_eq!(&encode_value(&ongoing()).unwrap()[..], &expected[..]);

        // Empty: partitions are null (-1 count).
        let empty = TxnMetadata::new("tx", ProducerId(5), 60_000, Timestamp(2_000));
        let bytes = encode_value(&empty).unwrap();
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());

        // A previous producer id needs version 1: compact arrays and tag 0.
        let rotated = TxnMetadata {
            previous_producer_id: ProducerId(4),
            ..empty
        };
        let bytes = encode_value(&rotated).unwrap();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(bytes[17], 0, "null compact array");
        let tags = &bytes[bytes.len() - 11..];
        assert_eq!(tags[..3], [1, 0, 8], "one tagged field: tag 0, 8 bytes");
        assert_eq!(tags[3..], 4i64.to_be_bytes());
    }

    #[test]
    fn an_unknown_status_is_an_error() {
        let mut value = encode_value(&ongoing()).unwrap().to_vec();
        value[16] = 9;
        let err = decode(encode_key("tx").unwrap(), Some(Bytes::from(value))).unwrap_err();
        assert_eq!(err, TxnRecordError::UnknownStatus(9));
    }
}
