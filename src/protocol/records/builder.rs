//! Building v2 batches: for tests, the benchmark's producer side, control batches and
//! compaction ([`rebuild_batch`], [`empty_batch`]: what Kafka's `MemoryRecords.filterTo`
//! writes). The broker never rebuilds a producer's batch on the produce path.

use super::batch::{
    self, BATCH_HEADER_LEN, BatchError, BatchHeader, COMPRESSION_MASK, DELETE_HORIZON_BIT,
    LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, TimestampType,
};
use super::compression::Compression;
use super::record::{Record, RecordHeader, put_record};
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

/// The batch compaction leaves of `original` when it keeps `records` (some of its records,
/// in order, as its iterator gave them), as Kafka's `filterTo` writes it: the same base
/// offset, last offset delta (so the producer's last sequence survives), partition leader
/// epoch, producer id, epoch and base sequence, flags and codec (the records are
/// recompressed); each record keeps its offset delta, timestamp, key, value and headers.
/// With `delete_horizon` the batch carries it in its base timestamp (attribute bit 6) and
/// record timestamps are relative to it; otherwise to the first kept record's. The max
/// timestamp is the kept records' largest (the original's under LogAppendTime). CRC
/// recomputed.
pub fn rebuild_batch(
    original: &BatchHeader,
    records: &[Record],
    delete_horizon: Option<i64>,
) -> Result<Bytes, BatchError> {
    assert!(
        !records.is_empty(),
        "a rebuilt batch keeps a record; an emptied one is `empty_batch`"
    );
    let codec = original.compression()?;
    let absolute = |r: &Record| original.base_timestamp.saturating_add(r.timestamp_delta);
    let base_timestamp = delete_horizon.unwrap_or_else(|| absolute(&records[0]));
    let max_timestamp = match original.timestamp_type() {
        TimestampType::LogAppendTime => original.max_timestamp,
        TimestampType::CreateTime => records.iter().map(absolute).max().expect("not empty"),
    };
    let mut body = Vec::with_capacity(records.iter().map(record_size_hint).sum());
    for r in records {
        assert!(
            r.offset_delta >= 0 && r.offset_delta <= original.last_offset_delta,
            "record offset delta {} outside batch of last offset delta {}",
            r.offset_delta,
            original.last_offset_delta
        );
        put_record(
            &mut body,
            r.offset_delta,
            absolute(r).saturating_sub(base_timestamp),
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let compressed = match codec {
        Compression::None => None,
        codec => Some(codec.compress(&body)),
    };
    let payload: &[u8] = compressed.as_deref().unwrap_or(&body);
    let mut attributes =
        (original.attributes & !COMPRESSION_MASK & !DELETE_HORIZON_BIT) | codec.id() as i16;
    if delete_horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let header = BatchHeader {
        base_offset: original.base_offset,
        batch_length: (BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32,
        partition_leader_epoch: original.partition_leader_epoch,
        magic: MAGIC_V2,
        crc: 0,
        attributes,
        last_offset_delta: original.last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id: original.producer_id,
        producer_epoch: original.producer_epoch,
        base_sequence: original.base_sequence,
        record_count: records.len() as i32,
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + payload.len());
    batch::put_header(&mut out, &header);
    out.extend_from_slice(payload);
    batch::write_crc(&mut out);
    Ok(Bytes::from(out))
}

/// The header-only batch compaction keeps in place of `original` when none of its records
/// stay but the batch must (Kafka's `writeEmptyHeader`: the last batch of a producer, so
/// its epoch and last sequence survive): same base offset, last offset delta, producer
/// fields, flags and leader epoch; no records, no codec; both timestamps the original's
/// max timestamp.
pub fn empty_batch(original: &BatchHeader) -> Bytes {
    let header = BatchHeader {
        base_offset: original.base_offset,
        batch_length: (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32,
        partition_leader_epoch: original.partition_leader_epoch,
        magic: MAGIC_V2,
        crc: 0,
        attributes: BatchHeader::make_attributes(
            Compression::None,
            original.timestamp_type(),
            original.is_transactional(),
            original.is_control(),
        ),
        last_offset_delta: original.last_offset_delta,
        base_timestamp: original.max_timestamp,
        max_timestamp: original.max_timestamp,
        producer_id: original.producer_id,
        producer_epoch: original.producer_epoch,
        base_sequence: original.base_sequence,
        record_count: 0,
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN);
    batch::put_header(&mut out, &header);
    batch::write_crc(&mut out);
    Bytes::from(out)
}

fn record_size_hint(r: &Record) -> usize {
    24 + r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|h| 8 + h.key.len() + h.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>()
}
