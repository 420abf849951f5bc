//! The record-batch codecs Kafka defines (attribute bits 0–2): none, gzip, snappy, lz4,
//! zstd, in the framings Kafka's clients use.
//!
//! - gzip: a gzip stream.
//! - snappy: the Java client writes snappy-java's framing (a magic header, then blocks
//!   each prefixed with its compressed length); librdkafka writes raw snappy. Both are
//!   read; the framed form is written, as Kafka's own broker does.
//! - lz4: the LZ4 frame format.
//! - zstd: a zstd frame.
//!
//! Decompression is bounded: output beyond `limit` bytes is an error, never an
//! allocation, so a hostile batch cannot expand without bound.

use super::batch::BatchError;
use bytes::Bytes;
use std::io::{Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id stored in the batch attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    pub fn from_id(id: u8) -> Option<Compression> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// Kafka's name for the codec (`compression.type` values).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Compresses a records section. Writing into a `Vec` cannot fail.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => data.to_vec(),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).expect("gzip into a Vec");
                encoder.finish().expect("gzip into a Vec")
            }
            Compression::Snappy => snappy_framed_compress(data),
            Compression::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(data).expect("lz4 into a Vec");
                encoder.finish().expect("lz4 into a Vec")
            }
            Compression::Zstd => zstd::bulk::compress(data, 3).expect("zstd into a Vec"),
        }
    }

    /// Decompresses a records section into at most `limit` bytes.
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Bytes, BatchError> {
        let error = |reason: String| BatchError::Decompression {
            codec: self,
            reason,
        };
        let out = match self {
            Compression::None => {
                if data.len() > limit {
                    return Err(BatchError::DecompressedTooLarge { limit });
                }
                return Ok(Bytes::copy_from_slice(data));
            }
            Compression::Gzip => {
                read_bounded(flate2::read::GzDecoder::new(data), limit).map_err(error)?
            }
            Compression::Snappy => snappy_decompress(data, limit).map_err(error)?,
            Compression::Lz4 => {
                read_bounded(lz4_flex::frame::FrameDecoder::new(data), limit).map_err(error)?
            }
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::new(data)
                    .map_err(|e| error(e.to_string()))?
                    .single_frame();
                read_bounded(decoder, limit).map_err(error)?
            }
        };
        match out {
            Some(out) => Ok(Bytes::from(out)),
            None => Err(BatchError::DecompressedTooLarge { limit }),
        }
    }
}

/// Reads a decoder to its end; `None` when it produces more than `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok((out.len() <= limit).then_some(out))
}

const SNAPPY_JAVA_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_JAVA_HEADER_LEN: usize = 16; // magic + version (int32) + compatible version
const SNAPPY_JAVA_BLOCK: usize = 32 * 1024;

fn snappy_framed_compress(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPPY_JAVA_HEADER_LEN + data.len() / 2);
    out.extend_from_slice(&SNAPPY_JAVA_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(SNAPPY_JAVA_BLOCK) {
        let compressed = encoder.compress_vec(block).expect("snappy block");
        out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Option<Vec<u8>>, String> {
    let mut decoder = snap::raw::Decoder::new();
    if !data.starts_with(&SNAPPY_JAVA_MAGIC) {
        let len = snap::raw::decompress_len(data).map_err(|e| e.to_string())?;
        if len > limit {
            return Ok(None);
        }
        return decoder
            .decompress_vec(data)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    let mut rest = data
        .get(SNAPPY_JAVA_HEADER_LEN..)
        .ok_or("snappy-java header truncated")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .ok_or("snappy-java block length truncated")?
            .try_into()
            .expect("4 bytes");
        let len = i32::from_be_bytes(len_bytes);
        let block = usize::try_from(len)
            .ok()
            .and_then(|len| rest.get(4..4 + len))
            .ok_or_else(|| format!("snappy-java block of {len} bytes is truncated"))?;
        let block_len = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
        if out.len() + block_len > limit {
            return Ok(None);
        }
        let start = out.len();
        out.resize(start + block_len, 0);
        let written = decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| e.to_string())?;
        out.truncate(start + written);
        rest = &rest[4 + block.len()..];
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for codec in Compression::ALL {
            let compressed = codec.compress(&data);
            let back = codec.decompress(&compressed, data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{codec:?}");
            assert_eq!(Compression::from_id(codec.id()), Some(codec));
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
        }
    }

    #[test]
    fn decompression_beyond_the_limit_is_refused() {
        let data = vec![0u8; 1 << 20];
        for codec in Compression::ALL {
            let compressed = codec.compress(&data);
            assert_eq!(
                codec.decompress(&compressed, 1000),
                Err(BatchError::DecompressedTooLarge { limit: 1000 }),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn raw_snappy_from_librdkafka_is_read() {
        let data = b"librdkafka writes raw snappy without the java framing".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let back = Compression::Snappy.decompress(&raw, 1 << 20).unwrap();
        assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        let garbage = [0x82u8, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        for codec in Compression::ALL.into_iter().skip(1) {
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec:?}");
        }
    }
}
