//! Single records inside a v2 batch: reading them (zero-copy slices of the payload) and
//! writing them (for the batch builder).
//!
//! A record on the wire: length (varint), attributes (int8, unused), timestamp delta
//! (varlong), offset delta (varint), key length (varint, −1 = null) and key, value length
//! and value, header count (varint), then per header a key (varint length, never null)
//! and a value (varint length, −1 = null).

use super::batch::BatchError;
use crate::protocol::wire::{self, Reader, WireError};
use bytes::Bytes;

/// One header of a record. Kafka treats the key as UTF-8; it is kept as bytes here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One record, with offset and timestamp relative to its batch (see
/// `RecordBatch::offset_of` and `RecordBatch::timestamp_of` for absolute values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// Yields at most `count` records from a decompressed records section; reports bytes
/// left over after the last record as an error, since Kafka would reject such a batch.
pub struct RecordIter {
    reader: Reader,
    count: usize,
    index: usize,
    failed: bool,
}

impl RecordIter {
    pub(super) fn new(data: Bytes, count: usize) -> RecordIter {
        RecordIter {
            reader: Reader::new(data),
            count,
            index: 0,
            failed: false,
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> BatchError {
        BatchError::InvalidRecord {
            index: self.index,
            reason: reason.into(),
        }
    }

    fn read_record(&mut self) -> Result<Record, BatchError> {
        let index = self.index;
        let wire = |e: WireError| BatchError::InvalidRecord {
            index,
            reason: e.to_string(),
        };
        let length = self.reader.varint().map_err(wire)?;
        if length < 0 {
            return Err(self.invalid(format!("negative record length {length}")));
        }
        let mut body = Reader::new(self.reader.bytes(length as usize).map_err(wire)?);
        let _attributes = body.i8().map_err(wire)?;
        let timestamp_delta = body.varlong().map_err(wire)?;
        let offset_delta = body.varint().map_err(wire)?;
        let key = nullable_bytes(&mut body).map_err(wire)?;
        let value = nullable_bytes(&mut body).map_err(wire)?;
        let header_count = body.varint().map_err(wire)?;
        if header_count < 0 {
            return Err(self.invalid(format!("negative header count {header_count}")));
        }
        // Each header takes at least two bytes: never reserve more than the body holds.
        let mut headers = Vec::with_capacity((header_count as usize).min(body.remaining() / 2));
        for _ in 0..header_count {
            let key = nullable_bytes(&mut body)
                .map_err(wire)?
                .ok_or_else(|| self.invalid("null header key"))?;
            let value = nullable_bytes(&mut body).map_err(wire)?;
            headers.push(RecordHeader { key, value });
        }
        if !body.is_empty() {
            return Err(self.invalid(format!(
                "{} bytes after the last field of the record",
                body.remaining()
            )));
        }
        Ok(Record {
            offset_delta,
            timestamp_delta,
            key,
            value,
            headers,
        })
    }
}

/// What Produce validation looks at in a record, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordShape {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub has_key: bool,
}

/// A position in a records section, read without copying.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// A zigzag varint of at most `max_bytes` bytes.
    fn zigzag(&mut self, max_bytes: usize) -> Option<i64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = *self.data.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        None
    }

    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.zigzag(5)?).ok()
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.data.len())?;
        self.at = end;
        Some(())
    }

    /// A length-prefixed field; `Some(false)` when null (-1) and `null_ok`.
    fn field(&mut self, null_ok: bool) -> Option<bool> {
        match self.varint()? {
            -1 if null_ok => Some(false),
            n if n >= 0 => self.skip(n as usize).map(|()| true),
            _ => None,
        }
    }
}

/// Walks exactly `count` records of a decompressed records section with the checks
/// `RecordIter` makes (every length inside its record, nothing left over), without
/// building them: no copy, no allocation. `check` sees each record's shape.
pub(super) fn walk(
    data: &[u8],
    count: usize,
    mut check: impl FnMut(usize, RecordShape) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let mut cursor = Cursor { data, at: 0 };
    for index in 0..count {
        let invalid = |reason: &str| BatchError::InvalidRecord {
            index,
            reason: reason.to_string(),
        };
        let length = cursor
            .varint()
            .filter(|l| *l >= 0)
            .ok_or_else(|| invalid("bad record length"))?;
        let start = cursor.at;
        cursor
            .skip(length as usize)
            .ok_or_else(|| invalid("record longer than its batch"))?;
        let mut body = Cursor {
            data: &data[start..cursor.at],
            at: 0,
        };
        let shape = (|| {
            body.skip(1)?; // attributes
            let timestamp_delta = body.zigzag(10)?;
            let offset_delta = body.varint()?;
            let has_key = body.field(true)?;
            body.field(true)?; // value
            let headers = body.varint().filter(|n| *n >= 0)?;
            for _ in 0..headers {
                body.field(false)?;
                body.field(true)?;
            }
            (body.at == body.data.len()).then_some(RecordShape {
                offset_delta,
                timestamp_delta,
                has_key,
            })
        })()
        .ok_or_else(|| invalid("malformed record"))?;
        check(index, shape)?;
    }
    if cursor.at != data.len() {
        return Err(BatchError::InvalidRecord {
            index: count,
            reason: format!(
                "{} bytes after the last of {count} records",
                data.len() - cursor.at
            ),
        });
    }
    Ok(())
}

fn nullable_bytes(r: &mut Reader) -> Result<Option<Bytes>, WireError> {
    let len = r.varint()?;
    match len {
        -1 => Ok(None),
        n if n < -1 => Err(WireError::InvalidLength(i64::from(n))),
        n => r.bytes(n as usize).map(Some),
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.index == self.count {
            if self.reader.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(self.invalid(format!(
                "{} bytes after the last of {} records",
                self.reader.remaining(),
                self.count
            ))));
        }
        let result = self.read_record();
        self.failed = result.is_err();
        self.index += 1;
        Some(result)
    }
}

fn nullable_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => wire::varint_len(-1),
        Some(b) => wire::varint_len(b.len() as i32) + b.len(),
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => wire::put_varint(out, -1),
        Some(b) => {
            wire::put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Appends one record in wire form to `out`.
pub(super) fn put_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[RecordHeader],
) {
    let body_len = 1
        + wire::varlong_len(timestamp_delta)
        + wire::varint_len(offset_delta)
        + nullable_len(key)
        + nullable_len(value)
        + wire::varint_len(headers.len() as i32)
        + headers
            .iter()
            .map(|h| nullable_len(Some(&h.key)) + nullable_len(h.value.as_deref()))
            .sum::<usize>();
    let start = out.len();
    wire::put_varint(out, body_len as i32);
    let body_start = out.len();
    out.push(0); // attributes: unused by every record format so far
    wire::put_varlong(out, timestamp_delta);
    wire::put_varint(out, offset_delta);
    put_nullable(out, key);
    put_nullable(out, value);
    wire::put_varint(out, headers.len() as i32);
    for header in headers {
        put_nullable(out, Some(&header.key));
        put_nullable(out, header.value.as_deref());
    }
    assert_eq!(
        out.len() - body_start,
        body_len,
        "record body length computed as {body_len}, written {} (record at {start})",
        out.len() - body_start
    );
}
