//! Record batches from hostile bytes: splitting, validating, reading every record
//! (decompressing with every codec) and rewriting headers must return errors, never
//! panic, and never allocate beyond the decompression bound.
//!
//! Input: the first byte chooses the mode, so that mutations get past the CRC.
//! - 0 mod 3: the rest is taken as it is.
//! - 1 mod 3: the rest with its CRC recomputed, so the record parser sees the mutation.
//! - 2 mod 3: a valid batch is built from the rest (codec, keys and values cut from it),
//!   then bytes chosen by the input are changed and the CRC recomputed.
#![no_main]

use bytes::{Bytes, BytesMut};
use corelog::protocol::records::{
    BatchBuilder, Compression, RecordBatch, batches, set_base_offset, set_partition_leader_epoch,
};
use libfuzzer_sys::fuzz_target;

const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() > ATTRIBUTES_AT {
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_AT..]);
        bytes[CRC_AT..ATTRIBUTES_AT].copy_from_slice(&crc.to_be_bytes());
    }
}

fn built_batch(rest: &[u8]) -> Vec<u8> {
    let (&codec, rest) = rest.split_first().unwrap_or((&0, &[]));
    let mut builder = BatchBuilder::new(Compression::ALL[codec as usize % 5]);
    let mut chunks = rest.chunks(7);
    for (i, chunk) in chunks.by_ref().take(20).enumerate() {
        let key = (i % 3 != 0).then_some(&chunk[..chunk.len() / 2]);
        builder.push(i as i64 * 10, key, Some(&chunk[chunk.len() / 2..]), &[]);
    }
    if builder.is_empty() {
        builder.push(0, None, None, &[]);
    }
    let mut bytes = builder.build(0).to_vec();
    // Remaining input: (position, value) pairs to change.
    let tail: Vec<u8> = chunks.flatten().copied().collect();
    for pair in tail.chunks(3).take(8) {
        if pair.len() == 3 {
            let at = u16::from_be_bytes([pair[0], pair[1]]) as usize % bytes.len();
            bytes[at] = pair[2];
        }
    }
    fix_crc(&mut bytes);
    bytes
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input = match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let mut bytes = rest.to_vec();
            fix_crc(&mut bytes);
            bytes
        }
        _ => built_batch(rest),
    };
    for batch in batches(Bytes::from(input)) {
        let Ok(batch) = batch else { break };
        let valid = batch.validate_records().is_ok();
        if let Ok(records) = batch.records() {
            let mut count = 0usize;
            for record in records {
                let Ok(record) = record else { break };
                let _ = (batch.offset_of(&record), batch.timestamp_of(&record));
                count += 1;
            }
            if valid {
                assert_eq!(count, batch.header().record_count as usize);
            }
        }
        // The rewrites an append makes keep a valid batch valid.
        if valid {
            let mut copy = BytesMut::from(&batch.bytes()[..]);
            set_base_offset(&mut copy, 12345);
            set_partition_leader_epoch(&mut copy, 7);
            let rewritten =
                RecordBatch::parse(copy.freeze()).expect("a rewritten header still parses");
            rewritten.validate().expect("rewrites keep the CRC valid");
        }
    }
});
