//! Kafka's primitive wire types and the bounds-checked reader every decoder is built on.
//!
//! Owns: big-endian fixed-width integers, unsigned varints (compact lengths, tag numbers,
//! tagged-field counts), zig-zag varints and varlongs (record fields), uuids, and the
//! encoded length of each. Used by the generated message codec and by the record batch
//! code; runs on whichever shard decodes a frame.
//!
//! Invariants: a read never looks past the end of its buffer and never allocates; a
//! failed read reports how many bytes it needed. Slices are returned as `Bytes` that
//! share the frame's allocation (no copy).

use bytes::{Buf, BufMut, Bytes};
use std::fmt;

/// A Kafka uuid (topic ids, directory ids): 16 bytes, all-zero meaning "none".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl Uuid {
    /// A random (version 4) uuid that is neither zero nor Kafka's reserved metadata
    /// topic id (1), as Kafka's `Uuid.randomUuid` guarantees.
    pub fn random() -> Uuid {
        loop {
            let mut bytes = [0u8; 16];
            let mut filled = 0;
            while filled < bytes.len() {
                // SAFETY: getrandom writes at most the requested bytes into the buffer.
                let n = unsafe {
                    libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
                };
                assert!(
                    n > 0,
                    "getrandom failed: {}",
                    std::io::Error::last_os_error()
                );
                filled += n as usize;
            }
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
            let id = Uuid(bytes);
            if !id.is_zero() && id != Uuid::METADATA_TOPIC_ID {
                return id;
            }
        }
    }

    /// Kafka's id of its `__cluster_metadata` topic, never given to another topic.
    pub const METADATA_TOPIC_ID: Uuid = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka writes uuids as URL-safe base64 without padding: 22 characters.
impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 22];
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut i = 0;
        for byte in self.0 {
            bits = (bits << 8) | u32::from(byte);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                out[i] = BASE64URL[((bits >> nbits) & 63) as usize];
                i += 1;
            }
        }
        out[i] = BASE64URL[((bits << (6 - nbits)) & 63) as usize];
        f.write_str(std::str::from_utf8(&out).expect("base64 is ASCII"))
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Uuid {
    type Err = String;

    /// Parses Kafka's 22-character URL-safe base64 form.
    fn from_str(text: &str) -> Result<Uuid, String> {
        let bad = || format!("'{text}' is not a Kafka uuid (22 characters of URL-safe base64)");
        if text.len() != 22 {
            return Err(bad());
        }
        let mut bytes = [0u8; 16];
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut i = 0;
        for c in text.bytes() {
            let value = BASE64URL.iter().position(|&b| b == c).ok_or_else(bad)? as u32;
            bits = (bits << 6) | value;
            nbits += 6;
            if nbits >= 8 {
                nbits -= 8;
                if i < 16 {
                    bytes[i] = (bits >> nbits) as u8;
                }
                i += 1;
            }
        }
        // 22 characters carry 132 bits: the last 4 must be zero.
        if bits & ((1 << nbits) - 1) != 0 {
            return Err(bad());
        }
        Ok(Uuid(bytes))
    }
}

/// What went wrong reading a primitive; the caller adds where (message, version, field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ended `needed` bytes into a value that had `remaining` bytes left.
    Truncated { needed: usize, remaining: usize },
    /// An unsigned varint ran past 5 bytes, or a varlong past 10.
    VarintTooLong,
    /// A length or count that is negative (other than the null marker) or cannot fit.
    InvalidLength(i64),
    /// A string whose bytes are not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, remaining } => {
                write!(f, "truncated: needed {needed} bytes, {remaining} remaining")
            }
            WireError::VarintTooLong => write!(f, "varint longer than its maximum size"),
            WireError::InvalidLength(len) => write!(f, "invalid length {len}"),
            WireError::InvalidUtf8 => write!(f, "string is not valid UTF-8"),
        }
    }
}

impl std::error::Error for WireError {}

pub type WireResult<T> = Result<T, WireError>;

/// A cursor over a received frame (or a slice of one). Consumes from the front.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn peek(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes and returns the unread bytes.
    pub fn into_bytes(self) -> Bytes {
        self.buf
    }

    #[inline]
    fn need(&self, n: usize) -> WireResult<()> {
        if self.buf.len() < n {
            Err(WireError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    #[inline]
    pub fn i8(&mut self) -> WireResult<i8> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    #[inline]
    pub fn u8(&mut self) -> WireResult<u8> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Kafka booleans: zero is false, anything else is true (as Kafka's own reader does).
    #[inline]
    pub fn bool(&mut self) -> WireResult<bool> {
        Ok(self.u8()? != 0)
    }

    #[inline]
    pub fn i16(&mut self) -> WireResult<i16> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    #[inline]
    pub fn u16(&mut self) -> WireResult<u16> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    #[inline]
    pub fn i32(&mut self) -> WireResult<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    #[inline]
    pub fn u32(&mut self) -> WireResult<u32> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    #[inline]
    pub fn i64(&mut self) -> WireResult<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    #[inline]
    pub fn f64(&mut self) -> WireResult<f64> {
        self.need(8)?;
        Ok(self.buf.get_f64())
    }

    #[inline]
    pub fn uuid(&mut self) -> WireResult<Uuid> {
        self.need(16)?;
        let mut id = [0u8; 16];
        self.buf.copy_to_slice(&mut id);
        Ok(Uuid(id))
    }

    /// An unsigned LEB128 varint of at most 5 bytes (32 bits).
    #[inline]
    pub fn unsigned_varint(&mut self) -> WireResult<u32> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let byte = self.u8()?;
            if i == 4 && byte > 0x0f {
                return Err(WireError::VarintTooLong);
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    /// An unsigned LEB128 varint of at most 10 bytes (64 bits).
    #[inline]
    pub fn unsigned_varlong(&mut self) -> WireResult<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            if i == 9 && byte > 0x01 {
                return Err(WireError::VarintTooLong);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::VarintTooLong)
    }

    /// A zig-zag encoded signed varint (record fields).
    #[inline]
    pub fn varint(&mut self) -> WireResult<i32> {
        let raw = self.unsigned_varint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// A zig-zag encoded signed varlong (record timestamps and offsets).
    #[inline]
    pub fn varlong(&mut self) -> WireResult<i64> {
        let raw = self.unsigned_varlong()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// The next `n` bytes as a slice sharing the frame's allocation.
    #[inline]
    pub fn bytes(&mut self, n: usize) -> WireResult<Bytes> {
        self.need(n)?;
        Ok(self.buf.split_to(n))
    }

    #[inline]
    pub fn skip(&mut self, n: usize) -> WireResult<()> {
        self.need(n)?;
        self.buf.advance(n);
        Ok(())
    }

    /// The next `n` bytes as an owned UTF-8 string (validated before anything is copied).
    #[inline]
    pub fn string(&mut self, n: usize) -> WireResult<String> {
        self.need(n)?;
        let text = std::str::from_utf8(&self.buf[..n]).map_err(|_| WireError::InvalidUtf8)?;
        let owned = text.to_owned();
        self.buf.advance(n);
        Ok(owned)
    }

    /// A classic `int16` length: `-1` is null, other negatives are invalid.
    #[inline]
    pub fn nullable_len_i16(&mut self) -> WireResult<Option<usize>> {
        match self.i16()? {
            -1 => Ok(None),
            n if n < 0 => Err(WireError::InvalidLength(i64::from(n))),
            n => Ok(Some(n as usize)),
        }
    }

    /// A classic `int32` length or count: `-1` is null, other negatives are invalid.
    #[inline]
    pub fn nullable_len_i32(&mut self) -> WireResult<Option<usize>> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(WireError::InvalidLength(i64::from(n))),
            n => Ok(Some(n as usize)),
        }
    }

    /// A compact length or count (unsigned varint of length + 1): `0` is null.
    #[inline]
    pub fn compact_len(&mut self) -> WireResult<Option<usize>> {
        match self.unsigned_varint()? {
            0 => Ok(None),
            n => Ok(Some((n - 1) as usize)),
        }
    }
}

/// Bytes an unsigned varint of `value` takes on the wire.
#[inline]
pub const fn unsigned_varint_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// Bytes an unsigned varlong of `value` takes on the wire.
#[inline]
pub const fn unsigned_varlong_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[inline]
pub const fn varint_len(value: i32) -> usize {
    unsigned_varint_len(zigzag32(value))
}

#[inline]
pub const fn varlong_len(value: i64) -> usize {
    unsigned_varlong_len(zigzag64(value))
}

#[inline]
const fn zigzag32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

#[inline]
const fn zigzag64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline]
pub fn put_unsigned_varint(buf: &mut impl BufMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[inline]
pub fn put_unsigned_varlong(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[inline]
pub fn put_varint(buf: &mut impl BufMut, value: i32) {
    put_unsigned_varint(buf, zigzag32(value));
}

#[inline]
pub fn put_varlong(buf: &mut impl BufMut, value: i64) {
    put_unsigned_varlong(buf, zigzag64(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn reader(bytes: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(bytes))
    }

    #[test]
    fn varints_round_trip_and_report_their_length() {
        for value in [0i32, 1, -1, 63, -64, 64, 8191, -8192, i32::MAX, i32::MIN] {
            let mut buf = BytesMut::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value), "varint_len({value})");
            assert_eq!(reader(&buf).varint(), Ok(value));
        }
        for value in [0i64, 1, -1, 1 << 40, -(1 << 40), i64::MAX, i64::MIN] {
            let mut buf = BytesMut::new();
            put_varlong(&mut buf, value);
            assert_eq!(buf.len(), varlong_len(value), "varlong_len({value})");
            assert_eq!(reader(&buf).varlong(), Ok(value));
        }
        for value in [0u32, 127, 128, 16383, 16384, u32::MAX] {
            let mut buf = BytesMut::new();
            put_unsigned_varint(&mut buf, value);
            assert_eq!(buf.len(), unsigned_varint_len(value));
            assert_eq!(reader(&buf).unsigned_varint(), Ok(value));
        }
    }

    #[test]
    fn uuids_print_and_parse_as_kafka_does() {
        let id = Uuid([
            0x72, 0xca, 0x1e, 0x7b, 0x81, 0x66, 0x4f, 0xad, 0xa8, 0xf8, 0x35, 0x25, 0x31, 0x22,
            0x19, 0x73,
        ]);
        let text = id.to_string();
        assert_eq!(text.len(), 22);
        assert_eq!(text.parse::<Uuid>(), Ok(id));
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            Uuid::METADATA_TOPIC_ID.to_string(),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert!("AAAAAAAAAAAAAAAAAAAAAB".parse::<Uuid>().is_err());
        assert!("short".parse::<Uuid>().is_err());
        let random = Uuid::random();
        assert_ne!(random, Uuid::random());
        assert_eq!(random.to_string().parse::<Uuid>(), Ok(random));
    }

    #[test]
    fn overlong_varints_are_rejected() {
        assert_eq!(
            reader(&[0xff, 0xff, 0xff, 0xff, 0x1f]).unsigned_varint(),
            Err(WireError::VarintTooLong)
        );
        assert_eq!(
            reader(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unsigned_varint(),
            Err(WireError::VarintTooLong)
        );
        assert_eq!(reader(&[0xff; 11]).varlong(), Err(WireError::VarintTooLong));
    }

    #[test]
    fn truncated_reads_say_how_much_was_missing() {
        assert_eq!(
            reader(&[0, 0, 0]).i32(),
            Err(WireError::Truncated {
                needed: 4,
                remaining: 3
            })
        );
        assert!(matches!(
            reader(&[0x80]).unsigned_varint(),
            Err(WireError::Truncated { .. })
        ));
        assert!(reader(&[1, 2]).bytes(3).is_err());
    }

    #[test]
    fn lengths_distinguish_null_from_invalid() {
        assert_eq!(reader(&[0xff, 0xff]).nullable_len_i16(), Ok(None));
        assert_eq!(reader(&[0x00, 0x05]).nullable_len_i16(), Ok(Some(5)));
        assert_eq!(
            reader(&[0xff, 0xfe]).nullable_len_i16(),
            Err(WireError::InvalidLength(-2))
        );
        assert_eq!(reader(&[0xff; 4]).nullable_len_i32(), Ok(None));
        assert_eq!(
            reader(&[0x80, 0, 0, 0]).nullable_len_i32(),
            Err(WireError::InvalidLength(i64::from(i32::MIN)))
        );
        assert_eq!(reader(&[0]).compact_len(), Ok(None));
        assert_eq!(reader(&[1]).compact_len(), Ok(Some(0)));
        assert_eq!(reader(&[0x81, 0x01]).compact_len(), Ok(Some(128)));
    }

    #[test]
    fn strings_are_checked_before_they_are_copied() {
        assert_eq!(reader(b"abc").string(3), Ok("abc".to_string()));
        assert_eq!(reader(&[0xc3, 0x28]).string(2), Err(WireError::InvalidUtf8));
        assert_eq!(
            reader(b"ab").string(3),
            Err(WireError::Truncated {
                needed: 3,
                remaining: 2
            })
        );
    }

    #[test]
    fn byte_slices_share_the_frame_allocation() {
        let frame = Bytes::from_static(b"\x00\x01hello");
        let mut r = Reader::new(frame.clone());
        r.skip(2).unwrap();
        let hello = r.bytes(5).unwrap();
        assert_eq!(&hello[..], b"hello");
        assert_eq!(hello.as_ptr(), frame[2..].as_ptr());
    }
}
