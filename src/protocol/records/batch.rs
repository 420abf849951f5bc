//! The record batch header (magic 2), splitting a buffer into batches without copying,
//! CRC32C validation and the in-place rewrites the broker makes when it appends.
//!
//! Layout of a batch (all big-endian), as Kafka writes it:
//!
//! | offset | field                  | bytes |
//! |-------:|------------------------|------:|
//! |      0 | base offset            | 8 |
//! |      8 | batch length           | 4 (bytes after this field) |
//! |     12 | partition leader epoch | 4 |
//! |     16 | magic                  | 1 (= 2) |
//! |     17 | crc                    | 4 (CRC32C of attributes..end) |
//! |     21 | attributes             | 2 |
//! |     23 | last offset delta      | 4 |
//! |     27 | base timestamp         | 8 |
//! |     35 | max timestamp          | 8 |
//! |     43 | producer id            | 8 |
//! |     51 | producer epoch         | 2 |
//! |     53 | base sequence          | 4 |
//! |     57 | record count           | 4 |
//! |     61 | records                | batch length − 49 |

use super::compression::Compression;
use super::record::{Record, RecordIter, RecordShape};
use bytes::Bytes;
use std::fmt;

/// Bytes before the part of a batch that its length field counts: base offset + length.
pub const LOG_OVERHEAD: usize = 12;
/// Bytes of a v2 batch header, up to the first record.
pub const BATCH_HEADER_LEN: usize = 61;
/// The only record format corelog stores.
pub const MAGIC_V2: i8 = 2;
/// Producer id, epoch and sequence of a batch written by a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
/// Leader epoch of a batch no leader has stamped yet.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Bytes at a batch's start that a leader stamps (base offset and partition leader epoch,
/// with the batch length between them), outside the CRC.
pub const LEADER_STAMPED_LEN: usize = PARTITION_LEADER_EPOCH_AT + 4;

const BASE_OFFSET_AT: usize = 0;
const LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
pub(super) const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const _: () = assert!(RECORD_COUNT_AT + 4 == BATCH_HEADER_LEN);
const _: () = assert!(LENGTH_AT + 4 == LOG_OVERHEAD);
const _: () = assert!(MAGIC_AT + 1 == CRC_AT && CRC_AT + 4 == ATTRIBUTES_AT);

pub(super) const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
pub(super) const DELETE_HORIZON_BIT: i16 = 0x40;

/// How the timestamps of a batch were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Why a buffer is not a valid batch. Each variant carries the values that were wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The buffer ends before the batch does (a torn tail, or a short produce payload).
    Truncated { needed: usize, available: usize },
    /// Only magic 2 is supported.
    UnsupportedMagic(i8),
    /// The length field is below the header's size.
    InvalidLength(i32),
    /// The stored CRC32C does not match the bytes it covers.
    CrcMismatch { stored: u32, computed: u32 },
    /// Compression codec id 5–7 in the attributes.
    UnsupportedCompression(u8),
    /// Record count and offset range disagree, or the count is not positive.
    InvalidRecordCount {
        record_count: i32,
        last_offset_delta: i32,
    },
    /// Record `index` of the batch is malformed.
    InvalidRecord { index: usize, reason: String },
    /// The compressed payload could not be decompressed.
    Decompression { codec: Compression, reason: String },
    /// The payload decompresses to more than the allowed size.
    DecompressedTooLarge { limit: usize },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated { needed, available } => {
                write!(
                    f,
                    "record batch truncated: needs {needed} bytes, {available} available"
                )
            }
            BatchError::UnsupportedMagic(magic) => {
                write!(f, "record batch magic {magic} is not supported (only 2)")
            }
            BatchError::InvalidLength(len) => write!(f, "record batch length {len} is invalid"),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BatchError::UnsupportedCompression(id) => {
                write!(f, "record batch compression codec {id} is not supported")
            }
            BatchError::InvalidRecordCount {
                record_count,
                last_offset_delta,
            } => write!(
                f,
                "record batch count {record_count} does not match last offset delta {last_offset_delta}"
            ),
            BatchError::InvalidRecord { index, reason } => {
                write!(f, "record {index} of the batch is invalid: {reason}")
            }
            BatchError::Decompression { codec, reason } => {
                write!(
                    f,
                    "record batch {codec:?} payload cannot be decompressed: {reason}"
                )
            }
            BatchError::DecompressedTooLarge { limit } => {
                write!(f, "record batch decompresses to more than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for BatchError {}

/// The parsed fixed-size header of a magic 2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `bytes` (which may hold more than one batch).
    /// Checks that the header is complete, the magic is 2 and the length is at least a
    /// header's; it does not check that the whole batch is present or its CRC.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        // The magic byte sits before the end of the v2 header: check it first so that a
        // v0/v1 message set is reported as such rather than as truncated.
        if bytes.len() > MAGIC_AT && bytes[MAGIC_AT] as i8 != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(bytes[MAGIC_AT] as i8));
        }
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: bytes.len(),
            });
        }
        let batch_length = be_i32(bytes, LENGTH_AT);
        if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength(batch_length));
        }
        Ok(BatchHeader {
            base_offset: be_i64(bytes, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: be_i32(bytes, PARTITION_LEADER_EPOCH_AT),
            magic: bytes[MAGIC_AT] as i8,
            crc: be_i32(bytes, CRC_AT) as u32,
            attributes: be_i16(bytes, ATTRIBUTES_AT),
            last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(bytes, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP_AT),
            producer_id: be_i64(bytes, PRODUCER_ID_AT),
            producer_epoch: be_i16(bytes, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(bytes, BASE_SEQUENCE_AT),
            record_count: be_i32(bytes, RECORD_COUNT_AT),
        })
    }

    /// Bytes of the whole batch, including the base offset and length fields.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record: base offset + last offset delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The codec of the records section; an unknown codec id is an error.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        let id = (self.attributes & COMPRESSION_MASK) as u8;
        Compression::from_id(id).ok_or(BatchError::UnsupportedCompression(id))
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether the base timestamp holds a delete horizon (set by compaction).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    /// The delete horizon compaction stamped in the base timestamp (Kafka's
    /// `deleteHorizonMs`): the time after which the cleaner may drop this batch's
    /// tombstones, or the batch itself when it is a transaction marker.
    pub fn delete_horizon(&self) -> Option<i64> {
        self.has_delete_horizon().then_some(self.base_timestamp)
    }

    /// Whether the batch was written by an idempotent or transactional producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Attributes with the given codec, timestamp type and flags.
    pub fn make_attributes(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
        control: bool,
    ) -> i16 {
        let mut attributes = compression.id() as i16;
        if timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if control {
            attributes |= CONTROL_BIT;
        }
        attributes
    }
}

/// One complete batch: its parsed header and its bytes, a slice of the buffer it came
/// from (a request frame, a segment read). The CRC is not checked until asked.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordBatch")
            .field("header", &self.header)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Upper bound on the bytes a compressed batch may expand to when its records are
/// read. Kafka streams records and has no such bound; we decompress whole batches, so
/// this keeps a hostile batch from exhausting memory.
pub const MAX_DECOMPRESSED_BATCH_BYTES: usize = 256 << 20;

impl RecordBatch {
    /// Parses the one batch that `bytes` holds exactly.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let header = BatchHeader::parse(&bytes)?;
        if header.size() != bytes.len() {
            return Err(if header.size() > bytes.len() {
                BatchError::Truncated {
                    needed: header.size(),
                    available: bytes.len(),
                }
            } else {
                BatchError::InvalidLength(header.batch_length)
            });
        }
        Ok(RecordBatch { header, bytes })
    }

    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Bytes of the whole batch.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// CRC32C over attributes..end, as the producer computed it.
    pub fn computed_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..])
    }

    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let computed = self.computed_crc();
        if computed != self.header.crc {
            return Err(BatchError::CrcMismatch {
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// What a broker checks before accepting a batch from a producer without looking
    /// inside compressed records: CRC, a known codec, and a positive record count that
    /// matches the offset range. Kafka reports a failure of the CRC as CORRUPT_MESSAGE
    /// and the others as INVALID_RECORD.
    pub fn validate(&self) -> Result<(), BatchError> {
        self.verify_crc()?;
        self.header.compression()?;
        let h = &self.header;
        if h.record_count <= 0 || h.last_offset_delta.checked_add(1) != Some(h.record_count) {
            return Err(BatchError::InvalidRecordCount {
                record_count: h.record_count,
                last_offset_delta: h.last_offset_delta,
            });
        }
        Ok(())
    }

    /// `validate`, then every record: lengths consistent, offset deltas 0, 1, 2, …,
    /// exactly `record_count` records. Decompresses when needed.
    pub fn validate_records(&self) -> Result<(), BatchError> {
        self.validate()?;
        let mut count = 0usize;
        for (index, record) in self.records()?.enumerate() {
            let record = record?;
            if i64::from(record.offset_delta) != index as i64 {
                return Err(BatchError::InvalidRecord {
                    index,
                    reason: format!("offset delta {} out of sequence", record.offset_delta),
                });
            }
            count += 1;
        }
        if count != self.header.record_count as usize {
            return Err(BatchError::InvalidRecordCount {
                record_count: self.header.record_count,
                last_offset_delta: self.header.last_offset_delta,
            });
        }
        Ok(())
    }

    /// Calls `check` with the shape of every record (decompressing first when needed),
    /// after checking that exactly `record_count` well-formed records fill the batch.
    /// Uncompressed records are read in place: no copy, no allocation per record.
    pub fn walk_records(
        &self,
        check: impl FnMut(usize, RecordShape) -> Result<(), BatchError>,
    ) -> Result<(), BatchError> {
        let payload = self.payload();
        let data = match self.header.compression()? {
            Compression::None => payload,
            codec => codec.decompress(&payload, MAX_DECOMPRESSED_BATCH_BYTES)?,
        };
        let count = self.header.record_count.max(0) as usize;
        super::record::walk(&data, count, check)
    }

    /// The records section as stored (compressed or not).
    pub fn payload(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_LEN..)
    }

    /// Iterates the records, decompressing the payload first when it is compressed.
    /// At most `record_count` records are yielded; bytes left over are reported as an
    /// error by the iterator.
    pub fn records(&self) -> Result<RecordIter, BatchError> {
        let payload = self.payload();
        let data = match self.header.compression()? {
            Compression::None => payload,
            codec => codec.decompress(&payload, MAX_DECOMPRESSED_BATCH_BYTES)?,
        };
        Ok(RecordIter::new(
            data,
            self.header.record_count.max(0) as usize,
        ))
    }

    /// Absolute offset of a record of this batch.
    pub fn offset_of(&self, record: &Record) -> i64 {
        // Both come from the wire: saturate rather than overflow.
        self.header
            .base_offset
            .saturating_add(i64::from(record.offset_delta))
    }

    /// Timestamp of a record of this batch: the batch's max timestamp when the broker
    /// assigned log append time, else base timestamp + delta.
    pub fn timestamp_of(&self, record: &Record) -> i64 {
        match self.header.timestamp_type() {
            TimestampType::LogAppendTime => self.header.max_timestamp,
            TimestampType::CreateTime => self
                .header
                .base_timestamp
                .saturating_add(record.timestamp_delta),
        }
    }
}

/// Splits a buffer of concatenated batches into zero-copy `RecordBatch` slices. Stops at
/// the first error (a torn tail yields `Truncated`, then nothing more).
pub struct Batches {
    rest: Bytes,
    failed: bool,
}

/// Iterates the batches of `bytes` (a produce payload, a segment read).
pub fn batches(bytes: Bytes) -> Batches {
    Batches {
        rest: bytes,
        failed: false,
    }
}

impl Batches {
    /// The bytes not yet returned as batches.
    pub fn remaining(&self) -> &Bytes {
        &self.rest
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let result = BatchHeader::parse(&self.rest).and_then(|header| {
            if header.size() > self.rest.len() {
                return Err(BatchError::Truncated {
                    needed: header.size(),
                    available: self.rest.len(),
                });
            }
            let bytes = self.rest.split_to(header.size());
            Ok(RecordBatch { header, bytes })
        });
        self.failed = result.is_err();
        Some(result)
    }
}

/// Rewrites the base offset of the batch at the start of `batch` (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Stamps the partition leader epoch of the batch at the start of `batch` (not covered
/// by the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Sets log-append-time on the batch at the start of `batch`: the timestamp-type
/// attribute bit and the max timestamp, then recomputes the CRC (both are covered by it).
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    write_crc(batch);
}

/// Computes and stores the CRC of the batch that `batch` holds exactly.
pub(super) fn write_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Appends the 61 header bytes of `h`; the CRC field is written as given, so callers
/// fill it in with `write_crc` once the records section follows.
pub(super) fn put_header(out: &mut Vec<u8>, h: &BatchHeader) {
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&h.batch_length.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(h.magic as u8);
    out.extend_from_slice(&h.crc.to_be_bytes());
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&h.max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&h.record_count.to_be_bytes());
}
