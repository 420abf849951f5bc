use super::*;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn header(key: &str, value: Option<&str>) -> RecordHeader {
    RecordHeader {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
    }
}

/// Three records with keys, a null key, a null value and headers.
fn sample_builder(codec: Compression) -> BatchBuilder {
    let mut builder = BatchBuilder::new(codec);
    builder
        .push(1_000, Some(b"k0"), Some(b"v0"), &[header("h", Some("x"))])
        .push(1_005, None, Some(b"v1"), &[])
        .push(
            999,
            Some(b"k2"),
            None,
            &[header("a", None), header("b", Some("y"))],
        );
    builder
}

#[test]
fn built_batches_parse_validate_and_yield_their_records_for_every_codec() {
    for codec in Compression::ALL {
        let bytes = sample_builder(codec).build(42);
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        let h = *batch.header();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_005);
        assert_eq!(h.compression(), Ok(codec));
        assert_eq!(batch.size(), bytes.len());
        batch.validate_records().unwrap();

        let records: Vec<Record> = batch.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(records.len(), 3);
        assert_eq!(batch.offset_of(&records[2]), 44);
        assert_eq!(batch.timestamp_of(&records[1]), 1_005);
        assert_eq!(batch.timestamp_of(&records[2]), 999);
        assert_eq!(records[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(records[1].key, None);
        assert_eq!(records[2].value, None);
        assert_eq!(
            records[2].headers,
            vec![header("a", None), header("b", Some("y"))]
        );
    }
}

#[test]
fn uncompressed_record_values_are_slices_of_the_batch() {
    let bytes = sample_builder(Compression::None).build(0);
    let batch = RecordBatch::parse(bytes.clone()).unwrap();
    let record = batch.records().unwrap().next().unwrap().unwrap();
    let value = record.value.unwrap();
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    assert!(range.contains(&(value.as_ptr() as usize)));
}

#[test]
fn rewriting_base_offset_and_leader_epoch_keeps_the_crc_valid() {
    let mut bytes = BytesMut::from(&sample_builder(Compression::Lz4).build(0)[..]);
    set_base_offset(&mut bytes, 1 << 40);
    set_partition_leader_epoch(&mut bytes, 7);
    let batch = RecordBatch::parse(bytes.freeze()).unwrap();
    batch.validate().unwrap();
    assert_eq!(batch.header().base_offset, 1 << 40);
    assert_eq!(batch.header().partition_leader_epoch, 7);
}

#[test]
fn log_append_time_rewrites_timestamps_and_the_crc() {
    let mut bytes = BytesMut::from(&sample_builder(Compression::None).build(0)[..]);
    set_log_append_time(&mut bytes, 77_777);
    let batch = RecordBatch::parse(bytes.freeze()).unwrap();
    batch.validate().unwrap();
    assert_eq!(
        batch.header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    for record in batch.records().unwrap() {
        assert_eq!(batch.timestamp_of(&record.unwrap()), 77_777);
    }
}

#[test]
fn a_flipped_payload_byte_is_a_crc_mismatch() {
    let mut bytes = BytesMut::from(&sample_builder(Compression::None).build(0)[..]);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let batch = RecordBatch::parse(bytes.freeze()).unwrap();
    assert!(matches!(
        batch.validate(),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn batches_splits_concatenated_batches_and_reports_a_torn_tail() {
    let a = sample_builder(Compression::None).build(0);
    let b = sample_builder(Compression::Zstd).build(3);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&a);
    buf.extend_from_slice(&b);
    buf.extend_from_slice(&a[..a.len() - 5]);
    let buf = buf.freeze();

    let mut it = batches(buf.clone());
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.bytes().as_ptr(), buf.as_ptr(), "zero-copy slice");
    assert_eq!(it.next().unwrap().unwrap().header().base_offset, 3);
    assert_eq!(
        it.next().unwrap(),
        Err(BatchError::Truncated {
            needed: a.len(),
            available: a.len() - 5
        })
    );
    assert!(it.next().is_none());
}

#[test]
fn message_sets_of_magic_0_and_1_are_reported_as_such() {
    let mut bytes = sample_builder(Compression::None).build(0).to_vec();
    bytes[16] = 1;
    assert_eq!(
        BatchHeader::parse(&bytes),
        Err(BatchError::UnsupportedMagic(1))
    );
}

#[test]
fn record_count_must_match_the_offset_range() {
    let mut bytes = sample_builder(Compression::None).build(0).to_vec();
    bytes[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let batch = RecordBatch::parse(Bytes::from(bytes)).unwrap();
    assert_eq!(
        batch.validate(),
        Err(BatchError::InvalidRecordCount {
            record_count: 5,
            last_offset_delta: 2
        })
    );
}

#[test]
fn a_header_count_claiming_two_billion_headers_is_an_error_not_an_allocation() {
    // One record whose header count is i32::MAX with no header bytes behind it.
    let mut record = vec![0u8]; // attributes
    crate::protocol::wire::put_varlong(&mut record, 0);
    crate::protocol::wire::put_varint(&mut record, 0);
    crate::protocol::wire::put_varint(&mut record, -1);
    crate::protocol::wire::put_varint(&mut record, -1);
    crate::protocol::wire::put_varint(&mut record, i32::MAX);
    let mut payload = Vec::new();
    crate::protocol::wire::put_varint(&mut payload, record.len() as i32);
    payload.extend_from_slice(&record);
    let mut iter = RecordIter::new(Bytes::from(payload), 1);
    assert!(matches!(
        iter.next(),
        Some(Err(BatchError::InvalidRecord { index: 0, .. }))
    ));
}

// The kafka-protocol crate is an independent implementation of the same format: each
// side must read what the other writes.
mod oracle {
    use super::*;
    use kafka_protocol::records as kp;

    fn kp_codec(codec: Compression) -> kp::Compression {
        match codec {
            Compression::None => kp::Compression::None,
            Compression::Gzip => kp::Compression::Gzip,
            Compression::Snappy => kp::Compression::Snappy,
            Compression::Lz4 => kp::Compression::Lz4,
            Compression::Zstd => kp::Compression::Zstd,
        }
    }

    #[test]
    fn kafka_protocol_reads_our_batches() {
        for codec in Compression::ALL {
            let bytes = sample_builder(codec)
                .producer(9, 2, 100)
                .partition_leader_epoch(4)
                .build(10);
            let mut buf = bytes.clone();
            let set = kp::RecordBatchDecoder::decode(&mut buf)
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(set.compression, kp_codec(codec));
            let records = set.records;
            assert_eq!(records.len(), 3, "{codec:?}");
            assert_eq!(records[0].offset, 10);
            assert_eq!(records[2].offset, 12);
            assert_eq!(records[1].timestamp, 1_005);
            assert_eq!(records[0].producer_id, 9);
            assert_eq!(records[2].sequence, 102);
            assert_eq!(records[0].partition_leader_epoch, 4);
            assert_eq!(records[0].key.as_deref(), Some(&b"k0"[..]));
            assert_eq!(records[2].value, None);
            assert_eq!(records[2].headers.len(), 2);
        }
    }

    #[test]
    fn we_read_kafka_protocol_batches() {
        for codec in Compression::ALL {
            let kp_records: Vec<kp::Record> = (0..5)
                .map(|i| {
                    let mut headers = indexmap::IndexMap::new();
                    headers.insert(
                        kafka_protocol::protocol::StrBytes::from_static_str("trace"),
                        Some(Bytes::from(format!("t{i}"))),
                    );
                    kp::Record {
                        transactional: false,
                        control: false,
                        delete_horizon: false,
                        partition_leader_epoch: 3,
                        producer_id: 5,
                        producer_epoch: 1,
                        timestamp_type: kp::TimestampType::Creation,
                        offset: 20 + i,
                        sequence: 7 + i as i32,
                        timestamp: 5_000 + i,
                        key: Some(Bytes::from(format!("key{i}"))),
                        value: Some(Bytes::from(vec![i as u8; 300])),
                        headers,
                    }
                })
                .collect();
            let mut buf = BytesMut::new();
            kp::RecordBatchEncoder::encode(
                &mut buf,
                &kp_records,
                &kp::RecordEncodeOptions {
                    version: 2,
                    compression: kp_codec(codec),
                },
            )
            .unwrap();
            let mut parsed: Vec<RecordBatch> = batches(buf.freeze())
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(parsed.len(), 1);
            let batch = parsed.pop().unwrap();
            batch
                .validate_records()
                .unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(batch.header().base_offset, 20);
            assert_eq!(batch.header().producer_id, 5);
            assert_eq!(batch.header().base_sequence, 7);
            let records: Vec<Record> = batch.records().unwrap().map(Result::unwrap).collect();
            assert_eq!(records.len(), 5);
            for (i, record) in records.iter().enumerate() {
                assert_eq!(batch.offset_of(record), 20 + i as i64);
                assert_eq!(batch.timestamp_of(record), 5_000 + i as i64);
                assert_eq!(record.value.as_deref(), Some(&vec![i as u8; 300][..]));
                assert_eq!(record.headers[0].key, Bytes::from_static(b"trace"));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the bytes, splitting, validating and reading records returns, never panics.
    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for batch in batches(Bytes::from(bytes)) {
            let Ok(batch) = batch else { break };
            let _ = batch.validate_records();
            if let Ok(records) = batch.records() {
                for record in records {
                    let _ = record;
                }
            }
        }
    }

    /// A valid batch with some bytes changed is either still readable or an error.
    #[test]
    fn mutated_batches_never_panic(
        codec in prop::sample::select(Compression::ALL.to_vec()),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = sample_builder(codec).build(0).to_vec();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        // Recompute the CRC half of the time so that mutations reach the record parser.
        if bytes.len() > 21 && bytes[0] & 1 == 0 {
            let crc = crc32c::crc32c(&bytes[21..]);
            bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        for batch in batches(Bytes::from(bytes)).flatten() {
            let _ = batch.validate_records();
        }
    }

    /// Built batches round-trip arbitrary keys, values and timestamps.
    #[test]
    fn builder_round_trips_arbitrary_records(
        codec in prop::sample::select(Compression::ALL.to_vec()),
        base_offset in 0i64..(1 << 50),
        records in proptest::collection::vec(
            (0i64..(1 << 41), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
             proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200))),
            1..20),
    ) {
        let mut builder = BatchBuilder::new(codec);
        for (ts, key, value) in &records {
            builder.push(*ts, key.as_deref(), value.as_deref(), &[]);
        }
        let batch = RecordBatch::parse(builder.build(base_offset)).unwrap();
        batch.validate_records().unwrap();
        prop_assert_eq!(batch.header().max_timestamp, records.iter().map(|r| r.0).max().unwrap());
        for (i, (record, (ts, key, value))) in batch.records().unwrap().zip(&records).enumerate() {
            let record = record.unwrap();
            prop_assert_eq!(batch.offset_of(&record), base_offset + i as i64);
            prop_assert_eq!(batch.timestamp_of(&record), *ts);
            prop_assert_eq!(record.key.as_deref(), key.as_deref());
            prop_assert_eq!(record.value.as_deref(), value.as_deref());
        }
    }
}

/// The in-place walk Produce validation uses agrees with the record iterator: same
/// shapes for a good records section, and an error exactly when the iterator finds one.
fn walk_agrees_with_the_iterator(data: &[u8], count: usize) {
    let mut walked = Vec::new();
    let walk = record::walk(data, count, |_, shape| {
        walked.push(shape);
        Ok(())
    });
    let iterated: Result<Vec<Record>, BatchError> =
        RecordIter::new(Bytes::copy_from_slice(data), count).collect();
    match (walk, iterated) {
        (Ok(()), Ok(records)) => {
            assert_eq!(records.len(), count);
            let shapes: Vec<RecordShape> = records
                .iter()
                .map(|r| RecordShape {
                    offset_delta: r.offset_delta,
                    timestamp_delta: r.timestamp_delta,
                    has_key: r.key.is_some(),
                })
                .collect();
            assert_eq!(walked, shapes);
        }
        (Err(_), Err(_)) => {}
        (walk, iterated) => panic!("walk {walk:?} but iterator {:?}", iterated.map(|r| r.len())),
    }
}

#[test]
fn walking_records_in_place_agrees_with_reading_them() {
    let batch = RecordBatch::parse(sample_builder(Compression::None).build(0)).unwrap();
    for count in [3, 2, 4] {
        walk_agrees_with_the_iterator(&batch.payload(), count);
    }
}

proptest! {
    #[test]
    fn walking_mangled_records_agrees_with_reading_them(
        flips in proptest::collection::vec((0usize..200, any::<u8>()), 0..4),
        cut in 0usize..200,
        count in 0usize..5,
    ) {
        let batch = RecordBatch::parse(sample_builder(Compression::None).build(0)).unwrap();
        let mut data = batch.payload().to_vec();
        for (at, byte) in flips {
            if let Some(b) = data.get_mut(at) {
                *b = byte;
            }
        }
        data.truncate(cut.max(data.len() / 2));
        walk_agrees_with_the_iterator(&data, count);
    }
}

#[test]
fn a_rebuilt_batch_keeps_offsets_timestamps_producer_fields_and_codec_with_a_fresh_crc() {
    for codec in Compression::ALL {
        let original = RecordBatch::parse(
            sample_builder(codec)
                .producer(77, 3, 10)
                .transactional(true)
                .partition_leader_epoch(5)
                .build(42),
        )
        .unwrap();
        let h = *original.header();
        let records: Vec<Record> = original.records().unwrap().map(Result::unwrap).collect();
        // Keep the second and third records, no horizon.
        let kept = vec![records[1].clone(), records[2].clone()];
        let rebuilt = RecordBatch::parse(rebuild_batch(&h, &kept, None).unwrap()).unwrap();
        let r = *rebuilt.header();
        rebuilt.verify_crc().unwrap();
        assert_eq!((r.base_offset, r.last_offset()), (42, 44), "{codec:?}");
        assert_eq!(r.record_count, 2);
        assert_eq!(r.compression(), Ok(codec));
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.base_sequence),
            (77, 3, 10)
        );
        assert!(r.is_transactional() && !r.is_control() && !r.has_delete_horizon());
        assert_eq!(r.partition_leader_epoch, 5);
        assert_eq!(r.max_timestamp, 1_005, "the kept records' largest");
        let again: Vec<Record> = rebuilt.records().unwrap().map(Result::unwrap).collect();
        let offsets: Vec<i64> = again.iter().map(|x| rebuilt.offset_of(x)).collect();
        assert_eq!(offsets, vec![43, 44]);
        let times: Vec<i64> = again.iter().map(|x| rebuilt.timestamp_of(x)).collect();
        assert_eq!(times, vec![1_005, 999]);
        assert_eq!(again[1].key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(again[1].value, None);
        assert_eq!(again[1].headers, records[2].headers);

        // With a delete horizon: the base timestamp carries it, record times stay.
        let horizon = RecordBatch::parse(rebuild_batch(&h, &kept, Some(50_000)).unwrap()).unwrap();
        horizon.verify_crc().unwrap();
        assert_eq!(horizon.header().delete_horizon(), Some(50_000));
        let times: Vec<i64> = horizon
            .records()
            .unwrap()
            .map(|x| horizon.timestamp_of(&x.unwrap()))
            .collect();
        assert_eq!(times, vec![1_005, 999]);

        // Emptied: the header alone, same offsets and producer fields.
        let empty = RecordBatch::parse(empty_batch(&h)).unwrap();
        empty.verify_crc().unwrap();
        let e = *empty.header();
        assert_eq!(
            (e.base_offset, e.last_offset(), e.record_count),
            (42, 44, 0)
        );
        assert_eq!(
            (e.producer_id, e.producer_epoch, e.base_sequence),
            (77, 3, 10)
        );
        assert_eq!(e.compression(), Ok(Compression::None));
        assert!(e.is_transactional());
        assert_eq!(empty.records().unwrap().count(), 0);
    }
}
