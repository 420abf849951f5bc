//! Test support: a small seeded random generator and the `Random` trait the generated
//! code implements (under `cfg(test)`) to build random valid messages for any version.
//! Deterministic from a seed, so every failure can be replayed.

use crate::protocol::codec::{RawTaggedField, Records};
use crate::protocol::wire::Uuid;
use bytes::Bytes;

/// splitmix64: tiny, fast, and good enough to drive property tests.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Integers biased toward edge values (0, ±1, extremes) half of the time.
    fn edgy(&mut self, min: i64, max: i64) -> i64 {
        match self.below(8) {
            0 => 0,
            1 => -1i64.max(min),
            2 => min,
            3 => max,
            _ => {
                let span = (max as i128 - min as i128 + 1) as u128;
                (min as i128 + (self.next_u64() as u128 % span) as i128) as i64
            }
        }
    }

    pub fn i8(&mut self) -> i8 {
        self.edgy(i8::MIN.into(), i8::MAX.into()) as i8
    }
    pub fn i16(&mut self) -> i16 {
        self.edgy(i16::MIN.into(), i16::MAX.into()) as i16
    }
    pub fn i32(&mut self) -> i32 {
        self.edgy(i32::MIN.into(), i32::MAX.into()) as i32
    }
    pub fn i64(&mut self) -> i64 {
        self.edgy(i64::MIN, i64::MAX)
    }
    pub fn u16(&mut self) -> u16 {
        self.edgy(0, u16::MAX.into()) as u16
    }
    #[allow(dead_code)] // for uint32 fields, which no spec uses yet
    pub fn u32(&mut self) -> u32 {
        self.edgy(0, u32::MAX.into()) as u32
    }
    /// Finite values only, so equality holds after a round trip.
    pub fn f64(&mut self) -> f64 {
        match self.below(4) {
            0 => 0.0,
            1 => -1.5,
            _ => (self.next_u64() >> 11) as f64 / 1024.0,
        }
    }
    pub fn uuid(&mut self) -> Uuid {
        if self.below(4) == 0 {
            return Uuid::ZERO;
        }
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        id[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        Uuid(id)
    }

    pub fn string(&mut self) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz-_.0123456789";
        let len = match self.below(10) {
            0 => 0,
            1 => 130 + self.below(40),
            _ => self.below(12),
        };
        let mut s: String = (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect();
        if self.below(16) == 0 {
            s.push('é');
        }
        s
    }

    pub fn opt_string(&mut self, nullable: bool) -> Option<String> {
        if nullable && self.below(5) == 0 {
            None
        } else {
            Some(self.string())
        }
    }

    pub fn bytes(&mut self) -> Bytes {
        let len = match self.below(10) {
            0 => 0,
            1 => 128 + self.below(64),
            _ => self.below(16),
        };
        (0..len)
            .map(|_| self.next_u64() as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    pub fn opt_bytes(&mut self, nullable: bool) -> Option<Bytes> {
        if nullable && self.below(5) == 0 {
            None
        } else {
            Some(self.bytes())
        }
    }

    pub fn records(&mut self, nullable: bool) -> Option<Records> {
        self.opt_bytes(nullable).map(Records::Bytes)
    }

    pub fn maybe<T>(&mut self, nullable: bool, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if nullable && self.below(4) == 0 {
            None
        } else {
            Some(f(self))
        }
    }

    pub fn vec<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let len = match self.below(8) {
            0 => 0,
            1 => 1,
            _ => self.below(4),
        };
        (0..len).map(|_| f(self)).collect()
    }

    pub fn opt_vec<T>(&mut self, nullable: bool, f: impl FnMut(&mut Self) -> T) -> Option<Vec<T>> {
        if nullable && self.below(5) == 0 {
            None
        } else {
            Some(self.vec(f))
        }
    }

    /// A few unknown tagged fields, with tags far above any the specs assign.
    pub fn unknown_tagged_fields(&mut self) -> Vec<RawTaggedField> {
        if self.below(3) != 0 {
            return Vec::new();
        }
        let mut tag = 1000 + self.below(8) as u32;
        let mut fields = Vec::new();
        for _ in 0..=self.below(2) {
            let data = self.bytes();
            fields.push(RawTaggedField { tag, data });
            tag += 1 + self.below(200) as u32;
        }
        fields
    }
}

/// A random valid value for a given version (implemented by the generated code).
pub trait Random: Sized {
    fn random(rng: &mut Rng, version: i16) -> Self;
}
