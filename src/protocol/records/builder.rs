//! Building v2 batches: for tests, the benchmark's producer side, control batches and
//! (later) compaction. The broker never rebuilds a producer's batch on the produce path.

use super::batch::{
    self, BATCH_HEADER_LEN, BatchHeader, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, TimestampType,
};
use super::compression::Compression;
use super::record::{RecordHeader, put_record};
use bytes::Bytes;

/// Accumulates records and writes them as one batch. Timestamps are absolute
/// milliseconds; the first record's timestamp becomes the base timestamp.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<u8>,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            compression,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            records: Vec::new(),
            record_count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
        }
    }

    /// Marks the batch as written by an idempotent producer.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Adds a record; its offset delta is the number of records before it.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader],
    ) -> &mut Self {
        if self.record_count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        put_record(
            &mut self.records,
            self.record_count,
            timestamp - self.base_timestamp,
            key,
            value,
            headers,
        );
        self.record_count += 1;
        self
    }

    pub fn len(&self) -> usize {
        self.record_count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Uncompressed bytes of the records pushed so far.
    pub fn records_size(&self) -> usize {
        self.records.len()
    }

    /// Writes the batch with the given base offset. A batch holds at least one record.
    pub fn build(&self, base_offset: i64) -> Bytes {
        assert!(
            self.record_count > 0,
            "a record batch holds at least one record"
        );
        let payload = match self.compression {
            Compression::None => None,
            codec => Some(codec.compress(&self.records)),
        };
        let payload: &[u8] = payload.as_deref().unwrap_or(&self.records);
        let header = BatchHeader {
            base_offset,
            batch_length: (BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: BatchHeader::make_attributes(
                self.compression,
                self.timestamp_type,
                self.transactional,
                self.control,
            ),
            last_offset_delta: self.record_count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count: self.record_count,
        };
        let mut out = Vec::with_capacity(BATCH_HEADER_LEN + payload.len());
        batch::put_header(&mut out, &header);
        out.extend_from_slice(payload);
        batch::write_crc(&mut out);
        Bytes::from(out)
    }
}
