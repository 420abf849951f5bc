//! TEMPORARY stand-in for `crate::protocol::records` (the lead's record batch module, branch
//! `records`), with the same names and signatures, so the storage code is written against
//! the real API. Uncompressed batches only. Delete this file and switch the `use` in
//! `storage/mod.rs` when `protocol::records` lands on main.

#![allow(dead_code, clippy::type_complexity)]

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::wire::{self, Reader};

pub const LOG_OVERHEAD: usize = 12;
pub const BATCH_HEADER_LEN: usize = 61;

const ATTRIBUTES_AT: usize = 21;
const CRC_AT: usize = 17;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    Truncated { needed: usize, remaining: usize },
    InvalidMagic(i8),
    InvalidLength(i32),
    CrcMismatch { stored: u32, computed: u32 },
    Corrupt(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for BatchError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

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

impl BatchHeader {
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: BATCH_HEADER_LEN,
                remaining: bytes.len(),
            });
        }
        let i64_at = |at: usize| i64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        let i32_at = |at: usize| i32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let i16_at = |at: usize| i16::from_be_bytes(bytes[at..at + 2].try_into().unwrap());
        let header = BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: bytes[16] as i8,
            crc: i32_at(17) as u32,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        };
        if header.magic != 2 {
            return Err(BatchError::InvalidMagic(header.magic));
        }
        if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidLength(header.batch_length));
        }
        Ok(header)
    }

    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn compression(&self) -> Compression {
        match self.attributes & 7 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            _ => Compression::Zstd,
        }
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & 8 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & 16 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 32 != 0
    }
}

#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

fn corrupt(e: wire::WireError) -> BatchError {
    BatchError::Corrupt(e.to_string())
}

fn nullable_bytes(r: &mut Reader) -> Result<Option<Bytes>, BatchError> {
    let len = r.varint().map_err(corrupt)?;
    if len < 0 {
        return Ok(None);
    }
    r.bytes(len as usize).map(Some).map_err(corrupt)
}

fn parse_record(r: &mut Reader) -> Result<Record, BatchError> {
    let len = r.varint().map_err(corrupt)?;
    if len < 0 {
        return Err(BatchError::Corrupt("negative record length".into()));
    }
    let mut body = Reader::new(r.bytes(len as usize).map_err(corrupt)?);
    let _attributes = body.i8().map_err(corrupt)?;
    let timestamp_delta = body.varlong().map_err(corrupt)?;
    let offset_delta = body.varint().map_err(corrupt)?;
    let key = nullable_bytes(&mut body)?;
    let value = nullable_bytes(&mut body)?;
    let count = body.varint().map_err(corrupt)?;
    let mut headers = Vec::new();
    for _ in 0..count.max(0) {
        let key = nullable_bytes(&mut body)?.unwrap_or_default();
        let value = nullable_bytes(&mut body)?;
        headers.push(RecordHeader { key, value });
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

impl RecordBatch {
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let computed = crc32c::crc32c(&self.bytes[ATTRIBUTES_AT..]);
        if computed != self.header.crc {
            return Err(BatchError::CrcMismatch {
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), BatchError> {
        self.verify_crc()
    }

    pub fn records(
        &self,
    ) -> Result<impl Iterator<Item = Result<Record, BatchError>> + use<>, BatchError> {
        if self.header.compression() != Compression::None {
            return Err(BatchError::Corrupt(
                "compression is not supported by the shim".into(),
            ));
        }
        let mut reader = Reader::new(self.bytes.slice(BATCH_HEADER_LEN..));
        let count = self.header.record_count.max(0) as usize;
        Ok((0..count).map(move |_| parse_record(&mut reader)))
    }
}

pub struct Batches {
    rest: Bytes,
}

pub fn batches(bytes: Bytes) -> Batches {
    Batches { rest: bytes }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::parse(&self.rest) {
            Ok(h) => h,
            Err(e) => {
                self.rest = Bytes::new();
                return Some(Err(e));
            }
        };
        if self.rest.len() < header.size() {
            let remaining = self.rest.len();
            self.rest = Bytes::new();
            return Some(Err(BatchError::Truncated {
                needed: header.size(),
                remaining,
            }));
        }
        let bytes = self.rest.split_to(header.size());
        Some(Ok(RecordBatch { header, bytes }))
    }
}

pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

pub struct BatchBuilder {
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<(i64, Option<Bytes>, Option<Bytes>, Vec<RecordHeader>)>,
}

impl BatchBuilder {
    pub fn new(compression: Compression) -> Self {
        assert_eq!(
            compression,
            Compression::None,
            "the shim only builds uncompressed batches"
        );
        BatchBuilder {
            compression,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    pub fn producer_id(mut self, id: i64) -> Self {
        self.producer_id = id;
        self
    }

    pub fn producer_epoch(mut self, epoch: i16) -> Self {
        self.producer_epoch = epoch;
        self
    }

    pub fn base_sequence(mut self, sequence: i32) -> Self {
        self.base_sequence = sequence;
        self
    }

    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<RecordHeader>,
    ) -> &mut Self {
        self.records.push((timestamp, key, value, headers));
        self
    }

    pub fn build(&self, base_offset: i64) -> Bytes {
        assert!(
            !self.records.is_empty(),
            "a batch needs at least one record"
        );
        let base_timestamp = self.records.iter().map(|r| r.0).min().unwrap();
        let max_timestamp = self.records.iter().map(|r| r.0).max().unwrap();
        let mut body = BytesMut::new();
        for (i, (timestamp, key, value, headers)) in self.records.iter().enumerate() {
            let mut record = BytesMut::new();
            record.put_i8(0);
            wire::put_varlong(&mut record, timestamp - base_timestamp);
            wire::put_varint(&mut record, i as i32);
            let put = |record: &mut BytesMut, b: &Option<Bytes>| match b {
                None => wire::put_varint(record, -1),
                Some(b) => {
                    wire::put_varint(record, b.len() as i32);
                    record.put_slice(b);
                }
            };
            put(&mut record, key);
            put(&mut record, value);
            wire::put_varint(&mut record, headers.len() as i32);
            for h in headers {
                put(&mut record, &Some(h.key.clone()));
                put(&mut record, &h.value);
            }
            wire::put_varint(&mut body, record.len() as i32);
            body.put_slice(&record);
        }
        let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + body.len());
        out.put_i64(base_offset);
        out.put_i32((BATCH_HEADER_LEN - LOG_OVERHEAD + body.len()) as i32);
        out.put_i32(-1);
        out.put_i8(2);
        out.put_u32(0);
        out.put_i16(match self.compression {
            Compression::None => 0,
            _ => unreachable!(),
        });
        out.put_i32(self.records.len() as i32 - 1);
        out.put_i64(base_timestamp);
        out.put_i64(max_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.records.len() as i32);
        out.put_slice(&body);
        let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        out.freeze()
    }
}
